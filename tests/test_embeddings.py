"""FaceNet embeddings: standardisation, batching, the on-disk cache, and a real verification check."""
import numpy as np
import pandas as pd
import pytest

from deepfake_keras import embeddings as E
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import MANIFEST_COLUMNS
from deepfake_keras.data.store import FACE_COLUMNS, FaceStore
from deepfake_keras.weights import WEIGHTS

from .conftest import shared

SPEC = WEIGHTS["facenet-msceleb-128"]
DEEPFACE = ("faces", "serengil_deepface", "tests", "unit", "dataset")


class CountingModel:
    """A stand-in FaceNet: embeds an image by its channel means (so distinct colours give distinct
    embeddings), counts calls and faces, and can be told to fail after some calls."""

    def __init__(self, dim=128, fail_after=None):
        self.dim, self.fail_after, self.calls, self.faces = dim, fail_after, 0, 0

    def predict_on_batch(self, x):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("killed")
        self.calls += 1
        self.faces += len(x)
        feats = np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2)), np.ones((len(x), 1))], axis=1)
        out = np.tile(feats, (1, -(-self.dim // feats.shape[1])))[:, :self.dim]
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class NoModel:
    def predict_on_batch(self, x):
        raise AssertionError("the cache should have answered")


def face_image(seed, size=64):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_store(root, videos: dict, config: ExtractConfig) -> FaceStore:
    """A face store with ``videos`` {store_key: [RGB crops]} written as the extractor writes them."""
    store = FaceStore(root, config)
    add_videos(store, videos)
    return store


def add_videos(store, videos):
    for key, crops in videos.items():
        rows = [{**{c: 0 for c in FACE_COLUMNS if c != "crop"}, "frame": f, "confidence": 1.0, "n_faces": 1}
                for f in range(len(crops))]
        meta = {c: "" for c in MANIFEST_COLUMNS}
        meta.update(video_id=key.split("/")[-1], store_key=key, label=0, split="train", status="ok", reason="",
                    frames_sampled=len(crops), frames_with_face=len(crops))
        store.write_video(key, list(enumerate(crops)), rows, meta)
    store.rebuild_index()


@pytest.fixture
def no_loading(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the model was loaded although the cache holds everything")

    monkeypatch.setattr(E, "load_facenet", refuse)


# ------------------------------------------------------------------ pure functions


def test_standardize_fixed_by_hand():
    x = np.array([0, 127.5, 255], dtype=np.float32).reshape(1, 1, 1, 3)
    np.testing.assert_allclose(E.standardize(x, "fixed").ravel(), [-127.5 / 128, 0, 127.5 / 128])


def test_standardize_prewhiten_by_hand():
    x = np.array([[0, 0, 0], [2, 2, 2]], dtype=np.float32).reshape(1, 2, 1, 3)  # mean 1, std 1
    np.testing.assert_allclose(E.standardize(x, "prewhiten").ravel(), [-1, -1, -1, 1, 1, 1])
    flat = np.full((1, 4, 4, 3), 200.0)  # std 0: divided by 1/sqrt(48), not by zero
    np.testing.assert_array_equal(E.standardize(flat, "prewhiten"), 0)
    imgs = np.stack([face_image(1), face_image(2) // 4])
    out = E.standardize(imgs, "prewhiten")
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-5)


def test_standardize_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown standardization"):
        E.standardize(np.zeros((1, 4, 4, 3)), "imagenet")
    with pytest.raises(ValueError, match="RGB images"):
        E.standardize(np.zeros((4, 4, 3)), "fixed")


def test_center_margin_cuts_the_tighter_square():
    crop = np.zeros((130, 130, 3), np.uint8)  # margin 0.3 around a 100-pixel box
    crop[15:115, 15:115] = 255
    inner = E.center_margin(crop, 0.3, 0.0)
    assert inner.shape == (100, 100, 3) and inner.min() == 255
    assert E.center_margin(crop, 0.3, 0.3).shape == crop.shape
    with pytest.raises(ValueError, match="re-extract"):
        E.center_margin(crop, 0.3, 0.5)
    assert E.effective_margin(0.3, 0.2) == 0.2
    assert E.effective_margin(0.1, 0.2) == 0.1 and E.effective_margin(0.3, None) == 0.3


def test_embed_faces_resizes_and_batches():
    model = CountingModel()
    images = [face_image(k, 299) for k in range(5)]
    out = E.embed_faces(images, model, SPEC, batch_size=2)
    assert out.shape == (5, 128) and out.dtype == np.float32 and model.calls == 3
    small = E.resize_faces(images, 160)
    np.testing.assert_allclose(E.embed_faces(small, model, SPEC, batch_size=64), out, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        E.embed_faces([np.zeros((160, 160))], model, SPEC)


# ------------------------------------------------------------------ the cache


CONFIG = ExtractConfig(crop_size=64, margin=0.3)
VIDEOS = {f"demo/v{k}": [face_image(10 * k + f) for f in range(2)] for k in range(3)}


def test_store_embeddings_are_cached_and_second_run_computes_nothing(tmp_path, monkeypatch, no_loading):
    store = make_store(tmp_path / "store", VIDEOS, CONFIG)
    model = CountingModel()
    table, emb = E.embed_store(store.root, "facenet-msceleb-128", batch_size=4, progress=False, model=model)
    assert model.faces == 6 and emb.shape == (6, 128) and len(table) == 6
    # row k of the array is the embedding of crop k of the table, seen through the FaceNet margin
    want = E.embed_faces([E.center_margin(store.load_crop(c), 0.3, E.FACENET_MARGIN) for c in table["crop"]],
                         CountingModel(), SPEC)
    np.testing.assert_array_equal(emb, want)
    folders = list((store.root / "embeddings").iterdir())
    assert [f.name for f in folders] == [f"{SPEC.key}-prewhiten-s160-c64-m0.3-fm{E.FACENET_MARGIN:g}"]
    assert len(list(folders[0].glob("part-*.npz"))) == 1 and (folders[0] / "settings.json").is_file()

    table2, emb2 = E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=NoModel())
    pd.testing.assert_frame_equal(table2, table)
    np.testing.assert_array_equal(emb2, emb)
    # without a model given, nothing is even loaded (no_loading would fail)
    np.testing.assert_array_equal(E.embed_store(store.root, "facenet-msceleb-128", progress=False)[1], emb)


def test_other_settings_get_another_cache(tmp_path, no_loading):
    import tensorflow as tf

    store = make_store(tmp_path / "store", VIDEOS, CONFIG)
    base = E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=CountingModel())[1]
    runs = {"margin 0.1": dict(margin=0.1), "as stored": dict(margin=None),
            "fixed standardisation": dict(standardization="fixed")}
    for what, kw in runs.items():
        model = CountingModel()
        emb = E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=model, **kw)[1]
        assert model.faces == 6, what
        assert not np.array_equal(emb, base), what
    # other weights (a file given by path): another cache, with the file's own size
    inputs = tf.keras.Input((1792,))
    other = tf.keras.Model(inputs, tf.keras.layers.Dense(32, name="Bottleneck", use_bias=False)(inputs))
    other.save_weights(tmp_path / "other.h5")
    model = CountingModel(dim=32)
    emb = E.embed_store(store.root, tmp_path / "other.h5", progress=False, model=model)[1]
    assert model.faces == 6 and emb.shape == (6, 32)
    assert len(list((store.root / "embeddings").iterdir())) == 5
    # each of them is now cached
    for kw in runs.values():
        E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=NoModel(), **kw)
    E.embed_store(store.root, tmp_path / "other.h5", progress=False, model=NoModel())


def test_killed_run_resumes_and_a_grown_store_embeds_only_new_crops(tmp_path, no_loading):
    store = make_store(tmp_path / "store", VIDEOS, CONFIG)
    with pytest.raises(RuntimeError, match="killed"):  # dies in its second chunk of 2 faces
        E.embed_store(store.root, "facenet-msceleb-128", progress=False, chunk_size=2, batch_size=2,
                      model=CountingModel(fail_after=1))
    folder = next((store.root / "embeddings").iterdir())
    assert len(list(folder.glob("part-*.npz"))) == 1
    model = CountingModel()
    _, emb = E.embed_store(store.root, "facenet-msceleb-128", progress=False, chunk_size=2, model=model)
    assert model.faces == 4
    assert len(list(folder.glob("part-*.npz"))) == 1  # merged
    full = E.embed_store(tmp_path / "store", "facenet-msceleb-128", progress=False, model=NoModel())[1]
    np.testing.assert_array_equal(emb, full)

    add_videos(store, {"demo/v9": [face_image(99), face_image(98)]})
    model = CountingModel()
    table, emb = E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=model)
    assert model.faces == 2 and len(table) == 8
    np.testing.assert_array_equal(emb[table["store_key"] != "demo/v9"], full)


def test_a_store_made_with_a_small_margin_is_used_as_stored(tmp_path, no_loading):
    store = make_store(tmp_path / "store", VIDEOS, ExtractConfig(crop_size=64, margin=0.1))
    E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=CountingModel(), margin=0.2)
    assert [f.name for f in (store.root / "embeddings").iterdir()] == [f"{SPEC.key}-prewhiten-s160-c64-m0.1-fm0.1"]


# ------------------------------------------------------------------ real faces


def read_photo(path) -> np.ndarray:
    """RGB of an image file, decoded by content (one deepface .jpg is WebP), alpha dropped."""
    import cv2

    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_verification_pairs_separate_with_msceleb_facenet(tmp_path, detector, facenet_msceleb, no_loading):
    """FaceNet (128-d, MS-Celeb-1M) on MTCNN crops of deepface's labelled pairs, through a face
    store as the pipeline makes it (299-pixel crops, margin 0.3, cut to FaceNet's margin)."""
    from sklearn.metrics import roc_auc_score

    from deepfake_keras.data.faces import crop_face, select_largest

    folder = shared(*DEEPFACE)
    pairs = pd.read_csv(folder / "master.csv")
    photos = sorted(set(pairs["file_x"]) | set(pairs["file_y"]))
    config = ExtractConfig()
    crops = {}
    for name in photos:
        image = read_photo(folder / name)
        face = select_largest(detector.detect([image])[0])
        assert face is not None, name
        crops[f"deepface/{name.rsplit('.', 1)[0]}"] = [crop_face(image, face["box"], config.crop_size, config.margin)]
    store = make_store(tmp_path / "store", crops, config)
    model, spec = facenet_msceleb
    same = (pairs["Decision"] == "Yes").to_numpy()
    results = {}
    for standardization in ("prewhiten", "fixed"):
        table, emb = E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=model,
                                   standardization=standardization)
        by_photo = dict(zip(table["video_id"] + ".jpg", emb))
        dist = np.array([np.linalg.norm(by_photo[a] - by_photo[b]) for a, b in zip(pairs["file_x"], pairs["file_y"])])
        auc = roc_auc_score(same, -dist)
        d_prime = (dist[~same].mean() - dist[same].mean()) / np.sqrt((dist[~same].var() + dist[same].var()) / 2)
        results[standardization] = auc
        print(f"\ndeepface verification, {len(pairs)} pairs ({same.sum()} same), facenet-msceleb-128, "
              f"{standardization}: AUC {auc:.4f}, d' {d_prime:.2f}, same max {dist[same].max():.3f}, "
              f"different min {dist[~same].min():.3f}")
    assert results[spec.standardization] >= 0.95
    # a second run computes nothing
    E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=NoModel())


# ------------------------------------------------------------------ command line


def test_cli_embed_uses_the_cache_and_reports_errors(tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    from deepfake_keras import cli

    store = make_store(tmp_path / "store", VIDEOS, CONFIG)
    # the command's defaults are the experiments' (FaceNet on the box's square, fixed scaling): this is its cache
    E.embed_store(store.root, "facenet-msceleb-128", progress=False, model=CountingModel(), standardization="fixed")
    assert cli.main(["embed", "--store", str(store.root), "--facenet", "facenet-msceleb-128", "--quiet"]) == 0
    assert "6 face(s) -> 128-d" in capsys.readouterr().out
    assert cli.main(["embed", "--store", str(store.root), "--facenet", str(tmp_path / "nope.h5")]) == 2
    assert "neither a registered name" in capsys.readouterr().err

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("DEEPFAKE_KERAS_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert cli.main(["embed", "--store", str(store.root), "--quiet"]) == 2  # the 512-d default, not fetchable
    err = capsys.readouterr().err
    assert str(tmp_path / "weights" / WEIGHTS["facenet-vggface2-512"].filename) in err
