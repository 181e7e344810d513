"""FF++ (c40, NeuralTextures vs pristine by default): FaceNet embeddings -> triplet network ->
RF / SGD -> video scores. Tables II (triplet rows), III, IV and Figures 6, 7 of the paper.

Steps (each cached or cheap, so a re-run resumes): manifest -> face store
(MTCNN crops, :mod:`deepfake_keras.data.extract`) -> FaceNet embeddings
(cached in the store) -> heads trained on the train split with early stopping
on the val split -> classifiers on train embeddings -> scores on the test
split -> ``metrics.json``, ``predictions.csv`` -> tables and figures
(:func:`deepfake_keras.reporting.report`) -> the model bundle.

Models compared (video score = mean of the frame scores, threshold 0.5):

==================  ===============================================================
triplet_sgd / _rf   semi-hard triplet head (the paper's), then SGD / Random Forest
random_sgd / _rf    random-pick triplets with the plain loss of Eq. 1 (the paper's comparison)
facenet_sgd         SGD on the FaceNet embeddings themselves (no triplet network)
dense               the same dense network trained with cross-entropy (Fig. 6b)
==================  ===============================================================
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ExtractConfig, TripletExperiment
from ..io import log, save_json, versions
from .common import (choose_facenet, classifier_scores, default_store, embed_faces_of, extract_faces, make_run_dir,
                     resolve_data_root, test_metrics, triplet_spaces, video_predictions)

EXPERIMENT = "ffpp_triplet"
MODELS = {
    "triplet_sgd": "Triplets (Semi-hard) + SGD",
    "triplet_rf": "Triplets (Semi-hard) + RF",
    "random_sgd": "Triplets (random pick) + SGD",
    "random_rf": "Triplets (random pick) + RF",
    "facenet_sgd": "FaceNet + SGD (no triplet)",
    "dense": "FaceNet + dense net, cross-entropy (no triplet)",
}
BUNDLED = "triplet_sgd"  # the model saved as the run's bundle
TSNE_POINTS = 1500


def run(config: TripletExperiment, out=None, *, workers: int = 1, progress: bool = True, command: str = "") -> Path:
    """Run the experiment with ``config``; results in ``out`` (default ``results/ffpp_triplet/<timestamp>``).
    ``workers``: face extraction processes. Returns the results folder."""
    from ..data.datasets import ffpp_manifest

    started = time.time()
    root, demo = resolve_data_root(config.data_root, "ffpp", config.seed)
    run_dir = make_run_dir(out, EXPERIMENT)
    log(f"results: {run_dir}")
    manifest = ffpp_manifest(root, config.compression, config.methods, config.splits)
    extract_config = ExtractConfig(frames_per_video=config.frames_per_video)
    store = Path(config.store or default_store(root, extract_config))
    facenet = choose_facenet(config.facenet, config.fallback_facenet)
    record = {**config.to_dict(), "experiment": EXPERIMENT, "demo": demo, "data_root": str(root),
              "store": str(store), "extract": extract_config.to_dict(), "facenet": facenet, "versions": versions(),
              "command": command}
    save_json(run_dir / "config.json", record)

    table, summary = extract_faces(manifest, root, store, extract_config, workers, progress)
    x = embed_faces_of(store, table, facenet["used"], progress)
    spaces, training, trunk, scores, fitted = train_and_score(x, table, run_dir / "models", config)
    frame_table, predictions = write_predictions(run_dir, table, scores)
    metrics = {"models": MODELS, "test": test_metrics(frame_table, predictions, MODELS), "training": training,
               "counts": {"videos": int(len(manifest)), "videos_with_faces": int(len(predictions)),
                          "failed_videos": summary.failed + summary.failed_before, "faces": int(len(table)),
                          "test_videos": int((predictions["split"] == "test").sum()),
                          "test_frames": int((table["split"] == "test").sum())},
               "seconds": round(time.time() - started, 1)}
    save_json(run_dir / "metrics.json", metrics)
    write_tsne(run_dir, x, spaces["triplet"], trunk, table, config.seed)

    from ..reporting import report

    report(run_dir)
    bundle = save_run_bundle(run_dir, fitted[BUNDLED], extract_config, facenet["used"], record,
                             {"experiment": EXPERIMENT, "model": BUNDLED, "description": MODELS[BUNDLED],
                              "demo": demo, "test": metrics["test"][BUNDLED]})
    log(f"model bundle ({MODELS[BUNDLED]}): {bundle}")
    best = metrics["test"][BUNDLED]["video"]
    log(f"{'DEMO ' if demo else ''}triplets + SGD on the test split: video AUC {best['auc']:.3f}, "
        f"accuracy {best['accuracy']:.3f}, EER {best['eer']:.3f} ({metrics['seconds']:.0f} s); results in {run_dir}")
    return run_dir


def train_and_score(x, table: pd.DataFrame, models_dir: Path, config: TripletExperiment) -> tuple:
    """Train the heads (semi-hard, random-pick, dense) on the train split, validated on the val split, and
    fit the classifiers; returns ``(spaces, training records, dense trunk, {model: P(fake) of every face},
    {model: fitted classifier})``."""
    from ..training.triplet import train_dense_classifier

    head = config.head()
    labels = table["label"].to_numpy()
    train, val = ((table["split"] == s).to_numpy() for s in ("train", "val"))
    spaces, training = triplet_spaces(x, labels, train, val, models_dir, head, ("semi-hard", "random"), config.seed)
    log("training the dense classifier (no triplet loss)")
    dense, trunk, history = train_dense_classifier(x[train], labels[train], x[val], labels[val], epochs=head.epochs,
                                                   batch_size=head.batch_size, patience=head.patience,
                                                   seed=config.seed, dropout=head.dropout)
    training["dense"] = {"epochs_run": len(history["val_loss"]), "best_val_loss": min(history["val_loss"])}
    scores, fitted = classifier_scores(spaces, labels, train, config.seed)
    more, more_fitted = classifier_scores({"facenet": x}, labels, train, config.seed, kinds=("sgd",))
    scores.update(more)
    fitted.update(more_fitted)
    scores["dense"] = dense.predict(x, verbose=0, batch_size=1024).ravel()
    return spaces, training, trunk, scores, fitted


def write_predictions(run_dir: Path, table: pd.DataFrame, scores: dict) -> tuple:
    """``frame_predictions.csv`` (every face, every model) and ``predictions.csv`` (video = mean of its
    frames); returns both tables."""
    frame_table = table[["store_key", "video_id", "label", "split", "method", "frame"]].copy()
    for key in MODELS:
        frame_table[key] = scores[key]
    frame_table.to_csv(run_dir / "frame_predictions.csv", index=False)
    predictions = video_predictions(frame_table, MODELS)
    predictions.to_csv(run_dir / "predictions.csv", index=False)
    return frame_table, predictions


def write_tsne(run_dir: Path, x, triplet_space, trunk, table: pd.DataFrame, seed: int) -> None:
    """``tsne.csv`` of the test faces (Fig. 6): FaceNet, the dense net's trunk, the triplet head."""
    from ..explain.tsne import subsample, tsne_panels
    from ..models.triplet import embed

    log("t-SNE of the test faces (Fig. 6)")
    labels = table["label"].to_numpy()
    test = (table["split"] == "test").to_numpy()
    pick = np.flatnonzero(test)[subsample(int(test.sum()), TSNE_POINTS, labels[test], seed)]
    panels = {"(a) FaceNet embeddings": x[pick], "(b) without triplet loss (dense net)": embed(trunk, x[pick]),
              "(c) after the triplet network": triplet_space[pick]}
    tsne_panels(panels, labels[pick], seed).to_csv(run_dir / "tsne.csv", index=False)


def save_run_bundle(run_dir: Path, classifier, extract_config, facenet: str, config: dict, source: dict) -> Path:
    """The run's semi-hard head (``models/triplet``) and its fitted classifier as a bundle for
    ``deepfake-keras predict`` (``<run_dir>/bundle``)."""
    from ..inference.base import new_bundle_dir
    from ..inference.triplet import TripletBundle
    from ..training.triplet import load_triplet_head

    head, head_record = load_triplet_head(run_dir / "models" / "triplet")
    return TripletBundle.save(new_bundle_dir(run_dir), extract_config=extract_config, head=head,
                              head_record=head_record, classifier=classifier, facenet=facenet, source=source,
                              config=config)
