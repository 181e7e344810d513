"""Steps the experiment pipelines share: where the data and the results are, faces of a manifest,
the FaceNet and Xception weights to use, the triplet heads, classifiers, video scores and test
metrics.

A run directory holds ``config.json`` (settings, data, weights used, library versions),
``metrics.json``, ``predictions.csv`` (one row per video), tables and figures. Nothing in an
existing run directory is overwritten: a run refuses a non-empty ``out`` unless it is the same
experiment being resumed.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import FACENET_MARGIN, cache_dir
from ..io import about, log


def resolve_data_root(data_root, kind: str, seed: int = 0) -> tuple:
    """``(root, is_demo)``: the user's dataset, or the built-in demo dataset (built on first use)
    when ``data_root`` is None, saying so."""
    if data_root:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(f"the dataset root {root} is not a folder")
        return root, False
    from ..demo import demo_root

    log(f"no dataset root given: using the built-in DEMO dataset ({kind} format, 5 real people; it shows the "
        f"pipeline working, not the paper's numbers)")
    root = demo_root(kind, seed=seed)
    log(f"DEMO dataset: {root}")
    return root, True


def default_store(root: Path, extract_config) -> Path:
    """The face store for a dataset root and extraction settings: a cache folder keyed by both,
    so that every experiment on the same data reuses the same crops."""
    key = json.dumps({"root": str(root), **extract_config.to_dict()}, sort_keys=True)
    return cache_dir() / "faces" / f"{root.name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def start_run(config, kind: str, experiment: str, out) -> tuple:
    """The start the experiments share: the dataset (``kind``'s DEMO where ``config.data_root`` is None), the
    settings said beside the paper's, the results folder and the training set-up. Returns
    ``(root, is_demo, run_dir, setup)`` (:func:`resolve_data_root`, :func:`make_run_dir`,
    :func:`training_setup`)."""
    root, demo = resolve_data_root(config.data_root, kind, config.demo_seed)
    log(f"{'DEMO ' if demo else ''}settings: {config} (the paper's: {type(config).paper()})")
    run_dir = make_run_dir(out, experiment)
    log(f"results: {run_dir}")
    return root, demo, run_dir, training_setup(config, run_dir)


def make_run_dir(out, experiment: str) -> Path:
    """``out`` or ``results/<experiment>/<timestamp>/``; refuses a folder holding another run."""
    path = Path(out) if out else Path("results") / experiment / time.strftime("%Y%m%d-%H%M%S")
    path = path.resolve()
    config = path / "config.json"
    if config.is_file():
        have = json.loads(config.read_text()).get("experiment")
        if have != experiment:
            raise about(ValueError(f"{path} holds a {have!r} run; choose another results folder"), "out")
    elif path.exists() and any(path.iterdir()):
        raise about(ValueError(f"{path} is not empty and holds no run; choose another results folder (nothing is "
                               f"overwritten)"), "out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract_faces(manifest: pd.DataFrame, root, store, extract_config, workers: int, progress: bool):
    """Fill the face store for ``manifest``; returns (the store's faces of these videos, summary).

    Every manifest column of the faces (label, split, method...) comes from ``manifest``, joined on the
    store key, never from the store's record: a store filled by an earlier run with other splits keeps
    its crops, and this run's split is the one used."""
    from ..data.datasets import MANIFEST_COLUMNS
    from ..data.extract import extract
    from ..data.store import FaceStore, refuse_other_files

    refuse_other_files(store, manifest)
    log(f"{len(manifest)} videos ({', '.join(f'{k}: {v}' for k, v in manifest['split'].value_counts().items())}); "
        f"extracting faces ({extract_config.frames_per_video} frames per video) into {store}")
    summary = extract(manifest, store, extract_config, workers=workers, dataset_roots=[root], progress=progress)
    log(str(summary))
    faces = FaceStore.open(store).faces()
    faces = faces[faces["store_key"].isin(set(manifest["store_key"]))].reset_index(drop=True)
    current = manifest.set_index("store_key")
    for column in MANIFEST_COLUMNS:
        if column != "store_key":
            faces[column] = faces["store_key"].map(current[column]).to_numpy()
    return faces, summary


def _choose_with_fallback(requested: str, fallback, resolve, stops: tuple, subject: str, action: str) -> dict:
    """``resolve(requested)``; if that raises a WeightsError, ``fallback`` (said aloud) unless it is one of
    ``stops``, in which case the error is raised. Returns the record saved in config.json."""
    from ..weights import WeightsError

    record = {"requested": requested, "used": requested, "fallback_reason": ""}
    try:
        resolve(requested)
    except WeightsError as e:
        if fallback in stops:
            raise
        record.update(used=fallback, fallback_reason=str(e))
        log(f"WARNING: {subject} {requested!r} could not be fetched; {action} {fallback!r} instead "
            f"(recorded in config.json). Reason: {e}")
    return record


def choose_facenet(requested: str, fallback: str) -> dict:
    """The FaceNet weights to use: ``requested`` if it can be had, else ``fallback`` (said aloud; no
    fallback, "" or "none" stops instead). Returns the record saved in config.json."""
    from .. import weights

    if requested not in weights.WEIGHTS:
        return {"requested": requested, "used": requested, "fallback_reason": ""}  # a path: used as given
    return _choose_with_fallback(requested, fallback, weights.weights_path, (None, "", "none"),
                                 "the paper's FaceNet", "using")


def choose_weights(requested: str, fallback: str) -> dict:
    """Xception's starting weights: ``requested`` if it can be had, else ``fallback``, said aloud ("stop"
    stops instead). Returns the record saved in config.json."""
    from ..models.xception import resolve_weights

    return _choose_with_fallback(requested, fallback, resolve_weights, ("stop",), "Xception weights", "starting from")


def embed_faces_of(store, faces: pd.DataFrame, facenet: str, progress: bool, margin: float = FACENET_MARGIN,
                   standardization: str | None = None) -> np.ndarray:
    """FaceNet embeddings (cached in the store) of the rows of ``faces``, in its order, of the crops cut to
    ``margin``, scaled as ``standardization`` says (None: the weights' own)."""
    from ..embeddings import embed_store

    _, x = embed_store(store, facenet, progress=progress, faces=faces, margin=margin, standardization=standardization)
    log(f"{len(faces)} faces embedded with {facenet} ({x.shape[1]}-d)")
    return x


def triplet_spaces(x, labels, train, val, models_dir, head, minings=("semi-hard",), seed: int = 0, strategy=None,
                   logs=None) -> tuple:
    """Train one triplet head per mining on ``x[train]`` (early stopping on ``x[val]``) with the settings
    of ``head`` (a :class:`~deepfake_keras.config.HeadConfig`), each saved in ``models_dir/<key>``;
    returns ``({"triplet" | "random": embeddings of every row}, {same keys: training record})``."""
    from ..models.triplet import embed
    from ..training.triplet import train_triplet_head

    spaces, training = {}, {}
    for mining in minings:
        key = "triplet" if mining == "semi-hard" else "random"
        log(f"training the triplet head ({mining} triplets)")
        model, record = train_triplet_head(x[train], labels[train], x[val], labels[val], mining=mining,
                                           margin=head.margin, distance=head.distance, units=head.units,
                                           embedding_dim=head.embedding_dim, dropout=head.dropout,
                                           learning_rate=head.learning_rate, normalize=head.normalize,
                                           initializer=head.initializer, epochs=head.epochs,
                                           batch_size=head.batch_size, patience=head.patience, seed=seed,
                                           out_dir=models_dir / key, strategy=strategy,
                                           log_dir=None if logs is None else logs / key)
        spaces[key] = embed(model, x)
        training[key] = {k: record[k] for k in ("best_epoch", "best_val_loss", "initial_val_loss", "epochs_run")}
    return spaces, training


def classifier_scores(spaces: dict, labels, train, seed: int, kinds=("sgd", "rf"), rows=None,
                      scale: bool = False) -> tuple:
    """Classifiers fitted on the train rows of each space: ``({f"{space}_{kind}": P(fake) of every row},
    {same keys: the fitted classifier})``; scores only of the ``rows`` (a mask or index) if given;
    ``scale``: standardise the features first (fitted on the train rows)."""
    from ..training.classifiers import fit_classifier, frame_scores

    scores, fitted = {}, {}
    for space, z in spaces.items():
        scored = z if rows is None else z[rows]
        for kind in kinds:
            key = f"{space}_{kind}"
            fitted[key] = fit_classifier(kind, z[train], labels[train], seed=seed, scale=scale)
            scores[key] = frame_scores(fitted[key], scored)
    return scores, fitted


def video_predictions(frame_table: pd.DataFrame, keys, rule: str = "mean") -> pd.DataFrame:
    """One row per video: for each column ``key`` of ``keys``, its score (the mean of its frames' scores,
    the paper's) and ``<key>_decision`` (1 = fake) by ``rule`` (:func:`deepfake_keras.evaluation.video_decisions`:
    ``"majority"`` of the frames, the authors', or ``"mean"``)."""
    from ..evaluation import video_decisions, video_scores

    keys = list(keys)
    out = video_scores(frame_table, keys[0], keep=("label", "split", "method", "video_id")).drop(columns=keys[0])
    for key in keys:
        v = video_decisions(frame_table, key, rule=rule)
        out[key] = out["store_key"].map(v.set_index("store_key")["score"])
        out[f"{key}_decision"] = out["store_key"].map(v.set_index("store_key")["decision"]).astype(int)
    return out


def add_faceless(predictions: pd.DataFrame, manifest: pd.DataFrame, keys, score, split: str = "test") -> tuple:
    """The ``split`` videos of ``manifest`` that have no prediction (no face was found in them): ``(predictions
    with a row for each of them scored ``score`` by every model, their number)`` when ``score`` is a number;
    ``(predictions, their number)`` unchanged (left out of the metrics) when it is None."""
    wanted = manifest[manifest["split"] == split]
    missing = wanted[~wanted["store_key"].isin(set(predictions["store_key"]))]
    if score is None or len(missing) == 0:
        return predictions, int(len(missing))
    rows = missing[["store_key", "label", "split", "method", "video_id"]].assign(n_frames=0)
    for key in keys:
        rows[key] = float(score)
        rows[f"{key}_decision"] = int(float(score) >= 0.5)
    return pd.concat([predictions, rows], ignore_index=True), int(len(missing))


def per_method_accuracy(videos: pd.DataFrame, keys) -> dict:
    """``{key: {method: fraction of that method's fake test videos called fake}}`` (Table IV's style)."""
    test = videos[(videos["split"] == "test") & (videos["label"] == 1)]
    return {key: {m: float(rows[f"{key}_decision"].mean()) for m, rows in test.groupby("method")} for key in keys}


def test_metrics(frame_table: pd.DataFrame, videos: pd.DataFrame, keys) -> dict:
    """``{key: {"video": metrics, "frame": metrics, "per_method": {method: accuracy}}}`` on the test split:
    videos called by their ``<key>_decision`` (see :func:`video_predictions`), AUC and EER from their
    scores; ``per_method`` (models with decisions, manifests with methods): :func:`per_method_accuracy`."""
    from ..evaluation import binary_metrics

    frames = frame_table[frame_table["split"] == "test"]
    test = videos[videos["split"] == "test"]
    out = {}
    for key in keys:
        decisions = test[f"{key}_decision"] if f"{key}_decision" in test else None
        out[key] = {"video": binary_metrics(test["label"], test[key], decisions=decisions)}
        if key in frames:  # models that score frames (a video-level model has no frame scores)
            out[key]["frame"] = binary_metrics(frames["label"], frames[key])
        if decisions is not None and "method" in test:
            out[key]["per_method"] = per_method_accuracy(test, [key])[key]
    return out


def splits_of(manifest: pd.DataFrame, folds: int | None, seed: int) -> list:
    """The splits to train and test on: ``[{"fold", "name", "side": {store_key: "train" | "val" | "test" | ...}}]``.
    Without ``folds``, one: the dataset's own split (``fold`` None, ``name`` ""). With ``folds`` K, a K-fold
    cross-validation by the manifest's ``group`` (FF++: the pair; :func:`deepfake_keras.training.splits.grouped_folds`),
    ``name`` ``fold_<k>`` (the folder of its models and training curves)."""
    from ..training.splits import grouped_folds

    if not folds:
        return [{"fold": None, "name": "", "side": dict(zip(manifest["store_key"], manifest["split"]))}]
    out = []
    for fold in grouped_folds(manifest, folds, seed):
        side = {k: name for name in ("train", "val", "test") for k in fold[name]}
        out.append({"fold": fold["fold"], "name": f"fold_{fold['fold']}", "side": side})
    log(f"{folds}-fold cross-validation by group: {manifest['group'].nunique()} groups, "
        f"{len(manifest)} videos; each video is tested once")
    return out


CV_METRICS = ("auc", "accuracy", "eer", "precision_real", "recall_real", "f1_real", "precision_fake", "recall_fake",
              "f1_fake", "acc_real", "acc_fake")


def fold_summary(per_fold: list, k: int, by: str) -> dict:
    """``metrics.json``'s ``cv`` from each fold's :func:`test_metrics` (``{model: {"video", "frame"?,
    "per_method"?}}``): every fold's video metrics (``per_fold``) and, per model and metric, their mean and
    standard deviation over the folds (``mean``, ``sd``; ``ddof=1``; None where a fold lacks the metric).
    Beside them, in the same shape ``{"per_fold", "mean", "sd"}``: ``frame``, the frame-level metrics of
    the models that score frames, and ``per_method``, each fold's accuracy on each manipulation's fake
    videos and on the pristine ones (``pristine``, the video ``acc_real``), Table IV's columns."""
    models = list(per_fold[0])
    videos = [{m: fold[m]["video"] for m in models} for fold in per_fold]
    out = {"k": int(k), "by": by, "per_fold": videos, **_over_folds(videos, models, CV_METRICS)}
    framed = [m for m in models if all("frame" in fold[m] for fold in per_fold)]
    if framed:
        frames = [{m: fold[m]["frame"] for m in framed} for fold in per_fold]
        out["frame"] = {"per_fold": frames, **_over_folds(frames, framed, CV_METRICS)}
    called = [m for m in models if all("per_method" in fold[m] for fold in per_fold)]
    if called:
        accuracy = [{m: {**fold[m]["per_method"], "pristine": fold[m]["video"].get("acc_real")} for m in called}
                    for fold in per_fold]
        methods = sorted({name for fold in accuracy for m in called for name in fold[m]} - {"pristine"})
        out["per_method"] = {"per_fold": accuracy, **_over_folds(accuracy, called, [*methods, "pristine"])}
    return out


def _over_folds(per_fold: list, models, names) -> dict:
    """``{"mean": {model: {name: mean}}, "sd": {...}}`` of ``per_fold`` (``[{model: {name: value}}]``) over
    the folds; a value some fold could not give (its test videos of one class only, or no video of a
    method) gives None: never a mean over some of the folds."""
    out = {"mean": {}, "sd": {}}
    for m in models:
        values = {name: [fold[m].get(name) for fold in per_fold] for name in names}
        out["mean"][m] = {name: None if None in v else float(np.mean(v)) for name, v in values.items()}
        out["sd"][m] = {name: None if None in v else float(np.std(v, ddof=1)) for name, v in values.items()}
    return out


class _NoRetracingWarnings:
    """A logging filter: TensorFlow warns about retracing each time a new small model is fitted in a
    loop, as here (a new model, a new function: expected, harmless)."""

    def filter(self, record) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def quiet_retracing_warnings() -> None:
    """Silence TensorFlow's retracing warning for the rest of the process (see :class:`_NoRetracingWarnings`)."""
    import tensorflow as tf

    if not any(isinstance(f, _NoRetracingWarnings) for f in tf.get_logger().filters):
        tf.get_logger().addFilter(_NoRetracingWarnings())


def calibrate(videos: pd.DataFrame, score_col: str) -> dict | None:
    """The bundle's calibration from the validation videos' scores (``videos``: one row per validation
    video, ``label`` and ``score_col``): the threshold at their equal-error point
    (:func:`deepfake_keras.evaluation.eer_point`), kept strictly inside (0, 1); None without both classes."""
    from ..evaluation import eer_point

    if videos["label"].nunique() < 2:
        return None
    _, threshold = eer_point(videos["label"], videos[score_col])
    return {"threshold": float(np.clip(threshold, 1e-6, 1 - 1e-6)), "rule": "eer", "videos": int(len(videos))}


def training_setup(config, run_dir: Path) -> dict:
    """Seeds and deterministic ops, the dtype policy and the ``tf.distribute`` strategy of a run; logs the
    devices. Returns ``{"strategy", "logs"}``: the strategy, and the folder of the training curves
    (``<run>/logs/<model>/``: CSV and TensorBoard, ``tensorboard --logdir <run>/logs``)."""
    from ..training.distribute import devices_line, set_mixed_precision, strategy_for
    from ..training.fit import deterministic

    deterministic(config.seed)
    quiet_retracing_warnings()
    set_mixed_precision(config.mixed_precision)
    strategy = strategy_for(config.strategy)
    log(devices_line(strategy))
    return {"strategy": strategy, "logs": run_dir / "logs"}

