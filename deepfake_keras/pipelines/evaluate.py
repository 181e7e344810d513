"""Any trained model on any labelled dataset: ``deepfake-keras evaluate --model BUNDLE --dataset ... --root ...``.

The paper lists cross-dataset testing as future work; DeepfakeBench made it the usual way to judge a
detector (train on FF++, test on Celeb-DF, DFDC, DFD...). Steps: the dataset's manifest (any loader of
:data:`deepfake_keras.data.datasets.LOADERS` with labels) -> faces extracted with the bundle's own
extraction settings into the face store (cached: a second run extracts nothing) -> every face scored by
the bundle (triplet bundles through the store's cached FaceNet embeddings; Xception bundles keep each
bag's probabilities) -> each video's score and verdict by the very call ``predict`` makes,
:meth:`~deepfake_keras.inference.base.Bundle.video_decision` (the bundle's aggregation, threshold and
decision: Xception bundles by the vote of their bags) -> metrics.

A label file (``metadata.json``, ``labels.csv``, ``--labels``) that lists videos which are not there stops
the run before anything is written (:class:`~deepfake_keras.data.datasets.MissingVideos`, naming the file
and the first of them), unless ``missing="record"`` (``--allow-missing``): then they are listed as failed.
:func:`exit_status`: 1 when some video was not scored (unreadable, missing or without a face).

Writes ``config.json``, ``predictions.csv`` (one row per video: score, verdict, faces; videos that could
not be read or showed no face listed with their status), ``metrics.json`` (video and frame level: AUC,
accuracy, P/R/F1 with fake and with pristine as the positive class, EER, per-method accuracy where methods
are known, counts of videos without a face), ``table.md`` and ``roc.png``. ``deepfake-keras report --cross
RUN...`` puts several evaluations side by side.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Settings
from ..io import about, log, save_json, versions, write_csv
from .common import default_store, extract_faces, make_run_dir

EXPERIMENT = "evaluate"
SPLITS = ("test", "all")
#: the datasets evaluate reads: ``folder`` is a labelled folder (real/ and fake/, or ``--labels``), read by
#: :func:`~deepfake_keras.data.datasets.labelled_manifest`; ``labelled`` is an older name of it
DATASETS = ("celebdf", "dfd", "dfdc", "ffpp", "folder")
ALIASES = {"labelled": "folder"}


@dataclass(frozen=True)
class EvaluateConfig(Settings):
    """What to evaluate: a bundle on a dataset's videos (``split`` "test", the default, or "all")."""

    model: str = ""
    dataset: str = ""
    root: str = ""
    split: str = "test"
    labels: str | None = None  # dfdc, folder: a CSV of labels
    splits: str | None = None  # ffpp: the split files' folder
    compression: tuple = ("c40",)
    methods: tuple = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
    store: str | None = None
    threshold: str = "calibrated"  # or "fixed": see Bundle.threshold_choice
    missing: str = "error"  # or "record": videos a label file lists but that are not there are listed as failed

    def __post_init__(self):
        object.__setattr__(self, "dataset", ALIASES.get(self.dataset, self.dataset))  # labelled -> folder
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.missing not in ("error", "record"):
            raise ValueError(f"missing must be error or record, got {self.missing!r}")


def run(config: EvaluateConfig, out=None, *, workers: int = 1, progress: bool = True, command: str = "") -> Path:
    """Evaluate ``config.model`` on the dataset; results in ``out`` (default ``results/evaluate/<timestamp>``)."""
    from ..inference.base import DEMO_WARNING
    from ..inference.bundle import load_bundle

    started = time.time()
    bundle = load_bundle(config.model)
    bundle.threshold_choice = config.threshold
    if bundle.demo_model:
        log(DEMO_WARNING)
    manifest = dataset_manifest(config)
    root = Path(config.root).resolve()
    run_dir = make_run_dir(out, EXPERIMENT)
    log(f"results: {run_dir}")
    store = Path(config.store or default_store(root, bundle.extract_config))
    record = {**config.to_dict(), "experiment": EXPERIMENT, "store": str(store), "bundle": bundle_summary(bundle),
              "extract": bundle.extract_config.to_dict(), "versions": versions(), "command": command}
    save_json(run_dir / "config.json", record)

    faces, summary = extract_faces(manifest, root, store, bundle.extract_config, workers, progress)
    scores, per_model = frame_scores(bundle, store, faces, progress)
    faces = faces.assign(score=scores)
    predictions = video_verdicts(bundle, faces, manifest, store, per_model)
    write_csv(run_dir / "predictions.csv", predictions)
    metrics = evaluation_metrics(faces, predictions, bundle.threshold)
    metrics.update(demo_model=bundle.demo_model, threshold={"value": bundle.threshold, "source": bundle.threshold_source})
    metrics["seconds"] = round(time.time() - started, 1)
    save_json(run_dir / "metrics.json", metrics)

    from ..reporting import report

    report(run_dir)
    video = {k: float("nan") if v is None else v for k, v in metrics.get("video", {}).items()}  # None: no video
    log(f"{bundle.kind} bundle on {config.dataset} {root.name} ({config.split}): {metrics['counts']['scored']} videos "
        f"scored, video AUC {video.get('auc', float('nan')):.3f}, accuracy {video.get('accuracy', float('nan')):.3f} "
        f"({metrics['seconds']:.0f} s); results in {run_dir}")
    counts = metrics["counts"]
    if counts["videos"] > counts["scored"]:
        log(f"{counts['videos'] - counts['scored']} of {counts['videos']} videos not scored ({counts['failed']} "
            f"unreadable or missing, {counts['no_face']} with no face): listed in {run_dir / 'predictions.csv'}")
    return run_dir


def exit_status(run_dir) -> int:
    """The command's exit status, as extract and predict give it: 0 every video scored, 1 some were not
    (unreadable, missing, or no face found; each listed in predictions.csv)."""
    counts = json.loads((Path(run_dir) / "metrics.json").read_text())["counts"]
    return 0 if counts["scored"] == counts["videos"] else 1


def dataset_manifest(config: EvaluateConfig) -> pd.DataFrame:
    """The labelled videos to evaluate on (every one with ``split="all"``). A label file listing videos that
    are not there raises :class:`~deepfake_keras.data.datasets.MissingVideos` unless ``config.missing`` is
    "record"."""
    from ..data.datasets import DatasetError, MissingVideos, load_manifest

    dataset = config.dataset
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset {config.dataset!r}; one of {list(DATASETS)}")
    try:  # evaluate's "folder" is the labelled folder: evaluate needs labels
        manifest = load_manifest("labelled" if dataset == "folder" else dataset, config.root,
                                 compression=config.compression, methods=config.methods, splits=config.splits,
                                 labels=config.labels, missing=config.missing)
    except MissingVideos as e:
        raise about(MissingVideos(f"{e}; nothing written (allowing missing videos lists them as failed and goes "
                                  f"on)"), "allow_missing") from None
    if (manifest["label"] < 0).any():
        raise DatasetError(f"{config.root}: a {dataset} dataset has no labels; evaluate needs real and fake "
                           f"videos (a labelled folder needs real/ and fake/ folders or a labels file)")
    if config.split == "test":
        if not (manifest["split"] == "test").any():
            raise DatasetError(f"{config.root}: no test video in this {config.dataset} dataset (splits: "
                               f"{sorted(manifest['split'].unique())}); evaluate on all of them")
        manifest = manifest[manifest["split"] == "test"].reset_index(drop=True)
    return manifest


def bundle_summary(bundle) -> dict:
    source = bundle.meta.get("source", {})
    return {"path": str(bundle.path), "kind": bundle.kind, "created": bundle.meta.get("created"),
            "experiment": source.get("experiment"), "model": source.get("model"),
            "description": source.get("description"), "demo": bool(source.get("demo", False)),
            "threshold": bundle.threshold, "threshold_source": bundle.threshold_source,
            "demo_model": bundle.demo_model, "aggregation": bundle.aggregation, "decision": bundle.decision}


def frame_scores(bundle, store: Path, faces: pd.DataFrame, progress: bool) -> tuple:
    """``(scores, per_model)`` of every face, as :meth:`~deepfake_keras.inference.base.Bundle.score_faces`
    gives them: P(fake), and where the score is a mean over several models (Xception bags) their ``(n_faces,
    n_models)`` probabilities, else None. Triplet bundles from the store's cached FaceNet embeddings made
    with the bundle's FaceNet, input standardisation and crop margin; other kinds from the stored crops."""
    from ..data.store import FaceStore

    if len(faces) == 0:
        return np.zeros(0), None
    if hasattr(bundle, "score_embeddings"):
        from ..embeddings import embed_store

        spec = bundle.facenet_spec
        weights = str(bundle.facenet_file) if bundle.facenet_file is not None else spec.name
        _, x = embed_store(store, weights, progress=progress, margin=bundle.facenet_margin,
                           standardization=spec.standardization, model=bundle.facenet(), faces=faces)
        return bundle.score_embeddings(x), None
    fs = FaceStore.open(store)
    scores, per_model = [], []
    for start in range(0, len(faces), 256):
        crops = [fs.load_crop(c) for c in faces["crop"].iloc[start:start + 256]]
        score, each = bundle.score_faces(crops)
        scores.append(score)
        per_model.append(each)
    return np.concatenate(scores), None if per_model[0] is None else np.concatenate(per_model)


def video_verdicts(bundle, faces: pd.DataFrame, manifest: pd.DataFrame, store: Path, per_model=None) -> pd.DataFrame:
    """One row per video of the manifest: its label, method, faces, and the bundle's score and verdict (the
    videos that could not be read or showed no face: their status and reason, no score). Each video is
    called by ``bundle.video_decision(scores, per_model)``, the call predict makes (``per_model``: the
    faces' per-model probabilities, row for row, see :func:`frame_scores`); an Xception bundle's rows also
    hold how many of its bags called the video fake (``votes_fake`` of ``n_bags``)."""
    from ..data.store import FaceStore

    fs = FaceStore.open(store)
    rows = []
    per_video = dict(tuple(faces.reset_index(drop=True).groupby("store_key", sort=False)))
    for video in manifest.itertuples(index=False):
        row = {"store_key": video.store_key, "video_id": video.video_id, "label": int(video.label),
               "method": video.method, "group": getattr(video, "group", ""), "faces": 0, "score": np.nan,
               "verdict": "", "status": "scored", "reason": ""}
        mine = per_video.get(video.store_key)
        if mine is None:
            done = fs.status(video.store_key) or {}
            row.update(status="failed" if done.get("status") == "failed" and done.get("frames_sampled", 0) == 0
                       else "no face found", reason=done.get("reason", ""))
        else:
            decision = bundle.video_decision(mine["score"].to_numpy(),
                                             None if per_model is None else per_model[mine.index.to_numpy()])
            row.update({k: decision[k] for k in ("votes_fake", "n_bags") if k in decision})
            row.update(faces=int(len(mine)), score=decision["video_score"], verdict=decision["verdict"])
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_metrics(faces: pd.DataFrame, predictions: pd.DataFrame, threshold: float = 0.5) -> dict:
    """Video and frame metrics of the scored videos (both classes needed for AUC/EER), per-method
    accuracy, counts. ``threshold``: the bundle's, which the verdicts used (frames are called fake at it;
    videos by the bundle's rule, recorded as ``decided: given``)."""
    from ..evaluation import binary_metrics

    scored = predictions[predictions["status"] == "scored"]
    out = {"positive_class": "P/R/F1 given with fake (precision_fake...) and with pristine (precision_real...) as "
                             "the positive class",
           "counts": {"videos": int(len(predictions)), "scored": int(len(scored)),
                      "no_face": int((predictions["status"] == "no face found").sum()),
                      "failed": int((predictions["status"] == "failed").sum()),
                      "real": int((scored["label"] == 0).sum()), "fake": int((scored["label"] == 1).sum()),
                      "faces": int(len(faces))}}
    if scored["label"].nunique() == 2:
        decisions = (scored["verdict"] == "fake").astype(int).to_numpy()
        out["video"] = binary_metrics(scored["label"], scored["score"], threshold, decisions=decisions)
        out["frame"] = binary_metrics(faces["label"], faces["score"], threshold)
    else:
        out["note"] = "the scored videos do not hold both classes: no AUC, EER, P/R/F1"
        out["video"] = {"accuracy": float(((scored["verdict"] == "fake").astype(int) == scored["label"]).mean())
                        if len(scored) else None}
    fakes = scored[scored["label"] == 1]
    out["per_method"] = {m: float((rows["verdict"] == "fake").mean()) for m, rows in fakes.groupby("method")
                         if str(m)}
    out["per_method"]["pristine"] = (float((scored.loc[scored["label"] == 0, "verdict"] == "real").mean())
                                     if (scored["label"] == 0).any() else None)
    return out
