"""Bagging against imbalance (paper IV.B.1), resumable training, and the vote of the bags.

In Celeb-DF, fakes outnumber reals about 7:1. The paper divides the fake
training videos into seven parts and trains one Xception per part, each on its
part plus every real training video (~1400 videos, ~19K frames per bag: about
balanced), then takes the majority ("maximum") vote of the seven models for the
accuracy and their mean probability for the AUC.

Everything is split **by video, never by frame**: a video's frames all go to
the same bag (and to the same side of the validation split).

Layout of ``out_dir`` (:func:`train_bagging`)::

    out_dir/
      bagging.json          the plan: settings, validation videos, each bag's videos
      bag_0/                one per bag
        settings.json       the bag's settings, written when it starts
        checkpoints/        the last epoch's tf.train.Checkpoint: weights, optimizer
                            state (step, momentum cache, m, v), epoch number,
                            early-stopping state and history; removed once done
        best-NNN.weights.h5 the best epoch's weights so far (with validation)
        model.weights.h5    the final weights (best epoch if validated, else last)
        bag.json            written LAST (atomically): the bag is done

A re-run skips every bag whose ``bag.json`` exists, and resumes an interrupted
bag from its last completed epoch: weights, optimizer state, epoch counter,
early-stopping counters and history all come back from the checkpoint, so
training continues at the next epoch. (The shuffle order of the resumed epochs
restarts from the seed, so a resumed run is equivalent to, not bit-identical
with, an uninterrupted one.)

Validation (ours; Celeb-DF has no validation split): a fraction of the training
videos, stratified by label and drawn by video with the seed, is held out from
every bag (:func:`split_validation`; the Celeb-DF experiment holds out each real
clip together with the fakes made from it, so that no validation video shows a
scene seen in training); if the face table already has ``val`` rows (FF++),
those are used. Each epoch is scored on it with class-balanced
sample weights (each class weighs half, as in the roughly balanced bags), early
stopping watches that loss (``patience`` epochs), and the bag keeps the weights
of its best epoch.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .data.store import write_atomic

# --------------------------------------------------------------------------- hyperparameters

N_BAGS = 7  # the paper
EPOCHS = 30  # the paper: 30-50
PATIENCE = 5  # ours: early stopping on the validation loss (None disables)
VAL_FRACTION = 0.1  # ours: training videos held out for validation, per class
THRESHOLD = 0.5  # a probability >= THRESHOLD is called fake
BN_BATCHES = 100  # at most this many training batches to recompute batch-norm statistics after training
PLAN_FILE = "bagging.json"
DONE_FILE = "bag.json"
SETTINGS_FILE = "settings.json"
WEIGHTS_FILE = "model.weights.h5"
CHECKPOINT_DIR = "checkpoints"


def _log(message: str) -> None:
    from .runs import log

    log(message)


def _dump(data) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _weights_setting(weights) -> str:
    """How a ``weights`` argument is recorded: ``imagenet`` / ``none`` / None as given, a path by its file name."""
    return str(weights) if weights is None or str(weights).lower() in ("imagenet", "none") else Path(weights).name


# --------------------------------------------------------------------------- splitting by video

def _write_or_check(path: Path, data: dict, conflict: str, advice: str) -> None:
    """Write ``data`` as JSON at ``path``, or, if the file exists, check that it holds the same;
    a difference raises ValueError (``conflict`` (differs in: keys); ``advice``)."""
    want = json.loads(_dump(data))
    if not path.is_file():
        write_atomic(path, _dump(data))
        return
    have = json.loads(path.read_text())
    if have != want:
        diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
        raise ValueError(f"{conflict} (differs in: {', '.join(diff)}); {advice}")


def video_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per video (``store_key``) of a frame or video table: ``store_key``, ``label``,
    ``split`` and ``n_frames`` (rows of that video), sorted by ``store_key``. A table that is already
    one row per video (unique ``store_key`` and an ``n_frames`` column) keeps its ``n_frames``.

    Raises ValueError when a column is missing or a video's label or split varies
    across its frames.
    """
    for col in ("store_key", "label", "split"):
        if col not in table.columns:
            raise ValueError(f"the table has no {col!r} column (columns: {list(table.columns)})")
    if len(table) == 0:
        raise ValueError("the table is empty")
    if "n_frames" in table.columns and table["store_key"].is_unique:
        videos = table[["store_key", "label", "split", "n_frames"]].sort_values("store_key").reset_index(drop=True)
    else:
        groups = table.groupby("store_key", sort=True)
        for col in ("label", "split"):
            varying = groups[col].nunique(dropna=False)
            varying = varying[varying > 1]
            if len(varying):
                raise ValueError(f"{col!r} varies within {len(varying)} videos (e.g. {varying.index[0]!r})")
        videos = groups[["label", "split"]].first()
        videos["n_frames"] = groups.size()
        videos = videos.reset_index()
    videos["label"] = pd.to_numeric(videos["label"], errors="coerce")
    bad = videos[~videos["label"].isin((0, 1))]
    if len(bad):
        raise ValueError(f"labels must be 0 (real) or 1 (fake); {len(bad)} videos have others "
                         f"(e.g. {bad['store_key'].iloc[0]!r}: {bad['label'].iloc[0]!r})")
    videos["label"] = videos["label"].astype(int)
    return videos


def split_validation(videos: pd.DataFrame, fraction: float = VAL_FRACTION, seed: int = 0,
                     split: str = "train", groups=None) -> tuple:
    """``(train, val)``: the ``split`` videos of ``videos`` divided by video, stratified by label.

    Of each class, ``round(fraction * n)`` videos (at least 1, at most ``n - 1``)
    are drawn with ``seed`` for validation; their ``split`` becomes ``"val"``.
    ``fraction=0`` gives an empty validation table. ``videos`` may be a frame table
    (it is reduced with :func:`video_table` first). Raises ValueError when a class
    has fewer than 2 videos (none could be held out and kept).

    ``groups`` (``{store_key: group}``, e.g. the source clip of each Celeb-DF video,
    :func:`deepfake_keras.data.datasets.celebdf_clip`): videos of one group go to the
    same side, so that a fake and the real clip it was made from never straddle
    train and validation. Groups are drawn in a seeded order: first groups holding
    real videos until the real quota is met (skipping those whose fakes would
    overshoot the fake quota while another can still be taken), then groups of
    fakes only until the fake quota is met; a quota can be overshot by the rest of
    the last group taken. Raises ValueError when a class would be left with no
    training or no validation video.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    videos = video_table(videos)
    pool = videos[videos["split"] == split]
    if fraction == 0:
        return pool.reset_index(drop=True), pool.iloc[:0].reset_index(drop=True)
    rng = np.random.default_rng(int(seed))
    quota = {}
    for label in (0, 1):
        n = int((pool["label"] == label).sum())
        if n < 2:
            raise ValueError(f"a stratified validation split needs >= 2 {('real', 'fake')[label]} {split} videos, "
                             f"got {n}; pass a validation fraction of 0 to train without one")
        quota[label] = min(n - 1, max(1, int(round(fraction * n))))
    if groups is None:
        val_keys = []
        for label in (0, 1):
            keys = np.sort(pool.loc[pool["label"] == label, "store_key"].to_numpy())
            val_keys.extend(rng.choice(keys, size=quota[label], replace=False).tolist())
    else:
        val_keys = _grouped_validation(pool, groups, quota, rng)
    is_val = pool["store_key"].isin(val_keys)
    for label in (0, 1):
        cls = pool["label"] == label
        if not (is_val & cls).any() or not (~is_val & cls).any():
            raise ValueError(f"the grouped validation split leaves no {('real', 'fake')[label]} video on one side "
                             f"(groups too large for {len(pool)} {split} videos)")
    val = pool[is_val].assign(split="val").reset_index(drop=True)
    return pool[~is_val].reset_index(drop=True), val


def _grouped_validation(pool: pd.DataFrame, groups, quota: dict, rng) -> list:
    """The store keys of whole groups held out to meet ``quota`` (see :func:`split_validation`)."""
    group_of = pool["store_key"].map(lambda k: groups.get(k, k))
    counts = pd.crosstab(group_of, pool["label"]).reindex(columns=[0, 1], fill_value=0)
    order = counts.index.to_numpy()[rng.permutation(len(counts))]
    taken, have = [], {0: 0, 1: 0}
    with_real = [g for g in order if counts.at[g, 0] > 0]
    for i, g in enumerate(with_real):  # reals first: each brings its fakes along
        if have[0] >= quota[0]:
            break
        others_left = len(with_real) - i - 1
        if have[1] + counts.at[g, 1] > quota[1] and others_left and counts.at[g, 1] > 0:
            continue
        taken.append(g)
        have[0] += counts.at[g, 0]
        have[1] += counts.at[g, 1]
    for g in order:  # then fakes-only groups
        if have[1] >= quota[1]:
            break
        if counts.at[g, 0] == 0:
            taken.append(g)
            have[1] += counts.at[g, 1]
    return pool.loc[group_of.isin(taken).to_numpy(), "store_key"].tolist()


def make_bags(videos: pd.DataFrame, n_bags: int = N_BAGS, seed: int = 0, split: str = "train") -> list:
    """The paper's bags: the fake ``split`` videos in ``n_bags`` disjoint near-equal parts (sizes
    differ by at most one, drawn with ``seed``), each with every real ``split`` video.

    ``videos`` is a video table or a frame table (reduced with :func:`video_table`,
    so frames never split). Returns ``n_bags`` video tables (``store_key``,
    ``label``, ``split``, ``n_frames``, ``bag``), sorted by ``store_key``.
    Raises ValueError when there are fewer fake videos than bags or no real one.
    """
    n_bags = int(n_bags)
    if n_bags < 1:
        raise ValueError(f"n_bags must be >= 1, got {n_bags}")
    videos = video_table(videos)
    pool = videos[videos["split"] == split]
    fakes = np.sort(pool.loc[pool["label"] == 1, "store_key"].to_numpy())
    reals = pool[pool["label"] == 0]
    if len(fakes) < n_bags:
        raise ValueError(f"{n_bags} bags need at least {n_bags} fake {split} videos, got {len(fakes)}")
    if len(reals) == 0:
        raise ValueError(f"no real {split} videos: every bag needs the real videos")
    parts = np.array_split(np.random.default_rng(int(seed)).permutation(fakes), n_bags)
    bags = []
    for i, part in enumerate(parts):
        bag = pd.concat([pool[pool["store_key"].isin(part)], reals])
        bags.append(bag.sort_values("store_key").assign(bag=i).reset_index(drop=True))
    return bags


def balanced_weights(labels) -> np.ndarray:
    """Per-row weights under which each class present weighs the same in total (mean weight 1)."""
    y = np.asarray(labels).astype(int)
    out = np.ones(len(y), np.float32)
    classes = np.unique(y)
    for c in classes:
        out[y == c] = len(y) / (len(classes) * np.sum(y == c))
    return out


# --------------------------------------------------------------------------- resumable training

class EpochCheckpoint:
    """Keras callback factory: per-epoch checkpoints with early stopping state, resumable.

    Use :meth:`restore` after compiling the model (returns the number of epochs
    already done, the ``initial_epoch`` for ``fit``) and pass :attr:`callback` to
    ``fit`` *before* any callback that might interrupt training. At the end of
    every epoch it updates the early-stopping state from ``logs[monitor]`` (when
    present), writes the best weights to ``best-NNN.weights.h5`` when the epoch
    improves, then saves one ``tf.train.Checkpoint`` (model, optimizer, epochs
    done, best value and epoch, wait, stopped, history) numbered by the epoch.
    """

    def __init__(self, directory, model, monitor: str = "val_loss", patience=PATIENCE, min_delta: float = 0.0):
        import tensorflow as tf

        self.directory = Path(directory)
        self.model = model
        self.monitor, self.min_delta = monitor, float(min_delta)
        self.patience = None if patience is None else int(patience)
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.stopped = tf.Variable(False, trainable=False)
        self.history_json = tf.Variable("{}", dtype=tf.string, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epochs_done=self.epochs_done,
                                              best=self.best, best_epoch=self.best_epoch, wait=self.wait,
                                              stopped=self.stopped, history=self.history_json)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory / CHECKPOINT_DIR),
                                                  max_to_keep=1, checkpoint_name="epoch")
        owner = self

        class _Callback(tf.keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                owner._epoch_end(epoch, logs or {})

        self.callback = _Callback()

    def best_file(self, epoch: int) -> Path:
        return self.directory / f"best-{int(epoch):03d}.weights.h5"

    @property
    def history(self) -> dict:
        return json.loads(self.history_json.numpy().decode())

    def restore(self) -> int:
        """Restore the latest checkpoint if there is one; returns the epochs already done (0 if none)."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epochs_done.numpy())

    def restore_best(self, model, validated: bool) -> int:
        """The epoch whose weights to keep (1-based): with validation (``validated``) the best one,
        whose weights are loaded into ``model`` (0 if no epoch was validated: the weights stay); else the last."""
        best = int(self.best_epoch.numpy()) if validated else int(self.epochs_done.numpy())
        if validated and best:
            model.load_weights(str(self.best_file(best)))
        return best

    def cleanup(self) -> None:
        """Remove the checkpoints and best-epoch weights (once the final weights and record are written)."""
        shutil.rmtree(self.directory / CHECKPOINT_DIR, ignore_errors=True)
        for stale in self.directory.glob("best-*.weights.h5"):
            stale.unlink()

    def _epoch_end(self, epoch: int, logs: dict) -> None:
        history = self.history
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        done = epoch + 1
        if self.monitor in logs:
            current = float(logs[self.monitor])
            if current < float(self.best.numpy()) - self.min_delta:
                self.best.assign(current)
                self.best_epoch.assign(done)
                self.wait.assign(0)
                _save_weights(self.model, self.best_file(done))
            else:
                self.wait.assign_add(1)
                if self.patience is not None and int(self.wait.numpy()) >= self.patience:
                    self.stopped.assign(True)
                    self.model.stop_training = True
        self.epochs_done.assign(done)
        self.history_json.assign(json.dumps(history))
        self.manager.save(checkpoint_number=done)
        for stale in self.directory.glob("best-*.weights.h5"):  # only the checkpoint's best is kept
            if stale != self.best_file(int(self.best_epoch.numpy())):
                stale.unlink()


def recalibrate_batch_norm(model, dataset, max_batches: int | None = None) -> int:
    """Recompute the moving mean and variance of every ``BatchNormalization`` layer of ``model`` as the
    average of their batch statistics over ``dataset`` (batches of inputs, or ``(inputs, ...)``
    tuples); returns the number of batches used. Nothing else changes.

    Why ("precise BN", Wu and Johnson 2021): Keras keeps these statistics as
    moving averages with momentum 0.99, so after a short training (the DEMO's
    2 epochs of 18 steps: 0.99 ** 36 = 70 % of the initial 0 / 1 remains) an
    Xception in inference mode sees statistics that are nothing like its
    activations. Measured on the DEMO data, an Xception trained from scratch
    for 2 epochs then gave the same ``fc1`` features and P(fake) for all 2255
    faces (standard deviation 4e-7); recomputed on its 288 training frames,
    the features vary (0.02) as they do in training mode. After the paper's
    30 epochs the moving averages have converged and this changes little.

    Each layer's momentum is set to ``n / (n + 1)`` before the ``n``-th batch
    (0-based) so that the moving value becomes the running mean of the batch
    values, and restored afterwards.
    """
    import tensorflow as tf

    layers = [m for m in model.submodules if isinstance(m, tf.keras.layers.BatchNormalization)]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    n = 0
    try:
        for batch in dataset:
            x = batch[0] if isinstance(batch, tuple) else batch
            for layer in layers:
                layer.momentum = n / (n + 1.0)
            model(x, training=True)
            n += 1
            if max_batches and n >= int(max_batches):
                break
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return n


def _save_weights(model, path: Path) -> None:
    """``model.save_weights`` to a temporary name, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    model.save_weights(str(tmp))
    tmp.replace(path)


def _versions() -> dict:
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "numpy": np.__version__, "pandas": pd.__version__}


def bag_done(bag_dir) -> dict | None:
    """The ``bag.json`` record of a finished bag, or None."""
    path = Path(bag_dir) / DONE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def train_bag(train_faces: pd.DataFrame, store_root, bag_dir, val_faces: pd.DataFrame | None = None, *,
              epochs: int = EPOCHS, image_size: int | None = None, batch_size: int | None = None,
              weights="imagenet", seed: int = 0, patience=PATIENCE, learning_rate: float | None = None,
              schedule_decay: float | None = None, augment: bool = False, cache=False,
              steps_per_epoch: int | None = None, build_model=None, callbacks=(), verbose: int = 1,
              extra: dict | None = None) -> dict:
    """Train one model on ``train_faces`` (rows of faces.csv); skip if done, resume if interrupted.

    Args:
        train_faces: the bag's face rows (``crop``, ``label`` 0/1, ``store_key``).
        store_root: the face store folder.
        bag_dir: where this bag's files go (see the module docstring).
        val_faces: validation face rows (class-balanced loss, early stopping,
            best weights kept), or None to train ``epochs`` epochs and keep the last.
        epochs, patience: at most ``epochs`` epochs; stop after ``patience``
            epochs without a lower validation loss (None: never stop early).
        image_size, batch_size, learning_rate, schedule_decay: default to
            :mod:`deepfake_keras.models.xception`'s (299, 32, 0.002, 0.004).
        weights: ``"imagenet"``, ``"none"`` or a path (:func:`~deepfake_keras.models.xception.build_xception`).
        seed: seeds TensorFlow, NumPy and Python (``tf.keras.utils.set_random_seed``:
            the initial weights and the shuffles).
        augment, cache: see :func:`~deepfake_keras.models.xception.face_dataset`.
        steps_per_epoch: batches per epoch (default: one pass over ``train_faces``).
        build_model: ``build_model(image_size=..., weights=...) -> uncompiled model``
            with one sigmoid output; default :func:`~deepfake_keras.models.xception.build_xception`.
        callbacks: more Keras callbacks; they run after the checkpoint of each
            epoch is saved.
        verbose: Keras' progress output (0 silent, 1 bar, 2 a line per epoch).
        extra: more fields to record in ``settings.json`` and ``bag.json``.

    Returns the ``bag.json`` record: ``settings``, ``history`` (per epoch, over
    all resumed runs), ``epochs_run``, ``best_epoch`` (1-based, the weights kept),
    ``stopped_early``, ``resumed_at`` (the epochs done when each run started),
    ``weights`` (file name), ``counts``, ``seconds``, ``versions``.

    Raises ValueError when ``bag_dir`` holds an interrupted run made with other
    settings (delete the folder, or use the same settings).
    """
    import tensorflow as tf

    from .models import xception as xc

    bag_dir = Path(bag_dir)
    done = bag_done(bag_dir)
    if done is not None:  # finished; drop what a run killed just after bag.json may have left
        shutil.rmtree(bag_dir / CHECKPOINT_DIR, ignore_errors=True)
        return done
    image_size = int(image_size or xc.IMAGE_SIZE)
    batch_size = int(batch_size or xc.BATCH_SIZE)
    learning_rate = float(xc.LEARNING_RATE if learning_rate is None else learning_rate)
    schedule_decay = float(xc.SCHEDULE_DECAY if schedule_decay is None else schedule_decay)
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    for name, rows in (("train_faces", train_faces), ("val_faces", val_faces)):
        if rows is not None and set(pd.to_numeric(rows["label"], errors="coerce").unique()) - {0, 1}:
            raise ValueError(f"{name}: labels must be 0 (real) or 1 (fake)")
    if val_faces is not None and len(val_faces) == 0:
        val_faces = None
    build = build_model or xc.build_xception
    counts = {"train_frames": int(len(train_faces)), "train_videos": int(train_faces["store_key"].nunique()),
              "train_fake_videos": int(train_faces.loc[train_faces["label"] == 1, "store_key"].nunique()),
              "train_real_videos": int(train_faces.loc[train_faces["label"] == 0, "store_key"].nunique()),
              "val_frames": 0 if val_faces is None else int(len(val_faces)),
              "val_videos": 0 if val_faces is None else int(val_faces["store_key"].nunique())}
    settings = {"epochs": int(epochs), "image_size": image_size, "batch_size": batch_size,
                "weights": _weights_setting(weights), "seed": int(seed), "patience": None if patience is None else int(patience),
                "learning_rate": learning_rate, "schedule_decay": schedule_decay, "optimizer": "legacy.Nadam",
                "augment": bool(augment), "steps_per_epoch": steps_per_epoch and int(steps_per_epoch),
                "model": getattr(build, "__qualname__", repr(build)), "counts": counts, **(extra or {})}
    _write_or_check(bag_dir / SETTINGS_FILE, settings, f"{bag_dir} holds an interrupted run with other settings",
                    "use the same settings to resume it, or delete the folder")

    started = time.time()
    tf.keras.utils.set_random_seed(int(seed))
    model = build(image_size=image_size, weights=weights)
    xc.compile_classifier(model, learning_rate, schedule_decay)
    state = EpochCheckpoint(bag_dir, model, monitor="val_loss", patience=patience)
    initial_epoch = state.restore()
    resumed = _resume_log(bag_dir, initial_epoch)
    if initial_epoch:
        _log(f"{bag_dir.name}: resuming after epoch {initial_epoch} of {epochs}")

    train_ds = xc.face_dataset(train_faces, store_root, image_size, batch_size, shuffle=True, seed=int(seed),
                               augment=augment, cache=cache)
    val_ds = None
    if val_faces is not None:
        val_ds = xc.face_dataset(val_faces, store_root, image_size, batch_size, shuffle=False,
                                 weights=balanced_weights(val_faces["label"]))
    if initial_epoch < int(epochs) and not bool(state.stopped.numpy()):
        if steps_per_epoch:
            train_ds = train_ds.repeat()
        model.fit(train_ds, validation_data=val_ds, epochs=int(epochs), initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch and int(steps_per_epoch),
                  callbacks=[state.callback, *callbacks], verbose=verbose)

    history = state.history
    best_epoch = state.restore_best(model, val_ds is not None)
    bn_batches = recalibrate_batch_norm(model, xc.face_dataset(train_faces, store_root, image_size, batch_size,
                                                               shuffle=True, seed=int(seed), labels=False),
                                        BN_BATCHES)
    _save_weights(model, bag_dir / WEIGHTS_FILE)
    record = {"settings": settings, "history": history, "epochs_run": int(state.epochs_done.numpy()),
              "best_epoch": best_epoch, "stopped_early": bool(state.stopped.numpy()),
              "best_val_loss": (float(state.best.numpy()) if val_ds is not None and best_epoch else None),
              "resumed_at": resumed, "weights": WEIGHTS_FILE, "batch_norm_batches": bn_batches, "counts": counts,
              "seconds_last_run": round(time.time() - started, 1), "versions": _versions()}
    write_atomic(bag_dir / DONE_FILE, _dump(record))
    state.cleanup()
    (bag_dir / "runs.json").unlink(missing_ok=True)
    return record


def _resume_log(bag_dir: Path, initial_epoch: int) -> list:
    """The epochs done at the start of every run of this bag (kept in ``runs.json`` until done)."""
    path = bag_dir / "runs.json"
    runs = json.loads(path.read_text()) if path.is_file() else []
    runs.append(int(initial_epoch))
    write_atomic(path, _dump(runs))
    return runs


def _faces_of(faces: pd.DataFrame, videos: pd.DataFrame) -> pd.DataFrame:
    return faces[faces["store_key"].isin(set(videos["store_key"]))].reset_index(drop=True)


def train_bagging(faces_table: pd.DataFrame, store_root, out_dir, n_bags: int = N_BAGS, epochs: int = EPOCHS,
                  image_size: int | None = None, batch_size: int | None = None, weights="imagenet", seed: int = 0,
                  patience=PATIENCE, val_fraction: float = VAL_FRACTION, learning_rate: float | None = None,
                  schedule_decay: float | None = None, augment: bool = False, cache=False,
                  steps_per_epoch: int | None = None, build_model=None, callbacks=(), verbose: int = 1,
                  progress: bool = True) -> list:
    """Train the paper's ``n_bags`` models (see the module docstring); returns their ``bag.json`` records.

    ``faces_table`` is the face store's ``faces.csv`` (every split; only ``train``
    rows are trained on, ``val`` rows validate if present, else ``val_fraction`` of
    the training videos are held out, see :func:`split_validation`). The plan
    (validation videos, each bag's videos, settings) is written to
    ``out_dir/bagging.json`` first; a re-run with the same data and settings skips
    done bags and resumes an interrupted one; with a different plan it raises
    ValueError rather than mix two runs. Bag ``i`` is seeded with ``seed + i``;
    the split into bags and the validation split with ``seed``. With
    ``weights="imagenet"``, the weights file is resolved once up front, so a
    machine that cannot fetch it fails before anything is written. Other
    arguments: see :func:`train_bag`.
    """
    from tqdm.auto import tqdm

    from .models import xception as xc

    out_dir = Path(out_dir)
    if build_model is None:
        xc.resolve_weights(weights)  # fail early (WeightsError / ValueError) before writing anything
    videos = video_table(faces_table)
    if (videos["split"] == "val").any():
        val_videos = videos[videos["split"] == "val"].reset_index(drop=True)
        train_videos = videos[videos["split"] == "train"].reset_index(drop=True)
        val_source = "the table's val split"
    else:
        train_videos, val_videos = split_validation(videos, val_fraction, seed)
        val_source = f"{val_fraction:g} of the training videos per class (seed {seed})"
    bags = make_bags(train_videos, n_bags, seed)
    plan = {"n_bags": int(n_bags), "seed": int(seed), "val_fraction": float(val_fraction), "val_source": val_source,
            "val_videos": val_videos["store_key"].tolist(),
            "bags": [bag["store_key"].tolist() for bag in bags],
            "settings": {"epochs": int(epochs), "image_size": image_size, "batch_size": batch_size,
                         "weights": _weights_setting(weights), "patience": patience, "learning_rate": learning_rate,
                         "schedule_decay": schedule_decay, "augment": bool(augment),
                         "steps_per_epoch": steps_per_epoch}}
    _write_or_check(out_dir / PLAN_FILE, plan, f"{out_dir} holds a bagging run with another plan",
                    "use the same data and settings to resume it, or another folder")
    n_fake = [int((bag["label"] == 1).sum()) for bag in bags]
    _log(f"bagging: {n_bags} bags of {min(n_fake)}-{max(n_fake)} fake + {int((bags[0]['label'] == 0).sum())} real "
         f"training videos; validation: {len(val_videos)} videos ({val_source})")
    val_faces = _faces_of(faces_table, val_videos) if len(val_videos) else None
    records = []
    for i, bag in enumerate(tqdm(bags, desc="bags", unit="bag", disable=not progress)):
        bag_dir = out_dir / f"bag_{i}"
        done = bag_done(bag_dir)
        if done is not None:
            _log(f"bag {i + 1}/{n_bags}: done before, skipped")
            records.append(done)
            continue
        records.append(train_bag(_faces_of(faces_table, bag), store_root, bag_dir, val_faces, epochs=epochs,
                                 image_size=image_size, batch_size=batch_size, weights=weights, seed=int(seed) + i,
                                 patience=patience, learning_rate=learning_rate, schedule_decay=schedule_decay,
                                 augment=augment, cache=cache, steps_per_epoch=steps_per_epoch,
                                 build_model=build_model, callbacks=callbacks, verbose=verbose,
                                 extra={"bag": i, "n_bags": int(n_bags)}))
    return records


# --------------------------------------------------------------------------- prediction and voting

def predict_bags(faces_table: pd.DataFrame, store_root, out_dir, batch_size: int | None = None, build_model=None,
                 progress: bool = True) -> np.ndarray:
    """P(fake) of every row of ``faces_table`` by every bag of ``out_dir``: float32 ``(n_rows, n_bags)``,
    rows in the table's order, column ``i`` = bag ``i``.

    Each bag is rebuilt (``build_model``, default Xception, with random init and its
    recorded image size) and its ``model.weights.h5`` loaded. Raises ValueError if a
    bag of the plan is not done.
    """
    from tqdm.auto import tqdm

    from .models import xception as xc

    out_dir = Path(out_dir)
    plan_path = out_dir / PLAN_FILE
    if not plan_path.is_file():
        raise ValueError(f"{out_dir} holds no {PLAN_FILE}: not a folder written by train_bagging")
    n_bags = int(json.loads(plan_path.read_text())["n_bags"])
    records = [bag_done(out_dir / f"bag_{i}") for i in range(n_bags)]
    missing = [i for i, r in enumerate(records) if r is None]
    if missing:
        raise ValueError(f"bags {missing} of {n_bags} in {out_dir} are not trained yet (no {DONE_FILE}); "
                         f"run train_bagging again to finish them")
    build = build_model or xc.build_xception
    out = np.zeros((len(faces_table), n_bags), np.float32)
    datasets = {}  # one input pipeline per (image size, batch size): the bags usually share one
    for record in records:
        shape = (int(record["settings"]["image_size"]), int(batch_size or record["settings"]["batch_size"]))
        if shape not in datasets:
            datasets[shape] = xc.face_dataset(faces_table, store_root, *shape, shuffle=False, labels=False)
    for i, record in enumerate(tqdm(records, desc="predicting", unit="bag", disable=not progress)):
        size = int(record["settings"]["image_size"])
        model = build(image_size=size, weights=None)
        model.load_weights(str(out_dir / f"bag_{i}" / record["weights"]))
        ds = datasets[(size, int(batch_size or record["settings"]["batch_size"]))]
        out[:, i] = model.predict(ds, verbose=0).reshape(-1)
        del model
    return out


def aggregate_bags(prob_matrix, threshold: float = THRESHOLD) -> tuple:
    """``(vote_labels, mean_prob)`` of per-bag probabilities ``(n_samples, n_bags)`` (videos or frames).

    - ``vote_labels`` (int 0/1): the majority vote of the bags' decisions, each
      bag calling a sample fake when its probability is ``>= threshold``; fake
      when more than half of the bags say fake. With an odd number of bags (the
      paper's 7) there is never a tie; with an even number, a tie is decided by
      the mean probability (fake when ``mean_prob >= threshold``).
    - ``mean_prob`` (float): the mean of the bags' probabilities, the score for
      the AUC.

    Raises ValueError for a matrix that is not 2-D, is empty, or holds NaN or
    values outside [0, 1].
    """
    p = np.asarray(prob_matrix, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"prob_matrix must be 2-D (samples, bags) and non-empty, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("prob_matrix must hold probabilities in [0, 1] (no NaN)")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    n_bags = p.shape[1]
    fake_votes = (p >= threshold).sum(axis=1)
    mean_prob = p.mean(axis=1)
    vote = np.where(2 * fake_votes > n_bags, 1, 0)
    tie = 2 * fake_votes == n_bags
    vote[tie] = (mean_prob[tie] >= threshold).astype(int)
    return vote.astype(int), mean_prob


def bag_video_probs(frame_table: pd.DataFrame, frame_probs, by: str = "store_key",
                    keep=("label", "split")) -> pd.DataFrame:
    """Per-video probability of every bag: the mean over the video's frames
    (:func:`deepfake_keras.evaluation.video_scores`). Columns ``by``, kept columns,
    ``bag_0 .. bag_{k-1}``, ``n_frames``; one row per video, sorted by ``by``."""
    from .evaluation import video_scores

    p = np.asarray(frame_probs, dtype=float)
    if p.ndim != 2 or p.shape[0] != len(frame_table):
        raise ValueError(f"frame_probs must be (n_frames, n_bags) with n_frames = {len(frame_table)}, "
                         f"got shape {p.shape}")
    table = frame_table.copy()
    out = None
    for i in range(p.shape[1]):
        table[f"bag_{i}"] = p[:, i]
        v = video_scores(table, f"bag_{i}", by=by, keep=keep)
        out = v if out is None else out.merge(v[[by, f"bag_{i}"]], on=by)
    cols = [c for c in out.columns if c != "n_frames"] + ["n_frames"]
    return out[cols]


def bagged_video_predictions(frame_table: pd.DataFrame, frame_probs, threshold: float = THRESHOLD,
                             by: str = "store_key", keep=("label", "split")) -> pd.DataFrame:
    """:func:`bag_video_probs` plus ``votes_fake`` (bags calling the video fake), ``vote`` (the
    majority label, for the accuracy) and ``mean_prob`` (for the AUC), see :func:`aggregate_bags`."""
    videos = bag_video_probs(frame_table, frame_probs, by=by, keep=keep)
    bag_cols = [c for c in videos.columns if c.startswith("bag_")]
    matrix = videos[bag_cols].to_numpy()
    vote, mean_prob = aggregate_bags(matrix, threshold)
    videos["votes_fake"] = (matrix >= threshold).sum(axis=1)
    videos["vote"] = vote
    videos["mean_prob"] = mean_prob
    return videos
