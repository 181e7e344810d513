"""The authors' augmentation: the same transform as Keras 2's ImageDataGenerator (checked against Keras'
own apply_affine_transform: the matrix at float precision, OpenCV's resampling within its bound), seeded and
reproducible whatever the parallelism."""
import math

import numpy as np
import pytest
import tensorflow as tf

from deepfake_keras.data.augment import (ROTATION, SHIFT, augment_dataset, augment_image, draws, transform_matrix,
                                         transform_of)

# OpenCV rounds each sampling position to 1/32 pixel (error <= 1/64) after summing two terms rounded to
# 1/2048 pixel (<= 1/1024 more); the float32 image grid and matrix rounding move a position of a 64-px
# image by well under 1e-4 pixel from Keras' float64 one. The bilinear interpolant's slope along an axis is at most the largest
# difference between adjacent pixels along it, so a position error e per axis changes a pixel by at most
# e * (dx + dy).
POSITION_ERROR = 1 / 64 + 1 / 1024 + 1e-4  # pixels, per axis


def keras_affine(img, *args, **kwargs):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return tf.keras.preprocessing.image.apply_affine_transform(img, *args, **kwargs)


def opencv_bound(img):
    """The largest |OpenCV - exact bilinear| a pixel of ``img`` warped can show (grey levels)."""
    dy, dx = np.abs(np.diff(img, axis=0)).max(), np.abs(np.diff(img, axis=1)).max()
    return POSITION_ERROR * (dx + dy) + 1e-3  # + float32 rounding of the values


def test_bounds_are_the_authors():
    """01.train_CNN.py lines 151-160: rotation_range=30, width/height_shift_range=0.2 (shear 0.15 degrees,
    zoom 0.15, horizontal flip: see the other tests)."""
    assert (ROTATION, SHIFT) == (30.0, 0.2)


def picture(size=64, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3), np.float32)
    img[10:30, 5:20] = 200
    img[40:60, 20:45, 1] = 100
    return img + rng.uniform(0, 30, img.shape).astype(np.float32)


@pytest.mark.parametrize("theta, tx, ty, shear, zx, zy, flip", [
    (20, 5, -7, 0.15, 0.9, 1.1, 0), (-30, -12, 3, -0.1, 1.15, 0.85, 1), (7, 0, 0, 0, 1, 1, 1), (0, 3, 0, 0, 1.1, 1, 0)])
def test_transform_is_keras_image_data_generators(theta, tx, ty, shear, zx, zy, flip):
    """The mapping itself, at float precision: transform_matrix applied by TensorFlow's exact bilinear
    resampler (ImageProjectiveTransformV3, a reference here only) gives Keras' image."""
    img = picture()
    ref = keras_affine(img, theta=theta, tx=tx, ty=ty, shear=shear, zx=zx, zy=zy, row_axis=0, col_axis=1,
                       channel_axis=2, fill_mode="nearest", order=1)
    if flip:
        ref = ref[:, ::-1]
    matrix = transform_matrix(64, 64, theta * math.pi / 180, tx, ty, shear * math.pi / 180, zx, zy, flip)
    assert matrix.shape == (2, 3) and matrix.dtype == np.float64
    params = np.concatenate([matrix.ravel(), [0.0, 0.0]]).astype(np.float32)
    out = tf.raw_ops.ImageProjectiveTransformV3(images=img[None], transforms=params[None], output_shape=[64, 64],
                                                fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]
    np.testing.assert_allclose(out.numpy(), ref, atol=0.05)


def keras_of_seed(img, seed):
    """Keras' apply_affine_transform of ``img`` with the transform augment_image draws from ``seed``."""
    u = draws(tf.constant(seed, tf.int64)).numpy()
    theta, tx, ty, shear, zx, zy, flip = transform_of(u, *img.shape[:2])
    assert abs(theta) <= math.radians(30) and abs(shear) <= math.radians(0.15) and 0.85 <= min(zx, zy) <= 1.15
    ref = keras_affine(img, theta=theta * 180 / math.pi, tx=tx, ty=ty, shear=shear * 180 / math.pi, zx=zx, zy=zy,
                       row_axis=0, col_axis=1, channel_axis=2, fill_mode="nearest", order=1)
    return ref[:, ::-1] if flip else ref


@pytest.mark.parametrize("seed", [[0, 1], [5, 2], [17, 3], [123, 4], [2024, 5]])
def test_augment_image_is_keras_within_opencvs_bound(seed):
    """augment_image (OpenCV) against Keras' own apply_affine_transform with the same draws: every pixel
    within the bound of OpenCV's 1/32-pixel sampling positions, on a picture with sharp edges and noise
    (bound about 7.5 grey levels) and on a smooth one (bound 0.25 grey levels)."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    smooth = np.stack([2 * xx + 40, 3 * yy, 100 + 60 * np.sin(xx / 9) * np.cos(yy / 7)], -1).astype(np.float32)
    for img in (picture(64, seed[0]), smooth):
        ref = keras_of_seed(img, seed)
        out = augment_image(tf.constant(img), tf.constant(seed, tf.int64)).numpy()
        assert out.shape == img.shape and out.dtype == np.float32
        err = np.abs(out - ref)
        assert err.max() <= opencv_bound(img), (err.max(), opencv_bound(img))
        assert not np.allclose(out, img, atol=1)  # it did move


def test_augment_image_keeps_static_shapes_and_other_sides():
    """Inside a graph the output keeps the input's static shape; a non-square image keeps its size."""
    out = tf.function(lambda x: augment_image(x, tf.constant([1, 2], tf.int64)))(tf.zeros((40, 56, 3)))
    assert out.shape == (40, 56, 3)
    spec = tf.function(augment_image).get_concrete_function(tf.TensorSpec((None, None, 3), tf.float32),
                                                           tf.TensorSpec((2,), tf.int64)).structured_outputs
    assert spec.shape.as_list() == [None, None, 3]


def test_random_transforms_stay_in_the_authors_ranges():
    """Over many seeds: the picture moves (no identity transform), and a bright square never travels
    further than 30 degrees, 20% shifts and 15% zoom allow."""
    img = np.zeros((64, 64, 3), np.float32)
    img[28:36, 28:36] = 255  # a square at the centre
    centres = []
    for k in range(60):
        out = augment_image(tf.constant(img), tf.constant([k, 1], tf.int64)).numpy()
        assert out.shape == img.shape and out.dtype == np.float32
        ys, xs = np.nonzero(out[..., 0] > 128)
        centres.append((xs.mean() - 31.5, ys.mean() - 31.5))
    d = np.abs(np.array(centres))
    assert d.max() <= 0.2 * 64 * 1.15 + 2  # shift at most 20% of the side (zoom can stretch it by 15%)
    assert (d.sum(axis=1) > 1).mean() > 0.8  # most draws move the square


def test_dataset_augmentation_is_seeded_and_new_each_epoch():
    images = tf.data.Dataset.from_tensor_slices(np.stack([picture(32, s) for s in range(4)]))
    labels = tf.data.Dataset.from_tensor_slices(np.arange(4.0))

    def run(seed):
        ds = augment_dataset(tf.data.Dataset.zip((images, labels)), seed)
        return [np.stack([x.numpy() for x, _ in ds]) for _ in range(2)]  # two epochs

    a, b = run(3), run(3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[0], a[1])  # a new draw every epoch
    assert not np.allclose(run(4)[0], a[0])  # another seed, other transforms


def test_dataset_augmentation_is_the_same_whatever_the_parallelism():
    images = tf.data.Dataset.from_tensor_slices(np.stack([picture(48, s) for s in range(12)]))

    def run(threads):
        ds = augment_dataset(images, 7)
        options = tf.data.Options()
        options.threading.private_threadpool_size = threads
        return np.stack([x.numpy() for x in ds.with_options(options)])

    np.testing.assert_array_equal(run(1), run(4))


def test_the_augmentation_has_no_stateful_op():
    """Training enables op determinism (training/fit.py), under which tf.data runs every map that holds a
    stateful op one element at a time: the augmentation has none (its numpy_function is declared stateless,
    its draws are stateless), so it stays parallel."""
    graph = tf.function(augment_image).get_concrete_function(tf.TensorSpec((None, None, 3), tf.float32),
                                                             tf.TensorSpec((2,), tf.int64)).graph
    types = [op.type for op in graph.get_operations()]
    assert "PyFuncStateless" in types
    assert [op.type for op in graph.get_operations() if op.op_def.is_stateful] == []
