"""The paper's method and its comparisons on real FaceForensics++ footage, K-fold cross-validation by pair.

On ``ffpp_c23_subset`` of the shared test data (92 real FF++ c23 videos of the official train pairs, the
first 10 s of each: 30 originals, 30 Deepfakes, 16 Face2Face, 16 FaceSwap), for each manipulation against
the originals and for all three at once, the triplet experiment (``deepfake-keras ffpp-triplet --folds K``,
the authors' settings, 25 frames per video, the 128-d FaceNet of a PyPI package: the paper's 512-d one cannot
be downloaded here) with K-fold cross-validation by pair. One table: every model's video AUC, accuracy and
EER, mean ± sd over the folds, and the time each run took. Face crops and embeddings are cached in the
package cache after the first run.

    python benchmarks/real_ffpp.py                       # 4 folds, every method, into results/real_ffpp/
    python benchmarks/real_ffpp.py --methods Deepfakes --folds 4 --seeds 0 1 2

A benchmark, not a test: it prints what it measured; nothing asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("DEEPFAKE_KERAS_TEST_DATA", REPO / ".." / "shared" / "data"))
METHOD_SETS = {"Deepfakes": ("Deepfakes",), "Face2Face": ("Face2Face",), "FaceSwap": ("FaceSwap",),
               "all": ("Deepfakes", "Face2Face", "FaceSwap")}
ROWS = {  # the table's rows: the paper's method first, then its comparisons, then ours
    "triplet_rf": "Triplets (semi-hard) + RF [paper's Table II row]",
    "triplet_sgd": "Triplets (semi-hard) + SGD",
    "random_rf": "Triplets (random pick) + RF",
    "facenet_sgd": "FaceNet + SGD, no head",
    "video_stats_lr": "ours: FaceNet per-video mean + sd, LR",
    "video_geometry_lr": "ours: + face geometry, LR",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared test data folder")
    ap.add_argument("--methods", nargs="+", default=list(METHOD_SETS), choices=list(METHOD_SETS))
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the folds and the models")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "real_ffpp")
    ap.add_argument("--json", type=Path, help="also write every number to this file")
    args = ap.parse_args(argv)
    subset = args.data / "ffpp_c23_subset"
    if not subset.is_dir():
        print(f"{subset} not found (see --data)")
        return 2
    from deepfake_keras.config import TripletExperiment
    from deepfake_keras.io import load_json
    from deepfake_keras.pipelines import ffpp_triplet

    results = []
    for name in args.methods:
        for seed in args.seeds:
            config = TripletExperiment.paper(data_root=str(subset), compression="c23", methods=METHOD_SETS[name],
                                             folds=args.folds, seed=seed, facenet="facenet-msceleb-128")
            out = args.out / f"{name}-folds{args.folds}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
            started = time.time()
            try:
                ffpp_triplet.run(config, out, progress=False)
            except (ValueError, RuntimeError, OSError) as exc:  # recorded, shown in the table, the rest still run
                results.append({"methods": name, "seed": seed, "run": str(out), "error": f"{type(exc).__name__}: {exc}"})
                print(f"{name} (seed {seed}) failed: {exc}")
            else:
                metrics = load_json(out / "metrics.json")
                results.append({"methods": name, "seed": seed, "seconds": round(time.time() - started, 1),
                                "videos": metrics["counts"]["videos"], "run": str(out), "cv": metrics["cv"]})
            if args.json:  # after every run: a long benchmark stopped half way keeps what it measured
                args.json.write_text(json.dumps(results, indent=2))
    print(table(results, args.folds))
    return 1 if any("error" in r for r in results) else 0


def table(results: list, folds: int) -> str:
    lines = ["| methods vs pristine | videos | model | video AUC | accuracy | EER | time (s) |",
             "| --- | ---: | --- | --- | --- | --- | ---: |"]
    many_seeds = len({x["seed"] for x in results}) > 1
    for r in results:
        if "error" in r:
            lines.append(f"| {r['methods']} | | failed: {r['error']} | | | | |")
            continue
        mean, sd = r["cv"]["mean"], r["cv"]["sd"]
        for key, name in ROWS.items():
            if key not in mean:
                continue
            cells = [f"{100 * mean[key][m]:.1f} ± {100 * sd[key][m]:.1f}" for m in ("auc", "accuracy", "eer")]
            seed = f" (seed {r['seed']})" if many_seeds else ""
            lines.append(f"| {r['methods']}{seed} | {r['videos']} | {name} | {' | '.join(cells)} | {r['seconds']:.0f} |")
    lines.append(f"\n{folds}-fold cross-validation by pair; mean ± sd over the folds, in percent.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
