"""The manifest's ``group``: FF++ official pairs (real split files and pairs in none), DFD actors."""
import json

import pytest

from deepfake_keras.data.datasets import (FAKE, MANIFEST_COLUMNS, REAL, DatasetError, dfd_manifest, ffpp_manifest,
                                          ffpp_pairs)

from ..conftest import shared


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def one_side(m):
    """Every group of ``m`` lies in one split."""
    return m.groupby("group")["split"].nunique().max() == 1


# ---------------------------------------------------------------- FF++ on the real subset

@pytest.mark.parametrize("splits", ["ffpp_c23_subset/splits", "ffpp_splits"])
def test_ffpp_groups_are_the_official_pairs(splits):
    root, folder = shared("ffpp_c23_subset"), shared(*splits.split("/"))
    m = ffpp_manifest(root, "c23", ["Deepfakes", "Face2Face", "FaceSwap"], splits=folder)
    assert "group" in MANIFEST_COLUMNS and m["group"].notna().all()
    pairs = {}
    for split in ("train", "val", "test"):
        for a, b in json.loads((folder / f"{split}.json").read_text()):
            pairs[a] = pairs[b] = f"ffpp-{a}_{b}"  # the pair in the file's order
    for row in m.itertuples():
        assert row.group == pairs[row.target_id], row.video_id
        if row.label == FAKE:  # TTT_SSS and SSS_TTT share the pair's group
            assert pairs[row.source_id] == row.group
    assert one_side(m)
    # an original and every fake of its scene, whatever the method, sit in one group
    for row in m[m.label == REAL].itertuples():
        fakes = m[(m.label == FAKE) & ((m.target_id == row.video_id) | (m.source_id == row.video_id))]
        assert len(fakes) and set(fakes["group"]) == {row.group}
    assert m["group"].nunique() == 16  # the subset's 16 pairs


def test_ffpp_pairs_read_in_file_order_and_refuse_a_video_in_two_pairs(tmp_path):
    (tmp_path / "train.json").write_text('[["010", "002"]]')
    (tmp_path / "val.json").write_text('[["003", "004"]]')
    (tmp_path / "test.json").write_text("[]")
    pairs = ffpp_pairs(tmp_path)
    assert pairs["002"] == pairs["010"] == pairs["010_002"] == pairs["002_010"] == ("train", "010_002")
    assert pairs["004_003"] == ("val", "003_004")
    (tmp_path / "test.json").write_text('[["004", "005"]]')
    with pytest.raises(DatasetError, match="004"):
        ffpp_pairs(tmp_path)
    (tmp_path / "test.json").write_text("[]")
    (tmp_path / "val.json").write_text('[["003", "004"], ["003", "005"]]')  # 003 in two pairs of one split
    with pytest.raises(DatasetError, match="two pairs"):
        ffpp_pairs(tmp_path)


def test_ffpp_videos_outside_the_split_files_get_their_own_sorted_pair(tmp_path):
    root = tmp_path / "FF++"
    for name in ("001", "002", "007", "009", "011"):
        touch(root / "original_sequences/youtube/c23/videos" / f"{name}.mp4")
    for name in ("001_002", "009_007", "007_009"):
        touch(root / "manipulated_sequences/Deepfakes/c23/videos" / f"{name}.mp4")
    (root / "splits").mkdir()
    for split, pairs in (("train", [["002", "001"]]), ("val", []), ("test", [])):
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    m = ffpp_manifest(root, "c23", "Deepfakes").set_index("store_key")
    group = {k.split("/")[-1]: g for k, g in m["group"].items()}
    assert group["001"] == group["002"] == group["001_002"] == "ffpp-002_001"  # the split file's order
    assert group["009_007"] == group["007_009"] == "ffpp-007_009"  # no split file: sorted
    assert group["007"] == group["009"] == "ffpp-007_009"  # the one partner their fakes name
    assert group["011"] == "ffpp-011"  # no fake, no pair: itself
    assert m.loc["ffpp/c23/original/011", "split"] == "unsplit"


# ---------------------------------------------------------------- DFD (DeepFakeDetection, stand-in files)

DFD_ORIGINALS = ["01__exit_phone_room", "01__walking_outside", "02__talking_angry_couch", "03__kitchen_pan"]
DFD_FAKES = ["01_02__exit_phone_room__YVGY8LOK", "02_01__talking_angry_couch__3H2L6UMB", "03_01__kitchen_pan__JZUXXFRB"]


def make_dfd(root, compressions=("c23",)):
    for c in compressions:
        for name in DFD_ORIGINALS:
            touch(root / "original_sequences/actors" / c / "videos" / f"{name}.mp4")
        for name in DFD_FAKES:
            touch(root / "manipulated_sequences/DeepFakeDetection" / c / "videos" / f"{name}.mp4")
    return root


def test_dfd_manifest_labels_ids_and_actor_groups(tmp_path):
    root = make_dfd(tmp_path / "FF++", ("c23", "c40"))
    m = dfd_manifest(root, "c23")
    assert len(m) == 7 and list(m.columns[:len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    rows = m.set_index("video_id")
    assert (rows.loc["01_02__exit_phone_room__YVGY8LOK", ["label", "target_id", "source_id", "method"]].tolist()
            == [FAKE, "01", "02", "DeepFakeDetection"])
    assert rows.loc["02__talking_angry_couch", ["label", "target_id", "source_id"]].tolist() == [REAL, "02", ""]
    # a fake joins the group of the actor whose scene it is (its target), never the face's actor
    assert rows.loc["01_02__exit_phone_room__YVGY8LOK", "group"] == rows.loc["01__walking_outside", "group"] == "dfd-01"
    assert rows.loc["02_01__talking_angry_couch__3H2L6UMB", "group"] == rows.loc["02__talking_angry_couch", "group"]
    assert m["store_key"].is_unique and set(m["split"]) == {"unsplit"} and set(m["compression"]) == {"c23"}
    assert rows.loc["01__exit_phone_room", "store_key"] == "dfd/c23/original/01__exit_phone_room"
    both = dfd_manifest(root, ["c23", "c40"])
    assert len(both) == 14 and both["store_key"].is_unique
    assert both.groupby("group")["compression"].nunique().eq(2).all()  # one actor, both compressions


def test_dfd_errors_name_the_file_or_folder(tmp_path):
    root = make_dfd(tmp_path / "FF++")
    with pytest.raises(DatasetError, match="original_sequences/actors/c40/videos"):
        dfd_manifest(root, "c40")
    with pytest.raises(DatasetError, match="unknown FF\\+\\+ compression"):
        dfd_manifest(root, "c99")
    bad = touch(root / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02_exit.mp4")
    with pytest.raises(DatasetError) as e:
        dfd_manifest(root, "c23")
    assert str(bad) in str(e.value) and "01_02__scene__XXXXXXXX" in str(e.value) and "\n" not in str(e.value)
