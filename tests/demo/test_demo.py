"""The built-in DEMO dataset: built once per session into a tmp folder, then read with the real
loaders (datasets.py, unchanged) and checked: labels, splits, identities (no test identity in any
training video, as target or as inserted face), the face-blind shortcut AUC, MTCNN's hit rate,
determinism, cache reuse, and that nothing foreign is overwritten."""
import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from deepfake_keras.demo import build, plan, render, shortcut, sources
from deepfake_keras.data.datasets import FFPP_METHODS, celebdf_manifest, ffpp_manifest
from deepfake_keras.data.video import read_frames, video_info

SIZES = plan.SIZES["5celeb"]
# the same code path, a few videos of a few frames: for the builds that run twice
TINY = plan.DemoSizes(frames=6, ffpp=(4, 2, 2), celebdf_train=(3, 1, 1, 1), celebdf_test=(2, 2, 0, 1))


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    start = time.time()
    info = build.build_demo(out, seed=0, progress=False)
    info["test_build_seconds"] = time.time() - start
    return info


def videos_csv(root) -> pd.DataFrame:
    return pd.read_csv(Path(root) / "demo_videos.csv", dtype=str, keep_default_na=False)


def ffpp_identity(built) -> dict:
    """FF++ video number -> identity of the person in that original."""
    t = videos_csv(built["ffpp"])
    return dict(zip(t.loc[t.method == "original", "video_id"], t.loc[t.method == "original", "target_identity"]))


# ---------------------------------------------------------------- the real loaders read it

@pytest.mark.parametrize("compression", ["c23", "c40"])
def test_ffpp_loader_reads_demo(built, compression):
    m = ffpp_manifest(built["ffpp"], compression)  # default: all four methods, splits found at <root>/splits
    n_train, n_val, n_test = SIZES.ffpp
    n = n_train + n_val + n_test
    assert m.groupby("method").size().to_dict() == {"original": n, **{meth: n for meth in FFPP_METHODS}}
    assert set(m["split"]) == {"train", "val", "test"}
    assert (m["label"] == (m["method"] != "original").astype(int)).all()
    originals = m[m.method == "original"]
    assert originals.groupby("split").size().to_dict() == {"train": n_train, "val": n_val, "test": n_test}
    split_of = dict(zip(originals.video_id, originals.split))
    fakes = m[m.method != "original"]
    # a fake belongs to the split of its target and source, which are paired originals of that split
    assert (fakes.target_id.map(split_of) == fakes.split).all()
    assert (fakes.source_id.map(split_of) == fakes.split).all()
    # every original is the target of exactly one fake per method
    for method, part in fakes.groupby("method"):
        assert sorted(part.target_id) == sorted(originals.video_id), method
    # the split files are the official [target, source] form, each original in exactly one pair
    pairs = [p for s in ("train", "val", "test") for p in json.loads((Path(built["ffpp_splits"]) / f"{s}.json").read_text())]
    assert all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) and len(v) == 3 for v in p) for p in pairs)
    assert sorted(v for p in pairs for v in p) == sorted(originals.video_id)


def test_ffpp_identities(built):
    groups = built["identities"]["groups"]
    test_ids = set(groups["test"])
    assert test_ids and not test_ids & (set(groups["train"]) | set(groups["val"]))
    who = ffpp_identity(built)
    m = ffpp_manifest(built["ffpp"], "c40")
    t = videos_csv(built["ffpp"])
    t = t[t.compression == "c40"].set_index("video_id", drop=False)
    for row in m.itertuples():
        meta = t[(t.video_id == row.video_id) & (t.method == row.method)].iloc[0]
        assert meta.target_identity == who[row.target_id]  # the csv agrees with the loader's target
        people = {meta.target_identity} | ({meta.source_identity} if row.label else set())
        if row.label:
            cross = plan.FFPP_FOLDERS[row.method][0] == "cross"
            # cross-identity methods carry the source video's person; same-identity ones the target's
            assert meta.source_identity == (who[row.source_id] if cross else who[row.target_id])
            assert (meta.source_identity != meta.target_identity) == cross
        if row.split == "test":
            assert people <= test_ids, row.video_id
        else:  # no test identity in a training or validation video, as target or inserted face
            assert not people & test_ids, row.video_id


def test_celebdf_loader_reads_demo(built):
    m = celebdf_manifest(built["celebdf"])
    (t_tr, r_tr, y_tr, k_tr), (t_te, r_te, y_te, k_te) = SIZES.celebdf_train, SIZES.celebdf_test
    assert m.groupby(["split", "method"]).size().to_dict() == {
        ("train", "Celeb-real"): r_tr, ("train", "YouTube-real"): y_tr, ("train", "Celeb-synthesis"): t_tr * k_tr,
        ("test", "Celeb-real"): r_te, ("test", "YouTube-real"): y_te, ("test", "Celeb-synthesis"): t_te * k_te}
    train = m[m.split == "train"]
    assert (train.label == 1).sum() >= 5 * (train.label == 0).sum()  # far more fakes than reals: bagging matters
    assert (m.label == (m.method == "Celeb-synthesis").astype(int)).all()
    # the official list form: '<1 real | 0 fake> <folder>/<file>'
    for line in (Path(built["celebdf"]) / "List_of_testing_videos.txt").read_text().splitlines():
        label, rel = line.split()
        assert (label == "0") == rel.startswith("Celeb-synthesis/")
    # each test fake has its real twin (its target clip) among the test reals
    test = m[m.split == "test"]
    real_ids = set(test.loc[test.method == "Celeb-real", "video_id"])
    for vid in test.loc[test.label == 1, "video_id"]:
        x, _, number = vid.split("_")
        assert f"{x}_{number}" in real_ids


def test_celebdf_identities(built):
    ids = built["identities"]
    test_ids = {ids["celebdf_ids"][x] for x in ids["groups"]["test"]}
    m = celebdf_manifest(built["celebdf"])
    t = videos_csv(built["celebdf"]).set_index("video_id")
    for row in m.itertuples():
        meta = t.loc[row.video_id]
        person = {ids["celebdf_ids"][meta.target_identity]}
        if row.label:
            assert (row.target_id, row.source_id) == (ids["celebdf_ids"][meta.target_identity],
                                                    ids["celebdf_ids"][meta.source_identity])
            person.add(row.source_id)
        elif row.method == "Celeb-real":
            assert row.target_id == ids["celebdf_ids"][meta.target_identity]
        if row.split == "test":
            assert person <= test_ids, row.video_id
        else:
            assert not person & test_ids, row.video_id


@pytest.mark.parametrize("dataset", ["ffpp", "celebdf"])
def test_identity_predicts_nothing(built, dataset):
    """Within a split, each person is as frequent among the reals as among the inserted faces
    (and as the target of fakes): knowing who is in a video says nothing about its label."""
    t = videos_csv(built[dataset])
    if dataset == "ffpp":
        t = t[(t.compression == "c40") & t.method.isin(["original", "FaceSwap", "Deepfakes"])]
    for split, part in t.groupby("split"):
        real = part[part.label == "0"].target_identity.value_counts(normalize=True).sort_index()
        face = part[part.label == "1"].source_identity.value_counts(normalize=True).sort_index()
        target = part[part.label == "1"].target_identity.value_counts(normalize=True).sort_index()
        assert list(real.index) == list(face.index) == list(target.index), split
        assert np.allclose(real.values, face.values, atol=1e-9) and np.allclose(face.values, target.values), split


def test_clips_share_everything_but_the_face(built):
    """Same length, size and frame rate for every video; a decoded fake differs from its real twin
    near the face and hardly anywhere else (the encoder's rate control spreads a grey level or two:
    before encoding the pixels outside the face are identical, see test_synth.py)."""
    paths = sorted(Path(built["root"]).rglob("*.mp4"))
    assert len(paths) == built["videos"]
    for path in paths[::5]:
        info = video_info(path)
        assert (info.width, info.height, round(info.fps)) == (SIZES.frame_size, SIZES.frame_size, SIZES.fps)
    for path in paths[::23]:
        assert len(read_frames(path, 100).images) == SIZES.frames
    m = ffpp_manifest(built["ffpp"], "c23", ["FaceSwap"])
    n = SIZES.frame_size
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(xx - n / 2, yy - 0.52 * n)  # the face sits near the centre, about 110 px across
    for fake in m[m.method == "FaceSwap"].head(4).itertuples():
        real = m[(m.method == "original") & (m.video_id == fake.target_id)].iloc[0]
        for x, y in zip(read_frames(real.path, 4).images, read_frames(fake.path, 4).images):
            diff = np.abs(x.astype(int) - y.astype(int)).mean(axis=2)
            assert diff[r < 0.16 * n].mean() > 10, fake.video_id
            assert diff[r > 0.42 * n].mean() < 3, fake.video_id


# ---------------------------------------------------------------- only the face tells

def test_face_blind_shortcut_auc(built):
    rows = []
    for dataset, m in (("ffpp", ffpp_manifest(built["ffpp"], ["c23", "c40"])), ("celebdf", celebdf_manifest(built["celebdf"]))):
        for row in m.itertuples():
            rows.append({"dataset": dataset, "compression": row.compression, "method": row.method, "split": row.split,
                         "label": row.label, **render.video_features(row.path)})
    aucs = shortcut.shortcut_aucs(pd.DataFrame(rows))
    print("\n" + shortcut.shortcut_table(aucs))
    assert {"celebdf: all fakes", "ffpp c40: all fakes", "ffpp c40: NeuralTextures"} <= set(aucs)
    worst = max(v for row in aucs.values() for v in row.values())
    assert worst <= shortcut.SHORTCUT_LIMIT, shortcut.shortcut_table(aucs)
    assert built["shortcut_worst"] <= shortcut.SHORTCUT_LIMIT


def test_mtcnn_finds_the_faces(built, detector):
    m = pd.concat([ffpp_manifest(built["ffpp"], ["c23", "c40"]), celebdf_manifest(built["celebdf"])])
    rng = np.random.default_rng(0)
    paths = []
    for _, group in m.groupby(["dataset", "method", "compression"], sort=True):
        paths += list(group.path.iloc[rng.choice(len(group), size=min(4, len(group)), replace=False)])
    found = sure = frames = 0
    widths = []
    for path in paths:
        for faces in detector.detect(read_frames(path, 3).images):
            frames += 1
            found += bool(faces)  # what the extraction keeps (the largest sure face, else the largest)
            if any(f["confidence"] >= 0.9 for f in faces):
                sure += 1
                box = max(faces, key=lambda f: f["confidence"])["box"]
                widths.append(box[2] - box[0])
    print(f"\nMTCNN found a face in {found}/{frames} sampled DEMO frames ({found / frames:.1%}), with confidence "
          f">= 0.9 in {sure} ({sure / frames:.1%}); box width median {np.median(widths):.0f} px")
    assert frames >= 150
    assert found >= 0.95 * frames
    assert sure >= 0.90 * frames
    assert 80 <= np.median(widths) <= 150


# ---------------------------------------------------------------- determinism, cache, safety

def frame_hashes(root: Path) -> dict:
    out = {}
    for path in sorted(root.rglob("*.mp4")):
        cap = cv2.VideoCapture(str(path))
        h = hashlib.sha256()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h.update(frame.tobytes())
        cap.release()
        out[path.relative_to(root).as_posix()] = h.hexdigest()
    return out


def test_build_is_deterministic(tmp_path):
    a = build.build_demo(tmp_path / "a", seed=0, progress=False, sizes=TINY)
    # the second build also finds the leftovers of an interrupted build of ours, and removes them
    b_root = tmp_path / "b"
    (b_root / ".demo-build-killed" / "ffpp").mkdir(parents=True)
    (b_root / "celebdf").mkdir()
    (b_root / build.BUILDING).write_text(json.dumps({"moving": ["ffpp", "celebdf", "DEMO.md", "demo.json"]}))
    b = build.build_demo(b_root, seed=0, progress=False, sizes=TINY)
    assert not list(b_root.glob(".demo-build-*")) and not (b_root / build.BUILDING).exists()
    ra, rb = Path(a["root"]), Path(b["root"])
    for rel in ["ffpp/splits/train.json", "ffpp/splits/val.json", "ffpp/splits/test.json",
                "celebdf/List_of_testing_videos.txt", "ffpp/demo_videos.csv", "celebdf/demo_videos.csv"]:
        assert (ra / rel).read_bytes() == (rb / rel).read_bytes(), rel
    ha, hb = frame_hashes(ra), frame_hashes(rb)
    assert len(ha) == a["videos"] > 20
    assert ha == hb
    # libx264 runs on one thread with bit-exact muxing: even the files are the same bytes
    assert all((ra / rel).read_bytes() == (rb / rel).read_bytes() for rel in ha)
    assert a["shortcut_auc"] == b["shortcut_auc"]


def test_other_seed_other_build():
    photos = {f"p{k}/{i}": f"p{k}" for k in range(5) for i in range(16)}
    usable = {}
    for key, who in photos.items():
        usable.setdefault(who, []).append(key)
    one = plan.plan_demo(usable, 0, SIZES)
    again = plan.plan_demo(usable, 0, SIZES)
    other = plan.plan_demo(usable, 1, SIZES)
    assert one.jobs == again.jobs and one.ffpp_pairs == again.ffpp_pairs
    assert one.jobs != other.jobs


def test_second_call_reuses_the_build(built):
    root = Path(built["root"])
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    start = time.time()
    again = build.build_demo(root, seed=0, progress=False)
    assert time.time() - start < 5
    assert again["reused"] and not built["reused"]
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    assert again["shortcut_auc"] == built["shortcut_auc"] and again["counts"] == built["counts"]


def test_other_settings_in_the_same_folder_are_refused(built):
    with pytest.raises(plan.DemoError, match="other settings"):
        build.build_demo(built["root"], seed=1, progress=False)


def test_never_overwrites_what_it_did_not_make(tmp_path):
    mine = tmp_path / "ffpp" / "keep.txt"
    mine.parent.mkdir()
    mine.write_text("a user's file")
    (tmp_path / "notes.txt").write_text("other files beside are fine")
    with pytest.raises(plan.DemoError, match="refusing to overwrite"):
        build.build_demo(tmp_path, seed=0, progress=False, sizes=TINY)
    assert mine.read_text() == "a user's file" and (tmp_path / "notes.txt").exists()
    with pytest.raises(plan.DemoError, match="is a file"):
        build.build_demo(tmp_path / "notes.txt", progress=False)


@pytest.mark.parametrize("kwargs", [{"seed": -1}, {"seed": 1.5}, {"seed": "0"}, {"faces": "vggface2"}])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        build.build_demo(tmp_path / "x", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()


def test_demo_root(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPFAKE_KERAS_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(build, "build_demo", lambda out, **kw: calls.append((Path(out), kw)) or {})
    root = build.demo_root("ffpp", seed=3)
    assert root == tmp_path / "demo" / f"v{plan.DEMO_VERSION}-5celeb-seed3" / "ffpp"
    assert calls == [(root.parent, {"seed": 3, "faces": "5celeb", "progress": True})]
    assert build.demo_root("celebdf").name == "celebdf"
    with pytest.raises(ValueError, match="unknown demo dataset"):
        build.demo_root("dfdc")


def test_demo_md_says_what_it_is(built):
    text = Path(built["demo_md"]).read_text()
    assert text == (Path(built["ffpp"]) / "DEMO.md").read_text() == (Path(built["celebdf"]) / "DEMO.md").read_text()
    assert text.startswith("# DEMO dataset")
    for needle in ["not the paper's numbers", "seed 0", "numpy", "opencv", "ffmpeg", "CRF 23", "CRF 40",
                   "| DEMO comparison (test split) |", "Test identities never appear", *built["identities"]["groups"]["test"]]:
        assert needle in text, needle


def test_cli_demo_data_reuses(built, capsys):
    from deepfake_keras.cli import main

    assert main(["demo-data", "--out", built["root"], "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "reused" in out and built["ffpp"] in out and built["celebdf"] in out


# ---------------------------------------------------------------- the plan with more people (LFW-like)

def test_plan_with_many_identities_keeps_groups_disjoint():
    photos = {f"person{k:02d}/{i}": f"person{k:02d}" for k in range(30) for i in range(12)}
    usable = {}
    for key, who in photos.items():
        usable.setdefault(who, []).append(key)
    made = plan.plan_demo(usable, 0, plan.SIZES["lfw"])
    g = made.groups
    assert not made.shared_val and len(set(g["train"]) | set(g["val"]) | set(g["test"])) == plan.SIZES["lfw"].max_identities
    assert not set(g["train"]) & set(g["val"]) and not set(g["train"]) & set(g["test"]) and not set(g["val"]) & set(g["test"])
    for dataset, rows in made.rows.items():
        for r in rows:
            people = {r["target_identity"], r["source_identity"]} - {""}
            split = r["split"] if dataset == "ffpp" or r["split"] == "test" else None
            if split:
                assert people <= set(g[split]), r
            else:  # Celeb-DF train: train and val people
                assert people <= set(g["train"]) | set(g["val"]), r
            if r["method"] in ("FaceSwap", "Deepfakes", "Celeb-synthesis"):
                assert r["source_identity"] != r["target_identity"]


def test_too_few_people():
    with pytest.raises(plan.DemoError, match="at least 4 identities"):
        plan.split_identities(["a", "b", "c"], np.random.default_rng(0))


# ---------------------------------------------------------------- LFW through scikit-learn's fetcher (no network here)

def test_lfw_photos_come_from_the_fetchers_folder(monkeypatch, tmp_path):
    import sklearn.datasets
    from PIL import Image
    from sklearn.utils import Bunch

    monkeypatch.setenv("DEEPFAKE_KERAS_CACHE", str(tmp_path))
    people = [f"Person {k}" for k in range(8)]
    rng = np.random.default_rng(0)
    for name in people:  # the layout fetch_lfw_people leaves: <data_home>/lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg
        folder = tmp_path / "lfw" / "lfw_home" / "lfw_funneled" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(
                folder / f"{name.replace(' ', '_')}_{i + 1:04d}.jpg")
    calls = []

    def fake_fetch(**kw):
        calls.append(kw)
        return Bunch(target_names=np.array(people))

    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people", fake_fetch)
    sizes = plan.DemoSizes(max_identities=6, max_photos_per_identity=3)
    photos = sources.photos_lfw(seed=0, sizes=sizes)
    assert calls and calls[0]["min_faces_per_person"] == 20 and calls[0]["data_home"] == str(tmp_path / "lfw")
    assert len(set(photos.identity.values())) == 6 and len(photos.images) == 18
    assert all(im.shape == (250, 250, 3) for im in photos.images.values())
    assert photos.source["name"] == "lfw"
    assert sources.photos_lfw(seed=0, sizes=sizes).sha256 == photos.sha256  # the same draw for a seed

    def offline(**kw):
        raise OSError("no route to host")

    monkeypatch.setattr(sklearn.datasets, "fetch_lfw_people", offline)
    with pytest.raises(plan.DemoError, match="Use the 5celeb faces"):
        sources.photos_lfw(seed=0, sizes=sizes)
