"""Celeb-DF v2: Xception on face crops with seven-way bagging against the 7:1 imbalance, and the
triplet network; Table I and Figures 4, 5, 7 of the paper.

Steps: manifest -> face store -> a validation hold-out by source clip -> 7 Xception models, each
on one seventh of the fake training videos and all real ones
(:mod:`deepfake_keras.training.bagging`; done bags are skipped and an interrupted one resumes) ->
per test video: mean frame probability per bag, majority vote of the bags (accuracy) and mean
probability (AUC) -> the triplet row (FaceNet + semi-hard triplet head + SGD / RF) ->
``metrics.json``, ``predictions.csv``, Grad-CAM and t-SNE inputs -> tables and figures
(:func:`deepfake_keras.reporting.report`) -> the model bundle.

The paper's settings are the defaults on real data (299 px, 30 epochs, Nadam 0.002 with schedule
decay 0.004, ImageNet weights). On the DEMO data the run uses small images, few frames and few
epochs so that it fits 2 CPU cores (:meth:`deepfake_keras.config.BaggingExperiment.demo`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import BaggingConfig, BaggingExperiment, ExtractConfig, XceptionConfig
from ..evaluation import binary_metrics
from ..io import log, save_json, versions, write_csv
from ..training.distribute import describe
from .common import (add_faceless, calibrate, choose_facenet, choose_weights, classifier_scores, default_store, embed_faces_of,
                     extract_faces, start_run, test_metrics, triplet_spaces, video_predictions)

EXPERIMENT = "celebdf_xception_bagging"
TRIPLET_MODELS = {"triplet_sgd": "Ours (Triplets) + SGD", "triplet_rf": "Ours (Triplets) + RF"}
GRADCAM_FACES = 3  # per class
TSNE_POINTS = 1000


def run(config: BaggingExperiment, out=None, *, workers: int = 1, progress: bool = True, command: str = "") -> Path:
    """Run the experiment with ``config``; results in ``out`` (default
    ``results/celebdf_xception_bagging/<timestamp>``). Returns the results folder."""
    from ..data.datasets import celebdf_manifest
    from ..data.store import FaceStore

    started = time.time()
    root, demo, run_dir, setup = start_run(config, "celebdf", EXPERIMENT, out)
    manifest = celebdf_manifest(root)
    extract_config = ExtractConfig(frames_per_video=config.frames_per_video, fps=config.fps)
    store = Path(config.store or default_store(root, extract_config))
    weights = choose_weights(config.weights, config.fallback_weights)
    facenet = choose_facenet(config.facenet, config.fallback_facenet)
    record = {**config.to_dict(), "experiment": EXPERIMENT, "demo": demo, "data_root": str(root),
              "store": str(store), "extract": extract_config.to_dict(), "xception_weights": weights,
              "facenet": facenet, "head": config.head().to_dict(),
              "distribute": {"bags": describe(setup["strategy"], config.batch_size, XceptionConfig.learning_rate),
                             "triplet": describe(setup["strategy"], config.triplet_batch_size, config.learning_rate)},
              "versions": versions(), "command": command}
    save_json(run_dir / "config.json", record)

    faces, summary = extract_faces(manifest, root, store, extract_config, workers, progress)
    train_videos = hold_out_validation(faces, config.seed)
    bags_dir = run_dir / "bags"
    test_faces, probs, bagged = train_and_predict_bags(faces, store, bags_dir, config, weights["used"], progress,
                                                       setup)
    x = embed_faces_of(store, faces, facenet["used"], progress, config.facenet_margin, config.facenet_standardization)
    frame_table, training = triplet_rows(x, faces, run_dir / "models", config, setup)
    frame_table["frames_only"] = probs.mean(axis=1)  # the bags' mean probability per frame
    write_csv(run_dir / "frame_predictions.csv", frame_table)
    predictions = video_predictions(frame_table, TRIPLET_MODELS, config.video_decision).merge(
        bagged[["store_key", "votes_fake", "vote", "mean_prob"] + [c for c in bagged if c.startswith("bag_")]],
        on="store_key").rename(columns={"vote": "mean_prob_decision"})
    predictions, no_face = add_faceless(predictions, manifest, [*TRIPLET_MODELS, "mean_prob"], config.no_face_score)
    predictions = predictions.rename(columns={"mean_prob_decision": "vote"})
    write_csv(run_dir / "predictions.csv", predictions)
    metrics = {"models": {"mean_prob": f"Ours (Frames only), {config.bags} bags", **TRIPLET_MODELS},
               "test": test_metrics(frame_table, predictions, list(TRIPLET_MODELS)), "training": training,
               "video_decision": config.video_decision,
               "counts": {"videos": int(len(manifest)), "failed_videos": summary.failed + summary.failed_before,
                          "faces": int(len(faces)), "test_videos": int(len(predictions)),
                          "test_videos_no_face": no_face, "no_face_score": config.no_face_score,
                          "train_fake_videos": int((train_videos["label"] == 1).sum()),
                          "train_real_videos": int((train_videos["label"] == 0).sum())}}
    # the paper: the majority vote of the bags for the accuracy, their mean probability for the AUC
    frames_only = binary_metrics(predictions["label"], predictions["mean_prob"],
                                 decisions=predictions["vote"])
    frames_only["vote_accuracy"] = frames_only["accuracy"]
    metrics["test"]["mean_prob"] = {"video": frames_only,
                                    "frame": binary_metrics(frame_table["label"], frame_table["frames_only"])}

    log("Grad-CAM (Fig. 4) and t-SNE (Fig. 5) from bag 0")
    write_figure_inputs(run_dir, FaceStore.open(store), test_faces, frame_table, config, weights["used"])
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)

    from ..reporting import report

    report(run_dir)
    bundle = save_run_bundle(run_dir, config, extract_config, record, metrics["test"]["mean_prob"], demo, faces, store,
                             progress)
    log(f"model bundle ({config.bags} Xception bags): {bundle}")
    log(f"{'DEMO ' if demo else ''}test videos: frames only ({config.bags} bags) AUC {frames_only['auc']:.3f}, vote "
        f"accuracy {frames_only['vote_accuracy']:.3f}; triplets + SGD AUC "
        f"{metrics['test']['triplet_sgd']['video']['auc']:.3f} ({metrics['seconds']:.0f} s); results in {run_dir}")
    return run_dir


def hold_out_validation(faces: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Celeb-DF has no validation split: hold out training videos per class, each real clip together
    with the fakes made from it (the manifest's ``group``: a fake in training would show its clip's
    scene). Marks their faces ``val`` in ``faces`` (in place) and returns the training videos."""
    from ..training.splits import split_validation

    groups = dict(zip(faces["store_key"], faces["group"]))
    train_videos, val_videos = split_validation(faces, seed=seed, groups=groups)
    faces.loc[faces["store_key"].isin(set(val_videos["store_key"])), "split"] = "val"
    return train_videos


def train_and_predict_bags(faces: pd.DataFrame, store: Path, bags_dir: Path, config: BaggingExperiment,
                           weights: str, progress: bool, setup: dict) -> tuple:
    """Train the bags, then score the test faces with each: ``(test faces, P(fake) per face and bag,
    per-video table of the bags' probabilities, vote and mean probability)``."""
    from ..evaluation import bagged_video_predictions
    from ..training.bagging import predict_bags, train_bagging

    log(f"training {config.bags} Xception bags ({config.image_size} px, {config.epochs} epochs, weights {weights})")
    train_bagging(faces, store, bags_dir, n_bags=config.bags, epochs=config.epochs, image_size=config.image_size,
                  batch_size=config.batch_size, weights=weights, seed=config.seed, patience=config.patience,
                  augment=config.augment, input_storage=config.input_storage, verbose=1 if progress else 0,
                  progress=progress, strategy=setup["strategy"], log_dir=setup["logs"])
    test_faces = faces[faces["split"] == "test"].reset_index(drop=True)
    probs = predict_bags(test_faces, store, bags_dir, progress=progress, input_storage=config.input_storage)
    bagged = bagged_video_predictions(test_faces, probs, keep=("label", "split", "method", "video_id"))
    return test_faces, probs, bagged


def triplet_rows(x, faces: pd.DataFrame, models_dir: Path, config: BaggingExperiment, setup: dict) -> tuple:
    """The triplet head (trained on the train split, early stopping on the validation hold-out), SGD and RF
    on its embeddings; returns the test faces' table with a score column per model, and the head's
    training record."""
    labels = faces["label"].to_numpy()
    train, val = (faces["split"] == "train").to_numpy(), (faces["split"] == "val").to_numpy()
    spaces, training = triplet_spaces(x, labels, train, val, models_dir, config.head(), seed=config.seed,
                                      strategy=setup["strategy"], logs=setup["logs"])
    test = (faces["split"] == "test").to_numpy()
    frame_table = faces.loc[test, ["store_key", "video_id", "label", "split", "method", "frame"]].reset_index(drop=True)
    scores, _ = classifier_scores(spaces, labels, train, config.seed, rows=test)  # test rows only
    for key, value in scores.items():
        frame_table[key] = value
    return frame_table, training


def write_figure_inputs(run_dir: Path, store, test_faces: pd.DataFrame, frame_table: pd.DataFrame,
                        config: BaggingExperiment, weights: str) -> None:
    """``gradcam.npz`` (Fig. 4: the faces the bags are surest of, per class, and bag 0's Grad-CAM of the
    class bag 0 predicts for each) and
    ``tsne.csv`` (Fig. 5: test faces before and after training, bag 0)."""
    from ..data.inputs import face_dataset
    from ..explain.gradcam import face_inputs, gradcam_faces
    from ..explain.tsne import subsample, tsne_panels
    from ..models import xception as xc
    from ..training.fit import WEIGHTS_FILE, load_weights

    model = load_weights(xc.build_xception(config.image_size, weights=None), run_dir / "bags" / "bag_0" / WEIGHTS_FILE)
    pick = []
    for label in (0, 1):  # per class, the faces the bags are surest of, one per video
        rows = frame_table[frame_table["label"] == label].sort_values("frames_only", ascending=not label)
        pick += list(rows.drop_duplicates("store_key").index[:GRADCAM_FACES])
    crops = np.stack([store.load_crop(c) for c in test_faces.loc[pick, "crop"]])
    scores = frame_table.loc[pick, "frames_only"].to_numpy()
    # each map explains the class bag 0 itself predicts for the face (the authors' grad_cam_visualize.py: the
    # predicted class of the one model drawn), not the ensemble's call, which bag 0 may not share
    own = model.predict(face_inputs(model, crops)[1], verbose=0)[:, 0]
    targets = np.where(own >= BaggingConfig.threshold, "fake", "real")
    heats, overlays = gradcam_faces(model, crops, target=targets)
    np.savez_compressed(run_dir / "gradcam.npz", faces=crops, heats=heats, overlays=overlays,
                        labels=frame_table.loc[pick, "label"].to_numpy(), scores=scores, bag0_scores=own,
                        targets=targets)
    sel = subsample(len(test_faces), TSNE_POINTS, test_faces["label"], config.seed)
    images = face_dataset(test_faces.iloc[sel], store.root, config.image_size, config.batch_size, labels=False,
                          storage=config.input_storage)
    before = xc.feature_model(xc.build_xception(config.image_size, weights), "avg_pool").predict(images, verbose=0)
    after = xc.feature_model(model).predict(images, verbose=0)
    tsne_panels({"before training (Xception features)": before, "after training (fc1, bag 0)": after},
                test_faces["label"].to_numpy()[sel], config.seed).to_csv(run_dir / "tsne.csv", index=False)


def save_run_bundle(run_dir: Path, config: BaggingExperiment, extract_config, record: dict, test: dict,
                    demo: bool, faces: pd.DataFrame, store: Path, progress: bool) -> Path:
    """The run's bags as a bundle for ``deepfake-keras predict`` (``<run_dir>/bundle``), its threshold
    calibrated on the validation videos (the equal-error point of the bags' mean probabilities) and, for
    DEMO runs, the flag that says so."""
    from ..evaluation import bagged_video_predictions
    from ..inference.base import new_bundle_dir
    from ..inference.xception import XceptionBundle
    from ..training.bagging import predict_bags
    from ..training.fit import WEIGHTS_FILE

    val = faces[faces["split"] == "val"].reset_index(drop=True)
    calibration = None
    if len(val):
        probs = predict_bags(val, store, run_dir / "bags", progress=progress)
        calibration = calibrate(bagged_video_predictions(val, probs), "mean_prob")
    return XceptionBundle.save(
        new_bundle_dir(run_dir), extract_config=extract_config, threshold=BaggingConfig.threshold,
        bag_weights=[run_dir / "bags" / f"bag_{i}" / WEIGHTS_FILE for i in range(config.bags)],
        image_size=config.image_size, config=record, calibration=calibration, demo_model=demo,
        source={"experiment": EXPERIMENT, "model": "mean_prob", "demo": demo, "test": test,
                "description": f"Xception, {config.bags} bags (majority vote, mean probability)"})
