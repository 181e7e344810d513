"""The authors' augmentation: the same transform as Keras 2's ImageDataGenerator (checked against Keras'
own apply_affine_transform), seeded and reproducible."""
import math

import numpy as np
import pytest
import tensorflow as tf

from deepfake_keras.data.augment import ROTATION, SHIFT, augment_dataset, augment_image, transform_matrix


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


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("theta, tx, ty, shear, zx, zy, flip", [
    (20, 5, -7, 0.15, 0.9, 1.1, 0), (-30, -12, 3, -0.1, 1.15, 0.85, 1), (7, 0, 0, 0, 1, 1, 1), (0, 3, 0, 0, 1.1, 1, 0)])
def test_transform_is_keras_image_data_generators(theta, tx, ty, shear, zx, zy, flip):
    from keras.src.preprocessing.image import apply_affine_transform

    img = picture()
    ref = apply_affine_transform(img, theta=theta, tx=tx, ty=ty, shear=shear, zx=zx, zy=zy, row_axis=0, col_axis=1,
                                 channel_axis=2, fill_mode="nearest", order=1)
    if flip:
        ref = ref[:, ::-1]
    f = lambda v: tf.constant(float(v))  # noqa: E731
    params = transform_matrix(f(64), f(64), f(theta * math.pi / 180), f(tx), f(ty), f(shear * math.pi / 180),
                              f(zx), f(zy), f(flip))
    out = tf.raw_ops.ImageProjectiveTransformV3(images=img[None], transforms=params[None], output_shape=[64, 64],
                                                fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]
    np.testing.assert_allclose(out.numpy(), ref, atol=0.05)


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
