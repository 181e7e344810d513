"""Datasets as users hold them -> one manifest table.

Every loader (:data:`LOADERS`) returns a :class:`pandas.DataFrame` with the columns of
:data:`MANIFEST_COLUMNS`, one row per video, then ``problem``:

=========== =================================================================
video_id    the file name without extension (``004_982``, ``id0_0000``)
path        absolute path of the video file
label       1 = fake, 0 = real, -1 = unknown (plain folders). Celeb-DF's own test list uses the opposite
split       ``train`` / ``val`` / ``test`` where the dataset says (DFDC: its metadata's; its test set's
            ``labels.csv``: ``test``); FF++ outside the official splits, DFD, labelled folders without a
            ``split`` column: ``unsplit``; plain folders: ``predict``
dataset     ``celebdf`` / ``ffpp`` / ``dfd`` / ``dfdc`` / ``labelled`` / ``folder``
method      FF++, DFD: ``original`` or the manipulation (``NeuralTextures``, ``DeepFakeDetection``);
            Celeb-DF: its folder (``Celeb-real``...); DFDC: the video's folder (``dfdc_train_part_0``)
compression FF++, DFD: ``raw`` / ``c23`` / ``c40``; others ``""``
target_id   whose video it is (FF++ ``TTT`` of ``TTT_SSS``; Celeb-DF ``id1`` of ``id1_id0_0007``; DFD
            actor ``01`` of ``01_02__scene__XXXX``; DFDC the real video it is, or was made from)
source_id   whose face was put in (FF++ ``SSS``; Celeb-DF ``id0``; DFD ``02``); ``""`` for reals, unknowns
store_key   where the video's faces live in the face store, relative and unique
group       videos that must stay on one side of any split (grouped splits and cross-validation):
            FF++ ``ffpp-TTT_SSS``, the official pair ``[TTT, SSS]`` (the split file's order) shared by
            originals TTT, SSS and fakes TTT_SSS, SSS_TTT; outside the split files a fake's two ids
            sorted, an original's with the one partner its fakes in the manifest name (else its own
            id). Celeb-DF ``celebdf-<clip>`` (:func:`celebdf_clip`). DFDC ``dfdc-<original>``. DFD
            ``dfd-<actor>`` whose scene it is: a fake ``01_02__...`` joins actor 01's originals (the
            face is 02's, but grouping by both actors would chain nearly all actors into one group).
            Labelled folder: its CSV's ``group``, else the store key; plain folder: the store key
=========== =================================================================

``problem`` (not stored): ``""``, or why the entry cannot be read as a video (:func:`path_problem`, ``listed
in ... but not found``); the extractor records such a row as failed with that reason, without opening it.
"""
from .celebdf import celebdf_clip, celebdf_manifest
from .common import (CELEBDF_FOLDERS, CELEBDF_TEST_LIST, FAKE, FFPP_COMPRESSIONS, FFPP_METHODS, FFPP_SPLITS,
                     IS_FOLDER, MANIFEST_COLUMNS, MISSING, PROBLEM, REAL, UNKNOWN, VIDEO_EXTENSIONS, DatasetError,
                     MissingVideos, path_problem, scan_videos)
from .dfdc import dfdc_manifest
from .ffpp import dfd_manifest, ffpp_manifest, ffpp_pairs, find_ffpp_splits, read_ffpp_splits
from .folders import folder_manifest, labelled_manifest

__all__ = ["CELEBDF_FOLDERS", "CELEBDF_TEST_LIST", "FAKE", "FFPP_COMPRESSIONS", "FFPP_METHODS", "FFPP_SPLITS",
           "IS_FOLDER", "LOADERS", "MANIFEST_COLUMNS", "MISSING", "PROBLEM", "REAL", "UNKNOWN", "VIDEO_EXTENSIONS",
           "DatasetError", "MissingVideos", "celebdf_clip", "celebdf_manifest", "dfd_manifest", "dfdc_manifest",
           "ffpp_manifest", "ffpp_pairs", "find_ffpp_splits", "folder_manifest", "labelled_manifest", "load_manifest",
           "path_problem",
           "read_ffpp_splits", "scan_videos"]

LOADERS = {"celebdf": celebdf_manifest, "ffpp": ffpp_manifest, "dfd": dfd_manifest, "dfdc": dfdc_manifest,
           "labelled": labelled_manifest, "folder": folder_manifest}


def load_manifest(dataset: str, root, *, compression=("c40",), methods=FFPP_METHODS, splits=None, labels=None,
                  missing: str = "error"):
    """The manifest of the dataset of kind ``dataset`` (a key of :data:`LOADERS`) at ``root``, each loader
    given the settings it takes: FF++ ``compression``, ``methods`` and ``splits``; DFD ``compression``;
    DFDC and labelled folders ``labels`` and ``missing``."""
    if dataset not in LOADERS:
        raise DatasetError(f"unknown dataset {dataset!r}; one of {sorted(LOADERS)}")
    if dataset == "ffpp":
        return ffpp_manifest(root, compression, methods, splits)
    if dataset == "dfd":
        return dfd_manifest(root, compression)
    if dataset in ("dfdc", "labelled"):
        return LOADERS[dataset](root, labels=labels, missing=missing)
    return LOADERS[dataset](root)
