"""Steps the experiment pipelines share: faces of a manifest, FaceNet choice, the triplet models."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..runs import log


def add_ffpp_arguments(p, experiment: str, methods_help: str = "") -> None:
    """The FF++ data options every FF++ experiment takes."""
    from ..data.datasets import FFPP_COMPRESSIONS, FFPP_METHODS

    p.add_argument("--data-root", help="FaceForensics++ root (default: the built-in DEMO dataset)")
    p.add_argument("--splits", help="folder with the official train/val/test.json (default: beside the dataset)")
    p.add_argument("--compression", default="c40", choices=FFPP_COMPRESSIONS, help="default c40, the paper's")
    p.add_argument("--methods", nargs="+", default=["NeuralTextures"], choices=FFPP_METHODS,
                   help=f"manipulations against pristine (default NeuralTextures{methods_help})")
    p.add_argument("--out", help=f"results folder (default results/{experiment}/<timestamp>)")


def extract_faces(manifest: pd.DataFrame, root, store, extract_config, workers: int, progress: bool):
    """Fill the face store for ``manifest``; returns (the store's faces of these videos, summary)."""
    from ..data.extract import extract
    from ..data.store import FaceStore

    log(f"{len(manifest)} videos ({', '.join(f'{k}: {v}' for k, v in manifest['split'].value_counts().items())}); "
        f"extracting faces ({extract_config.frames_per_video} frames per video) into {store}")
    summary = extract(manifest, store, extract_config, workers=workers, dataset_roots=[root], progress=progress)
    log(str(summary))
    faces = FaceStore.open(store).faces()
    return faces[faces["store_key"].isin(set(manifest["store_key"]))].reset_index(drop=True), summary


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


def embed_faces_of(store, faces: pd.DataFrame, facenet: str, progress: bool) -> np.ndarray:
    """FaceNet embeddings (cached in the store) of the rows of ``faces``, in its order."""
    from ..embeddings import embed_store

    table, x = embed_store(store, facenet, progress=progress)
    index = pd.Series(np.arange(len(table)), index=table["crop"])
    x = x[index.loc[faces["crop"]].to_numpy()]
    log(f"{len(faces)} faces embedded with {facenet} ({x.shape[1]}-d)")
    return x


def triplet_spaces(x, labels, train, val, models_dir, minings=("semi-hard",), *, margin: float, dropout: float,
                   epochs: int, batch_size: int, patience: int, seed: int) -> tuple:
    """Train one triplet head per mining on ``x[train]`` (early stopping on ``x[val]``); returns
    ``({"triplet" | "random": embeddings of every row}, {same keys: training record})``."""
    from ..models.triplet import embed, train_triplet_head

    spaces, training = {}, {}
    for mining in minings:
        key = "triplet" if mining == "semi-hard" else "random"
        log(f"training the triplet head ({mining} triplets)")
        head, record = train_triplet_head(x[train], labels[train], x[val], labels[val], mining=mining,
                                          margin=margin, dropout=dropout, epochs=epochs,
                                          batch_size=batch_size, patience=patience, seed=seed,
                                          out_dir=models_dir / key)
        spaces[key] = embed(head, x)
        training[key] = {k: record[k] for k in ("best_epoch", "best_val_loss", "initial_val_loss", "epochs_run")}
    return spaces, training


def classifier_scores(spaces: dict, labels, train, seed: int, kinds=("sgd", "rf"), rows=None) -> dict:
    """``{f"{space}_{kind}": P(fake) of every row}`` from classifiers fitted on the train rows; only of
    the ``rows`` (a mask or index) if given."""
    from ..models.classifiers import fit_classifier, frame_scores

    scores = {}
    for space, z in spaces.items():
        scored = z if rows is None else z[rows]
        for kind in kinds:
            scores[f"{space}_{kind}"] = frame_scores(fit_classifier(kind, z[train], labels[train], seed=seed), scored)
    return scores


def video_predictions(frame_table: pd.DataFrame, keys) -> pd.DataFrame:
    """One row per video: the mean of its frames' scores for each column of ``keys``."""
    from ..evaluation import video_scores

    out = None
    for key in keys:
        v = video_scores(frame_table, key, keep=("label", "split", "method", "video_id"))
        out = v if out is None else out.merge(v[["store_key", key]], on="store_key")
    return out


def test_metrics(frame_table: pd.DataFrame, videos: pd.DataFrame, keys) -> dict:
    """``{key: {"video": metrics, "frame": metrics}}`` on the test split."""
    from ..evaluation import binary_metrics

    frames = frame_table[frame_table["split"] == "test"]
    test = videos[videos["split"] == "test"]
    out = {}
    for key in keys:
        out[key] = {"video": binary_metrics(test["label"], test[key]),
                    "frame": binary_metrics(frames["label"], frames[key])}
    return out
