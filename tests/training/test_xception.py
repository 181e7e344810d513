"""Xception classifier: the paper's Nadam (schedule decay 0.004), the model and its fc1 features, the
tf.data input pipeline, one training step. Tiny inputs (71 px, the smallest Xception takes), weights=None."""
import numpy as np
import pytest
import tensorflow as tf

from deepfake_keras.data import inputs
from deepfake_keras.training import bagging, fit
from deepfake_keras.models import xception as xc

from ..tiny_store import celebdf_like, make_store

SIZE = xc.MIN_IMAGE_SIZE


# --------------------------------------------------------------------------- the optimizer

def keras2_nadam(grads, theta, lr=0.002, beta_1=0.9, beta_2=0.999, eps=1e-7, schedule_decay=0.004, t0=0,
                 m_schedule=1.0):
    """NumPy transcription of Keras 2's ``Nadam.get_updates`` (keras/optimizers.py of Keras 2.0-2.3, kept as
    keras/src/optimizers/optimizer_v1.py): the parameters and ``m_schedule`` after each step, starting at
    iteration ``t0`` with zero moments."""
    theta = np.asarray(theta, np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    out = []
    for t, g in enumerate(np.asarray(grads, np.float64), t0 + 1):
        mu_t = beta_1 * (1.0 - 0.5 * 0.96 ** (t * schedule_decay))
        mu_next = beta_1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * schedule_decay))
        m_schedule_new = m_schedule * mu_t
        m_schedule_next = m_schedule_new * mu_next
        m_schedule = m_schedule_new
        g_prime = g / (1.0 - m_schedule_new)
        m = beta_1 * m + (1.0 - beta_1) * g
        m_prime = m / (1.0 - m_schedule_next)
        v = beta_2 * v + (1.0 - beta_2) * g * g
        v_prime = v / (1.0 - beta_2 ** t)
        m_bar = (1.0 - mu_t) * g_prime + mu_next * m_prime
        theta = theta - lr * m_bar / (np.sqrt(v_prime) + eps)
        out.append((theta.copy(), m_schedule))
    return out


GRADS = np.random.default_rng(0).normal(size=(6, 3)) * np.array([1.0, 0.01, 5.0])
THETA0 = np.array([0.5, -1.0, 2.0])


def run_optimizer(opt, grads, theta0=THETA0):
    var = tf.Variable(theta0, dtype=tf.float32)
    thetas = []
    for g in grads:
        opt.apply_gradients([(tf.constant(g, tf.float32), var)])
        thetas.append(var.numpy().astype(np.float64))
    return var, thetas


def test_momentum_schedule_by_hand():
    # beta_1 * (1 - 0.5 * 0.96 ** (t * 0.004)), worked out for a few steps
    for t in (1, 2, 1000, 10000):
        assert xc.momentum_cache(t) == pytest.approx(0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)), rel=1e-12)
    assert xc.momentum_cache(1) == pytest.approx(0.450073, abs=1e-6)
    assert xc.momentum_cache(1000) == pytest.approx(0.9 * (1 - 0.5 * 0.84934656), abs=1e-12)  # 0.96 ** 4
    assert xc.momentum_cache(10000) == pytest.approx(0.812085, abs=1e-6)


def test_paper_optimizer_follows_keras2_nadam_step_by_step():
    opt = xc.paper_optimizer()
    var, thetas = run_optimizer(opt, GRADS)
    want = keras2_nadam(GRADS, THETA0)
    for step, (got, (theta, _)) in enumerate(zip(thetas, want), 1):
        np.testing.assert_allclose(got, theta, rtol=2e-6, atol=1e-7, err_msg=f"step {step}")
    # the momentum schedule product M_t = mu_1 ... mu_t, kept in the optimizer's momentum cache
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.004)) for t in range(1, 7)]
    assert float(opt._m_cache.numpy()) == pytest.approx(np.prod(mu), rel=1e-6)
    assert want[-1][1] == pytest.approx(np.prod(mu), rel=1e-12)
    # the learning rate is constant: schedule_decay is not a learning-rate decay
    assert int(opt.iterations.numpy()) == 6
    assert float(opt.learning_rate.numpy()) == pytest.approx(0.002)


def test_paper_optimizer_late_step_uses_the_slow_schedule():
    # one step at iteration 1000 from a known momentum cache: 0.96 ** (1000 * 0.004), lr still 0.002
    opt = xc.paper_optimizer()
    var = tf.Variable(THETA0, dtype=tf.float32)
    opt.apply_gradients([(tf.zeros(3), var)])  # creates the slots; zero gradient leaves m, v at 0
    var.assign(THETA0)
    opt.iterations.assign(999)
    opt._m_cache.assign(0.3)
    opt.apply_gradients([(tf.constant(GRADS[0], tf.float32), var)])
    want, m_schedule = keras2_nadam(GRADS[:1], THETA0, t0=999, m_schedule=0.3)[0]
    np.testing.assert_allclose(var.numpy(), want, rtol=2e-6)
    assert float(opt._m_cache.numpy()) == pytest.approx(m_schedule, rel=1e-6)
    with_lr_decay = keras2_nadam(GRADS[:1], THETA0, lr=0.002 / (1 + 0.004 * 999), t0=999, m_schedule=0.3)[0][0]
    assert not np.allclose(var.numpy(), with_lr_decay, rtol=1e-3)


def test_tf215_default_nadam_has_no_schedule_decay():
    """The finding behind paper_optimizer: TF 2.15's tf.keras.optimizers.Nadam is Keras 2's Nadam with
    schedule_decay = 1, not 0.004."""
    _, thetas = run_optimizer(tf.keras.optimizers.Nadam(learning_rate=0.002), GRADS)
    as_one = keras2_nadam(GRADS, THETA0, schedule_decay=1.0)
    as_paper = keras2_nadam(GRADS, THETA0)
    np.testing.assert_allclose(thetas[-1], as_one[-1][0], rtol=2e-6, atol=1e-7)
    assert not np.allclose(thetas[-1], as_paper[-1][0], rtol=1e-4, atol=0)


def test_optimizer_bad_input():
    for kwargs in ({"learning_rate": 0}, {"schedule_decay": -1}, {"beta_1": 1.0}):
        with pytest.raises(ValueError):
            xc.paper_optimizer(**kwargs)


# --------------------------------------------------------------------------- the model

@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(1)
    return xc.build_xception(SIZE, weights=None)


def test_model_structure_and_fc1_features(model):
    assert model.input_shape == (None, SIZE, SIZE, 3)
    assert model.output_shape == (None, 1)
    assert model.get_layer("fc1").units == 512 and model.get_layer("fc1").activation.__name__ == "relu"
    assert model.get_layer("p_fake").activation.__name__ == "sigmoid"
    model.get_layer(xc.GRADCAM_LAYER)  # flat model: Grad-CAM reaches Xception's layers by name
    assert all(layer.trainable for layer in model.layers)
    frozen = [w.name for w in model.non_trainable_weights]
    assert frozen and all("moving_mean" in n or "moving_variance" in n for n in frozen)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) > 20_000_000  # the paper's "22 million"

    features = xc.feature_model(model)
    x = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    f = features(x, training=False).numpy()
    assert f.shape == (2, 512) and f.min() >= 0
    w, b = model.get_layer("p_fake").get_weights()
    p = model(x, training=False).numpy()
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(f @ w + b))), rtol=1e-4)  # fc1 is what the head reads


def test_model_bad_input():
    with pytest.raises(ValueError, match="71"):
        xc.build_xception(70, weights=None)
    with pytest.raises(ValueError, match="dropout"):
        xc.build_xception(SIZE, weights=None, dropout=1.0)
    with pytest.raises(ValueError, match="imagenet"):
        xc.build_xception(SIZE, weights="no/such/file.h5")
    plain = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="fc1"):
        xc.feature_model(plain)


def test_imagenet_weights_come_from_the_registry(tmp_path, monkeypatch):
    import deepfake_keras.weights as W

    tf.keras.utils.set_random_seed(7)
    base = tf.keras.applications.Xception(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    path = tmp_path / "xception_notop.h5"
    base.save_weights(str(path))
    asked = []
    monkeypatch.setattr(W, "weights_path", lambda name, **k: asked.append(name) or path)
    tf.keras.utils.set_random_seed(8)
    model = xc.build_xception(SIZE)  # weights="imagenet" by default
    assert asked == ["xception-imagenet-notop"]
    for name in ("block1_conv1", "block14_sepconv2"):
        for got, want in zip(model.get_layer(name).get_weights(), base.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)

    def offline(name, **k):
        raise W.WeightsError("cannot fetch")

    monkeypatch.setattr(W, "weights_path", offline)
    with pytest.raises(W.WeightsError):
        xc.build_xception(SIZE)


# --------------------------------------------------------------------------- the input pipeline

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Eight one-frame videos; crop i is a constant grey of 10 * i + 5 whose right half is white."""
    videos = {}
    for i in range(8):
        crop = np.full((32, 32, 3), 10 * i + 5, np.uint8)
        crop[:, 16:] = 255
        videos[f"t/v{i}"] = (i % 2, "train", [crop])
    return make_store(tmp_path_factory.mktemp("store"), videos)


def decoded_index(images):
    """Which crop each decoded image is: from its (left half) grey level."""
    grey = (images[:, :, :images.shape[2] // 4].mean(axis=(1, 2, 3)) + 1) * 127.5
    return np.round((grey - 5) / 10).astype(int)


def test_face_dataset_decodes_resizes_and_preprocesses(store):
    faces = store.faces()
    ds = inputs.face_dataset(faces, store.root, image_size=24, batch_size=3)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [3, 3, 2]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.shape == (8, 24, 24, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(decoded_index(images), np.arange(8))  # the table's order
    np.testing.assert_array_equal(labels, faces["label"].to_numpy())
    np.testing.assert_allclose(images[0, :, :10], 5 / 127.5 - 1, atol=1e-5)  # x / 127.5 - 1
    np.testing.assert_allclose(images[:, :, -10:], 1.0, atol=1e-5)  # right stays right: no flip
    again = np.concatenate([b[0] for b in inputs.face_dataset(faces, store.root, 24, 3).as_numpy_iterator()])
    np.testing.assert_array_equal(images, again)


def test_face_dataset_shuffles_by_seed(store):
    faces = store.faces()

    def epochs(ds, n=2):
        return [decoded_index(np.concatenate([b[0] for b in ds.as_numpy_iterator()])).tolist() for _ in range(n)]

    a = epochs(inputs.face_dataset(faces, store.root, 16, 4, shuffle=True, seed=3))
    b = epochs(inputs.face_dataset(faces, store.root, 16, 4, shuffle=True, seed=3))
    assert a == b  # same seed, same orders
    assert all(sorted(order) == list(range(8)) for order in a)  # every crop once per epoch
    assert a[0] != list(range(8)) and a[0] != a[1]  # shuffled, and reshuffled each epoch
    cached = epochs(inputs.face_dataset(faces, store.root, 16, 4, shuffle=True, seed=3, cache=True))
    assert all(sorted(order) == list(range(8)) for order in cached)
    images = next(iter(inputs.face_dataset(faces, store.root, 16, 8, labels=False)))
    assert images.shape == (8, 16, 16, 3)


def test_face_dataset_bad_input(store, tmp_path):
    faces = store.faces()
    with pytest.raises(ValueError, match="non-empty"):
        inputs.face_dataset(faces.iloc[:0], store.root)
    with pytest.raises(ValueError, match="crop"):
        inputs.face_dataset(faces.drop(columns="crop"), store.root)
    with pytest.raises(ValueError, match="do not exist"):
        inputs.face_dataset(faces, tmp_path)
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        inputs.face_dataset(faces.assign(label=-1), store.root)
    with pytest.raises(ValueError, match="weights"):
        inputs.face_dataset(faces, store.root, weights=[1.0])


# --------------------------------------------------------------------------- training

def test_one_training_step_changes_every_weight(tmp_path):
    """The default model through train_bagging: one bag, one Nadam step of 2 images, 71 px, weights=None."""
    store = celebdf_like(tmp_path / "store", n_fake=3, n_real=2, frames=2)
    faces = store.faces()
    records = bagging.train_bagging(faces, store.root, tmp_path / "run", n_bags=1, epochs=1, image_size=SIZE,
                                    batch_size=2, weights="none", seed=5, patience=None, val_fraction=0,
                              steps_per_epoch=1, verbose=0, progress=False)
    assert records[0]["epochs_run"] == 1 and np.isfinite(records[0]["history"]["loss"][0])
    tf.keras.utils.set_random_seed(5)  # the bag's seed: its initial weights
    initial = xc.build_xception(SIZE, weights=None)
    trained = fit.load_weights(xc.build_xception(SIZE, weights=None), tmp_path / "run" / "bag_0" / "model.weights.h5")
    # Nadam's first step moves every weight with a gradient by about lr = 0.002 (1.06 lr for t = 1):
    # each trainable weight moved, none by more than one step (so the start was the bag's initial weights)
    steps = {w.name: np.abs(w.numpy() - v.numpy()).max()
             for w, v in zip(trained.trainable_weights, initial.trainable_weights)}
    assert min(steps.values()) > 1e-3, min(steps, key=steps.get)
    assert max(steps.values()) < 3e-3, max(steps, key=steps.get)
    test = faces[faces["split"] == "test"].reset_index(drop=True)
    probs = bagging.predict_bags(test, store.root, tmp_path / "run", progress=False)
    np.testing.assert_allclose(probs[:, 0], trained.predict(
        np.concatenate(list(inputs.face_dataset(test, store.root, SIZE, 4, labels=False).as_numpy_iterator())),
        verbose=0).ravel(), rtol=1e-5)
