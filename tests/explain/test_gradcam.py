"""Grad-CAM: a hand-built model whose answer depends only on one image region gets its heat there;
the sign of the score picks the fake or the real evidence; overlay paints heat over a face."""
import numpy as np
import pytest
import tensorflow as tf

from deepfake_keras.explain.gradcam import gradcam, gradcam_faces, overlay
from deepfake_keras.data.inputs import preprocess
from deepfake_keras.models import xception as xc

SIZE = 32
TOP_RIGHT = (0, 16, 16, 32)  # rows r0:r1, cols c0:c1; not symmetric under transposition or flips
BOTTOM_LEFT = (16, 32, 0, 16)


class ChannelRegions(tf.keras.layers.Layer):
    """Keeps channel k only inside regions[k] (zero elsewhere): a fixed spatial mask, no weights."""

    def __init__(self, regions, **kwargs):
        super().__init__(**kwargs)
        self.regions = [tuple(int(v) for v in r) for r in regions]

    def build(self, input_shape):
        mask = np.zeros((1, input_shape[1], input_shape[2], len(self.regions)), np.float32)
        for k, (r0, r1, c0, c1) in enumerate(self.regions):
            mask[0, r0:r1, c0:c1, k] = 1.0
        self.mask = tf.constant(mask)

    def call(self, x):
        return x * self.mask

    def get_config(self):
        return {**super().get_config(), "regions": self.regions}


def region_model(weights_per_region, regions):
    """image -> 1x1 conv copying the grey level into one channel per region (ReLU) -> each channel kept only
    in its region -> global average -> Dense(1, sigmoid) with the given weights: the logit is
    sum_k w_k * mean(image over region k), so the answer depends on those regions only."""
    inputs = tf.keras.Input((SIZE, SIZE, 1))
    conv = tf.keras.layers.Conv2D(len(regions), 1, use_bias=False, activation="relu", name="conv")
    x = conv(inputs)
    x = ChannelRegions(regions, name="regions")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    dense = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake")
    model = tf.keras.Model(inputs, dense(x))
    conv.set_weights([np.ones((1, 1, 1, len(regions)), np.float32)])
    dense.set_weights([np.array(weights_per_region, np.float32).reshape(-1, 1), np.zeros(1, np.float32)])
    return model


def mass_in(heat, region):
    r0, r1, c0, c1 = region
    return heat[:, r0:r1, c0:c1].sum(axis=(1, 2)) / heat.sum(axis=(1, 2))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0.2, 1.0, (3, SIZE, SIZE, 1)).astype(np.float32)


def test_heat_lies_in_the_only_region_the_answer_depends_on(images):
    for region in (TOP_RIGHT, BOTTOM_LEFT):
        model = region_model([4.0], [region])
        x = images.copy()
        r0, r1, c0, c1 = region
        outside = np.ones(SIZE * SIZE, bool).reshape(SIZE, SIZE)
        outside[r0:r1, c0:c1] = False
        x[:, outside] = np.random.default_rng(1).uniform(0, 1, (3, int(outside.sum()), 1))  # changes nothing
        np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
        heat = gradcam(model, images, layer="regions")
        assert heat.shape == (3, SIZE, SIZE) and heat.dtype == np.float32
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0, abs=1e-3)
        assert np.all(mass_in(heat, region) > 0.95), mass_in(heat, region)


def test_target_picks_the_fake_or_the_real_evidence(images):
    model = region_model([4.0, -4.0], [TOP_RIGHT, BOTTOM_LEFT])  # top-right says fake, bottom-left says real
    fake = gradcam(model, images, target="fake", layer="regions")
    real = gradcam(model, images, target="real", layer="regions")
    assert np.all(mass_in(fake, TOP_RIGHT) > 0.95)
    assert np.all(mass_in(real, BOTTOM_LEFT) > 0.95)
    one = gradcam(model, images[0], layer="regions")  # one image without the batch axis
    np.testing.assert_allclose(one[0], fake[0], atol=1e-6)
    # the model itself keeps its sigmoid (ReplaceToLinear works on a clone)
    assert model.get_layer("p_fake").activation.__name__ == "sigmoid"


def test_gradcam_bad_input(images):
    model = region_model([4.0], [TOP_RIGHT])
    with pytest.raises(ValueError, match="target"):
        gradcam(model, images, target="both", layer="regions")
    with pytest.raises(ValueError, match="no layer"):
        gradcam(model, images, layer="nope")
    with pytest.raises(ValueError, match="shape"):
        gradcam(model, np.zeros((2, 8, 8, 1)), layer="regions")
    two = tf.keras.Model(model.input, tf.keras.layers.Dense(2)(model.layers[-2].output))
    with pytest.raises(ValueError, match="one output unit"):
        gradcam(two, images)


def test_xception_gradcam_on_faces():
    tf.keras.utils.set_random_seed(0)
    model = xc.build_xception(xc.MIN_IMAGE_SIZE, weights=None)
    faces = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    heats, overlays = gradcam_faces(model, faces)
    assert heats.shape == (2, xc.MIN_IMAGE_SIZE, xc.MIN_IMAGE_SIZE) and heats.min() >= 0 and heats.max() <= 1
    assert overlays.shape == (2, 40, 40, 3) and overlays.dtype == np.uint8
    x = preprocess(tf.image.resize(faces.astype(np.float32), (71, 71), antialias=True).numpy())
    np.testing.assert_allclose(gradcam(model, x, layer=xc.GRADCAM_LAYER), heats, atol=1e-5)  # the default layer


def test_overlay_paints_hot_red_and_cold_blue():
    face = np.full((20, 30, 3), 128, np.uint8)
    heat = np.zeros((10, 15), np.float32)
    heat[:, 8:] = 1.0  # right side hot; resized to the face
    out = overlay(face, heat, alpha=0.5)
    assert out.shape == face.shape and out.dtype == np.uint8
    hot, cold = out[10, 28].astype(int), out[10, 1].astype(int)
    assert hot[0] > hot[2] + 40 and cold[2] > cold[0] + 40  # jet: 1 red, 0 blue
    np.testing.assert_array_equal(overlay(face, np.zeros((20, 30)), alpha=0.0), face)
    for bad_face, bad_heat in ((face[..., 0], heat), (face, heat[None]), (face, heat + 2), (face, heat * np.nan)):
        with pytest.raises(ValueError):
            overlay(bad_face, bad_heat)
