"""deepfake_keras.models.triplet and .classifiers.

The semi-hard loss of TF Addons is checked against a NumPy reference written
here from the definition, on hand-worked batches and on random ones; then the
head, the samplers, one training step, and training on a toy problem whose
embeddings RF and SGD must classify well, frame and video level.
"""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from deepfake_keras.evaluation import binary_metrics, video_scores
from deepfake_keras.models import triplet as mt
from deepfake_keras.training import triplet as training
from deepfake_keras.training.classifiers import fit_classifier, frame_scores

# Keras 2.15 seeds its initializers with random.randint(1, 1e9) (a float bound) once a global seed is
# set; Python 3.11 warns about it. Not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:non-integer arguments to randrange:DeprecationWarning")


# --------------------------------------------------------------------------- NumPy reference

def np_distances(e, squared):
    d2 = ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    return d2 if squared else np.sqrt(d2)


def np_semi_hard_loss(labels, embeddings, margin=1.0, squared=False):
    """Batch-all semi-hard triplet loss, from the definition (FaceNet; the rule TFA implements).

    For every ordered pair (a, p), a != p, same label: the negative distance is the smallest
    D[a, n] with D[a, n] > D[a, p] (strictly: the semi-hard negative, or an easy one if the
    nearest farther negative is beyond the margin); if no negative is farther than the positive,
    the largest D[a, n] (the least hard of the hard ones); if the anchor has no negative at all,
    0 (TFA's masked maximum over an empty set). Loss = mean over all such pairs of
    max(margin + D[a, p] - D[a, n], 0), pairs with zero loss included.
    """
    labels = np.asarray(labels)
    d = np_distances(np.asarray(embeddings, dtype=np.float64), squared)
    losses = []
    for a in range(len(labels)):
        negatives = d[a, labels != labels[a]]
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            farther = negatives[negatives > d[a, p]]
            if len(farther):
                d_an = farther.min()
            elif len(negatives):
                d_an = negatives.max()
            else:
                d_an = 0.0
            losses.append(max(margin + d[a, p] - d_an, 0.0))
    return float(np.mean(losses))


def tfa_loss(labels, embeddings, margin=1.0, distance="L2"):
    loss = mt.semi_hard_loss(margin, distance)
    return float(loss(tf.constant(labels), tf.constant(np.asarray(embeddings, np.float32))))


# 1-D batch: class 0 at 0.0 and 0.4, class 1 at 1.0 and 3.0; margin 1.
HAND_LABELS = [0, 0, 1, 1]
HAND_POINTS = [[0.0], [0.4], [1.0], [3.0]]


def test_hand_worked_semi_hard_batch():
    # Plain distances. Ordered positive pairs (a, p) and their negatives D[a, n]:
    #   (0.0, 0.4): d_ap 0.4; negatives 1.0, 3.0, both farther; nearest 1.0 is semi-hard
    #               (0.4 < 1.0 < 1.4): loss 1 + 0.4 - 1.0 = 0.4
    #   (0.4, 0.0): d_ap 0.4; negatives 0.6, 2.6; nearest farther 0.6: 1 + 0.4 - 0.6 = 0.8
    #   (1.0, 3.0): d_ap 2.0; negatives 1.0, 0.6, none farther -> largest 1.0: 1 + 2 - 1 = 2.0
    #   (3.0, 1.0): d_ap 2.0; negatives 3.0, 2.6; nearest farther 2.6: 1 + 2 - 2.6 = 0.4
    #   mean (0.4 + 0.8 + 2.0 + 0.4) / 4 = 0.9
    assert np_semi_hard_loss(HAND_LABELS, HAND_POINTS) == pytest.approx(0.9)
    assert tfa_loss(HAND_LABELS, HAND_POINTS) == pytest.approx(0.9, abs=1e-5)
    # Squared distances (Eq. 1 of the paper):
    #   (0.0, 0.4): 0.16; negatives 1, 9 -> 1: 1 + 0.16 - 1 = 0.16
    #   (0.4, 0.0): 0.16; negatives 0.36, 6.76 -> 0.36: 1 + 0.16 - 0.36 = 0.8
    #   (1.0, 3.0): 4; negatives 1, 0.36, none farther -> 1: 1 + 4 - 1 = 4
    #   (3.0, 1.0): 4; negatives 9, 6.76 -> 6.76: 1 + 4 - 6.76 < 0 -> 0 (easy)
    #   mean (0.16 + 0.8 + 4 + 0) / 4 = 1.24
    assert np_semi_hard_loss(HAND_LABELS, HAND_POINTS, squared=True) == pytest.approx(1.24)
    assert tfa_loss(HAND_LABELS, HAND_POINTS, distance="squared-L2") == pytest.approx(1.24, abs=1e-5)
    # margin 0.5, plain: 0 + 0.3 + 1.5 + 0 over 4 = 0.45
    assert tfa_loss(HAND_LABELS, HAND_POINTS, margin=0.5) == pytest.approx(0.45, abs=1e-5)


def test_all_easy_batch_gives_zero():
    # unit vectors: class 0 near angle 0, class 1 near angle pi. d_ap <= 0.1, d_an >= 1.9 > d_ap + 1.
    angles = np.array([0.0, 0.05, 0.1, np.pi, np.pi + 0.05, np.pi - 0.05])
    e = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = [0, 0, 0, 1, 1, 1]
    assert np_semi_hard_loss(labels, e) == 0.0
    assert tfa_loss(labels, e) == pytest.approx(0.0, abs=1e-6)


def test_single_class_batch_counts_negative_distance_zero():
    # no negatives: TFA's masked maximum over nothing is 0, so each pair costs margin + d_ap.
    e = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]  # d: sqrt(2), 2, sqrt(2) -> mean over 6 ordered pairs
    expected = 1.0 + (4 * np.sqrt(2) + 2 * 2) / 6
    assert np_semi_hard_loss([3, 3, 3], e) == pytest.approx(expected)
    assert tfa_loss([3, 3, 3], e) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("distance", ["L2", "squared-L2"])
@pytest.mark.parametrize("margin", [1.0, 0.2])
def test_tfa_semi_hard_loss_matches_numpy_reference(seed, distance, margin):
    rng = np.random.default_rng(seed)
    n, dim, n_classes = rng.integers(6, 17), rng.integers(2, 9), 2 + seed % 2
    labels = np.r_[np.arange(n_classes), np.arange(n_classes), rng.integers(0, n_classes, n - 2 * n_classes)]
    e = rng.normal(size=(n, dim))
    e /= np.linalg.norm(e, axis=1, keepdims=True)  # unit vectors, as TFA expects
    want = np_semi_hard_loss(labels, e, margin, squared=distance == "squared-L2")
    # float32 distances by TFA's expansion |x|^2 + |y|^2 - 2xy: errors ~1e-6 on unit vectors
    assert tfa_loss(labels, e, margin, distance) == pytest.approx(want, abs=1e-5)


def authors_semi_hard_loss(labels, embeddings, margin=1.0):
    """NumPy transcription, op for op, of the authors' ``triplet_loss_adapted_from_tf``
    (AKASH2907/deepfakes_video_classification, ``train_triplets_semi_hard.py``: their copy of
    ``tf.contrib.losses.metric_learning.triplet_semihard_loss``, with ``pairwise_distance(embeddings,
    squared=True)``), including their tiling, masked minimum and maximum."""
    labels = np.asarray(labels).reshape(-1, 1)
    x = np.asarray(embeddings, np.float64)
    n = len(x)
    # pairwise_distance(feature, squared=True)
    pdist = (x ** 2).sum(1, keepdims=True) + (x.T ** 2).sum(0, keepdims=True) - 2.0 * x @ x.T
    pdist = np.maximum(pdist, 0.0)
    pdist = pdist * (~(pdist <= 0.0))
    pdist = pdist * (np.ones_like(pdist) - np.eye(n))

    def masked_maximum(data, mask, dim=1):
        mins = data.min(dim, keepdims=True)
        return ((data - mins) * mask).max(dim, keepdims=True) + mins

    def masked_minimum(data, mask, dim=1):
        maxs = data.max(dim, keepdims=True)
        return ((data - maxs) * mask).min(dim, keepdims=True) + maxs

    adjacency = labels == labels.T
    adjacency_not = ~adjacency
    pdist_tile = np.tile(pdist, (n, 1))
    mask = np.tile(adjacency_not, (n, 1)) & (pdist_tile > pdist.T.reshape(-1, 1))
    mask_final = (mask.astype(np.float64).sum(1, keepdims=True) > 0.0).reshape(n, n).T
    negatives_outside = masked_minimum(pdist_tile, mask.astype(np.float64)).reshape(n, n).T
    negatives_inside = np.tile(masked_maximum(pdist, adjacency_not.astype(np.float64)), (1, n))
    semi_hard_negatives = np.where(mask_final, negatives_outside, negatives_inside)
    loss_mat = margin + pdist - semi_hard_negatives
    mask_positives = adjacency.astype(np.float64) - np.eye(n)
    return float(np.maximum(loss_mat * mask_positives, 0.0).sum() / mask_positives.sum())


@pytest.mark.parametrize("seed", range(4))
def test_our_loss_is_the_authors(seed):
    """The default loss (TFA TripletSemiHardLoss, squared-L2, margin 1) equals the authors' own loss on a
    small batch of linear (not normalised) 64-d embeddings, as their head outputs, to 1e-5."""
    from deepfake_keras.config import HeadConfig

    rng = np.random.default_rng(seed)
    labels = np.r_[0, 1, 0, 1, rng.integers(0, 2, 12)]
    e = rng.normal(scale=0.3, size=(16, 64))
    want = authors_semi_hard_loss(labels, e, margin=1.0)
    assert want > 0
    assert tfa_loss(labels, e, HeadConfig.margin, HeadConfig.distance) == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_semi_hard_loss_is_tfa_and_checks_distance():
    import tensorflow_addons as tfa
    loss = mt.semi_hard_loss()
    assert isinstance(loss, tfa.losses.TripletSemiHardLoss)
    assert loss.get_config()["margin"] == 1.0 and loss.get_config()["distance_metric"] == "squared-L2"
    with pytest.raises(ValueError, match="unknown distance"):
        mt.semi_hard_loss(distance="angular")


# --------------------------------------------------------------------------- random-pick loss

def test_random_pick_triplet_loss_hand_made():
    # (anchor, positive, negative) in 2-D, margin 1:
    #   a (0,0), p (0,1), n (2,0):   plain 1 - 2 + 1 = 0;      squared 1 - 4 + 1 < 0 -> 0
    #   a (0,0), p (3,4), n (1,0):   plain 5 - 1 + 1 = 5;      squared 25 - 1 + 1 = 25
    #   a (0,0), p (1,0), n (0,1.5): plain 1 - 1.5 + 1 = 0.5;  squared 1 - 2.25 + 1 < 0 -> 0
    trip = np.array([[[0, 0], [0, 1], [2, 0]],
                     [[0, 0], [3, 4], [1, 0]],
                     [[0, 0], [1, 0], [0, 1.5]]], np.float32)
    per_triplet = mt.triplet_loss(trip[:, 0], trip[:, 1], trip[:, 2], distance="L2").numpy()
    np.testing.assert_allclose(per_triplet, [0, 5, 0.5], atol=1e-6)
    squared = mt.triplet_loss(trip[:, 0], trip[:, 1], trip[:, 2]).numpy()  # the default: Eq. 1, squared
    np.testing.assert_allclose(squared, [0, 25, 0], atol=1e-5)
    dummy = np.zeros(3, np.float32)
    assert float(mt.RandomTripletLoss(distance="L2")(dummy, trip)) == pytest.approx(11 / 6, abs=1e-6)
    assert float(mt.RandomTripletLoss(margin=0.0)(dummy, trip)) == pytest.approx(24 / 3)
    config = mt.RandomTripletLoss(margin=0.3).get_config()
    assert (config["margin"], config["distance"]) == (0.3, "squared-L2")


def test_triplet_loss_gradient_finite_for_identical_points():
    a = tf.Variable([[0.6, 0.8]])
    with tf.GradientTape() as tape:
        loss = mt.triplet_loss(a, tf.constant([[0.6, 0.8]]), tf.constant([[1.0, 0.0]]))
    assert np.all(np.isfinite(tape.gradient(loss, a).numpy()))


def test_random_triplets():
    labels = np.array([1] * 70 + [0] * 10)  # 7:1, like Celeb-DF
    trip = training.random_triplets(labels, 4000, np.random.default_rng(0))
    assert trip.shape == (4000, 3)
    a, p, n = trip.T
    assert np.all(labels[a] == labels[p]) and np.all(a != p) and np.all(labels[a] != labels[n])
    assert abs(np.mean(labels[a]) - 0.5) < 0.05  # balanced anchor classes by default
    assert abs(np.mean(labels[training.random_triplets(labels, 4000, np.random.default_rng(0), balanced=False)[:, 0]])
               - 7 / 8) < 0.05
    assert len(np.unique(p[labels[a] == 0])) == 10  # every real is used as a positive
    np.testing.assert_array_equal(trip, training.random_triplets(labels, 4000, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="two classes"):
        training.random_triplets([1, 1, 1], 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least 2 samples"):
        training.random_triplets([1, 1, 0], 5, np.random.default_rng(0))


def test_balanced_batches():
    labels = np.array([1] * 70 + [0] * 10)
    gen = training.balanced_batches(labels, 16, np.random.default_rng(0))
    batches = [next(gen) for _ in range(10)]
    for b in batches:
        assert len(b) == 16 and np.sum(labels[b] == 0) == 8
        assert set(labels[b[:8]]) == {0, 1} and set(labels[b[8:]]) == {0, 1}  # each half holds both classes
    reals = np.concatenate([b[labels[b] == 0] for b in batches])
    # without replacement within a pass: the first 80 reals drawn are 8 full passes over the 10
    assert np.all(np.bincount(reals, minlength=80)[70:] == 8)
    with pytest.raises(ValueError, match="fewer than 2 rows per class"):
        next(training.balanced_batches(labels, 3, np.random.default_rng(0)))


# --------------------------------------------------------------------------- head

def test_defaults_are_the_authors():
    """create_base_network of the authors' train_triplets_semi_hard.py: 512 -> 256 -> 256 -> 128 (ReLU,
    he_uniform, dropout 0.1 after each) -> 64, linear, no normalisation; Adam 3e-4, batch 32, squared
    distances, margin 1."""
    from deepfake_keras.config import HeadConfig

    head = mt.build_triplet_head(512)
    dense = [l for l in head.layers if isinstance(l, tf.keras.layers.Dense)]
    assert [l.units for l in dense] == [256, 256, 128, 64]
    assert [l.get_config()["activation"] for l in dense] == ["relu"] * 3 + ["linear"]
    assert [l.get_config()["kernel_initializer"]["class_name"] for l in dense[:3]] == ["HeUniform"] * 3
    assert [l.rate for l in head.layers if isinstance(l, tf.keras.layers.Dropout)] == [0.1] * 3
    assert not any(isinstance(l, tf.keras.layers.UnitNormalization) for l in head.layers)
    c = HeadConfig()
    assert (c.learning_rate, c.batch_size, c.distance, c.margin, c.patience) == (3e-4, 32, "squared-L2", 1.0, None)


def test_head_shape_unit_norm_and_weights_only_round_trip(tmp_path):
    head = mt.build_triplet_head(512, normalize=True)
    assert head.output_shape == (None, 64)
    assert [l.units for l in head.layers if isinstance(l, tf.keras.layers.Dense)] == [256, 256, 128, 64]
    assert not any(isinstance(l, tf.keras.layers.Lambda) for l in head.layers)
    assert head.count_params() == (512 * 256 + 256) + (256 * 256 + 256) + (256 * 128 + 128) + (128 * 64 + 64)
    x = np.random.default_rng(0).normal(size=(50, 512)).astype(np.float32)
    e = mt.embed(head, x, batch_size=16)
    assert e.shape == (50, 64) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert np.ptp(np.linalg.norm(mt.embed(mt.build_triplet_head(512), x), axis=1)) > 0.1  # the default: linear
    head.save_weights(tmp_path / "h.weights.h5")
    other = mt.build_triplet_head(512, normalize=True)
    other.load_weights(tmp_path / "h.weights.h5")
    np.testing.assert_array_equal(mt.embed(other, x), e)
    with pytest.raises(ValueError, match="dropout"):
        mt.build_triplet_head(512, dropout=1.0)


def test_triplet_model_shares_the_head():
    head = mt.build_triplet_head(8, units=(16,), embedding_dim=4, dropout=0.0)
    model = mt.triplet_model(head)
    assert model.output_shape == (None, 3, 4)
    assert len(model.trainable_weights) == len(head.trainable_weights)
    x = np.random.default_rng(0).normal(size=(5, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy()[:, 1], mt.embed(head, x[:, 1]), atol=1e-6)


def test_one_training_step_changes_weights():
    tf.keras.utils.set_random_seed(0)
    head = mt.build_triplet_head(16, units=(32,), embedding_dim=8)
    head.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss=mt.semi_hard_loss())
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 16)).astype(np.float32), np.repeat([0, 1], 16)
    before = [w.copy() for w in head.get_weights()]
    loss = head.train_on_batch(x, y)
    assert np.isfinite(loss) and loss > 0
    assert all(not np.array_equal(b, a) for b, a in zip(before, head.get_weights()))


# --------------------------------------------------------------------------- training

def toy_videos(rng, n_videos, frames=5, dim=32, fake_share=0.25):
    """Two Gaussian blobs in ``dim``-d (class means 3 apart, unit noise); frames of a video share an offset."""
    labels = (rng.random(n_videos) < fake_share).astype(int)
    labels[:2] = [0, 1]
    shift = np.zeros(dim)
    shift[:3] = 3.0 / np.sqrt(3)
    centre = rng.normal(scale=0.5, size=(n_videos, dim)) + np.outer(labels, shift)
    x = np.repeat(centre, frames, axis=0) + rng.normal(scale=0.8, size=(n_videos * frames, dim))
    table = pd.DataFrame({"store_key": np.repeat([f"v{i:03d}" for i in range(n_videos)], frames),
                          "label": np.repeat(labels, frames)})
    return x.astype(np.float32), table


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(42)
    return toy_videos(rng, 80), toy_videos(rng, 40)  # 400 training frames, 200 validation frames


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    (xt, tt), (xv, tv) = toy
    out = tmp_path_factory.mktemp("semi_hard")
    # this package's earlier variant (unit-length output, plain distances, Adam 1e-3): on this toy of 400 frames
    # it learns within 20 short epochs, which the authors' settings (Adam 3e-4, made for far more frames) do not
    head, record = training.train_triplet_head(xt, tt["label"], xv, tv["label"], mining="semi-hard", epochs=20,
                                               batch_size=64, patience=4, seed=0, out_dir=out, **VARIANT)
    return head, record, out


VARIANT = {"normalize": True, "distance": "L2", "learning_rate": 1e-3}


def test_semi_hard_training_lowers_val_loss_and_saves(toy, trained):
    (_, _), (xv, _) = toy
    head, record, out = trained
    assert record["best_val_loss"] < 0.8 * record["initial_val_loss"]
    assert record["history"]["val_loss"][record["best_epoch"] - 1] == record["best_val_loss"]
    assert record["settings"]["mining"] == "semi-hard" and record["settings"]["distance"] == "L2"
    assert record["settings"]["normalize"] is True and record["settings"]["learning_rate"] == 1e-3
    saved = json.loads((out / training.SETTINGS_FILE).read_text())
    assert saved["best_epoch"] == record["best_epoch"] and (out / training.WEIGHTS_FILE).exists()
    again, _ = training.load_triplet_head(out)
    np.testing.assert_array_equal(mt.embed(again, xv), mt.embed(head, xv))  # the best epoch's weights


@pytest.mark.parametrize("kind", ["rf", "sgd"])
def test_classifiers_on_trained_embeddings(toy, trained, kind):
    (xt, tt), (xv, tv) = toy
    head = trained[0]
    clf = fit_classifier(kind, mt.embed(head, xt), tt["label"], seed=0)
    scores = frame_scores(clf, mt.embed(head, xv))
    assert scores.shape == (len(xv),) and np.all((scores >= 0) & (scores <= 1))
    frames = binary_metrics(tv["label"], scores)
    assert frames["auc"] > 0.9
    videos = video_scores(tv.assign(p_fake=scores), "p_fake")
    assert len(videos) == 40
    assert binary_metrics(videos["label"], videos["p_fake"])["auc"] >= frames["auc"] - 0.02


def test_random_pick_training(toy, tmp_path):
    (xt, tt), (xv, tv) = toy
    head, record = training.train_triplet_head(xt, tt["label"], xv, tv["label"], mining="random", epochs=6,
                                               batch_size=64, patience=2, seed=0, out_dir=tmp_path, **VARIANT)
    assert record["best_val_loss"] < 0.8 * record["initial_val_loss"]
    assert mt.embed(head, xv).shape == (len(xv), 64)
    assert json.loads((tmp_path / training.SETTINGS_FILE).read_text())["settings"]["mining"] == "random"


def test_training_is_reproducible(toy):
    (xt, tt), (xv, tv) = toy
    runs = [training.train_triplet_head(xt[:200], tt["label"][:200], xv, tv["label"], epochs=2, batch_size=32,
                                 seed=3, units=(32,), embedding_dim=8)[1]["history"] for _ in range(2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(mining="hard"), "unknown mining"),
    (dict(distance="cosine"), "unknown distance"),
    (dict(batch_size=3), "too small"),
    (dict(epochs=0), "epochs"),
])
def test_train_bad_settings(kwargs, match):
    x, y = np.zeros((8, 4), np.float32), np.array([0, 1] * 4)
    with pytest.raises(ValueError, match=match):
        training.train_triplet_head(x, y, x, y, **kwargs)


def test_train_bad_data():
    x, y = np.zeros((8, 4), np.float32), np.array([0, 1] * 4)
    with pytest.raises(ValueError, match="two classes"):
        training.train_triplet_head(x, np.zeros(8, int), x, y)
    with pytest.raises(ValueError, match="lengths differ"):
        training.train_triplet_head(x, y[:7], x, y)
    with pytest.raises(ValueError, match="2-D"):
        training.train_triplet_head(x[:, 0], y, x, y)


def test_classifier_bad_input():
    with pytest.raises(ValueError, match="unknown classifier"):
        fit_classifier("svm", np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="both classes"):
        fit_classifier("rf", np.zeros((4, 2)), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="predict_proba"):
        fit_classifier("sgd", np.zeros((4, 2)), [0, 1, 0, 1], loss="hinge")
