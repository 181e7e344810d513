"""FF++ (c40, NeuralTextures vs pristine by default): FaceNet embeddings -> triplet network ->
RF / SGD -> video scores. Tables II (triplet rows), III, IV and Figures 6, 7 of the paper.

Steps (each cached or cheap, so a re-run resumes): manifest -> face store
(MTCNN crops, :mod:`deepfake_keras.data.extract`) -> FaceNet embeddings
(cached in the store) -> for the official split, or for each fold of a K-fold
cross-validation by pair (``folds``): heads trained on the training videos with
the best epoch kept on the validation videos, classifiers on their embeddings,
scores of the test videos -> ``metrics.json``, ``predictions.csv`` -> tables and
figures (:func:`deepfake_keras.reporting.report`) -> the model bundle.

Models compared (video score = mean of the frame scores; the video's call: the
majority of its frames, the authors', or ``video_decision="mean"``):

==================  ===============================================================
triplet_rf / _sgd   semi-hard triplet head (the paper's), then Random Forest / SGD;
                    Table II's triplet row is the RF (86.74 = 242/279 in the paper)
random_rf / _sgd    random-pick triplets with the loss of Eq. 1 (the paper's comparison)
facenet_sgd         SGD on the FaceNet embeddings themselves (no triplet network)
dense               the head's network trained with cross-entropy (ours, no triplet)
facenet_std_sgd     SGD on the standardised FaceNet embeddings (ours, no triplet)
video_stats_lr      logistic regression on each video's mean and standard deviation of its
                    FaceNet embeddings (ours: a video-level model, beyond the paper)
video_geometry_lr   the same with three numbers per face added (MTCNN's confidence, the nose's
                    offset and the mouth's width in inter-ocular distances; ours)
==================  ===============================================================

The paper's method (semi-hard triplets + RF / SGD) stays the default and the
paper's row; the rows marked "ours" are comparisons this reproduction adds.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ExtractConfig, TripletExperiment
from ..io import log, save_json, versions, write_csv
from ..training.distribute import describe
from .common import (add_faceless, calibrate, choose_facenet, classifier_scores, default_store, embed_faces_of, extract_faces,
                     fold_summary, per_method_accuracy, splits_of, start_run, test_metrics, triplet_spaces,
                     video_predictions)

EXPERIMENT = "ffpp_triplet"
MODELS = {
    "triplet_rf": "Triplets (Semi-hard) + RF",
    "triplet_sgd": "Triplets (Semi-hard) + SGD",
    "random_rf": "Triplets (random pick) + RF",
    "random_sgd": "Triplets (random pick) + SGD",
    "facenet_sgd": "FaceNet + SGD (no triplet)",
    "dense": "FaceNet + dense net, cross-entropy (ours, no triplet)",
    "facenet_std_sgd": "FaceNet standardised + SGD (ours, no triplet)",
}
VIDEO_MODELS = {  # a score per video, not per frame
    "video_stats_lr": "FaceNet per-video mean + sd, logistic regression (ours, no triplet)",
    "video_geometry_lr": "FaceNet and face geometry, per-video mean + sd, logistic regression (ours, no triplet)",
}
ALL_MODELS = {**MODELS, **VIDEO_MODELS}
BUNDLED = "triplet_sgd"  # the model saved as the run's bundle
TSNE_POINTS = 1500


def run(config: TripletExperiment, out=None, *, workers: int = 1, progress: bool = True, command: str = "") -> Path:
    """Run the experiment with ``config``; results in ``out`` (default ``results/ffpp_triplet/<timestamp>``).
    ``workers``: face extraction processes. Returns the results folder."""
    from ..data.datasets import ffpp_manifest

    started = time.time()
    root, demo, run_dir, setup = start_run(config, "ffpp", EXPERIMENT, out)
    manifest = ffpp_manifest(root, config.compression, config.methods, config.splits)
    extract_config = ExtractConfig(frames_per_video=config.frames_per_video)
    store = Path(config.store or default_store(root, extract_config))
    facenet = choose_facenet(config.facenet, config.fallback_facenet)
    record = {**config.to_dict(), "experiment": EXPERIMENT, "demo": demo, "data_root": str(root),
              "store": str(store), "extract": extract_config.to_dict(), "facenet": facenet,
              "head": config.head().to_dict(), "distribute": describe(setup["strategy"], config.triplet_batch_size,
                                                                       config.learning_rate),
              "versions": versions(), "command": command}
    save_json(run_dir / "config.json", record)

    table, summary = extract_faces(manifest, root, store, extract_config, workers, progress)
    x = embed_faces_of(store, table, facenet["used"], progress, config.facenet_margin, config.facenet_standardization)
    splits = splits_of(manifest, config.folds, config.seed)
    if "test" not in splits[0]["side"].values():
        return train_only(run_dir, x, table, manifest, splits[0], config, setup, record, extract_config,
                          facenet["used"], summary, demo, started)
    frames, videos, per_fold, training, first, tested = [], [], [], {}, None, set()
    for split in splits:
        part = table.assign(split=table["store_key"].map(split["side"]))
        trained = train_and_score(x, part, run_dir / "models" / split["name"], config, setup["strategy"],
                                  setup["logs"] / split["name"])
        frame_table, predictions = tables_of(part, manifest.assign(split=manifest["store_key"].map(split["side"])),
                                             trained, config, split["fold"])
        tested |= {k for k, side in split["side"].items() if side == "test"}
        frames.append(frame_table)
        videos.append(predictions)
        per_fold.append(test_metrics(frame_table, predictions, ALL_MODELS))
        training[split["name"] or "split"] = trained["training"]
        first = first or trained
    frame_table, predictions = pd.concat(frames, ignore_index=True), pd.concat(videos, ignore_index=True)
    write_csv(run_dir / "frame_predictions.csv", frame_table)
    write_csv(run_dir / "predictions.csv", predictions)
    metrics = {"models": ALL_MODELS, "test": test_metrics(frame_table, predictions, ALL_MODELS),
               "training": training, "per_method": per_method_accuracy(predictions, ALL_MODELS),
               "video_decision": config.video_decision,
               "counts": counts(manifest, table, tested, summary, config)}
    if config.folds:
        metrics["cv"] = fold_summary(per_fold, config.folds, "pair")
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)
    write_tsne(run_dir, x, first, table.assign(split=first["split"]), config)

    from ..reporting import report

    report(run_dir)
    bundle = save_run_bundle(run_dir, first, table.assign(split=first["split"]), extract_config, facenet["used"],
                             record, metrics["test"][BUNDLED], demo)
    log(f"model bundle ({MODELS[BUNDLED]}{', trained in fold 0' if config.folds else ''}): {bundle}")
    best = metrics["test"]["triplet_rf"]["video"]
    how = f"{config.folds}-fold CV by pair, pooled" if config.folds else "the test split"
    log(f"{'DEMO ' if demo else ''}triplets + RF on {how}: video AUC {best['auc']:.3f}, accuracy "
        f"{best['accuracy']:.3f}, EER {best['eer']:.3f} ({metrics['seconds']:.0f} s); results in {run_dir}")
    return run_dir


def train_only(run_dir: Path, x, table: pd.DataFrame, manifest: pd.DataFrame, split: dict,
               config: TripletExperiment, setup: dict, record: dict, extract_config, facenet: str, summary, demo: bool,
               started: float) -> Path:
    """A split without test videos (for example the final model, trained on all the videos one has): the
    models are trained and chosen on the validation videos, and the bundle is written; no test metrics,
    tables or figures. ``metrics.json`` says so; ``deepfake-keras evaluate`` tests the bundle elsewhere."""
    part = table.assign(split=table["store_key"].map(split["side"]))
    trained = train_and_score(x, part, run_dir / "models", config, setup["strategy"], setup["logs"])
    note = ("no test videos in the splits: the models were trained and chosen on the validation videos, and the "
            "bundle written; test it with `deepfake-keras evaluate --model <run>/bundle`")
    metrics = {"models": ALL_MODELS, "test": None, "note": note, "training": {"split": trained["training"]},
               "counts": counts(manifest, table, set(), summary, config), "seconds": round(time.time() - started, 1)}
    save_json(run_dir / "metrics.json", metrics)
    bundle = save_run_bundle(run_dir, trained, part, extract_config, facenet, record, None, demo)
    log(f"{note}; model bundle ({MODELS[BUNDLED]}): {bundle}")
    return run_dir


def train_and_score(x, table: pd.DataFrame, models_dir: Path, config: TripletExperiment, strategy=None,
                    logs: Path | None = None) -> dict:
    """Train the heads (semi-hard, random-pick, the dense net) on the ``train`` rows of ``table``, keeping
    the best epoch on the ``val`` rows, and fit the classifiers; returns ``scores`` ({model: P(fake) of
    every row}), ``fitted`` classifiers, ``spaces``, the dense ``trunk``, ``training`` records, the
    ``split`` of every row and ``models_dir``."""
    from ..training.triplet import train_dense_classifier

    head = config.head()
    labels = table["label"].to_numpy()
    train, val = ((table["split"] == s).to_numpy() for s in ("train", "val"))
    spaces, training = triplet_spaces(x, labels, train, val, models_dir, head, ("semi-hard", "random"), config.seed,
                                      strategy, logs)
    log("training the dense classifier (no triplet loss)")
    dense, trunk, history = train_dense_classifier(x[train], labels[train], x[val], labels[val], epochs=head.epochs,
                                                   batch_size=head.batch_size, patience=head.patience,
                                                   learning_rate=head.learning_rate, seed=config.seed,
                                                   dropout=head.dropout, normalize=head.normalize, strategy=strategy,
                                                   log_dir=None if logs is None else logs / "dense")
    training["dense"] = {"epochs_run": len(history["val_loss"]), "best_val_loss": min(history["val_loss"])}
    scores, fitted = classifier_scores(spaces, labels, train, config.seed)
    for space, scale in (("facenet", False), ("facenet_std", True)):
        more, more_fitted = classifier_scores({space: x}, labels, train, config.seed, kinds=("sgd",), scale=scale)
        scores.update(more)
        fitted.update(more_fitted)
    scores["dense"] = dense.predict(x, verbose=0, batch_size=1024).ravel()
    return {"scores": scores, "fitted": fitted, "spaces": spaces, "trunk": trunk, "training": training,
            "video_scores": {"video_stats_lr": video_stats_scores(x, table, config.seed),
                             "video_geometry_lr": video_stats_scores(x, table, config.seed, geometry=True)},
            "split": table["split"].to_numpy(), "models_dir": models_dir}


def video_stats_scores(x, table: pd.DataFrame, seed: int, geometry: bool = False) -> pd.Series:
    """P(fake) per video (a Series by store key) from a logistic regression on the mean and standard
    deviation of each video's FaceNet embeddings (and, with ``geometry``, of its faces' geometry,
    :func:`deepfake_keras.training.classifiers.face_geometry`), fitted on the training videos (ours,
    beyond the paper)."""
    from ..training.classifiers import face_geometry, fit_classifier, frame_scores, video_features

    rows = np.hstack([x, face_geometry(table)]) if geometry else x
    keys, features = video_features(rows, table["store_key"].to_numpy())
    videos = table.drop_duplicates("store_key").set_index("store_key").loc[keys]
    train = (videos["split"] == "train").to_numpy()
    clf = fit_classifier("logistic", features[train], videos["label"].to_numpy()[train], seed=seed, scale=True)
    return pd.Series(frame_scores(clf, features), index=keys)


def tables_of(table: pd.DataFrame, manifest: pd.DataFrame, trained: dict, config: TripletExperiment, fold) -> tuple:
    """The frame and video tables of one split: every scored face (with ``folds``, the test faces only, each
    in its fold), and one row per video with each model's score and call; test videos without a face left
    out or scored ``no_face_score``."""
    frame_table = table[["store_key", "video_id", "label", "split", "method", "frame"]].copy()
    for key in MODELS:
        frame_table[key] = trained["scores"][key]
    if config.folds:
        frame_table = frame_table[frame_table["split"] == "test"].assign(fold=fold).reset_index(drop=True)
    predictions = video_predictions(frame_table, MODELS, config.video_decision)
    for key, scores in trained["video_scores"].items():
        predictions[key] = predictions["store_key"].map(scores)
        predictions[f"{key}_decision"] = (predictions[key] >= 0.5).astype(int)
    predictions, _ = add_faceless(predictions, manifest, ALL_MODELS, config.no_face_score)
    if config.folds:
        predictions["fold"] = fold
    return frame_table, predictions


def counts(manifest: pd.DataFrame, table: pd.DataFrame, tested: set, summary, config: TripletExperiment) -> dict:
    """Videos, faces, and the test videos in which no face was found (left out of the metrics, or scored
    ``no_face_score``)."""
    faced = set(table["store_key"])
    return {"videos": int(len(manifest)), "videos_with_faces": len(faced),
            "failed_videos": summary.failed + summary.failed_before, "faces": int(len(table)),
            "test_videos": len(tested), "test_videos_no_face": len(tested - faced),
            "no_face_score": config.no_face_score}


def write_tsne(run_dir: Path, x, trained: dict, table: pd.DataFrame, config: TripletExperiment) -> None:
    """``tsne.csv`` of the test faces (of fold 0 with ``folds``), Fig. 6: (a) FaceNet, (b) without the triplet
    network: the untrained head, as the authors draw it (``train_triplets_semi_hard.py``, 09.py lines 372-376:
    ``testing_embeddings = create_base_network(...)``, its random weights), (c) after the triplet network,
    (d) ours: the same network trained with cross-entropy."""
    import tensorflow as tf

    from ..explain.tsne import subsample, tsne_panels
    from ..models.triplet import build_triplet_head, embed

    log("t-SNE of the test faces (Fig. 6)")
    labels = table["label"].to_numpy()
    test = (table["split"] == "test").to_numpy()
    pick = np.flatnonzero(test)[subsample(int(test.sum()), TSNE_POINTS, labels[test], config.seed)]
    head = config.head()
    tf.keras.utils.set_random_seed(config.seed)
    untrained = build_triplet_head(x.shape[1], head.units, head.embedding_dim, head.dropout, head.normalize,
                                   head.initializer)
    panels = {"(a) FaceNet embeddings": x[pick], "(b) without the triplet network (untrained head)":
              embed(untrained, x[pick]), "(c) after the triplet network": trained["spaces"]["triplet"][pick],
              "(d) ours: dense net, cross-entropy": embed(trained["trunk"], x[pick])}
    tsne_panels(panels, labels[pick], config.seed).to_csv(run_dir / "tsne.csv", index=False)


def save_run_bundle(run_dir: Path, trained: dict, table: pd.DataFrame, extract_config, facenet: str, config: dict,
                    test: dict | None, demo: bool) -> Path:
    """The semi-hard head (``models/[fold_0/]triplet``) and its fitted classifier as a bundle for
    ``deepfake-keras predict`` (``<run_dir>/bundle``), with its threshold calibrated on the validation
    videos (the equal-error point of their scores), its ``test`` metrics (None: not tested) and, for DEMO
    runs, the flag that says so."""
    from ..embeddings import resolve_facenet
    from ..evaluation import video_scores
    from ..inference.base import new_bundle_dir
    from ..inference.triplet import TripletBundle
    from ..training.triplet import load_triplet_head

    head, head_record = load_triplet_head(trained["models_dir"] / "triplet")
    val = table.assign(score=trained["scores"][BUNDLED])[table["split"] == "val"]
    calibration = calibrate(video_scores(val, "score"), "score") if len(val) else None
    return TripletBundle.save(new_bundle_dir(run_dir), extract_config=extract_config, head=head,
                              head_record=head_record, classifier=trained["fitted"][BUNDLED],
                              facenet=resolve_facenet(facenet, config["facenet_standardization"]),
                              facenet_margin=config["facenet_margin"],
                              source={"experiment": EXPERIMENT, "model": BUNDLED, "description": MODELS[BUNDLED],
                                      "demo": demo, "test": test},
                              config=config, calibration=calibration, demo_model=demo)
