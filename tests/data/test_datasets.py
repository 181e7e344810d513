"""The manifest: real FF++ clips, the official split files, and Celeb-DF / FF++ layouts built in tmp folders."""
import json

import pytest

from deepfake_keras.data.datasets import (FAKE, REAL, UNKNOWN, DatasetError, celebdf_clip, celebdf_manifest,
                                          ffpp_manifest, folder_manifest, read_ffpp_splits)

from ..conftest import shared


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# ---------------------------------------------------------------- FF++ on the real clips

def test_ffpp_manifest_real_clips(ffpp_mini, ffpp_splits):
    m = ffpp_manifest(ffpp_mini, compressions="c23", methods=["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"],
                      splits=ffpp_splits)
    rows = {(r.method, r.video_id): r for r in m.itertuples()}
    assert set(rows) == {("original", "004"), ("original", "519"), ("original", "634"),
                         ("NeuralTextures", "004_982"), ("Deepfakes", "519_515"), ("FaceSwap", "634_660"),
                         ("Face2Face", "750_743")}
    assert m["store_key"].is_unique
    # labels by folder: 1 = fake
    for (method, vid), r in rows.items():
        assert r.label == (REAL if method == "original" else FAKE)
        assert r.compression == "c23" and r.dataset == "ffpp"
    # target/source from TTT_SSS
    assert (rows[("NeuralTextures", "004_982")].target_id, rows[("NeuralTextures", "004_982")].source_id) == ("004", "982")
    assert rows[("original", "519")].target_id == "519" and rows[("original", "519")].source_id == ""
    # splits agree with the official JSONs: an original and its fakes share the split of their pair
    split_of = {}
    for split in ("train", "val", "test"):
        for a, b in json.loads((ffpp_splits / f"{split}.json").read_text()):
            split_of[a] = split_of[b] = split
    for (method, vid), r in rows.items():
        assert r.split == split_of[vid.split("_")[0]], (method, vid)
    assert rows[("original", "004")].split == rows[("NeuralTextures", "004_982")].split
    # the group is the official pair, in the split file's order: [004, 982] is in val.json
    assert rows[("original", "004")].group == rows[("NeuralTextures", "004_982")].group == "ffpp-004_982"
    assert rows[("original", "519")].group == rows[("Deepfakes", "519_515")].group
    assert len({rows[("original", v)].group for v in ("004", "519", "634")}) == 3
    assert set(m["problem"]) == {""}


def test_official_splits_sizes(ffpp_splits):
    split_of = read_ffpp_splits(ffpp_splits)
    originals = {k: v for k, v in split_of.items() if "_" not in k}
    counts = {s: sum(1 for v in originals.values() if v == s) for s in ("train", "val", "test")}
    assert counts == {"train": 720, "val": 140, "test": 140}
    # both directions of each pair's fake belong to the pair's split
    a, b = json.loads((ffpp_splits / "test.json").read_text())[0]
    assert split_of[f"{a}_{b}"] == split_of[f"{b}_{a}"] == "test"


def test_ffpp_missing_splits_says_where_it_looked(ffpp_mini, tmp_path):
    with pytest.raises(DatasetError) as e:
        ffpp_manifest(ffpp_mini, compressions="c23", methods=["Deepfakes"], splits=tmp_path)
    assert "train.json" in str(e.value) and str(tmp_path) in str(e.value) and "splits folder" in str(e.value)


def test_ffpp_missing_folder_named(ffpp_mini, ffpp_splits):
    with pytest.raises(DatasetError) as e:
        ffpp_manifest(ffpp_mini, compressions="c40", methods=["Deepfakes"], splits=ffpp_splits)
    assert "original_sequences/youtube/c40/videos" in str(e.value)


def test_ffpp_layout_splits_found_beside_dataset(tmp_path):
    root = tmp_path / "FF++"
    for c in ("c23", "c40"):
        touch(root / "original_sequences/youtube" / c / "videos/001.mp4")
        touch(root / "original_sequences/youtube" / c / "videos/002.mp4")
        touch(root / "manipulated_sequences/NeuralTextures" / c / "videos/001_002.mp4")
        touch(root / "manipulated_sequences/NeuralTextures" / c / "videos/002_001.mp4")
    (root / "splits").mkdir()
    for split, pairs in (("train", [["001", "002"]]), ("val", []), ("test", [])):
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    m = ffpp_manifest(root, compressions=["c23", "c40"], methods="NeuralTextures")
    assert len(m) == 8 and set(m["split"]) == {"train"}
    assert sorted(m.loc[m.label == FAKE, "store_key"])[:2] == ["ffpp/c23/NeuralTextures/001_002",
                                                               "ffpp/c23/NeuralTextures/002_001"]
    with pytest.raises(DatasetError, match="unknown FF\\+\\+ method"):
        ffpp_manifest(root, compressions="c23", methods="DeepFaceLab")


def test_ffpp_split_conflict_is_an_error(tmp_path):
    (tmp_path / "train.json").write_text('[["001", "002"]]')
    (tmp_path / "val.json").write_text('[["002", "003"]]')
    (tmp_path / "test.json").write_text("[]")
    with pytest.raises(DatasetError, match="002"):
        read_ffpp_splits(tmp_path)
    (tmp_path / "val.json").write_text("{not json")
    with pytest.raises(DatasetError, match="val.json"):
        read_ffpp_splits(tmp_path)


# ---------------------------------------------------------------- Celeb-DF v2

def make_celebdf(root, listing: str, extra_train=()):
    for line in listing.splitlines():
        if line.strip():
            touch(root / line.split()[1])
    for rel in extra_train:
        touch(root / rel)
    for folder in ("Celeb-real", "YouTube-real", "Celeb-synthesis"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "List_of_testing_videos.txt").write_text(listing)
    return root


def test_celebdf_official_list(tmp_path):
    listing = shared("celebdf_splits", "List_of_testing_videos.txt").read_text()
    root = make_celebdf(tmp_path / "Celeb-DF-v2", listing,
                        extra_train=["Celeb-real/id58_0009.mp4", "Celeb-synthesis/id58_id3_0009.mp4",
                                     "YouTube-real/99999.mp4"])
    m = celebdf_manifest(root)
    test = m[m.split == "test"]
    assert len(test) == 518
    lines = [line.split() for line in listing.splitlines() if line.strip()]
    n_real = sum(1 for label, _ in lines if label == "1")
    # the file's 1 = real becomes our 0 = real
    assert (test.label == REAL).sum() == n_real and (test.label == FAKE).sum() == 518 - n_real
    assert set(test.loc[test.label == REAL, "method"]) <= {"Celeb-real", "YouTube-real"}
    train = m[m.split == "train"].set_index("video_id")
    assert len(train) == 3
    assert train.loc["id58_id3_0009", "label"] == FAKE
    assert (train.loc["id58_id3_0009", "target_id"], train.loc["id58_id3_0009", "source_id"]) == ("id58", "id3")
    assert (train.loc["id58_0009", "target_id"], train.loc["id58_0009", "label"]) == ("id58", REAL)
    assert train.loc["99999", "store_key"] == "celebdf/YouTube-real/99999"
    # a fake shares the group of the real clip it was made from
    assert train.loc["id58_id3_0009", "group"] == train.loc["id58_0009", "group"] == "celebdf-id58_0009"
    assert train.loc["99999", "group"] == "celebdf-99999"


def test_celebdf_clip_is_the_real_clip_a_fake_was_made_from():
    assert celebdf_clip("id1_id0_0007", FAKE) == "id1_0007"  # id0's face in id1's clip 0007
    assert celebdf_clip("id58_id3_0009", FAKE) == "id58_0009"
    assert celebdf_clip("id1_0007", REAL) == "id1_0007"
    assert celebdf_clip("00170", REAL) == "00170"  # YouTube-real: a clip of its own
    assert celebdf_clip("odd_name", FAKE) == "odd_name"


def test_celebdf_errors_name_what_is_missing(tmp_path):
    root = make_celebdf(tmp_path / "c", "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    assert len(celebdf_manifest(root)) == 2
    (root / "Celeb-synthesis" / "id0_id1_0000.mp4").unlink()
    with pytest.raises(DatasetError, match="id0_id1_0000"):
        celebdf_manifest(root)
    (root / "List_of_testing_videos.txt").write_text("0 Celeb-real/id0_0000.mp4\n")
    with pytest.raises(DatasetError, match="contradicts"):
        celebdf_manifest(root)
    (root / "List_of_testing_videos.txt").unlink()
    with pytest.raises(DatasetError, match="List_of_testing_videos.txt"):
        celebdf_manifest(root)
    (root / "YouTube-real").rmdir()
    with pytest.raises(DatasetError, match="YouTube-real"):
        celebdf_manifest(root)


# ---------------------------------------------------------------- a plain folder

def test_folder_manifest(tmp_path):
    touch(tmp_path / "a.mp4")
    touch(tmp_path / "a.avi")
    touch(tmp_path / "sub dir" / "clip é.MOV")
    touch(tmp_path / "notes.txt")
    m = folder_manifest(tmp_path)
    assert sorted(m["store_key"]) == ["folder/a.avi", "folder/a.mp4", "folder/sub dir/clip é.MOV"]
    assert set(m["label"]) == {UNKNOWN} and set(m["split"]) == {"predict"}
    assert list(m["group"]) == list(m["store_key"]) and set(m["problem"]) == {""}  # each video its own group
    one = folder_manifest(tmp_path / "a.mp4")
    assert list(one["store_key"]) == ["folder/a.mp4"]
    with pytest.raises(DatasetError, match="not found"):
        folder_manifest(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files"):
        folder_manifest(tmp_path / "empty")
