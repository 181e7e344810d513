"""Bagging against imbalance: bags by video, voting and mean probability, resumable per-bag training.

The training tests use a tiny conv net (``build_model``) so that they take seconds; the default Xception
goes through train_bagging and predict_bags once, in tests/test_xception.py."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from deepfake_keras import evaluation
from deepfake_keras.training import bagging, fit, splits
from deepfake_keras.data.inputs import face_dataset
from deepfake_keras.models import xception as xc

from ..tiny_store import celebdf_like


def video_rows(n_fake, n_real, n_test=3, frames=3):
    """A frame table: ``frames`` rows per video, fakes f00.., reals r00.., and test videos of both."""
    rows = []
    for kind, label, n, split in (("f", 1, n_fake, "train"), ("r", 0, n_real, "train"),
                                  ("tf", 1, n_test, "test"), ("tr", 0, n_test, "test")):
        for i in range(n):
            rows += [{"store_key": f"{kind}{i:02d}", "label": label, "split": split, "frame": k} for k in range(frames)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- bags

@pytest.mark.parametrize("n_fake,n_bags", [(23, 7), (7, 7), (50, 7), (9, 2)])
def test_bags_are_disjoint_cover_the_fakes_once_and_hold_every_real(n_fake, n_bags):
    frames = video_rows(n_fake, 5)
    bags = splits.make_bags(frames, n_bags=n_bags, seed=3)
    assert len(bags) == n_bags
    fake_train = {f"f{i:02d}" for i in range(n_fake)}
    real_train = {f"r{i:02d}" for i in range(5)}
    parts = [set(b.loc[b["label"] == 1, "store_key"]) for b in bags]
    seen = [k for p in parts for k in p]
    assert sorted(seen) == sorted(fake_train)  # every fake training video exactly once
    assert all(set(b.loc[b["label"] == 0, "store_key"]) == real_train for b in bags)  # every real in every bag
    assert all(set(b["split"]) == {"train"} for b in bags)  # no test video
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # near-equal
    assert all(b["store_key"].is_unique for b in bags)  # by video: one row per video
    assert all((b["n_frames"] == 3).all() for b in bags)  # with all its frames counted
    assert [list(b["store_key"]) for b in splits.make_bags(frames, n_bags, seed=3)] == [list(b["store_key"]) for b in bags]
    if n_fake > n_bags:
        other = splits.make_bags(frames, n_bags, seed=4)
        assert [set(b["store_key"]) for b in other] != [set(b["store_key"]) for b in bags]


def test_bags_bad_input():
    with pytest.raises(ValueError, match="at least 7 fake"):
        splits.make_bags(video_rows(6, 5), n_bags=7)
    with pytest.raises(ValueError, match="no real"):
        splits.make_bags(video_rows(8, 0), n_bags=7)
    with pytest.raises(ValueError, match="n_bags"):
        splits.make_bags(video_rows(8, 2), n_bags=0)
    mixed = video_rows(8, 2)
    mixed.loc[0, "label"] = 0  # one frame of a fake video labelled real
    with pytest.raises(ValueError, match="'label' varies within 1 videos"):
        splits.make_bags(mixed)
    with pytest.raises(ValueError, match="store_key"):
        splits.make_bags(mixed.drop(columns="store_key"))


def test_validation_split_is_by_video_and_stratified():
    frames = video_rows(40, 10)
    train, val = splits.split_validation(frames, fraction=0.1, seed=0)
    assert set(train["store_key"]).isdisjoint(val["store_key"])
    assert len(train) + len(val) == 50 and set(train["split"]) == {"train"} and set(val["split"]) == {"val"}
    assert (val["label"] == 1).sum() == 4 and (val["label"] == 0).sum() == 1
    again = splits.split_validation(frames, fraction=0.1, seed=0)[1]
    assert list(again["store_key"]) == list(val["store_key"])
    train0, val0 = splits.split_validation(frames, fraction=0)
    assert len(val0) == 0 and len(train0) == 50
    with pytest.raises(ValueError, match="real"):
        splits.split_validation(video_rows(10, 1), fraction=0.1)


def test_grouped_validation_keeps_each_clip_with_its_fakes():
    # 10 real clips c0..c9, clip ci has i % 4 + 2 fakes made from it; 6 fakes whose clip is not shipped
    rows, groups = [], {}
    for i in range(10):
        groups[f"r{i}"] = f"c{i}"
        rows.append({"store_key": f"r{i}", "label": 0, "split": "train"})
        for j in range(i % 4 + 2):
            groups[f"f{i}_{j}"] = f"c{i}"
            rows.append({"store_key": f"f{i}_{j}", "label": 1, "split": "train"})
    for j in range(6):
        groups[f"u{j}"] = f"unshipped{j // 2}"
        rows.append({"store_key": f"u{j}", "label": 1, "split": "train"})
    table = pd.DataFrame(rows)
    n_fake = int((table["label"] == 1).sum())  # 36
    for seed in range(8):
        train, val = splits.split_validation(table, fraction=0.2, seed=seed, groups=groups)
        assert len(train) + len(val) == len(table) and set(train["store_key"]).isdisjoint(val["store_key"])
        train_groups = {groups[k] for k in train["store_key"]}
        val_groups = {groups[k] for k in val["store_key"]}
        assert train_groups.isdisjoint(val_groups)  # no clip straddles the split
        assert (val["label"] == 0).sum() == 2  # the real quota, round(0.2 * 10)
        assert (val["label"] == 1).sum() >= round(0.2 * n_fake)  # the fake quota, overshot by at most one group
        assert (val["label"] == 1).sum() < round(0.2 * n_fake) + 6
        assert (train["label"] == 0).any() and (train["label"] == 1).any()
    again = splits.split_validation(table, fraction=0.2, seed=3, groups=groups)[1]
    assert list(again["store_key"]) == list(splits.split_validation(table, fraction=0.2, seed=3, groups=groups)[1]["store_key"])
    # videos missing from groups are their own group; one group holding every fake cannot be split
    with pytest.raises(ValueError, match="no fake video on one side"):
        splits.split_validation(table, fraction=0.2, groups={k: ("all" if k[0] in "fu" else k) for k in groups})


# --------------------------------------------------------------------------- aggregation

def test_vote_and_mean_probability_by_hand():
    p = np.array([
        [0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3],  # 4 of 7 say fake -> fake
        [0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1],  # 3 of 7 -> real, although the mean is 0.443
        [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0],  # exactly 0.5 counts as fake: 4 of 7 -> fake
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # 1 of 7 -> real
    ])
    vote, mean = evaluation.aggregate_bags(p)
    np.testing.assert_array_equal(vote, [1, 0, 1, 0])
    np.testing.assert_allclose(mean, [3.6 / 7, 3.1 / 7, 2.0 / 7, 1 / 7])
    # the vote is not the thresholded mean: row 3 is voted fake with mean 0.286
    assert vote[2] == 1 and mean[2] < 0.5
    vote, _ = evaluation.aggregate_bags(p, threshold=0.85)
    np.testing.assert_array_equal(vote, [0, 0, 0, 0])


def test_vote_tie_with_an_even_number_of_bags_goes_to_the_mean():
    p = np.array([[0.9, 0.6, 0.2, 0.1],   # 2-2, mean 0.45 -> real
                  [0.9, 0.8, 0.4, 0.3],   # 2-2, mean 0.6 -> fake
                  [0.6, 0.6, 0.6, 0.0]])  # 3-1 -> fake
    vote, mean = evaluation.aggregate_bags(p)
    np.testing.assert_array_equal(vote, [0, 1, 1])
    np.testing.assert_allclose(mean, [0.45, 0.6, 0.45])


def test_aggregation_bad_input():
    for bad in (np.array([0.2, 0.8]), np.zeros((0, 7)), np.array([[0.2, np.nan]]), np.array([[0.2, 1.5]])):
        with pytest.raises(ValueError):
            evaluation.aggregate_bags(bad)


def test_per_video_probabilities_are_frame_means_then_voted():
    frames = pd.DataFrame({"store_key": ["a", "a", "b", "b", "b", "c"], "label": [1, 1, 0, 0, 0, 1],
                           "split": "test"})
    probs = np.array([[0.2, 0.9, 0.6], [0.4, 0.7, 0.6],  # a: 0.3, 0.8, 0.6 -> 2 of 3 fake
                      [0.1, 0.0, 0.9], [0.3, 0.6, 0.9], [0.2, 0.3, 0.9],  # b: 0.2, 0.3, 0.9 -> 1 of 3
                      [1.0, 1.0, 0.0]])  # c: 1, 1, 0 -> 2 of 3
    v = evaluation.bagged_video_predictions(frames, probs)
    assert list(v["store_key"]) == ["a", "b", "c"] and list(v["n_frames"]) == [2, 3, 1]
    np.testing.assert_allclose(v[["bag_0", "bag_1", "bag_2"]].to_numpy(),
                               [[0.3, 0.8, 0.6], [0.2, 0.3, 0.9], [1.0, 1.0, 0.0]])
    assert list(v["votes_fake"]) == [2, 1, 2] and list(v["vote"]) == [1, 0, 1]
    np.testing.assert_allclose(v["mean_prob"], [1.7 / 3, 1.4 / 3, 2 / 3])
    assert list(v["label"]) == [1, 0, 1]
    with pytest.raises(ValueError, match="n_frames"):
        evaluation.bagged_video_predictions(frames, probs[:5])


# --------------------------------------------------------------------------- training, resuming

SIZE = 16


def tiny_net(image_size, weights=None):
    """A small conv net with one sigmoid unit, standing in for Xception in the mechanics tests."""
    inputs = tf.keras.Input((image_size, image_size, 3))
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake")(x))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return celebdf_like(tmp_path_factory.mktemp("celebdf_store"), n_fake=7, n_real=3, frames=2, size=SIZE)


class Interrupt(Exception):
    pass


class StopAfterFirstEpoch(tf.keras.callbacks.Callback):
    """Records the weights after epoch 1, then interrupts training (as a kill would)."""

    def on_epoch_end(self, epoch, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]
        self.iterations = int(self.model.optimizer.iterations.numpy())
        raise Interrupt()


class Recorder(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs, self.start_weights, self.start_iterations = [], None, None

    def on_train_begin(self, logs=None):
        self.start_weights = [w.copy() for w in self.model.get_weights()]
        self.start_iterations = int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_interrupted_bag_resumes_at_the_next_epoch(store, tmp_path):
    faces = store.faces()
    train = faces[faces["split"] == "train"]
    kwargs = dict(epochs=3, image_size=SIZE, batch_size=4, weights=None, seed=0, patience=None,
                  build_model=tiny_net, verbose=0)
    stop = StopAfterFirstEpoch()
    with pytest.raises(Interrupt):
        bagging.train_bag(train, store.root, tmp_path / "bag", callbacks=[stop], **kwargs)
    assert not (tmp_path / "bag" / "bag.json").exists() and not (tmp_path / "bag" / "model.weights.h5").exists()
    assert stop.iterations == 5  # 20 frames, batches of 4

    with pytest.raises(ValueError, match="other settings.*epochs"):
        bagging.train_bag(train, store.root, tmp_path / "bag", **{**kwargs, "epochs": 5})

    rec = Recorder()
    record = bagging.train_bag(train, store.root, tmp_path / "bag", callbacks=[rec], **kwargs)
    assert rec.epochs == [1, 2]  # epochs 2 and 3, not 1 again
    assert rec.start_iterations == 5  # the optimizer's state came back (its step count)
    for got, want in zip(rec.start_weights, stop.weights):
        np.testing.assert_array_equal(got, want)  # and the weights of epoch 1
    assert record["epochs_run"] == 3 and record["resumed_at"] == [0, 1] and record["best_epoch"] == 3
    assert len(record["history"]["loss"]) == 3
    bag = tmp_path / "bag"
    assert json.loads((bag / "bag.json").read_text())["epochs_run"] == 3
    assert (bag / "model.weights.h5").is_file() and not (bag / "checkpoints").exists()

    rec2 = Recorder()  # done: a re-run trains nothing
    assert bagging.train_bag(train, store.root, bag, callbacks=[rec2], **kwargs) == json.loads((bag / "bag.json").read_text())
    assert rec2.epochs == []


def test_early_stopping_state_and_best_weights(tmp_path):
    model = tiny_net(SIZE)
    xc.compile_classifier(model)
    state = fit.EpochCheckpoint(tmp_path, model, patience=2)
    state.callback.set_model(model)
    weights_at = {}
    for epoch, val_loss in enumerate([1.0, 0.5, 0.7, 0.8]):
        model.get_layer("p_fake").set_weights([np.full((4, 1), epoch, np.float32), np.zeros(1, np.float32)])
        weights_at[epoch + 1] = model.get_weights()
        state.callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        if epoch == 2:
            assert not model.stop_training
    assert model.stop_training and bool(state.stopped.numpy())
    assert int(state.best_epoch.numpy()) == 2 and float(state.best.numpy()) == 0.5
    assert [p.name for p in tmp_path.glob("best-*.weights.h5")] == ["best-002.weights.h5"]
    assert state.history["val_loss"] == [1.0, 0.5, 0.7, 0.8]
    fresh = tiny_net(SIZE)
    fresh.load_weights(str(tmp_path / "best-002.weights.h5"))
    np.testing.assert_array_equal(fresh.get_layer("p_fake").get_weights()[0], 1.0)
    # a new process restores the same state from the checkpoint
    again = tiny_net(SIZE)
    xc.compile_classifier(again)
    restored = fit.EpochCheckpoint(tmp_path, again, patience=2)
    assert restored.restore() == 4
    assert bool(restored.stopped.numpy()) and int(restored.best_epoch.numpy()) == 2
    np.testing.assert_array_equal(again.get_layer("p_fake").get_weights()[0], 3.0)


def test_bagging_trains_each_bag_once_and_votes(store, tmp_path):
    faces = store.faces()
    kwargs = dict(n_bags=3, epochs=2, image_size=SIZE, batch_size=4, weights=None, seed=0, patience=1,
                  val_fraction=0.1, build_model=tiny_net, verbose=0, progress=False)
    records = bagging.train_bagging(faces, store.root, tmp_path, **kwargs)
    plan = json.loads((tmp_path / "bagging.json").read_text())
    val = set(plan["val_videos"])
    assert len(val) == 2  # one video of each class held out
    fakes = [k for bag in plan["bags"] for k in bag if "synthesis" in k]
    assert sorted(fakes) == sorted(set(fakes)) and len(fakes) == 6  # 7 fake train videos - 1 for validation
    for i, (bag, record) in enumerate(zip(plan["bags"], records)):
        assert val.isdisjoint(bag) and not any("id8" in k or "YouTube" in k for k in bag)  # no val, no test
        assert record["counts"]["train_fake_videos"] == 2 and record["counts"]["train_real_videos"] == 2
        assert record["counts"]["val_videos"] == 2 and record["settings"]["seed"] == i
        assert (tmp_path / f"bag_{i}" / "bag.json").is_file()
    stamps = [(tmp_path / f"bag_{i}" / "model.weights.h5").stat().st_mtime_ns for i in range(3)]

    rec = Recorder()  # a re-run skips every bag
    assert bagging.train_bagging(faces, store.root, tmp_path, callbacks=[rec], **kwargs) == records
    assert rec.epochs == []
    assert [(tmp_path / f"bag_{i}" / "model.weights.h5").stat().st_mtime_ns for i in range(3)] == stamps
    with pytest.raises(ValueError, match="another plan"):
        bagging.train_bagging(faces, store.root, tmp_path, **{**kwargs, "seed": 1})

    test = faces[faces["split"] == "test"].reset_index(drop=True)
    probs = bagging.predict_bags(test, store.root, tmp_path, build_model=tiny_net, progress=False)
    assert probs.shape == (len(test), 3) and probs.min() >= 0 and probs.max() <= 1
    model = tiny_net(SIZE)
    model.load_weights(str(tmp_path / "bag_1" / "model.weights.h5"))
    x = np.concatenate([b for b in face_dataset(test, store.root, SIZE, 4, labels=False).as_numpy_iterator()])
    np.testing.assert_allclose(probs[:, 1], model.predict(x, verbose=0).ravel(), rtol=1e-5)
    videos = evaluation.bagged_video_predictions(test, probs)
    assert len(videos) == 2 and set(videos["vote"]) <= {0, 1}


def test_predict_refuses_unfinished_bags(store, tmp_path):
    (tmp_path / "bagging.json").write_text(json.dumps({"n_bags": 2}))
    with pytest.raises(ValueError, match="not trained yet"):
        bagging.predict_bags(store.faces(), store.root, tmp_path, build_model=tiny_net)
    with pytest.raises(ValueError, match="bagging.json"):
        bagging.predict_bags(store.faces(), store.root, tmp_path / "nothing")


def test_checkpoint_restores_the_optimizer_state(tmp_path):
    """After a restore, the next step is the step the uninterrupted optimizer takes (same m, v, momentum cache)."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (8, SIZE, SIZE, 3)).astype(np.float32), np.array([0, 1] * 4, np.float32)
    tf.keras.utils.set_random_seed(0)
    first = xc.compile_classifier(tiny_net(SIZE))
    first.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    state = fit.EpochCheckpoint(tmp_path, first, patience=None)
    state.callback.set_model(first)
    state.callback.on_epoch_end(0, {"loss": 1.0})
    second = xc.compile_classifier(tiny_net(SIZE))
    assert fit.EpochCheckpoint(tmp_path, second, patience=None).restore() == 1
    fresh = xc.compile_classifier(tiny_net(SIZE))  # same weights, fresh optimizer: a different step
    fresh.set_weights(first.get_weights())
    for model in (first, second, fresh):
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert float(second.optimizer._m_cache.numpy()) == pytest.approx(float(first.optimizer._m_cache.numpy()))
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not all(np.allclose(a, b) for a, b in zip(first.get_weights(), fresh.get_weights()))


def test_batch_norm_statistics_become_the_mean_of_the_batch_statistics():
    import tensorflow as tf

    inputs = tf.keras.Input((3,))
    hidden = tf.keras.layers.Dense(2, name="dense")(inputs)
    model = tf.keras.Model(inputs, tf.keras.layers.BatchNormalization(name="bn")(hidden))
    rng = np.random.default_rng(0)
    batches = [rng.normal(5.0, 2.0, (4, 3)).astype(np.float32) for _ in range(4)]
    outs = [model.get_layer("dense")(b).numpy() for b in batches]
    labels = np.zeros(4, np.float32)
    assert fit.recalibrate_batch_norm(model, [(b, labels) for b in batches], max_batches=3) == 3
    bn = model.get_layer("bn")
    assert np.allclose(bn.moving_mean.numpy(), np.mean([o.mean(0) for o in outs[:3]], axis=0), atol=1e-5)
    assert np.allclose(bn.moving_variance.numpy(), np.mean([o.var(0) for o in outs[:3]], axis=0), rtol=1e-4)
    assert bn.momentum == 0.99  # restored
    weights = model.get_layer("dense").get_weights()
    assert fit.recalibrate_batch_norm(model, batches) == 4
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_layer("dense").get_weights()))


def bn_net(image_size, weights=None):
    """A small conv net with batch normalisation, whose inference depends on its moving statistics."""
    inputs = tf.keras.Input((image_size, image_size, 3))
    x = tf.keras.layers.Conv2D(4, 3)(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=0.5)(x)
    x = tf.keras.layers.ReLU()(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake")(x))


def test_the_saved_model_is_the_one_validated(store, tmp_path):
    """The batch-norm statistics are recomputed before each epoch is validated, so the weights saved (the best
    epoch's) give exactly the validation loss that chose them. (Recomputing them after the choice, as before,
    saved a model that was never validated.)"""
    faces = store.faces()
    train_videos, val_videos = splits.split_validation(faces, 0.3, seed=0)
    train = faces[faces["store_key"].isin(set(train_videos["store_key"]))].reset_index(drop=True)
    val = faces[faces["store_key"].isin(set(val_videos["store_key"]))].reset_index(drop=True)
    record = bagging.train_bag(train, store.root, tmp_path / "bag", val, epochs=3, image_size=SIZE, batch_size=4,
                               weights=None, seed=1, patience=None, augment=False, build_model=bn_net, verbose=0)
    assert record["best_epoch"] >= 1 and record["batch_norm_batches"] >= 1
    model = xc.compile_classifier(fit.load_weights(bn_net(SIZE), tmp_path / "bag" / record["weights"]))
    data = face_dataset(val, store.root, SIZE, 4, weights=splits.balanced_weights(val["label"]))
    loss = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(record["best_val_loss"], abs=1e-5)
    assert loss == pytest.approx(record["history"]["val_loss"][record["best_epoch"] - 1], abs=1e-5)
