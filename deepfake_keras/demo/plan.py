"""The plan of the DEMO datasets: how much to build, which identities go to which split, which photo
each clip animates and which face each fake gets, file names, split files (no pixels)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEMO_VERSION = 1  # bump when anything changes what a build writes; it keys the cache
FACE_SOURCES = ("5celeb", "lfw")
FFPP_FOLDERS = {"FaceSwap": ("cross", "poisson"), "Deepfakes": ("cross", "lowres"),
                "Face2Face": ("same", "lowres"), "NeuralTextures": ("same", "poisson")}
FFPP_CRF = {"c23": 23, "c40": 40}
CELEBDF_CRF = 23
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


def round_robin(total: int, ids: list) -> dict:
    return {x: total // len(ids) + (1 if i < total % len(ids) else 0) for i, x in enumerate(ids)}


class Pools:
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
    pools = Pools(usable, rng)
    jobs, rows = [], {"ffpp": [], "celebdf": []}

    # ---- FF++: originals in cross-identity [target, source] pairs inside each split
    n_orig = sum(sizes.ffpp)
    numbers = [f"{i:03d}" for i in rng.permutation(n_orig)]
    originals = {}  # split -> [(number, identity, photo)]
    for split, total in zip(SPLITS, sizes.ffpp):
        ids = groups[split]
        counts = round_robin(total, ids)
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
                              video_row(number, "original", split, 0, x, "", photo, ""))]
            for method, (kind, blend) in FFPP_FOLDERS.items():
                if kind == "cross":
                    face_id, face = y, src_photo
                else:
                    face_id, face = x, same[number][0 if method == "NeuralTextures" else 1]
                vid = f"{number}_{src_number}"
                renders.append(Render(tuple((f"ffpp/manipulated_sequences/{method}/{c}/videos/{vid}.mp4", crf)
                                            for c, crf in FFPP_CRF.items()), face, blend,
                                      video_row(vid, method, split, 1, x, face_id, photo, face, blend)))
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
        t_counts, r_counts, y_counts = (round_robin(n, ids) for n in (n_targets, n_real, n_youtube))
        targets = {x: pools.take("celebdf", x, t_counts[x]) for x in ids}
        next_source = {x: 0 for x in ids}
        for i, x in enumerate(ids):
            for k, photo in enumerate(targets[x]):
                number = f"{k:04d}"
                renders = []
                if k < r_counts[x]:
                    rel = f"Celeb-real/{celebdf_ids[x]}_{number}.mp4"
                    renders.append(Render(((f"celebdf/{rel}", CELEBDF_CRF),), None, None,
                                          video_row(Path(rel).stem, "Celeb-real", split, 0, x, "", photo, "")))
                for j in range(per_target):
                    y = ids[(i + 1 + j) % len(ids)]
                    pool = targets[y] or pools.take("celebdf", y, 1)
                    face = pool[next_source[y] % len(pool)]
                    next_source[y] += 1
                    rel = f"Celeb-synthesis/{celebdf_ids[x]}_{celebdf_ids[y]}_{number}.mp4"
                    renders.append(Render(((f"celebdf/{rel}", CELEBDF_CRF),), face, "poisson",
                                          video_row(Path(rel).stem, "Celeb-synthesis", split, 1, x, y, photo, face,
                                               "poisson")))
                jobs.append(Job(photo, int(rng.integers(2 ** 31)), tuple(renders)))
                rows["celebdf"].extend(r.row for r in renders)
            for photo in pools.take("celebdf", x, y_counts[x]):
                rel = f"YouTube-real/{youtube_numbers.pop()}.mp4"
                render = Render(((f"celebdf/{rel}", CELEBDF_CRF),), None, None,
                                video_row(Path(rel).stem, "YouTube-real", split, 0, x, "", photo, ""))
                jobs.append(Job(photo, int(rng.integers(2 ** 31)), (render,)))
                rows["celebdf"].append(render.row)
        if split == "test":
            test_lines = sorted(f"{1 - r['label']} {r['method']}/{r['video_id']}.mp4"
                                for r in rows["celebdf"] if r["split"] == "test")
    for r in rows["ffpp"] + rows["celebdf"]:
        r["identity_celebdf"] = celebdf_ids[r["target_identity"]]
    return Plan(groups, shared_val, celebdf_ids, jobs, pairs, test_lines, rows)


def video_row(video_id, method, split, label, target, source, target_photo, source_photo, blend="") -> dict:
    return {"video_id": video_id, "method": method, "split": split, "label": label, "target_identity": target,
            "source_identity": source, "target_photo": target_photo, "source_photo": source_photo, "blend": blend}

