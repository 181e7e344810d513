"""deepfake_keras.data.inputs: face crops -> Xception batches, on tiny stores written in the test.

Behaviour only (no timing: benchmarks/input_pipeline.py measures speed): the resize skipped for crops of
the asked size changes no bit; the batches are the same whatever the storage (the store's PNGs or the raw
copy) and with the in-memory cache; a shuffled epoch is a seeded permutation of every row, drawn anew each
epoch; the raw copy lives beside the store, is written atomically, never inside the store, and is never
stale.
"""
import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from deepfake_keras.data import inputs
from tests.tiny_store import make_store

CROP = 24  # the crop side of the tiny store
ROUNDING = 0.5 / 127.5 + 1e-5  # the in-memory cache rounds resized crops to uint8: at most this apart after x/127.5-1


def crops(n, seed, size=CROP):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture()
def store(tmp_path):
    """Ten distinct noise crops in four videos of both labels."""
    videos = {"t/real_a": (0, "train", crops(3, 1)), "t/fake_a": (1, "train", crops(3, 2)),
              "t/real_b": (0, "train", crops(2, 3)), "t/fake_b": (1, "train", crops(2, 4))}
    return make_store(tmp_path / "store", videos, crop_size=CROP)


def batches(ds):
    """All batches of one pass as a list of tuples of arrays (a bare array for image-only datasets)."""
    return [tuple(np.asarray(x) for x in b) if isinstance(b, tuple) else np.asarray(b) for b in ds.as_numpy_iterator()]


def images_of(ds, epochs=1):
    """The images of ``epochs`` passes over ``ds``, one array per epoch."""
    return [np.concatenate([b[0] if isinstance(b, tuple) else b for b in batches(ds)]) for _ in range(epochs)]


def old_resize(image, size):
    """The resize as it was before the same-size skip: always the antialiased resize, clipped."""
    return tf.clip_by_value(tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True), 0.0, 255.0)


def files_of(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- resize and preprocessing

@pytest.mark.parametrize("size", [CROP, 17, 40])
def test_resize_face_skips_only_a_resize_that_changes_nothing(size):
    for image in crops(4, 9) + [np.full((CROP, CROP, 3), 255, np.uint8), np.zeros((CROP, CROP, 3), np.uint8)]:
        want = old_resize(image, size).numpy()
        np.testing.assert_array_equal(inputs.resize_face(image, size).numpy(), want)  # static shape
        dynamic = tf.function(lambda x: inputs.resize_face(x, size),
                              input_signature=[tf.TensorSpec((None, None, 3), tf.uint8)])
        np.testing.assert_array_equal(dynamic(image).numpy(), want)  # shape known only when run
    batch = np.stack(crops(3, 10))
    np.testing.assert_array_equal(inputs.resize_face(batch, size).numpy(), old_resize(batch, size).numpy())


@pytest.mark.parametrize("size", [CROP, 16])
def test_batches_are_the_crops_resized_then_scaled_in_table_order(store, size):
    faces = store.faces()
    got = batches(inputs.face_dataset(faces, store.root, size, 4))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    want = np.stack([old_resize(store.load_crop(c), size).numpy() / 127.5 - 1.0 for c in faces["crop"]])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), want.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), faces["label"].to_numpy(np.float32))
    assert np.concatenate([b[0] for b in got]).dtype == np.float32


# --------------------------------------------------------------------------- order

def test_a_shuffled_epoch_is_every_row_once_with_its_label_and_reshuffled_each_epoch(store):
    faces = store.faces()
    reference = images_of(inputs.face_dataset(faces, store.root, CROP, 4))[0]
    row_of = {reference[i].tobytes(): i for i in range(len(faces))}
    assert len(row_of) == len(faces)
    labels = faces["label"].to_numpy(np.float32)

    def orders(seed, epochs=3):
        ds = inputs.face_dataset(faces, store.root, CROP, 4, shuffle=True, seed=seed)
        out = []
        for _ in range(epochs):
            got = batches(ds)
            order = [row_of[x.tobytes()] for x in np.concatenate([b[0] for b in got])]
            np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), labels[order])  # labels follow
            out.append(order)
        return out

    a = orders(seed=3)
    assert all(sorted(order) == list(range(len(faces))) for order in a)  # every row once per epoch
    assert a[0] != list(range(len(faces))) and len({tuple(o) for o in a}) == 3  # shuffled, anew each epoch
    assert orders(seed=3) == a  # the same seed, the same epochs
    assert orders(seed=4) != a


# --------------------------------------------------------------------------- storage formats and caches

@pytest.mark.parametrize("size", [CROP, 16])
@pytest.mark.parametrize("augment", [False, True])
def test_raw_storage_gives_the_batches_of_the_pngs_bit_for_bit(store, size, augment):
    faces = store.faces()
    weights = np.linspace(0.5, 2.0, len(faces))
    kwargs = dict(shuffle=True, seed=7, augment=augment, weights=weights)
    png = inputs.face_dataset(faces, store.root, size, 4, **kwargs)
    raw = inputs.face_dataset(faces, store.root, size, 4, storage="raw", **kwargs)
    for _ in range(2):  # two epochs: the second order and draws are the same too
        a, b = batches(png), batches(raw)
        assert len(a) == len(b) == 3
        for x, y in zip(a, b):
            assert len(x) == len(y) == 3  # images, labels, weights
            for u, v in zip(x, y):
                np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("storage", inputs.STORAGES)
@pytest.mark.parametrize("size, tolerance", [(CROP, 0.0), (16, ROUNDING)])
def test_the_memory_cache_gives_the_uncached_batches_in_the_same_order(store, storage, size, tolerance):
    faces = store.faces()
    for augment in (False, True):
        kwargs = dict(shuffle=True, seed=5, augment=augment, storage=storage)
        plain = inputs.face_dataset(faces, store.root, size, 4, **kwargs)
        cached = inputs.face_dataset(faces, store.root, size, 4, cache=True, **kwargs)
        for _ in range(2):
            a, b = batches(plain), batches(cached)
            for x, y in zip(a, b):
                np.testing.assert_allclose(x[0], y[0], rtol=0, atol=tolerance)  # exact at the crops' own size
                np.testing.assert_array_equal(x[1], y[1])


def test_labels_false_gives_images_only_for_every_storage_and_cache(store):
    faces = store.faces()
    for storage in inputs.STORAGES:
        for cache in (False, True):
            ds = inputs.face_dataset(faces, store.root, CROP, 8, labels=False, storage=storage, cache=cache)
            first = next(iter(ds))
            assert isinstance(first, tf.Tensor) and first.shape == (8, CROP, CROP, 3)


# --------------------------------------------------------------------------- the raw copy on disk

def test_the_raw_copy_is_written_once_beside_the_store_never_inside(store):
    faces = store.faces()
    before = files_of(store.root)
    files = inputs.raw_crop_files(faces["crop"], store.root)
    root = inputs.raw_cache_root(store.root)
    assert root == store.root.with_name(store.root.name + ".raw") and root.is_dir()
    assert files_of(store.root) == before  # nothing written into the store
    assert len(set(files)) == len(faces) and all(f.startswith(str(root) + os.sep) for f in files)
    assert [p.name for p in root.rglob("*") if p.is_file() and not p.name.endswith(".raw")] == [inputs.RAW_MARKER]
    written = files_of(root)
    assert inputs.raw_crop_files(faces["crop"], store.root) == files
    assert files_of(root) == written  # the second time, nothing is rewritten
    for crop, path in zip(faces["crop"], files):
        image = inputs.read_raw(tf.constant(path)).numpy()
        np.testing.assert_array_equal(image, store.load_crop(crop))


def test_a_crop_extracted_again_gets_a_new_raw_copy_and_the_old_one_goes(store):
    faces = store.faces()
    crop = faces["crop"].iloc[2]
    old = inputs.raw_crop_files([crop], store.root)[0]
    new_pixels = crops(1, 99)[0]
    path = store.root / crop
    stat = os.stat(path)
    cv2.imwrite(str(path), cv2.cvtColor(new_pixels, cv2.COLOR_RGB2BGR))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # what a re-extraction does to it
    new = inputs.raw_crop_files([crop], store.root)[0]
    assert new != old and os.path.isfile(new) and not os.path.exists(old)
    np.testing.assert_array_equal(inputs.read_raw(tf.constant(new)).numpy(), new_pixels)
    png = images_of(inputs.face_dataset(faces, store.root, CROP, 4))[0]
    raw = images_of(inputs.face_dataset(faces, store.root, CROP, 4, storage="raw"))[0]
    np.testing.assert_array_equal(png, raw)
    np.testing.assert_array_equal(raw[2], new_pixels.astype(np.float32) / 127.5 - 1)


def test_raw_root_puts_the_copy_elsewhere(store, tmp_path):
    faces = store.faces()
    elsewhere = tmp_path / "elsewhere"
    ds = inputs.face_dataset(faces, store.root, CROP, 4, storage="raw", raw_root=elsewhere)
    np.testing.assert_array_equal(images_of(ds)[0], images_of(inputs.face_dataset(faces, store.root, CROP, 4))[0])
    assert len(list(elsewhere.rglob("*.raw"))) == len(faces)
    assert not inputs.raw_cache_root(store.root).exists()


def test_a_folder_of_the_users_in_the_raw_copys_place_is_left_alone(store, tmp_path):
    faces = store.faces()
    theirs = inputs.raw_cache_root(store.root)
    (theirs / "notes").mkdir(parents=True)
    (theirs / "notes" / "mine.txt").write_text("my notes")
    before = files_of(theirs)
    with pytest.raises(ValueError, match=r"cannot write the raw copy .* not raw copies of deepfake_keras .*mine\.txt"):
        inputs.face_dataset(faces, store.root, CROP, 4, storage="raw")
    assert files_of(theirs) == before  # nothing written, nothing removed
    elsewhere = tmp_path / "copies"  # a folder of raw copies made before the marker existed is taken as is
    inputs.raw_crop_files(faces["crop"], store.root, raw_root=elsewhere)
    (elsewhere / inputs.RAW_MARKER).unlink()
    inputs.raw_crop_files(faces["crop"], store.root, raw_root=elsewhere)
    assert (elsewhere / inputs.RAW_MARKER).is_file()


def test_raw_files_round_trip_any_shape_and_refuse_other_files(tmp_path):
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    (tmp_path / "a.raw").write_bytes(inputs.raw_bytes(image))
    np.testing.assert_array_equal(inputs.read_raw(tf.constant(str(tmp_path / "a.raw"))).numpy(), image)
    (tmp_path / "b.raw").write_bytes(b"\x89PNG" + bytes(100))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a raw crop file"):
        inputs.read_raw(tf.constant(str(tmp_path / "b.raw")))
    with pytest.raises(ValueError, match="height, width, 3"):
        inputs.raw_bytes(np.zeros((4, 4), np.uint8))


def test_bad_storage_requests_raise(store, tmp_path):
    faces = store.faces()
    with pytest.raises(ValueError, match="storage must be one of"):
        inputs.face_dataset(faces, store.root, storage="jpeg")
    outside = faces.assign(crop="../" + faces["crop"])
    with pytest.raises(ValueError, match="not inside the store"):
        inputs.raw_crop_files(outside["crop"], store.root)
    with pytest.raises(ValueError, match="does not exist"):
        inputs.raw_crop_files(["t/real_a/999999.png"], store.root)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot write the raw copy"):
        inputs.face_dataset(faces, store.root, storage="raw", raw_root=blocker)
    bad = store.root / faces["crop"].iloc[0]
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot be decoded"):
        inputs.raw_crop_files(faces["crop"], store.root, raw_root=tmp_path / "other")
