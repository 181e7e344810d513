"""FF++ (c40, NeuralTextures vs pristine by default): the paper's sequence baselines -- frames-only
Xception, Xception features + LSTM / GRU, Conv3D -- and a ConvLSTM (ours); Table II of the paper with
the triplet row.

Steps (each skipped when already done, so a re-run with the same ``out`` resumes):

1. manifest -> face store of *consecutive* frames
   (``ExtractConfig(frames_per_video=32, consecutive=True)``: 32 frames in a row
   from the middle of each video, the longest sequence any model here needs).
   On the paper's data frames are taken at 5 fps ("like Celeb-DF we extracted
   frames with a frame rate of five"), so a sequence spans 6.4 s of video
   (``fps``); the DEMO clips are only 32 frames (3.2 s at 10 fps) long, so on
   them every frame is taken.
2. **Frames only**: one Xception (the bagging experiment's classifier, without
   bagging: :func:`deepfake_keras.training.bagging.train_bag`) trained on the training
   videos' frames, early stopping on the validation videos (its batch-norm
   statistics recomputed on the training frames before each epoch is validated,
   see :func:`deepfake_keras.training.fit.recalibrate_batch_norm`); video score =
   mean P(fake) of its frames.
3. Per-frame 512-d ``fc1`` features of that Xception -- trained end to end on
   FF++, as the paper found essential; when no ImageNet start can be had it
   is trained from scratch, and its features are still those of the model
   trained here, never of an untrained network -- for every stored frame,
   cached in ``<run>/features/`` (:mod:`deepfake_keras.training.features`).
4. **Frames + LSTM / GRU**: for each sequence length (16, 25, 32) and each of
   LSTM and GRU, one recurrent layer of 32 units and a prediction layer on the
   sequences of features (:mod:`deepfake_keras.models.sequence`). The Table II
   row is the one of the six with the best validation accuracy, ties (within
   ``TIE_TOLERANCE``, 1e-6: float32 rounding) going to the shorter sequence,
   then to LSTM (:func:`select_recurrent`; all six are listed below it).
5. **Conv3D** on clips of 32 consecutive face crops, from scratch
   (:func:`deepfake_keras.models.conv3d.build_conv3d`), and **ConvLSTM**
   (ours, :func:`~deepfake_keras.models.conv3d.build_convlstm`).
6. **Triplets**: the row of a finished ``ffpp_triplet`` run (``triplet_run``),
   or that experiment run now into ``<run>/triplet/`` with the same data,
   compression, methods, seed, strategy and mixed precision (and its own default settings).
7. ``predictions.csv`` (one row per video, one column per model),
   ``frame_predictions.csv`` (frames only), ``metrics.json`` -> ``table_2.md``
   (+ ``.csv``) and ``fig_roc_baselines.png`` (:func:`deepfake_keras.reporting.report`).

Short videos (fewer stored frames than a sequence needs): ``short="pad"``
(default; the last frame repeated, masked for LSTM/GRU) or ``short="drop"``
(the video gets no prediction from that model; the counts are in metrics.json).

Every model here is trained with the paper's optimizer (Nadam, 0.002, schedule
decay 0.004; 1e-4 for Conv3D and ConvLSTM, which diverged at 0.002 from
scratch, see :data:`CONV_LEARNING_RATE`), binary cross-entropy, early stopping on the
class-balanced validation loss (patience 5) keeping the best epoch's weights, per-epoch
checkpoints (resumable, :func:`deepfake_keras.training.fit.fit_resumable`), no class
weighting (NeuralTextures vs pristine is balanced), threshold 0.5 on P(fake).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RECURRENT_KINDS, BaselinesExperiment, ExtractConfig, TripletExperiment, XceptionConfig, for_data
from ..io import log, save_json, versions, write_csv
from ..training.distribute import describe
from .common import (add_faceless, choose_weights, default_store, extract_faces, fold_summary, splits_of, start_run,
                     video_predictions)

EXPERIMENT = "ffpp_baselines"
SEQ_BATCH = 32  # videos per LSTM/GRU batch (ours)
TRIPLET_ROW = "triplet_rf"  # Table II's triplet row, as in the ffpp_triplet run's own Table II
FEATURE_BATCH = 64
# Conv3D / ConvLSTM from scratch: Nadam (schedule decay 0.004) at 1e-4, not the paper's 0.002 (given for the
# Xception only): at 0.002 the 13.5M-parameter Conv3D diverged on the DEMO data (training loss 60 in the
# first epoch, then dead ReLUs and a constant output).
CONV_LEARNING_RATE = 1e-4


def run(config: BaselinesExperiment, out=None, *, workers: int = 1, progress: bool = True,
        command: str = "") -> Path:
    """Run the experiment with ``config``; results in ``out`` (default ``results/ffpp_baselines/<timestamp>``).
    Returns the results folder."""
    from ..data.datasets import ffpp_manifest

    started = time.time()
    root, demo, run_dir, setup = start_run(config, "ffpp", EXPERIMENT, out)
    manifest = ffpp_manifest(root, config.compression, config.methods, config.splits)
    extract_config = ExtractConfig(frames_per_video=config.frames_per_video, fps=config.fps or None, consecutive=True)
    store = Path(config.store or default_store(root, extract_config))
    weights = choose_weights(config.weights, config.fallback_weights)
    save_json(run_dir / "config.json", {
        **config.to_dict(), "experiment": EXPERIMENT, "demo": demo, "data_root": str(root), "store": str(store),
        "extract": extract_config.to_dict(), "xception_weights": weights, "conv_learning_rate": CONV_LEARNING_RATE,
        "features": f"fc1 (512-d) of the frames-only Xception trained end to end in this run (start: {weights['used']})",
        "distribute": distribute_record(setup["strategy"], config), "versions": versions(), "command": command})

    faces, summary = extract_faces(manifest, root, store, extract_config, workers, progress)
    faces = faces.sort_values(["store_key", "frame"]).reset_index(drop=True)
    frames, videos, per_fold, training, sequences, selected, no_face = [], [], [], {}, {}, [], 0
    for split in splits_of(manifest, config.folds, config.seed):
        part = _checked(faces.assign(split=faces["store_key"].map(split["side"])), manifest, store, split["name"])
        trained = train_and_score(part, store, run_dir, split["name"], config, weights["used"], progress, setup)
        frame_table, predictions = trained["frame_table"], trained["predictions"]
        if config.folds:  # each fold's test videos (and frames), marked with their fold
            frame_table = frame_table[frame_table["split"] == "test"].assign(fold=split["fold"])
            predictions = predictions[predictions["split"] == "test"]
        fold_manifest = manifest.assign(split=manifest["store_key"].map(split["side"]))
        predictions, faceless = add_faceless(predictions, fold_manifest, ["frames_only", *trained["columns"]],
                                             config.no_face_score)
        no_face += faceless
        if config.folds:
            predictions = predictions.assign(fold=split["fold"])
            per_fold.append(test_metrics(frame_table, predictions, trained["selected"], config)["test"])
        frames.append(frame_table)
        videos.append(predictions)
        training.update({split["name"]: trained["training"]} if config.folds else trained["training"])
        sequences.update(trained["sequences"])
        selected.append(trained["selected"])
    frame_table, predictions = pd.concat(frames, ignore_index=True), pd.concat(videos, ignore_index=True)
    write_csv(run_dir / "frame_predictions.csv", frame_table)
    write_csv(run_dir / "predictions.csv", predictions)
    triplet = triplet_row_for(config, run_dir, root, demo, workers, progress)

    chosen = selected[0] if len(selected) == 1 else ", ".join(f"{k} (fold {i + 1})" for i, k in enumerate(selected))
    metrics = test_metrics(frame_table, predictions, chosen, config)
    test = predictions[predictions["split"] == "test"]
    metrics.update(training=training, sequences=sequences, triplet=triplet,
                   counts={"videos": int(len(manifest)), "videos_with_faces": int(faces["store_key"].nunique()),
                           "failed_videos": summary.failed + summary.failed_before, "faces": int(len(faces)),
                           "test_videos": int(len(test)), "test_videos_no_face": no_face,
                           "no_face_score": config.no_face_score,
                           "test_frames": int((frame_table["split"] == "test").sum())})
    if config.folds:
        metrics.update(cv=fold_summary(per_fold, config.folds, "pair"), selected_per_fold=selected)
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)
    _report(run_dir, metrics, chosen, demo)
    return run_dir


def distribute_record(strategy, config: BaselinesExperiment) -> dict:
    """``config.json``'s ``distribute``: for each kind of model, the strategy's replicas and devices, its global
    and per-replica batch and its learning rate (:func:`~deepfake_keras.training.distribute.describe`; a
    batch that does not split evenly over the replicas fails here, before anything is trained)."""
    return {"xception": describe(strategy, config.batch_size, XceptionConfig.learning_rate),
            "lstm_gru": describe(strategy, SEQ_BATCH, XceptionConfig.learning_rate),
            "conv3d_convlstm": describe(strategy, config.conv_batch_size, CONV_LEARNING_RATE)}


# --------------------------------------------------------------------------- the steps

def _checked(faces: pd.DataFrame, manifest: pd.DataFrame, store: Path, fold: str = "") -> pd.DataFrame:
    if len(faces) == 0:
        raise ValueError(f"no face was found in any of the {len(manifest)} videos; see {store}/failures.csv")
    splits = set(faces["split"])
    for needed in ("train", "test"):
        if needed not in splits:
            raise ValueError(f"{fold + ': ' if fold else ''}no {needed} video has faces (splits with faces: "
                             f"{sorted(splits)})")
    return faces


def train_and_score(faces: pd.DataFrame, store: Path, run_dir: Path, name: str, config: BaselinesExperiment,
                    weights: str, progress: bool, setup: dict) -> dict:
    """Every model of one split (``faces``' ``split`` column: train / val / test), its models in
    ``<run>/models/<name>/`` (``name``: the fold, or "" for the dataset's split) and its curves in
    ``<run>/logs/<name>/``. Returns the ``frame_table`` (frames only), the ``predictions`` (one row per
    video with a face, a column per model), the model ``columns``, ``training`` and ``sequences`` records
    and the ``selected`` LSTM/GRU variant."""
    setup = {**setup, "logs": setup["logs"] / name}
    models_dir = run_dir / "models" / name
    training, sequences = {}, {}
    frame_table, features, training["frames_only"] = frames_only(faces, store, run_dir, models_dir, config, weights,
                                                                progress, setup)
    predictions = video_predictions(frame_table, ["frames_only"])
    columns, selected = recurrent(faces, features, models_dir, config, training, sequences, progress, setup)
    columns.update(convolutional(faces, store, models_dir, config, training, sequences, progress, setup))
    for key, scores in columns.items():
        predictions[key] = predictions["store_key"].map(scores)
    return {"frame_table": frame_table, "predictions": predictions, "columns": list(columns), "training": training,
            "sequences": sequences, "selected": selected}


def frames_only(faces: pd.DataFrame, store: Path, run_dir: Path, models_dir: Path, config: BaselinesExperiment,
                weights: str, progress: bool, setup: dict) -> tuple:
    """The frames-only Xception, then the fc1 features and P(fake) of every stored frame (one pass,
    cached); returns ``(frame table with a frames_only column, features, training record)``."""
    from ..training.bagging import train_bag
    from ..training.features import cached_features

    picked = spread(faces[faces["split"].isin(("train", "val"))], config.xception_frames)
    train_faces, val_faces = picked[picked["split"] == "train"], picked[picked["split"] == "val"]
    log(f"frames only: Xception ({config.image_size} px, start {weights}) on {len(train_faces)} frames of "
        f"{train_faces['store_key'].nunique()} training videos, validated on {len(val_faces)} frames")
    bag = train_bag(train_faces.reset_index(drop=True), store, models_dir / "frames_only",
                    val_faces.reset_index(drop=True) if len(val_faces) else None, epochs=config.epochs,
                    image_size=config.image_size, batch_size=config.batch_size, weights=weights, seed=config.seed,
                    patience=config.patience, augment=config.augment, input_storage=config.input_storage,
                    verbose=2 if progress else 0, strategy=setup["strategy"], log_dir=setup["logs"] / "frames_only")
    weights_file = models_dir / "frames_only" / bag["weights"]  # its batch norm as validated
    features, p_frame = cached_features(faces, store, weights_file, run_dir, config.image_size, FEATURE_BATCH,
                                        progress=progress, input_storage=config.input_storage)
    frame_table = faces[["store_key", "video_id", "label", "split", "method", "frame"]].copy()
    frame_table["frames_only"] = p_frame
    record = {**{k: bag[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "counts")},
              "weights": str(weights_file.relative_to(run_dir)), "batch_norm_batches": bag["batch_norm_batches"]}
    return frame_table, features, record


def recurrent(faces: pd.DataFrame, features, models_dir: Path, config: BaselinesExperiment, training: dict,
              sequences: dict, progress: bool, setup: dict) -> tuple:
    """LSTM and GRU at every sequence length on the fc1 features; returns ``({model: P(fake) by store_key},
    the variant selected for the Table II row)``. Fills ``training`` and ``sequences``."""
    from tqdm.auto import tqdm

    from ..data.sequences import describe, feature_sequences, sequence_index
    from ..models.sequence import build_recurrent

    columns = {}
    with tqdm(total=len(config.seq_lens) * len(config.kinds), desc="LSTM/GRU", unit="model",
              disable=not progress) as bar:
        for seq_len in config.seq_lens:
            index = sequence_index(faces, seq_len, config.short)
            sequences[f"features_{seq_len}"] = describe(index)
            parts = {name: index.split(name) for name in ("train", "val")}
            if len(parts["train"]) == 0:
                raise ValueError(f"no training video has a sequence of {seq_len} frames (short={config.short})")
            every = feature_sequences(index, features)
            for kind in config.kinds:
                key = f"{kind}_{seq_len}"

                def build(seq_len=seq_len, kind=kind):
                    return build_recurrent(kind, seq_len, features.shape[1])

                record, model = _fit(build, _array_data(parts, features), models_dir / key, config, config.seq_epochs,
                                     {"model": key, "feature_dim": int(features.shape[1]), "short": config.short,
                                      "batch_size": SEQ_BATCH}, setup, verbose=0)
                training[key] = {k: record[k] for k in ("epochs_run", "best_epoch", "best_val_loss",
                                                        "best_val_accuracy")}
                columns[key] = _by_video(index, model.predict(every, verbose=0, batch_size=256))
                loss = record["best_val_loss"]
                log(f"{key}: {record['epochs_run']} epochs, best {record['best_epoch']} (validation loss "
                    f"{loss if loss is None else round(loss, 4)})")
                bar.update(1)
    keys = [f"{kind}_{n}" for n in sorted(config.seq_lens) for kind in RECURRENT_KINDS if kind in config.kinds]
    selected = select_recurrent({k: training[k]["best_val_accuracy"] for k in keys})
    columns["lstm_gru"] = columns[selected]
    log(f"Frames + LSTM/GRU row: {selected} (best validation accuracy of {len(keys)})")
    return columns, selected


#: validation accuracies this close to the best are tied. Keras sums the class-weighted accuracy in float32,
#: so the same predictions can give values a few ulps apart on another machine (the order of a batch's sum,
#: threads): 1 ulp is 6e-8 in [0.5, 1), 1e-6 is 16 of them. One validation sequence more or less right moves
#: the accuracy by 1 / (2 x the sequences of its class), more than 1e-6 up to 500,000 sequences per class. A
#: tolerance around the best, rather than rounding to some decimals, cannot split two values a rounding
#: boundary falls between.
TIE_TOLERANCE = 1e-6


def select_recurrent(accuracies: dict) -> str:
    """The LSTM/GRU variant of the Table II row: ``accuracies`` maps ``"<kind>_<sequence length>"`` to its
    best validation accuracy (None, not validated, counts as 0). The best wins; variants within
    :data:`TIE_TOLERANCE` of it are tied, and a tie goes to the shorter sequence, then to LSTM before GRU
    (the order of ``RECURRENT_KINDS``), whatever order ``accuracies`` is in."""
    def rank(key):
        kind, _, length = key.rpartition("_")
        return int(length), RECURRENT_KINDS.index(kind)

    score = {k: float(v or 0) for k, v in accuracies.items()}
    best = max(score.values())
    return min((k for k in score if score[k] >= best - TIE_TOLERANCE), key=rank)


def convolutional(faces: pd.DataFrame, store: Path, models_dir: Path, config: BaselinesExperiment, training: dict,
                  sequences: dict, progress: bool, setup: dict) -> dict:
    """Conv3D and ConvLSTM on clips of consecutive face crops; returns ``{model: P(fake) by store_key}``."""
    from ..data.inputs import image_sequence_dataset
    from ..data.sequences import describe, sequence_index
    from ..models import conv3d
    from ..training.splits import balanced_weights

    index = sequence_index(faces, config.clip_frames, config.short)
    sequences[f"clips_{config.clip_frames}"] = describe(index)
    cache = len(index) * config.clip_frames * config.clip_size ** 2 * 3 < 1 << 30  # clips in memory under 1 GiB
    train_i, val_i = index.split("train"), index.split("val")
    if len(train_i) == 0:
        raise ValueError(f"no training video has a clip of {config.clip_frames} frames (short={config.short})")

    def clips(part, shuffle=False, labels=True, weights=None):
        return image_sequence_dataset(part, faces, store, config.clip_size, config.conv_batch_size, shuffle=shuffle,
                                      seed=config.seed, labels=labels, cache=cache, weights=weights)

    val_ds = clips(val_i, weights=balanced_weights(val_i.labels)) if len(val_i) else None
    every = clips(index, labels=False)
    columns = {}
    for key, builder in (("conv3d", conv3d.build_conv3d), ("convlstm", conv3d.build_convlstm)):
        def build(builder=builder):
            return builder(config.clip_frames, config.clip_size)

        log(f"{key}: {len(train_i)} training clips of {config.clip_frames} frames, {config.clip_size} px")
        record, model = _fit(build, lambda: {"x": clips(train_i, shuffle=True), "validation_data": val_ds},
                             models_dir / key, config, config.conv_epochs,
                             {"model": key, "clip_frames": config.clip_frames, "clip_size": config.clip_size,
                              "short": config.short, "batch_size": config.conv_batch_size}, setup,
                             learning_rate=CONV_LEARNING_RATE, verbose=2 if progress else 0)
        training[key] = {k: record[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy",
                                                "params")}
        columns[key] = _by_video(index, model.predict(every, verbose=0))
    return columns


def _fit(build, data, out_dir: Path, config: BaselinesExperiment, epochs: int, settings: dict, setup: dict,
         learning_rate: float | None = None, verbose: int = 0) -> tuple:
    """:func:`~deepfake_keras.training.fit.fit_resumable` with this experiment's seed, patience and
    strategy (``setup``: :func:`~deepfake_keras.pipelines.common.training_setup`), curves in its logs."""
    from ..training.fit import fit_resumable

    learning_rate = float(XceptionConfig.learning_rate if learning_rate is None else learning_rate)
    settings = {**settings, "epochs": int(epochs), "patience": config.patience, "seed": int(config.seed),
                "learning_rate": learning_rate}
    return fit_resumable(build, data, out_dir, epochs=epochs, patience=config.patience, seed=config.seed,
                         settings=settings, learning_rate=learning_rate, verbose=verbose,
                         strategy=setup["strategy"], log_dir=setup["logs"] / out_dir.name)


def _array_data(parts: dict, features):
    """The ``data()`` of :func:`_fit` for feature sequences held in memory (validation class-balanced)."""
    from ..data.sequences import feature_sequences
    from ..training.splits import balanced_weights

    def data():
        fit = {"x": feature_sequences(parts["train"], features), "y": parts["train"].labels,
               "batch_size": SEQ_BATCH, "shuffle": True}
        if len(parts["val"]):
            val = parts["val"]
            fit["validation_data"] = (feature_sequences(val, features), val.labels, balanced_weights(val.labels))
        return fit

    return data


def _by_video(index, scores) -> pd.Series:
    return pd.Series(np.asarray(scores).reshape(-1), index=index.videos["store_key"].to_numpy())


def spread(faces: pd.DataFrame, per_video: int) -> pd.DataFrame:
    """``per_video`` frames of each video evenly spread over its stored frames (all if 0 or fewer stored)."""
    if not per_video:
        return faces
    keep = []
    for _, group in faces.sort_values(["store_key", "frame"]).groupby("store_key", sort=True):
        pos = group.index.to_numpy()
        if len(pos) > per_video:
            pos = pos[np.linspace(0, len(pos) - 1, per_video).round().astype(int)]
        keep.extend(pos.tolist())
    return faces.loc[sorted(keep)].reset_index(drop=True)


# --------------------------------------------------------------------------- the triplet row

def triplet_row(run_dir, expect: dict | None = None) -> dict:
    """The Table II triplet row of a finished ``ffpp_triplet`` run: its semi-hard triplets + RF test
    video metrics (as its own Table II shows them: the paper's 86.74 is the RF, 242 of 279), and for a
    K-fold run their mean and sd over the folds (``cv``). ``expect`` (data_root, compression, methods,
    demo, folds) is compared with the run's config; differences are returned in ``mismatch`` and said
    aloud."""
    run_dir = Path(run_dir)
    for name in ("config.json", "metrics.json"):
        if not (run_dir / name).is_file():
            raise ValueError(f"triplet run {run_dir}: no {name}; give the folder of a finished ffpp_triplet run")
    config = json.loads((run_dir / "config.json").read_text())
    if config.get("experiment") != "ffpp_triplet":
        raise ValueError(f"triplet run {run_dir} holds a {config.get('experiment')!r} run, not ffpp_triplet")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    video = metrics["test"][TRIPLET_ROW]["video"]
    mismatch = {k: {"triplet_run": config.get(k), "this_run": v} for k, v in (expect or {}).items()
                if config.get(k) != v}
    if mismatch:
        log(f"WARNING: the triplet run {run_dir} differs from this run in {', '.join(mismatch)} "
            f"({mismatch}); its row is shown as it is (recorded in metrics.json)")
    row = {"run_dir": str(run_dir), "model": TRIPLET_ROW, "accuracy": video["accuracy"], "auc": video["auc"],
           "n": video["n"], "mismatch": mismatch}
    if metrics.get("cv"):  # a K-fold run: the mean and sd over its folds too
        cv = metrics["cv"]
        row["cv"] = {"k": cv["k"], **{m: [cv["mean"][TRIPLET_ROW][m], cv["sd"][TRIPLET_ROW][m]]
                                      for m in ("accuracy", "auc")}}
    return row


def triplet_row_for(config: BaselinesExperiment, run_dir: Path, root, demo: bool, workers: int,
                    progress: bool) -> dict:
    """The triplet row: from ``config.triplet_run``, none (``"none"``), or the triplet experiment run now
    into ``<run_dir>/triplet`` on the same data with the same seed (skipped when done there)."""
    expect = {"data_root": str(root), "compression": config.compression, "methods": list(config.methods),
              "demo": demo, "folds": config.folds}
    if config.triplet_run and config.triplet_run.strip().lower() == "none":
        log("triplet row: left empty (triplet_run none)")
        return {"source": "skipped"}
    if config.triplet_run:
        log(f"triplet row: from the finished run {config.triplet_run}")
        return {"source": "given", **triplet_row(config.triplet_run, expect)}
    from . import ffpp_triplet

    out = run_dir / "triplet"
    if not (out / "metrics.json").is_file():
        triplet = for_data(TripletExperiment, config.data_root, splits=config.splits, compression=config.compression,
                           methods=tuple(config.methods), seed=config.seed, demo_seed=config.demo_seed,
                           no_face_score=config.no_face_score, folds=config.folds, strategy=config.strategy,
                           mixed_precision=config.mixed_precision)
        log(f"triplet row: running the triplet experiment into {out} ({triplet})")
        ffpp_triplet.run(triplet, out, workers=workers, progress=progress)
    return {"source": "ran", **triplet_row(out, expect)}


# --------------------------------------------------------------------------- metrics and report

def _video_metrics(labels, scores) -> dict:
    """:func:`deepfake_keras.evaluation.binary_metrics` of the test videos a model scored; where they do
    not hold both classes (``short="drop"`` can leave one), only the accuracy and the counts."""
    from ..evaluation import binary_metrics

    y, p = np.asarray(labels).astype(int), np.asarray(scores, dtype=float)
    if len(set(y.tolist())) == 2:
        return binary_metrics(y, p)
    return {"accuracy": float(np.mean((p >= 0.5) == y)) if len(y) else None, "n": int(len(y)),
            "n_fake": int(y.sum()), "n_real": int(len(y) - y.sum()),
            "note": "the scored test videos do not hold both classes: no AUC/EER"}


def test_metrics(frame_table: pd.DataFrame, predictions: pd.DataFrame, selected: str,
                 config: BaselinesExperiment) -> dict:
    """``metrics.json``'s models and test metrics of every model (video level, and each method's fake videos
    called fake; frames only also per frame)."""
    recurrent_keys = [f"{kind}_{n}" for n in config.seq_lens for kind in config.kinds]
    keys = ["frames_only", *recurrent_keys, "lstm_gru", "conv3d", "convlstm"]
    test_frames = frame_table[frame_table["split"] == "test"]
    test = predictions[predictions["split"] == "test"]
    out = {"models": {"frames_only": "Frames only (Xception)", "lstm_gru": f"Frames + LSTM/GRU ({selected})",
                      **{k: f"Frames + {k.split('_')[0].upper()}, {k.split('_')[1]} frames" for k in recurrent_keys},
                      "conv3d": "3d Convolution", "convlstm": "ConvLSTM (ours)"},
           "selected_recurrent": selected, "test": {}}
    for key in keys:
        rows = test.dropna(subset=[key])
        out["test"][key] = {"video": _video_metrics(rows["label"], rows[key]), "missing_videos": int(len(test) - len(rows))}
        fakes = rows[rows["label"] == 1]  # Table IV's columns: each method's fakes called fake (p >= 0.5)
        out["test"][key]["per_method"] = {m: float((g[key] >= 0.5).mean()) for m, g in fakes.groupby("method")}
    out["test"]["frames_only"]["frame"] = _video_metrics(test_frames["label"], test_frames["frames_only"])
    return out


def _report(run_dir: Path, metrics: dict, selected: str, demo: bool) -> None:
    from ..reporting import report

    written = report(run_dir)
    table = next(p for p in written if p.name == "table_2.md")
    print(table.read_text(), flush=True)
    accuracy = {k: v["video"].get("accuracy") for k, v in metrics["test"].items()}
    said = ", ".join(f"{name} {'n/a' if accuracy[k] is None else f'{100 * accuracy[k]:.1f}%'}" for k, name in
                     (("frames_only", "frames only"), ("lstm_gru", selected), ("conv3d", "Conv3D"),
                      ("convlstm", "ConvLSTM")))
    how = f", pooled over {metrics['cv']['k']} folds by pair" if metrics.get("cv") else ""
    log(f"{'DEMO ' if demo else ''}test video accuracy{how}: {said} ({metrics['seconds']:.0f} s); results in "
        f"{run_dir}")
