"""Training under tf.distribute (training/distribute.py). The machine has no GPU, so the mirrored
strategy is checked over two logical CPU devices, in a fresh process (devices must be set before
TensorFlow starts). Where a model's loss is a mean over examples and nothing is random per replica
(no dropout, no batch norm), mirroring only splits each global batch in two and averages the halves'
gradients: the loss curves equal one device's up to float summation order. Where a replica computes
something on its own share (semi-hard mining within the half batch, batch-norm statistics), the runs
differ by design, so those are checked to train, record two replicas and save what they validated."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from deepfake_keras.config import STRATEGIES, TripletExperiment

SCRIPT = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from deepfake_keras.training.distribute import strategy_for, describe
    from deepfake_keras.training.fit import fit_resumable
    from deepfake_keras.training.triplet import train_triplet_head
    out_root = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (x[:, :4].sum(axis=1) + 0.5 * rng.normal(size=256) > 0).astype("int64")
    results = {}
    for name in ("one", "mirrored"):
        strategy = strategy_for(name)

        def build():
            tf.keras.utils.set_random_seed(1)
            inputs = tf.keras.Input((16,))
            hidden = tf.keras.layers.Dense(8, activation="relu")(inputs)
            return tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid", dtype="float32")(hidden))

        def data():
            return {"x": x[:192], "y": y[:192], "batch_size": 32, "shuffle": False,
                    "validation_data": (x[192:], y[192:])}

        record, _ = fit_resumable(build, data, f"{out_root}/dense_{name}", epochs=4, patience=None, seed=0,
                                  settings={"batch_size": 32, "strategy": name}, strategy=strategy,
                                  log_dir=f"{out_root}/logs/dense_{name}")
        if name == "mirrored":  # interrupted after epoch 2 (as a kill would), then resumed
            class Stop(tf.keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    if epoch == 1:
                        raise KeyboardInterrupt

            try:
                fit_resumable(build, data, f"{out_root}/resumed", epochs=4, patience=None, seed=0,
                              settings={"batch_size": 32}, strategy=strategy, callbacks=[Stop()])
            except KeyboardInterrupt:
                pass
            resumed, _ = fit_resumable(build, data, f"{out_root}/resumed", epochs=4, patience=None, seed=0,
                                       settings={"batch_size": 32}, strategy=strategy)
            results["resumed"] = {"history": {k: resumed["history"][k] for k in ("loss", "val_loss")},
                                  "resumed_at": resumed["resumed_at"]}
        heads = {}
        for mining in ("random", "semi-hard"):
            _, rec = train_triplet_head(x[:192], y[:192], x[192:], y[192:], mining=mining, epochs=3, batch_size=32,
                                        dropout=0.0, seed=0, strategy=strategy)
            heads[mining] = {"loss": rec["history"]["loss"], "val_loss": rec["history"]["val_loss"],
                             "initial_val_loss": rec["initial_val_loss"], "distribute": rec["distribute"]}
        results[name] = {"dense": {k: record["history"][k] for k in ("loss", "val_loss")},
                         "dense_distribute": record["distribute"], "heads": heads,
                         "replicas": strategy.num_replicas_in_sync}
    print("RESULT " + json.dumps(results))
''')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("distribute")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), out


def test_mirrored_over_two_devices_splits_each_batch(runs):
    results, _ = runs
    assert results["one"]["replicas"] == 1 and results["mirrored"]["replicas"] == 2
    d = results["mirrored"]["dense_distribute"]
    assert d["strategy"] == "MirroredStrategy" and d["global_batch"] == 32 and d["per_replica_batch"] == 16
    assert len(d["devices"]) == 2
    assert results["mirrored"]["heads"]["semi-hard"]["distribute"]["replicas"] == 2


def test_mean_losses_train_the_same_on_one_device_and_mirrored(runs):
    """Cross-entropy (the classifiers) and the random-triplet loss are means over examples: the curves
    match to float32 round-off of reordered sums (relative 1e-3 over a few epochs: the differences
    compound through the updates but stay orders of magnitude below the changes between epochs)."""
    results, _ = runs
    one, mirrored = results["one"], results["mirrored"]
    for key in ("loss", "val_loss"):
        assert one["dense"][key] == pytest.approx(mirrored["dense"][key], rel=1e-3)
        assert one["heads"]["random"][key] == pytest.approx(mirrored["heads"]["random"][key], rel=1e-3)
    assert one["dense"]["loss"][-1] < one["dense"]["loss"][0]  # and it is learning, so the check has teeth


def test_a_mirrored_training_interrupted_resumes_where_it_stopped(runs):
    """Killed after epoch 2 and run again: epochs 3-4 continue from the checkpoint (weights and optimizer
    state of the mirrored variables) and the curve is the uninterrupted run's."""
    results, _ = runs
    resumed = results["resumed"]
    assert resumed["resumed_at"] == [0, 2]
    for key in ("loss", "val_loss"):
        assert resumed["history"][key] == pytest.approx(results["mirrored"]["dense"][key], rel=1e-5)


def test_semi_hard_mining_per_replica_still_trains(runs):
    """Each replica mines semi-hard triplets in its half of a batch (the batches interleave the classes,
    so each half holds both): not the same loss as one device, but it must learn."""
    results, _ = runs
    head = results["mirrored"]["heads"]["semi-hard"]
    assert min(head["val_loss"]) < head["initial_val_loss"]
    assert all(v == v for v in head["loss"])  # no NaN


def test_training_curves_are_logged(runs):
    results, out = runs
    csv = pd.read_csv(out / "logs" / "dense_mirrored" / "training.csv")
    assert csv["epoch"].tolist() == [0, 1, 2, 3]
    assert csv["loss"].tolist() == pytest.approx(results["mirrored"]["dense"]["loss"], rel=1e-6)
    assert list((out / "logs" / "dense_mirrored").glob("train/events.out.tfevents.*"))


def test_the_strategy_is_a_validated_setting():
    assert set(STRATEGIES) == {"auto", "one", "mirrored", "multiworker"}
    with pytest.raises(ValueError, match="strategy must be one of"):
        TripletExperiment.demo(strategy="gpu")


XCEPTION_BAGS = textwrap.dedent(r'''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tests.tiny_store import celebdf_like
    from deepfake_keras.models.xception import build_xception
    from deepfake_keras.training.bagging import train_bag
    from deepfake_keras.training.distribute import strategy_for
    out = sys.argv[1]
    store = celebdf_like(out + "/store", n_fake=4, n_real=4, frames=2, size=71)
    faces = store.faces()
    train = faces[faces["split"] == "train"].reset_index(drop=True)

    def build(image_size, weights):  # no dropout: its masks are drawn per replica
        return build_xception(image_size, weights, dropout=0.0)

    records = {}
    for name in ("one", "mirrored"):
        records[name] = train_bag(train, store.root, f"{out}/bag_{name}", train.iloc[::3].reset_index(drop=True),
                                  epochs=2, image_size=71, batch_size=8, weights="none", seed=0, patience=None,
                                  learning_rate=2e-4, build_model=build, strategy=strategy_for(name),
                                  log_dir=f"{out}/logs/{name}")
    print("RESULT " + json.dumps(records))
''')


@pytest.mark.slow
def test_an_xception_bag_trains_mirrored_as_on_one_device(tmp_path):
    """One Xception bag (71 px, random start, no dropout) on one device and mirrored over two CPU devices.
    Batch norm is synchronised over the replicas (training.distribute.synchronize_batch_norm), so both
    runs compute the statistics of the same global batch of 8: the training losses agree to float
    round-off (measured 2e-5 relative after epoch 1, 1e-3 after epoch 2; bound 1e-2). The validation loss
    goes through batch-norm statistics recomputed on the training frames (fit.recalibrate_batch_norm),
    which turn those round-off differences into a few percent on a 12-frame validation set (measured
    3 % and 6 %; bound 15 %). Unsynchronised, the same runs differed by 270 % in training loss after 2
    epochs: the bounds would catch it. The mirrored bag's saved weights load into a one-device model."""
    import numpy as np

    from deepfake_keras.data.inputs import face_dataset
    from deepfake_keras.data.store import FaceStore
    from deepfake_keras.models.xception import build_xception
    from deepfake_keras.training.fit import load_weights

    done = subprocess.run([sys.executable, "-c", XCEPTION_BAGS, str(tmp_path)], capture_output=True, text=True,
                          timeout=2400, cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode == 0, done.stderr[-3000:]
    records = json.loads(next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    one, mirrored = records["one"], records["mirrored"]
    assert one["distribute"]["replicas"] == 1
    assert mirrored["distribute"]["replicas"] == 2 and mirrored["distribute"]["per_replica_batch"] == 4
    assert mirrored["history"]["loss"] == pytest.approx(one["history"]["loss"], rel=1e-2)
    assert mirrored["history"]["val_loss"] == pytest.approx(one["history"]["val_loss"], rel=0.15)
    assert one["history"]["loss"][-1] < one["history"]["loss"][0]
    assert len(pd.read_csv(tmp_path / "logs" / "mirrored" / "training.csv")) == mirrored["epochs_run"] == 2

    faces = FaceStore.open(tmp_path / "store").faces()
    faces = faces[faces["split"] == "train"].reset_index(drop=True)
    models = {name: load_weights(build_xception(71, weights=None, dropout=0.0), tmp_path / f"bag_{name}" / r["weights"])
              for name, r in records.items()}
    p = {name: m.predict(face_dataset(faces, tmp_path / "store", 71, 8, labels=False), verbose=0).ravel()
         for name, m in models.items()}
    assert np.isfinite(p["mirrored"]).all()
    assert np.corrcoef(p["one"], p["mirrored"])[0, 1] > 0.9  # the same model, up to round-off


def test_mixed_precision_keeps_every_output_float32():
    """Under mixed_float16 the layers compute in float16 but each model's output layer is float32, so
    probabilities, embeddings and losses keep float32 precision (Keras' mixed-precision guide)."""
    import tensorflow as tf

    from deepfake_keras.models.dense import build_dense_classifier
    from deepfake_keras.models.sequence import build_recurrent
    from deepfake_keras.models.triplet import build_triplet_head
    from deepfake_keras.models.xception import build_xception
    from deepfake_keras.training.distribute import set_mixed_precision

    try:
        assert set_mixed_precision(True) == "mixed_float16"
        models = [build_triplet_head(8), build_dense_classifier(8)[0], build_recurrent("gru", 3, 8),
                  build_xception(71, weights=None)]
        for model in models:
            assert model.output.dtype == tf.float32, model.name
            assert any(layer.compute_dtype == "float16" for layer in model.layers), model.name
    finally:
        assert set_mixed_precision(False) == "float32"
