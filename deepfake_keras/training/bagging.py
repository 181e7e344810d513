"""Bagging against imbalance (paper IV.B.1): seven Xception models, each on a seventh of the fakes.

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
      bag_0/                one per bag, a model folder of :func:`deepfake_keras.training.fit.fit_resumable`
        ...                 whose record is ``bag.json``, written last: the bag is done

A re-run skips every bag whose ``bag.json`` exists, and resumes an interrupted
bag from its last completed epoch (:mod:`deepfake_keras.training.fit`). The vote
of the bags is :func:`deepfake_keras.evaluation.aggregate_bags`.

Validation (ours; Celeb-DF has no validation split): a fraction of the training
videos, stratified by label and drawn by video with the seed, is held out from
every bag (:func:`deepfake_keras.training.splits.split_validation`; the Celeb-DF experiment holds out each real
clip together with the fakes made from it, so that no validation video shows a
scene seen in training); if the face table already has ``val`` rows (FF++),
those are used. At the end of each epoch the Xception's batch-norm statistics are
recomputed on training frames (:func:`deepfake_keras.training.fit.recalibrate_batch_norm`)
and then the epoch is scored on the validation videos with class-balanced sample
weights (each class weighs half, as in the roughly balanced bags); early stopping
watches that loss (``patience`` epochs), and the bag keeps the weights of its best
epoch -- the very model that was validated, statistics included. Training augments
the crops as the authors did (:mod:`deepfake_keras.data.augment`; ``augment=False``
turns it off).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import BaggingConfig, XceptionConfig
from ..io import log
from .fit import CHECKPOINT_DIR, fit_resumable, load_weights, recalibrate_batch_norm, record_of, write_or_check
from .splits import balanced_weights, make_bags, split_validation, video_table

BN_BATCHES = 100  # at most this many training batches to recompute batch-norm statistics (each epoch, before it is validated)
PLAN_FILE = "bagging.json"
DONE_FILE = "bag.json"


def _weights_setting(weights) -> str:
    """How a ``weights`` argument is recorded: ``imagenet`` / ``none`` / None as given, a path by its file name."""
    return str(weights) if weights is None or str(weights).lower() in ("imagenet", "none") else Path(weights).name


def bag_done(bag_dir) -> dict | None:
    """The ``bag.json`` record of a finished bag, or None."""
    return record_of(bag_dir, DONE_FILE)


def train_bag(train_faces: pd.DataFrame, store_root, bag_dir, val_faces: pd.DataFrame | None = None, *,
              epochs: int = XceptionConfig.epochs, image_size: int = XceptionConfig.image_size,
              batch_size: int = XceptionConfig.batch_size, weights=XceptionConfig.weights, seed: int = 0,
              patience=XceptionConfig.patience, learning_rate: float = XceptionConfig.learning_rate,
              schedule_decay: float = XceptionConfig.schedule_decay, augment: bool = False, cache=False,
              input_storage: str = XceptionConfig.input_storage,
              steps_per_epoch: int | None = None, build_model=None, callbacks=(), verbose: int = 1,
              extra: dict | None = None, strategy=None, log_dir=None) -> dict:
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
        augment, cache: see :func:`~deepfake_keras.data.inputs.face_dataset`.
        input_storage: ``face_dataset``'s ``storage`` for every pass over the crops (``"png"`` or
            ``"raw"``); the batches are the same either way, so it is not a setting of the bag (a bag
            started with one resumes with the other).
        steps_per_epoch: batches per epoch (default: one pass over ``train_faces``).
        build_model: ``build_model(image_size=..., weights=...) -> uncompiled model``
            with one sigmoid output; default :func:`~deepfake_keras.models.xception.build_xception`.
        callbacks: more Keras callbacks; they run after the checkpoint of each
            epoch is saved.
        verbose: Keras' progress output (0 silent, 1 bar, 2 a line per epoch).
        extra: more fields to record in ``settings.json`` and ``bag.json``.
        strategy, log_dir: see :func:`deepfake_keras.training.fit.fit_resumable`.

    Returns the ``bag.json`` record: ``settings``, ``history`` (per epoch, over
    all resumed runs), ``epochs_run``, ``best_epoch`` (1-based, the weights kept),
    ``stopped_early``, ``resumed_at`` (the epochs done when each run started),
    ``weights`` (file name), ``counts``, ``seconds``, ``versions``.

    Raises ValueError when ``bag_dir`` holds an interrupted run made with other
    settings (delete the folder, or use the same settings).
    """
    from ..data.inputs import face_dataset
    from ..models.xception import build_xception

    bag_dir = Path(bag_dir)
    done = bag_done(bag_dir)
    if done is not None:  # finished; drop what a run killed just after bag.json may have left
        shutil.rmtree(bag_dir / CHECKPOINT_DIR, ignore_errors=True)
        return done
    image_size, batch_size = int(image_size), int(batch_size)
    learning_rate, schedule_decay = float(learning_rate), float(schedule_decay)
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")
    for name, rows in (("train_faces", train_faces), ("val_faces", val_faces)):
        if rows is not None and set(pd.to_numeric(rows["label"], errors="coerce").unique()) - {0, 1}:
            raise ValueError(f"{name}: labels must be 0 (real) or 1 (fake)")
    if val_faces is not None and len(val_faces) == 0:
        val_faces = None
    build = build_model or build_xception
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

    def data():
        train_ds = face_dataset(train_faces, store_root, image_size, batch_size, shuffle=True, seed=int(seed),
                                augment=augment, cache=cache, storage=input_storage)
        val_ds = None
        if val_faces is not None:
            val_ds = face_dataset(val_faces, store_root, image_size, batch_size, shuffle=False,
                                  weights=balanced_weights(val_faces["label"]), storage=input_storage)
        if steps_per_epoch:
            train_ds = train_ds.repeat()
        return {"x": train_ds, "validation_data": val_ds, "steps_per_epoch": steps_per_epoch and int(steps_per_epoch)}

    recalibrated = []

    def recalibrate(model):
        recalibrated.append(recalibrate_batch_norm(model, face_dataset(
            train_faces, store_root, image_size, batch_size, shuffle=True, seed=int(seed), labels=False,
            storage=input_storage), BN_BATCHES))

    def finish(model):
        if val_faces is None:  # nothing was validated: recompute the statistics of the last epoch's weights
            recalibrate(model)
        return {"batch_norm_batches": recalibrated[-1] if recalibrated else 0, "counts": counts}

    record, _ = fit_resumable(lambda: build(image_size=image_size, weights=weights), data, bag_dir, epochs=epochs,
                              patience=patience, seed=seed, settings=settings, learning_rate=learning_rate,
                              schedule_decay=schedule_decay, done_file=DONE_FILE, before_validation=recalibrate,
                              finish=finish, callbacks=callbacks, verbose=verbose, strategy=strategy,
                              log_dir=log_dir)
    return record


def _faces_of(faces: pd.DataFrame, videos: pd.DataFrame) -> pd.DataFrame:
    return faces[faces["store_key"].isin(set(videos["store_key"]))].reset_index(drop=True)


def train_bagging(faces_table: pd.DataFrame, store_root, out_dir, n_bags: int = BaggingConfig.bags,
                  epochs: int = XceptionConfig.epochs, image_size: int = XceptionConfig.image_size,
                  batch_size: int = XceptionConfig.batch_size, weights=XceptionConfig.weights, seed: int = 0,
                  patience=XceptionConfig.patience, val_fraction: float = BaggingConfig.val_fraction,
                  learning_rate: float = XceptionConfig.learning_rate,
                  schedule_decay: float = XceptionConfig.schedule_decay, augment: bool = False, cache=False,
                  input_storage: str = XceptionConfig.input_storage,
                  steps_per_epoch: int | None = None, build_model=None, callbacks=(), verbose: int = 1,
                  progress: bool = True, strategy=None, log_dir=None) -> list:
    """Train the paper's ``n_bags`` models (see the module docstring); returns their ``bag.json`` records.

    ``faces_table`` is the face store's ``faces.csv`` (every split; only ``train``
    rows are trained on, ``val`` rows validate if present, else ``val_fraction`` of
    the training videos are held out, see :func:`split_validation`). The plan
    (validation videos, each bag's videos, settings) is written to
    ``out_dir/bagging.json`` first; a re-run with the same data and settings skips
    done bags and resumes an interrupted one; with a different plan it raises
    ValueError rather than mix two runs. Bag ``i`` is seeded with ``seed + i``;
    the split into bags and the validation split with ``seed``. ``strategy``: see
    :func:`deepfake_keras.training.fit.fit_resumable`; ``log_dir``: each bag's curves go to
    ``<log_dir>/bag_<i>/``. With
    ``weights="imagenet"``, the weights file is resolved once up front, so a
    machine that cannot fetch it fails before anything is written. Other
    arguments: see :func:`train_bag`.
    """
    from tqdm.auto import tqdm

    from ..models.xception import resolve_weights

    out_dir = Path(out_dir)
    if build_model is None:
        resolve_weights(weights)  # fail early (WeightsError / ValueError) before writing anything
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
    write_or_check(out_dir / PLAN_FILE, plan, f"{out_dir} holds a bagging run with another plan",
                    "use the same data and settings to resume it, or another folder")
    n_fake = [int((bag["label"] == 1).sum()) for bag in bags]
    log(f"bagging: {n_bags} bags of {min(n_fake)}-{max(n_fake)} fake + {int((bags[0]['label'] == 0).sum())} real "
         f"training videos; validation: {len(val_videos)} videos ({val_source})")
    val_faces = _faces_of(faces_table, val_videos) if len(val_videos) else None
    records = []
    for i, bag in enumerate(tqdm(bags, desc="bags", unit="bag", disable=not progress)):
        bag_dir = out_dir / f"bag_{i}"
        done = bag_done(bag_dir)
        if done is not None:
            log(f"bag {i + 1}/{n_bags}: done before, skipped")
            records.append(done)
            continue
        records.append(train_bag(_faces_of(faces_table, bag), store_root, bag_dir, val_faces, epochs=epochs,
                                 image_size=image_size, batch_size=batch_size, weights=weights, seed=int(seed) + i,
                                 patience=patience, learning_rate=learning_rate, schedule_decay=schedule_decay,
                                 augment=augment, cache=cache, input_storage=input_storage,
                                 steps_per_epoch=steps_per_epoch,
                                 build_model=build_model, callbacks=callbacks, verbose=verbose,
                                 extra={"bag": i, "n_bags": int(n_bags)}, strategy=strategy,
                                 log_dir=None if log_dir is None else Path(log_dir) / f"bag_{i}"))
    return records


def predict_bags(faces_table: pd.DataFrame, store_root, out_dir, batch_size: int | None = None, build_model=None,
                 progress: bool = True, input_storage: str = XceptionConfig.input_storage) -> np.ndarray:
    """P(fake) of every row of ``faces_table`` by every bag of ``out_dir``: float32 ``(n_rows, n_bags)``,
    rows in the table's order, column ``i`` = bag ``i``.

    Each bag is rebuilt (``build_model``, default Xception, with random init and its
    recorded image size) and its ``model.weights.h5`` loaded; the crops are read from
    ``input_storage`` (see :func:`train_bag`). Raises ValueError if a bag of the plan is not done.
    """
    from tqdm.auto import tqdm

    from ..data.inputs import face_dataset
    from ..models.xception import build_xception

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
    build = build_model or build_xception
    out = np.zeros((len(faces_table), n_bags), np.float32)
    groups = {}  # bags of one (image size, batch size) share one pass over the crops: each is decoded once
    for i, record in enumerate(records):
        shape = (int(record["settings"]["image_size"]), int(batch_size or record["settings"]["batch_size"]))
        groups.setdefault(shape, []).append(i)
    bar = tqdm(total=len(faces_table) * n_bags, desc="predicting", unit="face", disable=not progress)
    for (size, batch), bags in groups.items():
        models = [load_weights(build(image_size=size, weights=None), out_dir / f"bag_{i}" / records[i]["weights"])
                  for i in bags]
        start = 0
        for x in face_dataset(faces_table, store_root, size, batch, shuffle=False, labels=False,
                              storage=input_storage):
            for i, model in zip(bags, models):
                out[start:start + len(x), i] = model.predict_on_batch(x).reshape(-1)
            start += len(x)
            bar.update(len(x) * len(bags))
        del models
    bar.close()
    return out
