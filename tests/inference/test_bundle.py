"""Model bundles: a saved bundle loads and gives the same scores; a bundle whose files, versions,
FaceNet or classifier types do not match is refused with a message naming the file."""
import json
import shutil

import numpy as np
import pytest
import skops.io as sio

from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.inputs import preprocess_faces
from deepfake_keras.inference.base import BUNDLE_FILE, FORMAT_VERSION, BundleError, new_bundle_dir
from deepfake_keras.inference.bundle import load_bundle, save_bundle
from deepfake_keras.io import sha256_of
from deepfake_keras.models.triplet import embed
from deepfake_keras.training.classifiers import fit_classifier
from deepfake_keras.training.triplet import train_triplet_head

DIM = 128  # facenet-msceleb-128's embedding size
CONFIG = ExtractConfig(frames_per_video=4, crop_size=160)


@pytest.fixture(scope="module")
def trained():
    """A triplet head (1 epoch) and two classifiers on 48 random unit vectors, two classes."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 24)
    x = rng.normal(size=(48, DIM)).astype(np.float32) + 0.5 * y[:, None]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    head, record = train_triplet_head(x, y, x, y, epochs=1, batch_size=16, seed=0)
    z = embed(head, x)
    classifiers = {"sgd": fit_classifier("sgd", z, y), "rf": fit_classifier("rf", z, y, n_estimators=5)}
    return x, y, head, record, classifiers


def make(path, trained, kind="sgd", **kw):
    x, y, head, record, classifiers = trained
    return save_bundle(path, "triplet", extract_config=CONFIG, head=head, head_record=record,
                       classifier=classifiers[kind], facenet="facenet-msceleb-128", **kw)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return make(tmp_path_factory.mktemp("bundles") / "triplet", trained)


def copy_of(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "copy")


def edit_meta(path, change):
    meta = json.loads((path / BUNDLE_FILE).read_text())
    change(meta)
    (path / BUNDLE_FILE).write_text(json.dumps(meta))


# ---------------------------------------------------------------- round trip

@pytest.mark.parametrize("kind", ["sgd", "rf"])
def test_triplet_bundle_round_trips_with_the_same_scores(trained, tmp_path, kind):
    x, y, head, record, classifiers = trained
    path = make(tmp_path / "b", trained, kind, source={"model": f"triplet_{kind}"})
    b = load_bundle(path)
    expected = classifiers[kind].predict_proba(embed(head, x))[:, 1]
    np.testing.assert_array_equal(b.score_embeddings(x), expected)
    assert (b.kind, b.threshold, b.aggregation, b.decision) == ("triplet", 0.5, "mean", "score")
    assert b.extract_config == CONFIG
    assert b.facenet_spec.name == "facenet-msceleb-128" and b.facenet_margin == 0.2  # FACENET_MARGIN < store 0.3
    meta = json.loads((path / BUNDLE_FILE).read_text())
    assert (meta["format_version"], meta["versions"]["deepfake_keras"]) == (FORMAT_VERSION, "0.1.0")
    assert set(meta["files"]) == {"triplet_head.weights.h5", "triplet_head.json", "classifier.skops"}
    assert meta["facenet"]["sha256"] == "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
    assert meta["source"] == {"model": f"triplet_{kind}"}
    assert not list(tmp_path.glob(".*"))  # no temporary folder left beside it


def test_save_never_writes_over_anything(trained, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="never written over anything"):
        make(tmp_path / "mine", trained)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    load_bundle(make(tmp_path / "empty", trained))  # an empty folder is fine
    assert new_bundle_dir(tmp_path, "empty").name == "empty-2"
    assert new_bundle_dir(tmp_path, "new").name == "new"


def test_save_checks_the_parts_fit(trained, tmp_path):
    x, y, head, record, classifiers = trained
    with pytest.raises(BundleError, match="takes 128-d inputs but FaceNet facenet-vggface2-512 gives 512-d"):
        save_bundle(tmp_path / "a", "triplet", extract_config=CONFIG, head=head, head_record=record,
                    classifier=classifiers["sgd"], facenet="facenet-vggface2-512")
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression().fit(embed(head, x), y)
    with pytest.raises(BundleError, match="LogisticRegression is not one a bundle may hold"):
        save_bundle(tmp_path / "b", "triplet", extract_config=CONFIG, head=head, head_record=record,
                    classifier=other, facenet="facenet-msceleb-128")
    with pytest.raises(BundleError, match="threshold"):
        make(tmp_path / "c", trained, threshold=1.5)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("name", ["triplet_head.weights.h5", "triplet_head.json", "classifier.skops"])
def test_a_changed_file_is_refused_by_name(saved, tmp_path, name):
    path = copy_of(saved, tmp_path)
    data = bytearray((path / name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    (path / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{name}: changed since the bundle was made"):
        load_bundle(path)


def test_a_missing_or_extra_file_is_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    (path / "classifier.skops").unlink()
    with pytest.raises(BundleError, match="file classifier.skops is missing"):
        load_bundle(path)
    path = shutil.copytree(saved, tmp_path / "extra")
    (path / "other.weights.h5").write_bytes(b"\x89HDF")
    with pytest.raises(BundleError, match="file other.weights.h5 is not part of the bundle"):
        load_bundle(path)


@pytest.mark.parametrize("library,version", [("deepfake_keras", "0.0.9"), ("scikit-learn", "1.5.2"),
                                             ("tensorflow", "2.16.1")])
def test_other_versions_are_refused(saved, tmp_path, library, version):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["versions"].update({library: version}))
    with pytest.raises(BundleError, match=rf"bundle.json: made with {library} {version} \(installed: "):
        load_bundle(path)


def test_other_format_versions_and_non_bundles_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=f"bundle format version {FORMAT_VERSION + 1}"):
        load_bundle(path)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="no such folder"):
        load_bundle(tmp_path / "nowhere")


def test_file_names_that_leave_the_bundle_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["files"].update({"../outside.h5": "0" * 64}))
    with pytest.raises(BundleError, match="leaves the bundle folder"):
        load_bundle(path)


def test_other_facenet_weights_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["facenet"].update(sha256="f" * 64))
    with pytest.raises(BundleError, match="not the weights the model was trained on"):
        load_bundle(path)


def test_a_classifier_with_untrusted_types_is_refused_before_loading(saved, trained, tmp_path):
    """A Pipeline (allowed at the top) hiding a FunctionTransformer that would call a function: the
    schema check refuses it even with its hash updated, before skops loads anything."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y, head, record, classifiers = trained
    hostile = make_pipeline(FunctionTransformer(np.exp), fit_classifier("sgd", embed(head, x), y)).fit(embed(head, x), y)
    path = copy_of(saved, tmp_path)
    sio.dump(hostile, path / "classifier.skops")
    edit_meta(path, lambda m: m["files"].update({"classifier.skops": sha256_of(path / "classifier.skops")}))
    with pytest.raises(BundleError, match="FunctionTransformer.*refused"):
        load_bundle(path)


# ---------------------------------------------------------------- Xception bags

def test_xception_bundle_round_trips_and_refuses_a_changed_bag(tmp_path):
    import tensorflow as tf

    from deepfake_keras.models.xception import build_xception

    files, models = [], []
    for i in range(2):
        tf.keras.utils.set_random_seed(i)
        model = build_xception(71, weights="none")
        model.save_weights(tmp_path / f"bag{i}.weights.h5")
        files.append(tmp_path / f"bag{i}.weights.h5")
        models.append(model)
    path = save_bundle(tmp_path / "bundle", "xception", extract_config=CONFIG, bag_weights=files, image_size=71)
    b = load_bundle(path)
    assert (b.kind, b.decision, b.image_size, len(b.bags)) == ("xception", "vote", 71, 2)
    faces = np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3)).astype(np.uint8)
    x = preprocess_faces(faces, 71)
    expected = np.stack([m(x, training=False).numpy().ravel() for m in models], axis=1)
    np.testing.assert_allclose(b.bag_probabilities(faces), expected, rtol=0, atol=1e-6)
    scores, per_bag = b.score_faces(faces)
    np.testing.assert_allclose(scores, per_bag.mean(axis=1))
    data = bytearray((path / "bags" / "bag_1.weights.h5").read_bytes())
    data[-100] ^= 0xFF
    (path / "bags" / "bag_1.weights.h5").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"bags/bag_1.weights.h5: changed since the bundle was made"):
        load_bundle(path)
