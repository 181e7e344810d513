"""FF++ (c40, NeuralTextures vs pristine by default): the paper's sequence baselines -- frames-only
Xception, Xception features + LSTM / GRU, Conv3D -- and a ConvLSTM (ours); Table II of the paper with
the triplet row.

Steps (each skipped when already done, so a re-run with the same ``--out`` resumes):

1. manifest -> face store of *consecutive* frames
   (``ExtractConfig(frames_per_video=32, consecutive=True)``: 32 frames in a row
   from the middle of each video, the longest sequence any model here needs).
   On the paper's data frames are taken at 5 fps ("like Celeb-DF we extracted
   frames with a frame rate of five"), so a sequence spans 6.4 s of video
   (``--fps``); the DEMO clips are only 32 frames (3.2 s at 10 fps) long, so on
   them every frame is taken.
2. **Frames only**: one Xception (the bagging experiment's classifier, without
   bagging: :func:`deepfake_keras.training.train_bag`) trained on the training
   videos' frames, early stopping on the validation videos (its batch-norm
   statistics recomputed on those frames, see
   :func:`deepfake_keras.training.recalibrate_batch_norm`); video score =
   mean P(fake) of its frames.
3. Per-frame 512-d ``fc1`` features of that Xception -- trained end to end on
   FF++, as the paper found essential; when no ImageNet start can be had it
   is trained from scratch, and its features are still those of the model
   trained here, never of an untrained network -- for every stored frame,
   cached in ``<run>/features/`` (keyed by the weights' sha256).
4. **Frames + LSTM / GRU**: for each sequence length (16, 25, 32) and each of
   LSTM and GRU, one recurrent layer of 32 units and a prediction layer on the
   sequences of features (:mod:`deepfake_keras.models.sequence`). The Table II
   row is the one of the six with the best validation accuracy (all six are
   listed below it).
5. **Conv3D** on clips of 32 consecutive face crops, from scratch
   (:func:`deepfake_keras.models.conv3d.build_conv3d`), and **ConvLSTM**
   (ours, :func:`~deepfake_keras.models.conv3d.build_convlstm`).
6. **Triplets**: the row of a finished ``ffpp_triplet`` run (``--triplet-run
   DIR``), or that experiment run now into ``<run>/triplet/`` with the same
   data, compression, methods and seed.
7. ``predictions.csv`` (one row per video, one column per model),
   ``frame_predictions.csv`` (frames only), ``metrics.json`` -> ``table_2.md``
   (+ ``.csv``) and ``fig_roc_baselines.png`` (:func:`deepfake_keras.reporting.report`).

Short videos (fewer stored frames than a sequence needs): ``--short pad``
(default; the last frame repeated, masked for LSTM/GRU) or ``--short drop``
(the video gets no prediction from that model; the counts are in metrics.json).

Every model here is trained with the paper's optimizer (Nadam, 0.002, schedule
decay 0.004; 1e-4 for Conv3D and ConvLSTM, which diverged at 0.002 from
scratch, see :data:`CONV_LEARNING_RATE`), binary cross-entropy, early stopping on the class-balanced
validation loss (patience 5) keeping the best epoch's weights, per-epoch
checkpoints (resumable), no class weighting (NeuralTextures vs pristine is
balanced), threshold 0.5 on P(fake).
"""
from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ExtractConfig
from ..runs import log, make_run_dir, resolve_data_root, save_json, versions

EXPERIMENT = "ffpp_baselines"
# The paper's settings where it gives them (32 frames, 5 fps, 299 px, 16/25/32 frames, 30 epochs as for
# Celeb-DF); ours where it does not (clip size: C3D's 112 px; batch sizes; recurrent epochs).
PAPER = {"frames": 32, "fps": 5.0, "image_size": 299, "epochs": 30, "batch_size": 32, "xception_frames": 0,
         "seq_epochs": 50, "clip_frames": 32, "clip_size": 112, "conv_epochs": 30, "conv_batch_size": 8}
# DEMO: 2 CPU cores, under 15 minutes in all (see the README); every frame of the 32-frame clips.
DEMO = {"frames": 32, "fps": 0.0, "image_size": 71, "epochs": 2, "batch_size": 16, "xception_frames": 8,
        "seq_epochs": 30, "clip_frames": 32, "clip_size": 32, "conv_epochs": 4, "conv_batch_size": 4}
HELP = {"frames": "consecutive frames stored per video (the longest sequence)",
        "fps": "sample frames at this rate before taking them in a row; 0 = every frame",
        "image_size": "Xception input size, pixels", "epochs": "epochs of the frames-only Xception",
        "batch_size": "batch size of the Xception",
        "xception_frames": "frames per video the frames-only Xception trains on, evenly spread; 0 = all stored",
        "seq_epochs": "epochs of each LSTM/GRU", "clip_frames": "frames per Conv3D/ConvLSTM clip",
        "clip_size": "Conv3D/ConvLSTM input size, pixels", "conv_epochs": "epochs of Conv3D and ConvLSTM",
        "conv_batch_size": "clips per Conv3D/ConvLSTM batch"}
SEQ_BATCH = 32  # videos per LSTM/GRU batch (ours)
FEATURE_BATCH = 64
# Conv3D / ConvLSTM from scratch: Nadam (schedule decay 0.004) at 1e-4, not the paper's 0.002 (given for the
# Xception only): at 0.002 the 13.5M-parameter Conv3D diverged on the DEMO data (training loss 60 in the
# first epoch, then dead ReLUs and a constant output).
CONV_LEARNING_RATE = 1e-4
MODEL_RECORD = "model.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .common import add_ffpp_arguments
    from ..models.sequence import KINDS, SEQ_LENS, SHORT, SHORT_POLICIES
    from ..training import PATIENCE

    add_ffpp_arguments(p, EXPERIMENT)
    p.add_argument("--store", help="face store of consecutive frames (default: a cache folder keyed by dataset "
                                   "and settings)")
    for key, text in HELP.items():
        kind = float if key == "fps" else int
        p.add_argument(f"--{key.replace('_', '-')}", type=kind,
                       help=f"{text} (default {PAPER[key]:g}; {DEMO[key]:g} on DEMO data)")
    p.add_argument("--seq-lens", type=int, nargs="+", default=list(SEQ_LENS),
                   help=f"LSTM/GRU sequence lengths (default {' '.join(map(str, SEQ_LENS))}, the paper's)")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="recurrent layers (default both)")
    p.add_argument("--short", default=SHORT, choices=SHORT_POLICIES,
                   help="videos with fewer stored frames than a sequence: pad (repeat the last frame, masked for "
                        "LSTM/GRU) or drop (no prediction) (default pad)")
    p.add_argument("--weights", default="imagenet", help="Xception start: imagenet (the paper's), none, or a path")
    p.add_argument("--fallback-weights", default="none",
                   help="start to use, loudly and recorded, when --weights imagenet cannot be fetched "
                        "('stop' to stop instead)")
    p.add_argument("--patience", type=int, default=PATIENCE, help="early stopping patience of every model")
    p.add_argument("--triplet-run", help="a finished ffpp_triplet run to take the triplet row from; 'none' leaves "
                                         "the row empty (default: run the triplet experiment into <out>/triplet)")
    p.add_argument("--triplet-args", default="",
                   help="more arguments for the triplet experiment when it is run here, e.g. \"--frames 8\"")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="face extraction worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _settings(args, demo: bool) -> dict:
    defaults = DEMO if demo else PAPER
    out = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in defaults.items()}
    if out["fps"] is not None and out["fps"] < 0:
        raise ValueError(f"--fps must be >= 0 (0 = every frame), got {out['fps']}")
    for key in ("frames", "image_size", "epochs", "batch_size", "seq_epochs", "clip_frames", "clip_size",
                "conv_epochs", "conv_batch_size"):
        if out[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {out[key]}")
    if out["xception_frames"] < 0:
        raise ValueError(f"--xception-frames must be >= 0 (0 = every stored frame), got {out['xception_frames']}")
    longest = max([*args.seq_lens, out["clip_frames"]])
    if min(args.seq_lens) < 1:
        raise ValueError(f"--seq-lens must be >= 1, got {args.seq_lens}")
    if longest > out["frames"]:
        raise ValueError(f"a sequence of {longest} frames needs --frames >= {longest} (the store holds --frames "
                         f"consecutive frames per video), got {out['frames']}")
    log(f"{'DEMO ' if demo else ''}settings: {out}, sequence lengths {args.seq_lens}, short videos: {args.short} "
        f"(the paper's: {PAPER})")
    return out


# --------------------------------------------------------------------------- training one model

def fit_resumable(build, train, val, out_dir, *, epochs: int, patience, seed: int, batch_size: int,
                  settings: dict, learning_rate: float | None = None, verbose: int = 0) -> tuple:
    """Train ``build()`` (compiled here with the paper's Nadam) on ``train``, keeping the best epoch on ``val``.

    ``train`` and ``val`` are ``(x, y)`` arrays (``x`` may be a dict) or
    ``tf.data`` datasets yielding ``(x, y)`` / ``(x, y, weight)``; ``val`` may be
    None (then the last epoch is kept). ``learning_rate`` defaults to the
    paper's 0.002. Resumable like a bag of
    :func:`deepfake_keras.training.train_bag`: per-epoch checkpoints with the
    early-stopping state in ``out_dir``; ``model.json`` is written last and a
    finished model is not retrained. Returns ``(record, model)``: the ``model.json`` record and the
    model with the kept weights (those of ``out_dir/model.weights.h5``; for a model finished before,
    ``build()`` with them loaded).
    """
    import tensorflow as tf

    from ..data.store import write_atomic
    from ..models.xception import compile_classifier
    from ..training import WEIGHTS_FILE, EpochCheckpoint, _save_weights, _write_or_check, balanced_weights

    out_dir = Path(out_dir)
    done = out_dir / MODEL_RECORD
    if done.is_file():
        return json.loads(done.read_text()), _load(build, out_dir)
    from ..models.xception import LEARNING_RATE

    learning_rate = float(LEARNING_RATE if learning_rate is None else learning_rate)
    settings = {**settings, "epochs": int(epochs), "patience": patience, "seed": int(seed),
                "batch_size": int(batch_size), "learning_rate": learning_rate}
    _write_or_check(out_dir / "settings.json", json.loads(json.dumps(settings, default=str)),
                    f"{out_dir} holds an interrupted run with other settings",
                    "use the same settings to resume it, or delete the folder")
    started = time.time()
    tf.keras.utils.set_random_seed(int(seed))
    model = compile_classifier(build(), learning_rate=learning_rate)
    state = EpochCheckpoint(out_dir, model, monitor="val_loss", patience=patience)
    initial = state.restore()
    if initial:
        log(f"{out_dir.name}: resuming after epoch {initial} of {epochs}")
    fit = {"epochs": int(epochs), "initial_epoch": initial, "callbacks": [state.callback], "verbose": verbose}
    if isinstance(train, tuple):
        x, y = train
        fit.update(x=x, y=y, batch_size=int(batch_size), shuffle=True)
        if val is not None:
            fit["validation_data"] = (val[0], val[1], balanced_weights(val[1]))
    else:
        fit.update(x=train, validation_data=val)
    if initial < int(epochs) and not bool(state.stopped.numpy()):
        model.fit(**fit)
    best = state.restore_best(model, val is not None)
    _save_weights(model, out_dir / WEIGHTS_FILE)
    history = state.history
    record = {"settings": settings, "history": history, "epochs_run": int(state.epochs_done.numpy()),
              "best_epoch": best, "stopped_early": bool(state.stopped.numpy()),
              "best_val_loss": float(state.best.numpy()) if val is not None and best else None,
              "best_val_accuracy": (history["val_accuracy"][best - 1]
                                    if val is not None and best and "val_accuracy" in history else None),
              "weights": WEIGHTS_FILE, "params": int(model.count_params()),
              "seconds_last_run": round(time.time() - started, 1)}
    write_atomic(done, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    state.cleanup()
    return record, model


def _load(build, out_dir):
    from ..training import WEIGHTS_FILE

    model = build()
    model.load_weights(str(Path(out_dir) / WEIGHTS_FILE))
    return model


# --------------------------------------------------------------------------- the triplet row

def triplet_row(run_dir, expect: dict | None = None) -> dict:
    """The Table II triplet row of a finished ``ffpp_triplet`` run: its semi-hard triplets + SGD test
    video metrics (as its own Table II shows them). ``expect`` (data_root, compression, methods, demo)
    is compared with the run's config; differences are returned in ``mismatch`` and said aloud."""
    run_dir = Path(run_dir)
    for name in ("config.json", "metrics.json"):
        if not (run_dir / name).is_file():
            raise ValueError(f"--triplet-run {run_dir}: no {name}; give the folder of a finished ffpp_triplet run")
    config = json.loads((run_dir / "config.json").read_text())
    if config.get("experiment") != "ffpp_triplet":
        raise ValueError(f"--triplet-run {run_dir} holds a {config.get('experiment')!r} run, not ffpp_triplet")
    video = json.loads((run_dir / "metrics.json").read_text())["test"]["triplet_sgd"]["video"]
    mismatch = {k: {"triplet_run": config.get(k), "this_run": v} for k, v in (expect or {}).items()
                if config.get(k) != v}
    if mismatch:
        log(f"WARNING: the triplet run {run_dir} differs from this run in {', '.join(mismatch)} "
            f"({mismatch}); its row is shown as it is (recorded in metrics.json)")
    return {"run_dir": str(run_dir), "model": "triplet_sgd", "accuracy": video["accuracy"], "auc": video["auc"],
            "n": video["n"], "mismatch": mismatch}


def _triplet(args, run_dir: Path, root, demo: bool) -> dict:
    expect = {"data_root": str(root), "compression": args.compression, "methods": list(args.methods), "demo": demo}
    if args.triplet_run and args.triplet_run.strip().lower() == "none":
        log("triplet row: left empty (--triplet-run none)")
        return {"source": "skipped"}
    if args.triplet_run:
        log(f"triplet row: from the finished run {args.triplet_run}")
        return {"source": "given", **triplet_row(args.triplet_run, expect)}
    from . import ffpp_triplet

    out = run_dir / "triplet"
    if not (out / "metrics.json").is_file():
        argv = ["--out", str(out), "--compression", args.compression, "--methods", *args.methods,
                "--seed", str(args.seed), "--workers", str(args.workers)]
        if args.data_root:
            argv += ["--data-root", str(args.data_root)]
        if args.splits:
            argv += ["--splits", str(args.splits)]
        if args.quiet:
            argv.append("--quiet")
        argv += shlex.split(args.triplet_args or "")
        log(f"triplet row: running the triplet experiment into {out} (ffpp_triplet {' '.join(argv)})")
        ffpp_triplet.main(argv)
    return {"source": "ran", **triplet_row(out, expect)}


# --------------------------------------------------------------------------- the pipeline

def _video_metrics(labels, scores) -> dict:
    """:func:`deepfake_keras.evaluation.binary_metrics` of the test videos a model scored; where they do
    not hold both classes (``--short drop`` can leave one), only the accuracy and the counts."""
    from ..evaluation import binary_metrics

    y, p = np.asarray(labels).astype(int), np.asarray(scores, dtype=float)
    if len(set(y.tolist())) == 2:
        return binary_metrics(y, p)
    return {"accuracy": float(np.mean((p >= 0.5) == y)) if len(y) else None, "n": int(len(y)),
            "n_fake": int(y.sum()), "n_real": int(len(y) - y.sum()),
            "note": "the scored test videos do not hold both classes: no AUC/EER"}


def _spread(faces: pd.DataFrame, per_video: int) -> pd.DataFrame:
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


class _NoRetracingWarnings:
    """A logging filter: TensorFlow warns about retracing each time a new small model is fitted in a
    loop, as here (a new model, a new function: expected, harmless)."""

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def run(args):
    from ..data.datasets import ffpp_manifest
    from ..models import conv3d, sequence
    from ..reporting import report
    from ..runs import default_store
    from ..training import balanced_weights, train_bag
    from .common import choose_weights, extract_faces

    import tensorflow as tf

    if not any(isinstance(f, _NoRetracingWarnings) for f in tf.get_logger().filters):
        tf.get_logger().addFilter(_NoRetracingWarnings())
    started = time.time()
    root, demo = resolve_data_root(args.data_root, "ffpp", args.seed)
    s = _settings(args, demo)
    run_dir = make_run_dir(args.out, EXPERIMENT)
    log(f"results: {run_dir}")
    manifest = ffpp_manifest(root, args.compression, args.methods, args.splits)
    extract_config = ExtractConfig(frames_per_video=s["frames"], fps=s["fps"] or None, consecutive=True)
    store = Path(args.store or default_store(root, extract_config))
    weights = choose_weights(args.weights, args.fallback_weights)
    verbose = 0 if args.quiet else 2
    config = {"experiment": EXPERIMENT, "demo": demo, "data_root": str(root), "store": str(store),
              "compression": args.compression, "methods": list(args.methods), "extract": extract_config.to_dict(),
              **s, "seq_lens": list(args.seq_lens), "kinds": list(args.kinds), "short": args.short,
              "xception_weights": weights, "patience": args.patience, "conv_learning_rate": CONV_LEARNING_RATE,
              "triplet_run": args.triplet_run,
              "triplet_args": args.triplet_args, "seed": args.seed,
              "features": "fc1 (512-d) of the frames-only Xception trained end to end in this run "
                          f"(start: {weights['used']})",
              "versions": versions(), "command": " ".join(getattr(args, "argv", []) or [])}
    save_json(run_dir / "config.json", config)

    faces, summary = extract_faces(manifest, root, store, extract_config, args.workers, not args.quiet)
    if len(faces) == 0:
        raise ValueError(f"no face was found in any of the {len(manifest)} videos; see {store}/failures.csv")
    faces = faces.sort_values(["store_key", "frame"]).reset_index(drop=True)
    splits = set(faces["split"])
    for needed in ("train", "test"):
        if needed not in splits:
            raise ValueError(f"no {needed} video has faces (splits with faces: {sorted(splits)})")
    models_dir = run_dir / "models"

    # 1. frames only -------------------------------------------------------------------------------
    picked = _spread(faces[faces["split"].isin(("train", "val"))], s["xception_frames"])
    train_faces, val_faces = picked[picked["split"] == "train"], picked[picked["split"] == "val"]
    log(f"frames only: Xception ({s['image_size']} px, start {weights['used']}) on {len(train_faces)} frames of "
        f"{train_faces['store_key'].nunique()} training videos, validated on {len(val_faces)} frames")
    bag = train_bag(train_faces.reset_index(drop=True), store, models_dir / "frames_only",
                    val_faces.reset_index(drop=True) if len(val_faces) else None, epochs=s["epochs"],
                    image_size=s["image_size"], batch_size=s["batch_size"], weights=weights["used"], seed=args.seed,
                    patience=args.patience, verbose=verbose)

    weights_file = models_dir / "frames_only" / bag["weights"]  # batch norm recomputed by train_bag

    # 2. fc1 features of every stored frame (and the frames-only P(fake) from the same pass) ---------
    features, p_frame = sequence.cached_features(faces, store, weights_file, run_dir, s["image_size"], FEATURE_BATCH,
                                                 progress=not args.quiet)
    frame_table = faces[["store_key", "video_id", "label", "split", "method", "frame"]].copy()
    frame_table["frames_only"] = p_frame
    frame_table.to_csv(run_dir / "frame_predictions.csv", index=False)
    from .common import video_predictions

    predictions = video_predictions(frame_table, ["frames_only"])
    training = {"frames_only": {**{k: bag[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "counts")},
                                "weights": str(weights_file.relative_to(run_dir)),
                                "batch_norm_batches": bag["batch_norm_batches"]}}
    sequences = {}

    def add_column(index, key, scores):
        nonlocal predictions
        column = pd.DataFrame({"store_key": index.videos["store_key"], key: np.asarray(scores).reshape(-1)})
        predictions = predictions.merge(column, on="store_key", how="left")

    # 3. Xception features + LSTM / GRU ----------------------------------------------------------------
    from tqdm.auto import tqdm

    recurrent = [(n, kind) for n in args.seq_lens for kind in args.kinds]
    with tqdm(total=len(recurrent), desc="LSTM/GRU", unit="model", disable=args.quiet) as bar:
        for seq_len in args.seq_lens:
            index = sequence.sequence_index(faces, seq_len, args.short)
            sequences[f"features_{seq_len}"] = sequence.describe(index)
            train_i, val_i = index.split("train"), index.split("val")
            if len(train_i) == 0:
                raise ValueError(f"no training video has a sequence of {seq_len} frames (--short {args.short})")
            data = {name: (sequence.feature_sequences(part, features), part.labels) for name, part in
                    (("train", train_i), ("val", val_i)) if len(part)}
            every = sequence.feature_sequences(index, features)
            for kind in args.kinds:
                key = f"{kind}_{seq_len}"

                def build(seq_len=seq_len, kind=kind):
                    return sequence.build_recurrent(kind, seq_len, features.shape[1])

                record, model = fit_resumable(build, data["train"], data.get("val"), models_dir / key,
                                              epochs=s["seq_epochs"], patience=args.patience, seed=args.seed,
                                              batch_size=SEQ_BATCH, settings={"model": key,
                                                                              "feature_dim": int(features.shape[1]),
                                                                              "short": args.short}, verbose=0)
                training[key] = {k: record[k] for k in ("epochs_run", "best_epoch", "best_val_loss",
                                                        "best_val_accuracy")}
                add_column(index, key, model.predict(every, verbose=0, batch_size=256))
                loss = record["best_val_loss"]
                log(f"{key}: {record['epochs_run']} epochs, best {record['best_epoch']} (validation loss "
                    f"{loss if loss is None else round(loss, 4)})")
                bar.update(1)
    recurrent_keys = [f"{kind}_{n}" for n, kind in recurrent]
    ranked = sorted(recurrent_keys, key=lambda k: (-(training[k]["best_val_accuracy"] or 0),
                                                   training[k]["best_val_loss"] or np.inf, recurrent_keys.index(k)))
    selected = ranked[0]
    predictions["lstm_gru"] = predictions[selected]
    log(f"Frames + LSTM/GRU row: {selected} (best validation accuracy of {len(recurrent_keys)})")

    # 4. Conv3D and ConvLSTM on clips of consecutive face crops ----------------------------------------
    index = sequence.sequence_index(faces, s["clip_frames"], args.short)
    sequences[f"clips_{s['clip_frames']}"] = sequence.describe(index)
    clip_bytes = len(index) * s["clip_frames"] * s["clip_size"] ** 2 * 3
    cache = clip_bytes < 1 << 30  # decoded clips kept in memory when under 1 GiB
    train_i, val_i = index.split("train"), index.split("val")
    if len(train_i) == 0:
        raise ValueError(f"no training video has a clip of {s['clip_frames']} frames (--short {args.short})")

    def clips(part, shuffle=False, labels=True, weights=None):
        return sequence.image_sequence_dataset(part, faces, store, s["clip_size"], s["conv_batch_size"],
                                               shuffle=shuffle, seed=args.seed, labels=labels, cache=cache,
                                               weights=weights)

    val_ds = clips(val_i, weights=balanced_weights(val_i.labels)) if len(val_i) else None
    every = clips(index, labels=False)
    for key, builder in (("conv3d", conv3d.build_conv3d), ("convlstm", conv3d.build_convlstm)):
        def build(builder=builder):
            return builder(s["clip_frames"], s["clip_size"])

        log(f"{key}: {len(train_i)} training clips of {s['clip_frames']} frames, {s['clip_size']} px")
        record, model = fit_resumable(build, clips(train_i, shuffle=True), val_ds, models_dir / key,
                                      epochs=s["conv_epochs"], patience=args.patience, seed=args.seed,
                                      batch_size=s["conv_batch_size"], learning_rate=CONV_LEARNING_RATE,
                                      settings={"model": key, "clip_frames": s["clip_frames"],
                                                "clip_size": s["clip_size"], "short": args.short}, verbose=verbose)
        training[key] = {k: record[k] for k in ("epochs_run", "best_epoch", "best_val_loss", "best_val_accuracy",
                                                "params")}
        add_column(index, key, model.predict(every, verbose=0))

    # 5. the triplet row, metrics, tables ---------------------------------------------------------------
    triplet = _triplet(args, run_dir, root, demo)
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    keys = ["frames_only", *recurrent_keys, "lstm_gru", "conv3d", "convlstm"]
    test_frames = frame_table[frame_table["split"] == "test"]
    test = predictions[predictions["split"] == "test"]
    metrics = {"models": {"frames_only": "Frames only (Xception)", "lstm_gru": f"Frames + LSTM/GRU ({selected})",
                          **{k: f"Frames + {k.split('_')[0].upper()}, {k.split('_')[1]} frames"
                             for k in recurrent_keys},
                          "conv3d": "3d Convolution", "convlstm": "ConvLSTM (ours)"},
               "selected_recurrent": selected, "test": {}, "training": training, "sequences": sequences,
               "triplet": triplet,
               "counts": {"videos": int(len(manifest)), "videos_with_faces": int(len(predictions)),
                          "failed_videos": summary.failed + summary.failed_before, "faces": int(len(faces)),
                          "test_videos": int(len(test)), "test_frames": int(len(test_frames))}}
    for key in keys:
        rows = test.dropna(subset=[key])
        metrics["test"][key] = {"video": _video_metrics(rows["label"], rows[key]),
                                "missing_videos": int(len(test) - len(rows))}
    metrics["test"]["frames_only"]["frame"] = _video_metrics(test_frames["label"], test_frames["frames_only"])
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)
    written = report(run_dir)
    table = next(p for p in written if p.name == "table_2.md")
    print(table.read_text(), flush=True)
    accuracy = {k: v["video"].get("accuracy") for k, v in metrics["test"].items()}
    said = ", ".join(f"{name} {'n/a' if accuracy[k] is None else f'{100 * accuracy[k]:.1f}%'}" for k, name in
                     (("frames_only", "frames only"), (selected, selected), ("conv3d", "Conv3D"),
                      ("convlstm", "ConvLSTM")))
    log(f"{'DEMO ' if demo else ''}test video accuracy: {said} ({metrics['seconds']:.0f} s); results in {run_dir}")
    return run_dir


def main(argv=None) -> int:
    import sys

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    args.argv = sys.argv if argv is None else ["ffpp_baselines.py", *argv]
    run(args)
    return 0
