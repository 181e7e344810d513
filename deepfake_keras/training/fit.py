"""One resumable Keras fit for every Keras model the package trains (the Xception bags, the
frames-only Xception, LSTM/GRU, Conv3D, ConvLSTM).

Layout of a model's folder (:func:`fit_resumable`)::

    out_dir/
      settings.json       the settings, written when it starts (a re-run with others is refused)
      checkpoints/        the last epoch's tf.train.Checkpoint: weights, optimizer state (step,
                          momentum cache, m, v), epoch number, early-stopping state and history;
                          removed once done
      best-NNN.weights.h5 the best epoch's weights so far (with validation)
      runs.json           the epochs done when each run started (until done)
      model.weights.h5    the final weights (best epoch if validated, else last)
      model.json          (or bag.json) written LAST (atomically): the model is done

A re-run skips a done model and resumes an interrupted one from its last completed epoch:
weights, optimizer state, epoch counter, early-stopping counters and history all come back from
the checkpoint, so training continues at the next epoch. (The shuffle order of the resumed
epochs restarts from the seed, so a resumed run is equivalent to, not bit-identical with, an
uninterrupted one.)

Under a ``multiworker`` strategy every worker trains and saves alike, but only the chief writes into
``out_dir`` (and the log folder); the other workers write into ``workertemp_<task id>`` folders there,
removed when the model is done, and resume from the chief's checkpoint (a shared file system):
:func:`deepfake_keras.training.distribute.write_dir`, the Keras multi-worker guide's rule.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..config import XceptionConfig
from ..io import json_bytes, log, versions, write_atomic
from .distribute import describe, remove_write_dir, synchronize_batch_norm, write_dir

SETTINGS_FILE = "settings.json"
WEIGHTS_FILE = "model.weights.h5"
MODEL_FILE = "model.json"
CHECKPOINT_DIR = "checkpoints"
RUNS_FILE = "runs.json"


def write_or_check(path: Path, data: dict, conflict: str, advice: str) -> None:
    """Write ``data`` as JSON at ``path``, or, if the file exists, check that it holds the same;
    a difference raises ValueError (``conflict`` (differs in: keys); ``advice``)."""
    want = json.loads(json_bytes(data))
    if not path.is_file():
        write_atomic(path, json_bytes(data))
        return
    have = json.loads(path.read_text())
    if have != want:
        diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
        raise ValueError(f"{conflict} (differs in: {', '.join(diff)}); {advice}")


def save_weights(model, path) -> Path:
    """``model.save_weights`` to a temporary name, then renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    model.save_weights(str(tmp))
    tmp.replace(path)
    return path


def load_weights(model, path):
    """``model`` with the weights of ``path`` (a ``.weights.h5`` saved by this package) loaded; ValueError
    if the file does not exist."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such weights file")
    if model.distribute_strategy is tf.distribute.get_strategy():
        model.load_weights(str(path))
    else:  # Keras cannot assign a .weights.h5 file to mirrored variables: load a plain copy, hand its arrays over
        plain = tf.keras.models.clone_model(model)
        plain.load_weights(str(path))
        model.set_weights(plain.get_weights())
    return model


def deterministic(seed: int) -> None:
    """The same seed gives the same numbers: Python's, NumPy's and TensorFlow's generators seeded
    (``tf.keras.utils.set_random_seed``) and TensorFlow's ops made deterministic
    (``tf.config.experimental.enable_op_determinism``, which also makes ``tf.data`` keep its order), for
    the rest of the process."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()


def record_of(out_dir, done_file: str = MODEL_FILE) -> dict | None:
    """The record of a finished model (its ``model.json``/``bag.json``), or None."""
    path = Path(out_dir) / done_file
    return json.loads(path.read_text()) if path.is_file() else None


class EpochCheckpoint:
    """Keras callback factory: per-epoch checkpoints with early stopping state, resumable.

    Use :meth:`restore` after compiling the model (returns the number of epochs
    already done, the ``initial_epoch`` for ``fit``) and pass :attr:`callback` to
    ``fit`` *before* any callback that might interrupt training. At the end of
    every epoch it updates the early-stopping state from ``logs[monitor]`` (when
    present), writes the best weights to ``best-NNN.weights.h5`` when the epoch
    improves, then saves one ``tf.train.Checkpoint`` (model, optimizer, epochs
    done, best value and epoch, wait, stopped, history) numbered by the epoch.
    It writes into ``directory`` and restores from ``restore_from`` (default: the same folder; a worker
    other than a multi-worker run's chief writes into its own temporary folder and restores the chief's).
    """

    def __init__(self, directory, model, monitor: str = "val_loss", patience=XceptionConfig.patience, min_delta: float = 0.0,
                 restore_from=None):
        import tensorflow as tf

        self.directory = Path(directory)
        self.source = Path(directory if restore_from is None else restore_from)
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
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(str(self.source / CHECKPOINT_DIR))
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epochs_done.numpy())

    def restore_best(self, model, validated: bool) -> int:
        """The epoch whose weights to keep (1-based): with validation (``validated``) the best one,
        whose weights are loaded into ``model`` (0 if no epoch was validated: the weights stay); else the last."""
        best = int(self.best_epoch.numpy()) if validated else int(self.epochs_done.numpy())
        if validated and best:
            path = self.best_file(best)  # its own copy, else (an epoch before a resume) the one it restored from
            load_weights(model, path if path.is_file() else self.source / path.name)
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
                save_weights(self.model, self.best_file(done))
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


def fit_resumable(build, data, out_dir, *, epochs: int, patience, seed: int, settings: dict,
                  learning_rate: float = XceptionConfig.learning_rate,
                  schedule_decay: float = XceptionConfig.schedule_decay, done_file: str = MODEL_FILE,
                  before_validation=None, finish=None, callbacks=(), verbose: int = 0, strategy=None,
                  log_dir=None) -> tuple:
    """Train ``build()`` (compiled here with the paper's Nadam, binary cross-entropy) resumably in
    ``out_dir`` (see the module docstring), keeping the best epoch on the validation loss.

    Args:
        build: ``build() -> uncompiled model`` with one sigmoid output.
        data: ``data() -> dict`` of ``model.fit`` arguments (``x``, and ``y``, ``batch_size``,
            ``shuffle``, ``validation_data``, ``steps_per_epoch`` as needed), called after the
            model is built and its checkpoint restored, so that the random ops it creates are
            seeded as in an uninterrupted run. Without ``validation_data``, the last epoch is kept.
        epochs, patience: at most ``epochs``; stop after ``patience`` epochs without a lower
            validation loss (None: never stop early).
        seed: ``tf.keras.utils.set_random_seed`` before building (initial weights, shuffles).
        settings: recorded in ``settings.json`` (checked on resume) and the record.
        before_validation: ``before_validation(model)`` run at the end of every epoch, before the
            model is validated (e.g. recomputing the Xception's batch-norm statistics): what is
            validated, chosen and saved is then the same model.
        finish: ``finish(model) -> dict`` run on the kept weights before they are saved; its fields
            join the record.
        callbacks: more Keras callbacks; they run after each epoch's checkpoint is saved.
        done_file: the record's file name (``model.json``; ``bag.json`` for the bags).
        strategy: the ``tf.distribute`` strategy to build, compile and train under (default: the
            current one); ``settings["batch_size"]`` is the global batch (:mod:`.distribute`).
        log_dir: where Keras' ``CSVLogger`` (``training.csv``: appended to when the run resumes from a
            checkpoint, else written anew) and ``TensorBoard`` write the epochs' losses and metrics.

    Returns ``(record, model)``. A model done before is not retrained: its record, and
    ``build()`` with its saved weights.
    """
    import tensorflow as tf

    from ..models.xception import compile_classifier

    out_dir = Path(out_dir)
    strategy = strategy or tf.distribute.get_strategy()
    work = write_dir(out_dir, strategy)  # out_dir, or (a multi-worker run's other workers) a temporary folder
    done = record_of(out_dir, done_file)
    if done is not None:  # finished; drop what a run killed just after the record may have left
        if work == out_dir:
            shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
        remove_write_dir(work, out_dir)
        return done, load_weights(build(), out_dir / done["weights"])
    if work == out_dir or (out_dir / SETTINGS_FILE).is_file():  # the chief writes it; the others check it
        write_or_check(out_dir / SETTINGS_FILE, settings, f"{out_dir} holds an interrupted run with other settings",
                       "use the same settings to resume it, or delete the folder")
    started = time.time()
    distribute = describe(strategy, int(settings["batch_size"]), learning_rate)  # an uneven batch fails before training
    tf.keras.utils.set_random_seed(int(seed))
    with strategy.scope():
        model = build()
        synchronize_batch_norm(model, strategy)
        model = compile_classifier(model, learning_rate, schedule_decay)
    state = EpochCheckpoint(work, model, monitor="val_loss", patience=patience, restore_from=out_dir)
    initial = state.restore()
    resumed = _resume_log(work, initial)
    if initial:
        log(f"{out_dir.name}: resuming after epoch {initial} of {epochs}")
    fit = data()
    validated = fit.get("validation_data") is not None
    first = []
    if validated and before_validation is not None:
        first.append(_validate_after(fit.pop("validation_data"), before_validation))
    if initial < int(epochs) and not bool(state.stopped.numpy()):
        model.fit(**fit, epochs=int(epochs), initial_epoch=initial,
                  callbacks=[*first, state.callback, *training_logs(log_dir, initial, strategy), *callbacks],
                  verbose=verbose)
    history = state.history
    best = state.restore_best(model, validated)
    extra = finish(model) if finish is not None else {}
    save_weights(model, work / WEIGHTS_FILE)
    record = {"settings": settings, "history": history, "epochs_run": int(state.epochs_done.numpy()),
              "best_epoch": best, "stopped_early": bool(state.stopped.numpy()),
              "best_val_loss": float(state.best.numpy()) if validated and best else None,
              "best_val_accuracy": (history["val_accuracy"][best - 1]
                                    if validated and best and "val_accuracy" in history else None),
              "resumed_at": resumed, "weights": WEIGHTS_FILE, "params": int(model.count_params()),
              "distribute": distribute, **extra,
              "seconds_last_run": round(time.time() - started, 1), "versions": versions()}
    write_atomic(work / done_file, json_bytes(record))
    state.cleanup()
    (work / RUNS_FILE).unlink(missing_ok=True)
    remove_write_dir(work, out_dir)
    return record, model


def training_logs(log_dir, resume_epoch: int = 0, strategy=None) -> list:
    """Keras callbacks writing a training's curves where people look for them: ``<log_dir>/training.csv``
    and TensorBoard event files (``tensorboard --logdir <log_dir>``); none without ``log_dir``.

    ``training.csv`` is written anew unless the training resumes from a checkpoint after ``resume_epoch``
    epochs: then its rows of those epochs are kept (any later row, left by a run stopped between its
    checkpoint and its log, is dropped) and the next epochs appended, so each epoch is in it once. Under a
    ``multiworker`` ``strategy`` only the chief writes into ``log_dir``; the other workers write into a
    temporary folder there, removed when training ends (:func:`.distribute.write_dir`)."""
    if log_dir is None:
        return []
    import tensorflow as tf

    log_dir = Path(log_dir)
    work = write_dir(log_dir, strategy)
    work.mkdir(parents=True, exist_ok=True)
    resume_epoch = int(resume_epoch)
    if resume_epoch:
        _keep_epochs(work / "training.csv", resume_epoch)
    logs = [tf.keras.callbacks.CSVLogger(str(work / "training.csv"), append=bool(resume_epoch)),
            tf.keras.callbacks.TensorBoard(str(work), profile_batch=0, write_graph=False)]
    if work != log_dir:
        class RemoveAtEnd(tf.keras.callbacks.Callback):  # after the loggers have closed their files
            def on_train_end(self, logs=None):
                remove_write_dir(work, log_dir)

        logs.append(RemoveAtEnd())
    return logs


def _keep_epochs(path: Path, epochs: int) -> None:
    """Keep the header and the rows of the first ``epochs`` epochs (0-based ``epoch``, the first column)
    of the CSV log ``path``, if there is one, byte for byte."""
    if not path.is_file():
        return
    lines = path.read_bytes().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.split(b",", 1)[0].strip().isdigit()
                        and int(line.split(b",", 1)[0]) < epochs]
    if kept != lines:
        write_atomic(path, b"".join(kept))


def _validate_after(validation, before):
    """The Keras callback of :func:`fit_resumable`'s ``before_validation`` (its class is defined here, so
    that importing this module does not load TensorFlow)."""
    import tensorflow as tf

    class ValidateAfter(tf.keras.callbacks.Callback):
        """At the end of each epoch: ``before(model)``, then the validation metrics into the epoch's logs
        (``val_loss``...), which the callbacks after it (the checkpoint, early stopping, History) read."""

        def __init__(self, validation, before):
            super().__init__()
            self.validation, self.before = validation, before

        def on_epoch_end(self, epoch, logs=None):
            self.before(self.model)
            results = self.model.evaluate(self.validation, verbose=0, return_dict=True)
            if logs is not None:
                logs.update({f"val_{k}": float(v) for k, v in results.items()})

    return ValidateAfter(validation, before)


def _resume_log(out_dir: Path, initial_epoch: int) -> list:
    """The epochs done at the start of every run of this model (kept in ``runs.json`` until done)."""
    path = out_dir / RUNS_FILE
    runs = json.loads(path.read_text()) if path.is_file() else []
    runs.append(int(initial_epoch))
    write_atomic(path, json_bytes(runs))
    return runs
