"""Sequences of stored faces per video (exactly N consecutive frames, in order, never mixing videos;
padding and dropping of short videos), the recurrent model (the paper's LSTM/GRU of 32 units), and the
feature cache. Tiny inputs with answers worked out by hand."""
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from deepfake_keras.data import inputs, sequences
from deepfake_keras.models import sequence
from deepfake_keras.training import features as feature_cache

from ..tiny_store import make_store


def face_table(frames_per_video: dict, shuffle_seed=0) -> pd.DataFrame:
    """Rows of a faces.csv: ``{store_key: [frame numbers]}``, rows shuffled (a store's order is not trusted)."""
    rows = [{"store_key": key, "frame": f, "label": int("fake" in key), "split": "train",
             "crop": f"{key}/{f:06d}.png"} for key, frames in frames_per_video.items() for f in frames]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)


def test_exactly_n_consecutive_frames_in_order_from_the_middle_never_mixing_videos():
    faces = face_table({"a/fake": list(range(100, 110)), "b/real": list(range(5, 13)), "c/fake": [0, 1, 2, 3, 4]})
    index = sequences.sequence_index(faces, 4)
    assert index.rows.shape == (3, 4) and index.mask.all()
    assert index.videos["store_key"].tolist() == ["a/fake", "b/real", "c/fake"]
    for i, key in enumerate(index.videos["store_key"]):
        picked = faces.iloc[index.rows[i]]
        assert (picked["store_key"] == key).all()  # one video per sequence
        frames = picked["frame"].tolist()
        assert frames == list(range(frames[0], frames[0] + 4))  # consecutive, in order
    # the middle of what is stored: 10 frames -> 103..106, 8 -> 7..10, 5 -> 0..3 (first of the two middles)
    assert [faces["frame"].iloc[r[0]] for r in index.rows] == [103, 7, 0]
    assert index.videos[["first_frame", "last_frame", "n_stored", "n_real", "n_padded"]].values.tolist() == [
        [103, 106, 10, 4, 0], [7, 10, 8, 4, 0], [0, 3, 5, 4, 0]]
    assert index.labels.tolist() == [1.0, 0.0, 1.0]


def test_short_videos_are_padded_with_their_last_frame_and_masked():
    faces = face_table({"a/fake": [10, 11, 12], "b/real": [0, 1, 2, 3, 4, 5]})
    index = sequences.sequence_index(faces, 5, short="pad")
    a = faces.iloc[index.rows[0]]
    assert a["frame"].tolist() == [10, 11, 12, 12, 12] and (a["store_key"] == "a/fake").all()
    assert index.mask.tolist() == [[True, True, True, False, False], [True] * 5]
    assert index.videos["n_padded"].tolist() == [2, 0] and len(index.dropped) == 0
    d = sequences.describe(index)
    assert (d["padded_videos"], d["padded_frames"], d["dropped_videos"]) == (1, 2, 0)


def test_short_videos_are_dropped_and_listed():
    faces = face_table({"a/fake": [10, 11, 12], "b/real": [0, 1, 2, 3, 4, 5]})
    index = sequences.sequence_index(faces, 5, short="drop")
    assert index.videos["store_key"].tolist() == ["b/real"] and index.mask.all()
    assert index.dropped.to_dict("records") == [
        {"store_key": "a/fake", "n_stored": 3, "reason": "3 stored frame(s) < 5 (short='drop')"}]
    assert sequences.describe(index)["dropped"] == ["a/fake"]


def test_missing_faces_are_counted_as_gaps():
    # sampled every 5 frames; frame 15 had no face
    index = sequences.sequence_index(face_table({"a/fake": [0, 5, 10, 20, 25]}), 5)
    assert index.videos[["max_step", "gaps"]].values.tolist() == [[10, 1]]
    assert sequences.describe(index)["videos_with_gaps"] == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"seq_len": 0}, "seq_len"), ({"seq_len": 3, "short": "repeat"}, "short must be one of"),
])
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sequences.sequence_index(face_table({"a/fake": [0, 1, 2]}), **kwargs)


def test_bad_tables_raise():
    with pytest.raises(ValueError, match="more than once"):
        sequences.sequence_index(face_table({"a/fake": [0, 1, 1]}), 2)
    with pytest.raises(ValueError, match="no 'frame' column"):
        sequences.sequence_index(pd.DataFrame({"store_key": ["a"]}), 2)
    faces = face_table({"a/fake": [0, 1]})
    faces.loc[0, "label"] = 0
    with pytest.raises(ValueError, match="'label' varies"):
        sequences.sequence_index(faces, 2)


def test_feature_sequences_follow_the_index():
    faces = face_table({"a/fake": [0, 1, 2], "b/real": [7, 8, 9, 10]})
    features = np.stack([faces["frame"].to_numpy(), faces["store_key"].eq("b/real").to_numpy()], axis=1)
    data = sequences.feature_sequences(sequences.sequence_index(faces, 4), features)
    assert data["features"].shape == (2, 4, 2) and data["features"].dtype == np.float32
    assert data["features"][0, :, 0].tolist() == [0, 1, 2, 2] and data["features"][1, :, 0].tolist() == [7, 8, 9, 10]
    assert data["features"][0, :, 1].tolist() == [0] * 4 and data["features"][1, :, 1].tolist() == [1] * 4
    assert data["mask"].tolist() == [[True, True, True, False], [True] * 4]
    with pytest.raises(ValueError, match="features has 2 rows"):
        sequences.feature_sequences(sequences.sequence_index(faces, 4), features[:2])


def test_image_sequences_from_the_store_are_whole_videos_in_frame_order(tmp_path):
    # each crop is one flat colour that encodes (video, frame), so the decoded clips can be read back
    def crops(video, n):
        return [np.full((16, 16, 3), 40 * video + 3 * f, np.uint8) for f in range(n)]

    store = make_store(tmp_path / "store", {"ffpp/x/fake_0": (1, "train", crops(1, 6)),
                                            "ffpp/x/real_0": (0, "train", crops(2, 3)),
                                            "ffpp/x/real_1": (0, "train", crops(3, 5))}, crop_size=16)
    faces = pd.read_csv(store.root / "faces.csv").sample(frac=1.0, random_state=1).reset_index(drop=True)
    index = sequences.sequence_index(faces, 4, short="pad")
    ds = inputs.image_sequence_dataset(index, faces, store.root, image_size=8, batch_size=2, shuffle=True, seed=3)
    seen = {}
    for clips, labels in ds:
        assert clips.shape[1:] == (4, 8, 8, 3)
        for clip, label in zip(clips.numpy(), labels.numpy()):
            values = np.round((clip + 1.0) * 127.5).reshape(4, -1)
            assert np.all(values == values[:, :1])  # flat frames
            video, frames = divmod(values[:, 0].astype(int), 40)
            assert len(set(video)) == 1  # never two videos in one clip
            seen[int(video[0])] = (frames // 3).tolist(), float(label)
    # fake_0: 6 stored -> middle 4 = frames 1..4; real_0: 3 stored -> 0, 1, 2 and the last repeated; real_1: 0..3
    assert seen == {1: ([1, 2, 3, 4], 1.0), 2: ([0, 1, 2, 2], 0.0), 3: ([0, 1, 2, 3], 0.0)}
    unshuffled = [c.numpy() for c in inputs.image_sequence_dataset(index, faces, store.root, 8, 4, labels=False)]
    assert len(unshuffled) == 1 and unshuffled[0].shape == (3, 4, 8, 8, 3)
    with pytest.raises(ValueError, match="do not exist"):
        bad = faces.assign(crop=faces["crop"] + ".missing")
        inputs.image_sequence_dataset(index, bad, store.root, 8)


# --------------------------------------------------------------------------- the recurrent model

@pytest.mark.parametrize("kind, layer, params", [
    ("lstm", tf.keras.layers.LSTM, 4 * (512 * 32 + 32 * 32 + 32)),  # 4 gates: input, recurrent kernels, bias
    ("gru", tf.keras.layers.GRU, 3 * (512 * 32 + 32 * 32 + 2 * 32)),  # 3 gates, Keras' reset_after: two biases
])
def test_recurrent_model_is_one_layer_of_32_units_and_a_prediction_layer(kind, layer, params):
    model = sequence.build_recurrent(kind, seq_len=25)
    recurrent = model.get_layer(kind)
    assert isinstance(recurrent, layer) and recurrent.units == 32 and not recurrent.return_sequences
    assert recurrent.count_params() == params
    out = model.get_layer("p_fake")
    assert out.units == 1 and out.activation is tf.keras.activations.sigmoid
    assert [type(l).__name__ for l in model.layers] == ["InputLayer", "InputLayer", layer.__name__, "Dense"]
    assert model.output_shape == (None, 1)
    assert model.input_shape == {"features": (None, 25, 512), "mask": (None, 25)} or \
        sorted(map(tuple, model.input_shape)) == [(None, 25), (None, 25, 512)]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_padded_steps_are_skipped(kind):
    tf.keras.utils.set_random_seed(0)
    long = sequence.build_recurrent(kind, seq_len=5, feature_dim=3, units=4)
    short = sequence.build_recurrent(kind, seq_len=3, feature_dim=3, units=4)
    short.set_weights(long.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    p = long({"features": x, "mask": mask}).numpy()
    x2 = x.copy()
    x2[0, 3:] = 100.0  # whatever sits in the padding changes nothing
    assert np.allclose(long({"features": x2, "mask": mask}).numpy(), p)
    p_short = short({"features": x[:1, :3], "mask": mask[:1, :3]}).numpy()
    assert np.allclose(p[0], p_short[0], atol=1e-6)  # = the sequence of the real frames alone
    assert not np.allclose(long({"features": x, "mask": np.ones_like(mask)}).numpy()[0], p[0])


def test_one_training_step_changes_every_weight():
    from deepfake_keras.models.xception import compile_classifier

    tf.keras.utils.set_random_seed(0)
    model = compile_classifier(sequence.build_recurrent("gru", seq_len=4, feature_dim=6, units=5))
    before = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(1)
    x = {"features": rng.normal(size=(8, 4, 6)).astype(np.float32), "mask": np.ones((8, 4), bool)}
    model.train_on_batch(x, np.array([0, 1] * 4, np.float32))
    for b, a in zip(before, model.get_weights()):
        assert not np.allclose(a, b)


@pytest.mark.parametrize("kwargs, message", [({"kind": "rnn"}, "kind must be"), ({"units": 0}, "units"),
                                             ({"seq_len": 0}, "seq_len"), ({"dropout": 1.0}, "dropout")])
def test_recurrent_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sequence.build_recurrent(**kwargs)


# --------------------------------------------------------------------------- the feature cache

def tiny_classifier(image_size, weights=None):
    """A stand-in for the Xception: input -> GAP -> fc1 (4-d) -> P(fake); same layer names."""
    inputs = tf.keras.Input((image_size, image_size, 3))
    x = tf.keras.layers.GlobalAveragePooling2D()(inputs)
    x = tf.keras.layers.Dense(4, activation="relu", name="fc1")(x)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake")(x))


def test_features_are_cached_by_weights(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    store = make_store(tmp_path / "store", {f"ffpp/x/v{i}": (i % 2, "train", [
        rng.integers(0, 255, (16, 16, 3)).astype(np.uint8) for _ in range(3)]) for i in range(2)}, crop_size=16)
    faces = pd.read_csv(store.root / "faces.csv")
    tf.keras.utils.set_random_seed(0)
    model = tiny_classifier(8)
    model.save_weights(str(tmp_path / "a.weights.h5"))
    features, p = feature_cache.cached_features(faces, store.root, tmp_path / "a.weights.h5", tmp_path / "run", 8,
                                     build_model=tiny_classifier, progress=False)
    assert features.shape == (6, 4) and p.shape == (6,)
    images = np.stack([np.asarray(tf.image.resize(store.load_crop(c).astype(np.float32), (8, 8), antialias=True))
                       for c in faces["crop"]]) / 127.5 - 1
    assert np.allclose(p, model.predict(images, verbose=0).ravel(), atol=1e-5)
    cached = sorted((tmp_path / "run" / "features").glob("*.npz"))
    assert [c.name for c in cached] == [f"{feature_cache.feature_key(tmp_path / 'a.weights.h5', 8)}.npz"]
    assert cached[0].name.startswith("xception-fc1-s8-")

    def no_model(**kwargs):
        raise AssertionError("the cache should have answered")

    again, p2 = feature_cache.cached_features(faces.iloc[::-1], store.root, tmp_path / "a.weights.h5", tmp_path / "run", 8,
                                   build_model=no_model, progress=False)
    assert np.array_equal(again, features[::-1]) and np.array_equal(p2, p[::-1])
    tiny_classifier(8).save_weights(str(tmp_path / "b.weights.h5"))  # other weights: another file
    feature_cache.cached_features(faces, store.root, tmp_path / "b.weights.h5", tmp_path / "run", 8,
                       build_model=tiny_classifier, progress=False)
    assert len(list((tmp_path / "run" / "features").glob("*.npz"))) == 2
