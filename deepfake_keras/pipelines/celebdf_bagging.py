"""Celeb-DF v2: Xception on face crops with seven-way bagging against the 7:1 imbalance, and the
triplet network; Table I and Figures 4, 5, 7 of the paper.

Steps: manifest -> face store -> 7 Xception models, each on one seventh of the
fake training videos and all real ones (:mod:`deepfake_keras.training`; done
bags are skipped and an interrupted one resumes) -> per test video: mean frame
probability per bag, majority vote of the bags (accuracy) and mean probability
(AUC) -> the triplet row (FaceNet + semi-hard triplet head + SGD / RF) ->
``metrics.json``, ``predictions.csv``, Grad-CAM and t-SNE inputs -> tables and
figures (:func:`deepfake_keras.reporting.report`).

The paper's settings are the defaults on real data (299 px, 30 epochs, Nadam
0.002 with schedule decay 0.004, ImageNet weights). On the DEMO data the run
uses small images, few frames and few epochs so that it fits 2 CPU cores, and
prints the settings it used.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..config import ExtractConfig
from ..runs import log, make_run_dir, resolve_data_root, save_json, versions

EXPERIMENT = "celebdf_xception_bagging"
PAPER = {"frames": 25, "image_size": 299, "epochs": 30, "batch_size": 32}
DEMO = {"frames": 6, "image_size": 96, "epochs": 2, "batch_size": 16}
TRIPLET_MODELS = {"triplet_sgd": "Ours (Triplets) + SGD", "triplet_rf": "Ours (Triplets) + RF"}
GRADCAM_FACES = 3  # per class
TRIPLET_BATCH = 128
TSNE_POINTS = 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..models import triplet
    from ..training import N_BAGS, PATIENCE

    p.add_argument("--data-root", help="Celeb-DF v2 root (default: the built-in DEMO dataset)")
    p.add_argument("--out", help="results folder (default results/celebdf_xception_bagging/<timestamp>)")
    p.add_argument("--store", help="face store (default: a cache folder keyed by dataset and settings)")
    for name, help_text in (("frames", "frames per video"), ("image-size", "Xception input size, pixels"),
                            ("epochs", "epochs per bag (and for the triplet head)"), ("batch-size", "batch size")):
        key = name.replace("-", "_")
        p.add_argument(f"--{name}", type=int, help=f"{help_text} (default {PAPER[key]}; {DEMO[key]} on DEMO data)")
    p.add_argument("--fps", type=float, help="sample frames at this rate, capped at --frames (the paper: 5)")
    p.add_argument("--bags", type=int, default=N_BAGS, help=f"bags (default {N_BAGS}, the paper's)")
    p.add_argument("--weights", default="imagenet", help="Xception start: imagenet (the paper's), none, or a path")
    p.add_argument("--fallback-weights", default="none",
                   help="start to use, loudly and recorded, when --weights imagenet cannot be fetched "
                        "('stop' to stop instead)")
    p.add_argument("--patience", type=int, default=PATIENCE)
    p.add_argument("--facenet", default="facenet-vggface2-512", help="FaceNet for the triplet row")
    p.add_argument("--fallback-facenet", default="facenet-msceleb-128")
    p.add_argument("--triplet-epochs", type=int, default=triplet.EPOCHS, help="epochs of the triplet head")
    p.add_argument("--margin", type=float, default=triplet.MARGIN)
    p.add_argument("--dropout", type=float, default=0.5, help="dropout of the triplet head")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="face extraction worker processes")
    p.add_argument("--quiet", action="store_true")


def _settings(args, demo: bool) -> dict:
    defaults = DEMO if demo else PAPER
    out = {k: getattr(args, k) or v for k, v in defaults.items()}
    log(f"{'DEMO ' if demo else ''}settings: {out} (the paper's: {PAPER})")
    return out


def run(args):
    from ..data.datasets import celebdf_clip, celebdf_manifest
    from ..data.store import FaceStore
    from ..explain.gradcam import gradcam_faces
    from ..explain.tsne import subsample, tsne_panels
    from ..models import xception as xc
    from ..reporting import report
    from ..runs import default_store
    from ..training import WEIGHTS_FILE, bagged_video_predictions, predict_bags, split_validation, train_bagging
    from .common import (choose_facenet, choose_weights, classifier_scores, embed_faces_of, extract_faces, test_metrics,
                         triplet_spaces, video_predictions)

    started = time.time()
    root, demo = resolve_data_root(args.data_root, "celebdf", args.seed)
    s = _settings(args, demo)
    run_dir = make_run_dir(args.out, EXPERIMENT)
    log(f"results: {run_dir}")
    manifest = celebdf_manifest(root)
    extract_config = ExtractConfig(frames_per_video=s["frames"], fps=args.fps)
    store = args.store or default_store(root, extract_config)
    weights = choose_weights(args.weights, args.fallback_weights)
    facenet = choose_facenet(args.facenet, args.fallback_facenet)
    config = {"experiment": EXPERIMENT, "demo": demo, "data_root": str(root), "store": str(store),
              "extract": extract_config.to_dict(), **s, "bags": args.bags, "xception_weights": weights,
              "facenet": facenet, "triplet_epochs": args.triplet_epochs, "patience": args.patience, "margin": args.margin, "dropout": args.dropout,
              "seed": args.seed, "versions": versions(), "command": " ".join(getattr(args, "argv", []) or [])}
    save_json(run_dir / "config.json", config)

    faces, summary = extract_faces(manifest, root, store, extract_config, args.workers, not args.quiet)
    # Celeb-DF has no validation split: hold out videos of the training split per class, each real
    # clip together with the fakes made from it (a fake in training would show its clip's scene)
    clips = {k: celebdf_clip(v, label) for k, v, label in
             faces[["store_key", "video_id", "label"]].drop_duplicates("store_key").itertuples(index=False)}
    train_videos, val_videos = split_validation(faces, seed=args.seed, groups=clips)
    faces.loc[faces["store_key"].isin(set(val_videos["store_key"])), "split"] = "val"

    log(f"training {args.bags} Xception bags ({s['image_size']} px, {s['epochs']} epochs, weights {weights['used']})")
    bags_dir = run_dir / "bags"
    train_bagging(faces, store, bags_dir, n_bags=args.bags, epochs=s["epochs"], image_size=s["image_size"],
                  batch_size=s["batch_size"], weights=weights["used"], seed=args.seed, patience=args.patience,
                  verbose=0 if args.quiet else 1, progress=not args.quiet)
    test_faces = faces[faces["split"] == "test"].reset_index(drop=True)
    probs = predict_bags(test_faces, store, bags_dir, progress=not args.quiet)
    bagged = bagged_video_predictions(test_faces, probs, keep=("label", "split", "method", "video_id"))

    x = embed_faces_of(store, faces, facenet["used"], not args.quiet)
    labels = faces["label"].to_numpy()
    train, val = (faces["split"] == "train").to_numpy(), (faces["split"] == "val").to_numpy()
    spaces, training = triplet_spaces(x, labels, train, val, run_dir / "models", margin=args.margin,
                                      dropout=args.dropout, epochs=args.triplet_epochs, batch_size=TRIPLET_BATCH,
                                      patience=args.patience, seed=args.seed)
    test = (faces["split"] == "test").to_numpy()
    frame_table = faces.loc[test, ["store_key", "video_id", "label", "split", "method", "frame"]].reset_index(drop=True)
    for key, value in classifier_scores(spaces, labels, train, args.seed, rows=test).items():  # test rows only
        frame_table[key] = value
    frame_table["frames_only"] = probs.mean(axis=1)  # the bags' mean probability per frame
    frame_table.to_csv(run_dir / "frame_predictions.csv", index=False)
    predictions = video_predictions(frame_table, TRIPLET_MODELS).merge(
        bagged[["store_key", "votes_fake", "vote", "mean_prob"] + [c for c in bagged if c.startswith("bag_")]],
        on="store_key")
    predictions.to_csv(run_dir / "predictions.csv", index=False)

    metrics = {"models": {"mean_prob": "Ours (Frames only), 7 bags", **TRIPLET_MODELS},
               "test": test_metrics(frame_table, predictions, list(TRIPLET_MODELS)),
               "training": training,
               "counts": {"videos": int(len(manifest)), "failed_videos": summary.failed + summary.failed_before,
                          "faces": int(len(faces)), "test_videos": int(len(predictions)),
                          "train_fake_videos": int((train_videos["label"] == 1).sum()),
                          "train_real_videos": int((train_videos["label"] == 0).sum())}}
    from ..evaluation import binary_metrics

    frames_only = binary_metrics(predictions["label"], predictions["mean_prob"])
    frames_only["vote_accuracy"] = float((predictions["vote"] == predictions["label"]).mean())
    metrics["test"]["mean_prob"] = {"video": frames_only,
                                    "frame": binary_metrics(frame_table["label"], frame_table["frames_only"])}

    log("Grad-CAM (Fig. 4) and t-SNE (Fig. 5) from bag 0")
    model = xc.load_classifier(bags_dir / "bag_0" / WEIGHTS_FILE, s["image_size"])
    fs = FaceStore.open(store)
    pick = []
    for label in (0, 1):  # per class, the faces the bags are surest of, one per video
        rows = frame_table[frame_table["label"] == label].sort_values("frames_only", ascending=not label)
        pick += list(rows.drop_duplicates("store_key").index[:GRADCAM_FACES])
    crops = np.stack([fs.load_crop(c) for c in test_faces.loc[pick, "crop"]])
    heats, overlays = gradcam_faces(model, crops)
    np.savez_compressed(run_dir / "gradcam.npz", faces=crops, heats=heats, overlays=overlays,
                        labels=frame_table.loc[pick, "label"].to_numpy(),
                        scores=frame_table.loc[pick, "frames_only"].to_numpy())
    sel = subsample(len(test_faces), TSNE_POINTS, test_faces["label"], args.seed)
    images = xc.face_dataset(test_faces.iloc[sel], store, s["image_size"], s["batch_size"], labels=False)
    before = xc.feature_model(xc.build_xception(s["image_size"], weights["used"]), "avg_pool").predict(images, verbose=0)
    after = xc.feature_model(model).predict(images, verbose=0)
    tsne_panels({"before training (Xception features)": before, "after training (fc1, bag 0)": after},
                test_faces["label"].to_numpy()[sel], args.seed).to_csv(run_dir / "tsne.csv", index=False)

    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)
    report(run_dir)
    from ..bundle import new_bundle_dir, save_bundle  # the run's bags, for `deepfake-keras predict`
    from ..training import THRESHOLD

    bundle = save_bundle(new_bundle_dir(run_dir), "xception", extract_config=extract_config, threshold=THRESHOLD,
                         bag_weights=[bags_dir / f"bag_{i}" / WEIGHTS_FILE for i in range(args.bags)],
                         image_size=s["image_size"], config=config,
                         source={"experiment": EXPERIMENT, "model": "mean_prob", "demo": demo,
                                 "description": f"Xception, {args.bags} bags (majority vote, mean probability)",
                                 "test": metrics["test"]["mean_prob"]})
    log(f"model bundle ({args.bags} Xception bags): {bundle}")
    log(f"{'DEMO ' if demo else ''}test videos: frames only (7 bags) AUC {frames_only['auc']:.3f}, vote accuracy "
        f"{frames_only['vote_accuracy']:.3f}; triplets + SGD AUC {metrics['test']['triplet_sgd']['video']['auc']:.3f} "
        f"({metrics['seconds']:.0f} s); results in {run_dir}")
    return run_dir


def main(argv=None) -> int:
    import sys

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    args.argv = sys.argv if argv is None else ["celebdf_xception_bagging.py", *argv]
    run(args)
    return 0
