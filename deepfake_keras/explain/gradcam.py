"""Grad-CAM of the Xception classifier (paper Fig. 4), with tf-keras-vis.

Grad-CAM (Selvaraju et al.) weighs each channel ``k`` of a convolutional layer's
output ``A`` by the spatial mean of the gradient of a score ``y`` with respect
to it, ``alpha_k = mean_ij dy/dA_kij``, and keeps the positive part of the
weighted sum, ``ReLU(sum_k alpha_k A_k)``: the regions whose features push the
score up. Here:

- the score is the classifier's *logit*: tf-keras-vis' ``ReplaceToLinear``
  model modifier turns the sigmoid of the output layer into the identity on a
  clone of the model (the model itself is untouched), so the gradient does not
  vanish where the sigmoid saturates. ``target="fake"`` scores the logit
  (evidence for fake), ``target="real"`` its negative (evidence for real), and
  ``target="predicted"`` (the default) the class the model predicts for each
  face, as the authors' ``grad_cam_visualize.py`` explains the predicted class;
  a sequence gives each image its own target.
- the layer is ``block14_sepconv2_act``, Xception's last convolutional
  activation, when the model has it (Keras' own Grad-CAM example uses the
  same); otherwise the last convolutional layer tf-keras-vis finds, or the layer
  named by ``layer``.
- the map is upsampled (bilinear) to the input size and normalised to [0, 1]
  per image, as tf-keras-vis does.

:func:`overlay` paints a heat map on a face (jet colour map, as in Fig. 4).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..models.xception import GRADCAM_LAYER

TARGETS = ("fake", "real", "predicted")
ALPHA = 0.4  # weight of the colour map in the overlay
COLORMAP = "jet"


def targets_of(target, probabilities) -> np.ndarray:
    """The class (``"fake"``/``"real"``) each map explains: ``target`` for all, one per image, or, for
    ``"predicted"``, the class of each image's P(fake) (fake at 0.5 and above)."""
    p = np.asarray(probabilities, dtype=float).reshape(-1)
    if isinstance(target, str):
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS} or one per image, got {target!r}")
        if target == "predicted":
            return np.where(p >= 0.5, "fake", "real")
        return np.full(len(p), target)
    out = np.asarray(target, dtype=object)
    if out.shape != p.shape or not set(out.tolist()) <= {"fake", "real"}:
        raise ValueError(f"targets must be {len(p)} values of 'fake' or 'real', got {list(out)[:5]}...")
    return out.astype(str)


def gradcam(model, images, target="predicted", layer: str | None = None, batch_size: int = 16) -> np.ndarray:
    """Grad-CAM heat maps of a one-output sigmoid classifier, float32 ``(n, height, width)`` in [0, 1].

    Args:
        model: a Keras model with one sigmoid output unit (e.g.
            :func:`deepfake_keras.models.xception.build_xception`).
        images: model inputs, already preprocessed (``(n, h, w, c)`` or one
            ``(h, w, c)`` image); :func:`gradcam_faces` takes raw face crops.
        target: ``"predicted"`` (each image's predicted class), ``"fake"`` (regions that raise
            P(fake)), ``"real"``, or one of ``"fake"``/``"real"`` per image (:func:`targets_of`).
        layer: the convolutional layer to explain; default
            ``block14_sepconv2_act`` if the model has it, else the last
            convolutional layer.
        batch_size: images per gradient computation.

    Raises ValueError for an unknown target or layer or images of the wrong shape.
    """
    import tensorflow as tf

    with warnings.catch_warnings():  # scipy.ndimage.interpolation is deprecated (imported by tf-keras-vis)
        warnings.simplefilter("ignore", DeprecationWarning)
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    if len(model.outputs) != 1 or model.output_shape[-1] != 1:
        raise ValueError(f"gradcam needs a model with one output unit (sigmoid), got output shape "
                         f"{model.output_shape}")
    x = np.asarray(images, dtype=np.float32)
    want = tuple(model.input_shape[1:])
    if x.ndim == len(want):
        x = x[None]
    if x.ndim != len(want) + 1 or any(w is not None and w != s for w, s in zip(want, x.shape[1:])):
        raise ValueError(f"images must have shape (n, {', '.join(str(w) for w in want)}), got {x.shape}")
    names = {lay.name for lay in model.layers}
    if layer is None and GRADCAM_LAYER in names:
        layer = GRADCAM_LAYER
    if layer is not None and layer not in names:
        raise ValueError(f"model {model.name!r} has no layer {layer!r}")
    probabilities = model.predict(x, verbose=0, batch_size=int(batch_size)) if isinstance(target, str) and \
        target == "predicted" else np.zeros(len(x))
    signs = np.where(targets_of(target, probabilities) == "fake", 1.0, -1.0).astype(np.float32)
    visualizer = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    out = []
    for start in range(0, len(x), int(batch_size)):
        batch = tf.constant(x[start:start + int(batch_size)])
        sign = tf.constant(signs[start:start + int(batch_size)])
        cam = visualizer(lambda output, sign=sign: output[:, 0] * sign, batch, penultimate_layer=layer,
                         seek_penultimate_conv_layer=layer is None)
        out.append(np.asarray(cam, dtype=np.float32).reshape(len(batch), *x.shape[1:3]))
    return np.clip(np.concatenate(out), 0.0, 1.0)


def gradcam_faces(model, faces, target="predicted", layer: str | None = None, alpha: float = ALPHA) -> tuple:
    """Grad-CAM of raw face crops (uint8 RGB, any one size): ``(heats, overlays)``.

    The faces are resized to the model's input size and Xception-preprocessed
    (``x / 127.5 - 1``); ``heats`` are ``(n, s, s)`` at the model's size,
    ``overlays`` uint8 ``(n, h, w, 3)`` at the faces' own size (:func:`overlay`).
    """
    faces, x = face_inputs(model, faces)
    heats = gradcam(model, x, target=target, layer=layer)
    return heats, np.stack([overlay(f, h, alpha) for f, h in zip(faces, heats)])


def face_inputs(model, faces) -> tuple:
    """``(faces, x)``: raw face crops (uint8 RGB, any one size) as an ``(n, h, w, 3)`` array, and
    their inputs for ``model``: resized to its input size and Xception-preprocessed
    (:func:`deepfake_keras.data.inputs.preprocess_faces`)."""
    from ..data.inputs import preprocess_faces

    faces = np.asarray(faces)
    if faces.ndim == 3:
        faces = faces[None]
    if faces.ndim != 4 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be RGB images (n, h, w, 3), got shape {faces.shape}")
    size = model.input_shape[1:3]
    if None in size:
        raise ValueError("the model's input size must be fixed")
    return faces, preprocess_faces(faces, size)


def overlay(face, heat, alpha: float = ALPHA, colormap: str = COLORMAP) -> np.ndarray:
    """``face`` (RGB, uint8 or floats in [0, 255]) with ``heat`` (2-D, [0, 1]) painted over it.

    The heat map is resized (bilinear) to the face if needed and coloured with
    ``colormap`` (matplotlib; jet: 0 blue, 1 red); the result is
    ``(1 - alpha) * face + alpha * colour``, uint8 RGB of the face's shape.
    Raises ValueError for shapes that do not fit, NaN, or values out of range.
    """
    import cv2
    import matplotlib

    face = np.asarray(face)
    heat = np.asarray(heat, dtype=np.float32)
    if face.ndim != 3 or face.shape[-1] != 3:
        raise ValueError(f"face must be an RGB image (h, w, 3), got shape {face.shape}")
    if heat.ndim != 2 or min(heat.shape) < 1:
        raise ValueError(f"heat must be a 2-D map, got shape {heat.shape}")
    if not np.all(np.isfinite(heat)) or heat.min() < -1e-6 or heat.max() > 1 + 1e-6:
        raise ValueError("heat must hold values in [0, 1] (no NaN)")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    f = face.astype(np.float32)
    if f.min() < 0 or f.max() > 255:
        raise ValueError("face values must be in [0, 255]")
    if heat.shape != face.shape[:2]:
        heat = cv2.resize(heat, (face.shape[1], face.shape[0]), interpolation=cv2.INTER_LINEAR)
    colour = matplotlib.colormaps[colormap](np.clip(heat, 0, 1))[..., :3] * 255.0
    return np.clip(np.round((1 - alpha) * f + alpha * colour), 0, 255).astype(np.uint8)
