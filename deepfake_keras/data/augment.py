"""The authors' training augmentation of the Xception, on face crops in ``tf.data``.

The authors' ``01.train_CNN.py`` (AKASH2907/deepfakes_video_classification, lines 151-160, ``trainAug``)
trains the Xception on ``ImageDataGenerator(rotation_range=30, zoom_range=0.15, width_shift_range=0.2,
height_shift_range=0.2, shear_range=0.15, horizontal_flip=True, fill_mode="nearest")``. The paper says
nothing about augmentation. :func:`augment_image` draws the same random transform per image as Keras 2's
``ImageDataGenerator.random_transform`` -- a rotation of up to 30 degrees, shifts of up to 20% of the side,
a shear of up to 0.15 *degrees* (Keras' unit), independent zooms of x and y in [0.85, 1.15], a horizontal
flip with probability 1/2 -- composed about the image centre (:func:`transform_matrix`) and applied in one
resampling, bilinear, the border filled with the nearest pixel (edge replicated), as Keras did.

The draws are TensorFlow's (:func:`draws`); the matrix (NumPy, float64) and the resampling run in one
``tf.numpy_function`` per image: OpenCV's ``cv2.warpAffine`` (``INTER_LINEAR``, ``WARP_INVERSE_MAP``,
``BORDER_REPLICATE``) on the float32 image. OpenCV releases the GIL, so the parallel map still uses every
core, and the function is declared stateless, so it stays parallel under the op determinism training turns
on (``tf.data`` runs a map holding a stateful op one element at a time). It costs 0.5-0.6 ms of CPU per
299-px crop, against 4-5 ms for TensorFlow's ``ImageProjectiveTransformV3``, which did it before
(``benchmarks/input_pipeline.py --augment on tfop`` compares the two). OpenCV rounds each sampling position
to 1/32 of a pixel, so a pixel differs from the exact bilinear value (Keras' ``apply_affine_transform``,
scipy ``order=1``, ``mode="nearest"``) by at most ``(1/64 + 1/1024) * (dx + dy)`` grey levels, ``dx`` and
``dy`` the largest differences between horizontally and vertically adjacent pixels of the input: 8.5 at the
very worst (a black-to-white step both ways), checked against Keras in ``tests/data/test_augment.py``. On
real 299-px FF++ c23 face crops the pixels differ from Keras' by 0.03 grey levels on average and 2.3 at most
(20 crops; their bounds 1.2-5.4), and from the TF op by 0.034 on average, 2.8 at most (60 crops).

Random numbers are stateless and come from a seed per image (:func:`augment_dataset` pairs each element
with one from ``tf.data.Dataset.random(seed)``), so a run is the same for the same seed, whatever the
parallelism of the pipeline (the resampling is a pure function of the image and the draws), and each
epoch draws new transforms.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import tensorflow as tf

ROTATION = 30.0  # degrees
SHIFT = 0.2  # fraction of the side
SHEAR = 0.15  # degrees (ImageDataGenerator's unit)
ZOOM = 0.15  # zoom in [1 - ZOOM, 1 + ZOOM], x and y apart


def draws(seed) -> tf.Tensor:
    """The 7 uniform numbers in [-1, 1) (float32) of one image's transform, from ``seed`` (a stateless seed,
    shape ``(2,)``): rotation, x shift, y shift, shear, x zoom, y zoom, flip (:func:`transform_of`)."""
    return tf.random.stateless_uniform((7,), seed=seed, minval=-1.0, maxval=1.0)


def transform_of(u, height: int, width: int) -> tuple:
    """The transform of an image of ``height`` x ``width`` that the draws ``u`` (:func:`draws`) pick, as in
    ``ImageDataGenerator.random_transform``: ``(theta, tx, ty, shear, zx, zy, flip)``, angles in radians,
    shifts in pixels, ``flip`` 1.0 or 0.0 (the arguments of :func:`transform_matrix`)."""
    u = [float(v) for v in np.asarray(u).reshape(7)]
    return (u[0] * ROTATION * math.pi / 180.0, u[1] * SHIFT * width, u[2] * SHIFT * height,
            u[3] * SHEAR * math.pi / 180.0, 1.0 + u[4] * ZOOM, 1.0 + u[5] * ZOOM, float(u[6] > 0.0))


def transform_matrix(height, width, theta, tx, ty, shear, zx, zy, flip) -> np.ndarray:
    """The affine map (output pixel -> input pixel, ``(x = column, y = row, 1)``; a float64 ``2 x 3``
    matrix, the first 6 of the 8 parameters of TensorFlow's ``ImageProjectiveTransformV3``) of Keras 2's
    ``apply_affine_transform`` with rotation ``theta`` and ``shear`` (radians), shifts ``tx``, ``ty``
    (pixels) and zooms ``zx``, ``zy``, followed by a horizontal flip where ``flip`` is 1.

    Keras 2 (``keras.preprocessing.image.apply_affine_transform``, which ``ImageDataGenerator`` calls)
    builds ``rotation @ shift @ shear @ zoom`` and, after its axis swap, applies it to (x = column,
    y = row) about the image centre: ``tx`` and ``zx`` act on columns. On square crops this function
    gives the same mapping (checked against Keras in ``tests/data/test_augment.py``); on other shapes
    it turns about the true centre, where Keras mixes up height and width."""
    c, s = math.cos(theta), math.sin(theta)
    ox, oy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    m = (np.array([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]])
         @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
         @ np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])
         @ np.array([[1.0, -math.sin(shear), 0.0], [0.0, math.cos(shear), 0.0], [0.0, 0.0, 1.0]])
         @ np.array([[zx, 0.0, 0.0], [0.0, zy, 0.0], [0.0, 0.0, 1.0]])
         @ np.array([[1.0, 0.0, -ox], [0.0, 1.0, -oy], [0.0, 0.0, 1.0]]))
    # the flip comes after the transform: output column x is the transformed image's column width-1-x
    m = m @ np.array([[1.0 - 2.0 * flip, 0.0, (width - 1.0) * flip], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return m[:2]


def warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` (float32 ``(h, w, c)``) resampled through ``matrix`` (:func:`transform_matrix`, output pixel
    -> input pixel): bilinear, the border filled with the nearest pixel (OpenCV; see the module docstring
    for how far this is from the exact bilinear value)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    out = cv2.warpAffine(image, np.asarray(matrix, np.float64), (image.shape[1], image.shape[0]),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)  # OpenCV drops a channel axis of 1


def augment_array(image: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One float32 image ``(h, w, c)`` through the transform the draws ``u`` (:func:`draws`) pick."""
    height, width = image.shape[:2]
    return warp(image, transform_matrix(height, width, *transform_of(u, height, width)))


def augment_image(image, seed):
    """One image ``(h, w, 3)`` (0..255, float or uint8; float32 out) through a random transform drawn from ``seed`` (a stateless
    seed, shape ``(2,)``), see the module docstring. The draws are TensorFlow's; the matrix and the
    resampling run in ``tf.numpy_function`` (the output keeps the input's static shape)."""
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    out = tf.numpy_function(augment_array, [image, draws(seed)], tf.float32, stateful=False)
    out.set_shape(image.shape)
    return out


def augment_dataset(ds: tf.data.Dataset, seed: int) -> tf.data.Dataset:
    """``ds`` (elements ``(image, *rest)``, float images) with every image augmented; one stateless seed per
    element from ``tf.data.Dataset.random(seed)``, drawn anew each epoch."""
    seeds = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True).batch(2)

    def apply(element, pair):
        image, *rest = element if isinstance(element, tuple) else (element,)
        image = augment_image(image, tf.cast(pair % (2 ** 31 - 1), tf.int64))
        return (image, *rest) if rest else image

    return tf.data.Dataset.zip((ds, seeds)).map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
