"""Conv3D (the paper's filters, 3x3x3 kernels, 2x2x2 pools) and the ConvLSTM (ours): layer shapes,
pooling at small sizes, one training step."""
import numpy as np
import pytest
import tensorflow as tf

from deepfake_keras.models import conv3d as c3
from deepfake_keras.models.xception import compile_classifier


def test_conv3d_has_the_papers_layers_and_shapes():
    model = c3.build_conv3d()  # 32 frames, 112 px
    convs = [l for l in model.layers if isinstance(l, tf.keras.layers.Conv3D)]
    pools = [l for l in model.layers if isinstance(l, tf.keras.layers.MaxPooling3D)]
    assert [l.filters for l in convs] == [64, 128, 256, 256, 512, 512]
    assert all(l.kernel_size == (3, 3, 3) and l.padding == "same" for l in convs)
    assert [l.pool_size for l in pools] == [(2, 2, 2)] * 4
    assert model.input_shape == (None, 32, 112, 112, 3) and model.output_shape == (None, 1)
    shapes = {l.name: l.output_shape for l in model.layers}
    assert shapes["conv1"] == (None, 32, 112, 112, 64) and shapes["pool1"] == (None, 16, 56, 56, 64)
    assert shapes["conv2"] == (None, 16, 56, 56, 128) and shapes["pool2"] == (None, 8, 28, 28, 128)
    assert shapes["conv4"] == (None, 8, 28, 28, 256) and shapes["pool3"] == (None, 4, 14, 14, 256)
    assert shapes["conv6"] == (None, 4, 14, 14, 512) and shapes["pool4"] == (None, 2, 7, 7, 512)
    # 3x3x3 kernels: 27 * in * out + out each
    assert convs[0].count_params() == 27 * 3 * 64 + 64 and convs[5].count_params() == 27 * 512 * 512 + 512
    assert model.get_layer("p_fake").activation is tf.keras.activations.sigmoid


def test_pool_plan_pools_an_axis_only_while_it_is_long_enough():
    assert c3.pool_plan(32, 112) == [(2, 2, 2)] * 4
    assert c3.pool_plan(32, 16) == [(2, 2, 2)] * 4  # 16 -> 8 -> 4 -> 2 -> 1
    assert c3.pool_plan(4, 16) == [(2, 2, 2), (2, 2, 2), (1, 2, 2), (1, 2, 2)]  # 4 frames -> 2 -> 1, then kept
    assert c3.pool_plan(32, 5) == [(2, 2, 2), (2, 2, 2), (2, 1, 1), (2, 1, 1)]  # 5 px -> 2 -> 1
    assert c3.pool_plan(1, 1) == [(1, 1, 1)] * 4
    with pytest.raises(ValueError, match="must be >= 1"):
        c3.pool_plan(0, 16)


def test_conv3d_builds_at_demo_and_tiny_sizes():
    model = c3.build_conv3d(seq_len=4, image_size=16)
    pools = [l for l in model.layers if isinstance(l, tf.keras.layers.MaxPooling3D)]
    assert [l.pool_size for l in pools] == [(2, 2, 2), (2, 2, 2), (1, 2, 2), (1, 2, 2)]
    assert model.get_layer("pool4").output_shape == (None, 1, 1, 1, 512)
    assert c3.build_conv3d(32, 32).get_layer("pool4").output_shape == (None, 2, 2, 2, 512)


@pytest.mark.parametrize("kwargs, message", [({"filters": ()}, "filters"), ({"pool_after": (0, 6)}, "pool_after"),
                                             ({"image_size": 0}, "must be >= 1"), ({"dropout": -0.1}, "dropout")])
def test_conv3d_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        c3.build_conv3d(**kwargs)


def test_convlstm_shapes():
    model = c3.build_convlstm(seq_len=32, image_size=112)
    lstm = model.get_layer("convlstm")
    assert isinstance(lstm, tf.keras.layers.ConvLSTM2D) and lstm.filters == 32 and lstm.kernel_size == (3, 3)
    assert model.get_layer("stem").output_shape == (None, 32, 56, 56, 16)
    assert lstm.input_shape == (None, 32, 28, 28, 16) and lstm.output_shape == (None, 28, 28, 32)
    assert model.output_shape == (None, 1)
    tiny = c3.build_convlstm(seq_len=2, image_size=2)  # the stem leaves 1 px: no pool
    assert tiny.get_layer("convlstm").input_shape == (None, 2, 1, 1, 16)
    assert "stem_pool" not in [l.name for l in tiny.layers]
    with pytest.raises(ValueError, match="filters"):
        c3.build_convlstm(filters=0)


@pytest.mark.parametrize("build", [c3.build_conv3d, c3.build_convlstm])
def test_one_training_step_changes_every_weight(build):
    tf.keras.utils.set_random_seed(0)
    model = compile_classifier(build(seq_len=4, image_size=8))
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).uniform(-1, 1, (4, 4, 8, 8, 3)).astype(np.float32)
    model.train_on_batch(x, np.array([0, 1, 0, 1], np.float32))
    changed = [not np.allclose(a, b) for a, b in zip(model.get_weights(), before)]
    assert all(changed), [w.name for w, c in zip(model.weights, changed) if not c]
