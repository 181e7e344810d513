"""``input_storage``: the Xception's crops read from the store's PNGs or from the raw uint8 copy beside the
store. The same bag either way (weights and history, bit for bit), the raw copy never inside the store; the
setting validated in the configs, reachable from the CLI and passed down by both pipelines."""
import numpy as np
import pytest

from deepfake_keras import cli
from deepfake_keras.config import INPUT_STORAGES, BaggingExperiment, BaselinesExperiment, XceptionConfig
from deepfake_keras.data.inputs import raw_cache_root
from deepfake_keras.training import bagging, fit, splits

from ..tiny_store import celebdf_like
from .test_bagging import bn_net  # batch norm: the recalibration passes over the crops count too

SIZE = 16


def files_under(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in root.rglob("*") if p.is_file())


def test_a_bag_from_the_raw_copy_is_the_bag_from_the_pngs(tmp_path):
    """Training (shuffled, augmented, batch norm recalibrated each epoch, validated) and prediction give the
    same numbers, to the bit, from either storage; the raw copy is written beside the store, never in it."""
    store = celebdf_like(tmp_path / "store", n_fake=5, n_real=3, frames=2, n_test=1, size=SIZE)
    faces = store.faces()
    before = files_under(store.root)
    train_videos, val_videos = splits.split_validation(faces[faces["split"] == "train"], 0.3, seed=0)
    train = faces[faces["store_key"].isin(set(train_videos["store_key"]))].reset_index(drop=True)
    val = faces[faces["store_key"].isin(set(val_videos["store_key"]))].reset_index(drop=True)
    test = faces[faces["split"] == "test"].reset_index(drop=True)
    kwargs = dict(epochs=2, image_size=SIZE, batch_size=4, weights=None, seed=3, patience=None, augment=True,
                  build_model=bn_net, verbose=0)
    records, weights, probs = {}, {}, {}
    for storage in INPUT_STORAGES:
        bag = tmp_path / storage / "bag_0"
        records[storage] = bagging.train_bag(train, store.root, bag, val, input_storage=storage, **kwargs)
        weights[storage] = fit.load_weights(bn_net(SIZE), bag / records[storage]["weights"]).get_weights()
        (tmp_path / storage / bagging.PLAN_FILE).write_text('{"n_bags": 1}')
        probs[storage] = bagging.predict_bags(test, store.root, tmp_path / storage, build_model=bn_net,
                                              progress=False, input_storage=storage)
    png, raw = records["png"], records["raw"]
    assert png["history"] == raw["history"] and len(png["history"]["loss"]) == 2
    assert (png["best_epoch"], png["batch_norm_batches"]) == (raw["best_epoch"], raw["batch_norm_batches"])
    assert png["settings"] == raw["settings"]  # the storage is not a setting: a bag resumes with either
    assert len(weights["png"]) == len(weights["raw"]) > 0
    for a, b in zip(weights["png"], weights["raw"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(probs["png"], probs["raw"])
    assert probs["png"].shape == (len(test), 1)

    copy = raw_cache_root(store.root)
    assert copy.parent == store.root.resolve().parent and copy != store.root.resolve()
    assert len(list(copy.rglob("*.raw"))) == len(train) + len(val) + len(test)
    assert files_under(store.root) == before  # nothing written, changed or removed in the store


def test_the_raw_copy_is_refused_inside_the_store(tmp_path):
    from deepfake_keras.data.inputs import face_dataset

    store = celebdf_like(tmp_path / "store", n_fake=1, n_real=1, frames=1, n_test=0, size=SIZE)
    before = files_under(store.root)
    for inside in (store.root, store.root / "raw"):
        with pytest.raises(ValueError, match="cannot go inside the face store"):
            face_dataset(store.faces(), store.root, SIZE, 2, storage="raw", raw_root=inside)
    assert files_under(store.root) == before


# --------------------------------------------------------------------------- the setting

def test_input_storage_is_validated_in_every_config():
    assert INPUT_STORAGES == ("png", "raw")
    assert XceptionConfig().input_storage == "png"
    for cls in (BaggingExperiment, BaselinesExperiment):
        assert cls.paper().input_storage == cls.demo().input_storage == "png"
        assert cls.paper(input_storage="raw").input_storage == "raw"
        assert cls.paper(input_storage=None).input_storage == "png"  # None: the default
        for bad in ("jpeg", "RAW", "", 1):
            with pytest.raises(ValueError, match="input_storage must be one of"):
                cls.paper(input_storage=bad)
    assert XceptionConfig(input_storage="raw").input_storage == "raw"
    with pytest.raises(ValueError, match=r"input_storage must be one of \('png', 'raw'\), got 'tfrecord'"):
        XceptionConfig(input_storage="tfrecord")
    assert XceptionConfig.from_dict({"input_storage": "raw"}).input_storage == "raw"
    assert BaggingExperiment.from_dict({"augment": False}).input_storage == "png"  # older records load


@pytest.mark.parametrize("command, module", [("celebdf-bagging", "celebdf_bagging"),
                                             ("ffpp-baselines", "ffpp_baselines")])
def test_the_cli_flag_reaches_the_config(monkeypatch, tmp_path, capsys, command, module):
    import importlib

    pipeline = importlib.import_module(f"deepfake_keras.pipelines.{module}")
    seen = []
    monkeypatch.setattr(pipeline, "run", lambda config, out, **kwargs: seen.append(config))
    for argv, want in (([], "png"), (["--input-storage", "raw"], "raw"), (["--input-storage", "png"], "png")):
        assert cli.main([command, "--out", str(tmp_path / "r"), *argv]) == 0
        assert seen[-1].input_storage == want
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--input-storage", "jpeg"])
    assert e.value.code == 2 and "invalid choice: 'jpeg'" in capsys.readouterr().err


def test_the_pipelines_pass_it_to_every_pass_over_the_crops(monkeypatch, tmp_path):
    """Both pipelines hand ``config.input_storage`` to the bags' training and prediction (Celeb-DF) and to the
    frames-only Xception and its features (FF++)."""
    import pandas as pd

    from deepfake_keras.pipelines import celebdf_bagging, ffpp_baselines
    from deepfake_keras.training import features

    calls = []

    def record(name, result):
        def fake(*args, **kwargs):
            calls.append((name, kwargs.get("input_storage")))
            return result
        return fake

    faces = pd.DataFrame({"store_key": ["a", "a", "b"], "label": [1, 1, 0], "split": ["test", "test", "train"],
                          "video_id": ["a", "a", "b"], "method": ["", "", ""], "frame": [0, 1, 0],
                          "crop": ["a/0.png", "a/1.png", "b/0.png"]})
    monkeypatch.setattr(bagging, "train_bagging", record("train_bagging", []))
    monkeypatch.setattr(bagging, "predict_bags", record("predict_bags", np.full((2, 1), 0.7, np.float32)))
    config = BaggingExperiment.demo(input_storage="raw", bags=1)
    celebdf_bagging.train_and_predict_bags(faces, tmp_path, tmp_path / "bags", config, "none", False,
                                           {"strategy": None, "logs": tmp_path / "logs"})
    bag = {"weights": "model.weights.h5", "epochs_run": 1, "best_epoch": 1, "best_val_loss": None,
           "counts": {}, "batch_norm_batches": 0}
    monkeypatch.setattr(bagging, "train_bag", record("train_bag", bag))
    monkeypatch.setattr(features, "cached_features", record("cached_features",
                                                            (np.zeros((3, 2), np.float32), np.zeros(3, np.float32))))
    config = BaselinesExperiment.demo(input_storage="raw")
    ffpp_baselines.frames_only(faces, tmp_path, tmp_path, tmp_path / "models", config, "none", False,
                               {"strategy": None, "logs": tmp_path / "logs"})
    assert calls == [("train_bagging", "raw"), ("predict_bags", "raw"), ("train_bag", "raw"),
                     ("cached_features", "raw")]
