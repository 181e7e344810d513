"""The authors' training augmentation of the Xception, on face crops in ``tf.data``.

The authors' ``01.train_CNN.py`` (AKASH2907/deepfakes_video_classification, lines 151-160, ``trainAug``)
trains the Xception on ``ImageDataGenerator(rotation_range=30, zoom_range=0.15, width_shift_range=0.2,
height_shift_range=0.2, shear_range=0.15, horizontal_flip=True, fill_mode="nearest")``. The paper says
nothing about augmentation. :func:`augment_image` draws the same random transform per image as Keras 2's
``ImageDataGenerator.random_transform`` -- a rotation of up to 30 degrees, shifts of up to 20% of the side,
a shear of up to 0.15 *degrees* (Keras' unit), independent zooms of x and y in [0.85, 1.15], a horizontal
flip with probability 1/2 -- composed about the image centre and applied in one resampling (bilinear, the
border filled with the nearest pixel), as Keras did.

Random numbers are stateless and come from a seed per image (:func:`augment_dataset` pairs each element
with one from ``tf.data.Dataset.random(seed)``), so a run is the same for the same seed, whatever the
parallelism of the pipeline, and each epoch draws new transforms.
"""
from __future__ import annotations

import math

import tensorflow as tf

ROTATION = 30.0  # degrees
SHIFT = 0.2  # fraction of the side
SHEAR = 0.15  # degrees (ImageDataGenerator's unit)
ZOOM = 0.15  # zoom in [1 - ZOOM, 1 + ZOOM], x and y apart


def transform_matrix(height, width, theta, tx, ty, shear, zx, zy, flip):
    """The 8 parameters of ``ImageProjectiveTransformV3`` (output pixel -> input pixel) of Keras 2's
    ``apply_affine_transform`` with rotation ``theta`` and ``shear`` (radians), shifts ``tx``, ``ty``
    (pixels) and zooms ``zx``, ``zy``, followed by a horizontal flip where ``flip`` is 1. Scalar float32
    tensors.

    Keras 2 (``keras.preprocessing.image.apply_affine_transform``, which ``ImageDataGenerator`` calls)
    builds ``rotation @ shift @ shear @ zoom`` and, after its axis swap, applies it to (x = column,
    y = row) about the image centre: ``tx`` and ``zx`` act on columns. On square crops this function
    gives the same mapping (checked against Keras in ``tests/data/test_augment.py``); on other shapes
    it turns about the true centre, where Keras mixes up height and width."""
    c, s = tf.cos(theta), tf.sin(theta)
    ox, oy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    m = (_matrix([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]])
         @ _matrix([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
         @ _matrix([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])
         @ _matrix([[1.0, -tf.sin(shear), 0.0], [0.0, tf.cos(shear), 0.0], [0.0, 0.0, 1.0]])
         @ _matrix([[zx, 0.0, 0.0], [0.0, zy, 0.0], [0.0, 0.0, 1.0]])
         @ _matrix([[1.0, 0.0, -ox], [0.0, 1.0, -oy], [0.0, 0.0, 1.0]]))
    # the flip comes after the transform: output column x is the transformed image's column width-1-x
    m = m @ _matrix([[1.0 - 2.0 * flip, 0.0, (width - 1.0) * flip], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return tf.stack([m[0, 0], m[0, 1], m[0, 2], m[1, 0], m[1, 1], m[1, 2], 0.0, 0.0])


def _matrix(rows):
    return tf.convert_to_tensor(rows, tf.float32)


def augment_image(image, seed):
    """One float image ``(h, w, 3)`` (0..255) through a random transform drawn from ``seed`` (a stateless
    seed, shape ``(2,)``), see the module docstring."""
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    u = tf.random.stateless_uniform((7,), seed=seed, minval=-1.0, maxval=1.0)
    theta = u[0] * ROTATION * math.pi / 180.0
    tx, ty = u[1] * SHIFT * width, u[2] * SHIFT * height
    shear = u[3] * SHEAR * math.pi / 180.0
    zx, zy = 1.0 + u[4] * ZOOM, 1.0 + u[5] * ZOOM
    flip = tf.cast(u[6] > 0.0, tf.float32)
    params = transform_matrix(height, width, theta, tx, ty, shear, zx, zy, flip)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=params[None], output_shape=shape[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")
    return tf.reshape(out[0], shape)


def augment_dataset(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """``ds`` (elements ``(image, *rest)``, float images) with every image augmented; one stateless seed per
    element from ``tf.data.Dataset.random(seed)``, drawn anew each epoch."""
    seeds = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True).batch(2)

    def apply(element, pair):
        image, *rest = element if isinstance(element, tuple) else (element,)
        image = augment_image(image, tf.cast(pair % (2 ** 31 - 1), tf.int64))
        return (image, *rest) if rest else image

    return tf.data.Dataset.zip((ds, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
