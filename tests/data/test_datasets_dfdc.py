"""The DFDC loader: the real ``dfdc_mini`` layout (train parts with metadata.json, some listed clips absent,
one real clip at the root) and layouts built in tmp folders (test set labels.csv, originals, bad files)."""
import json

import pytest

from deepfake_keras.data.datasets import FAKE, MANIFEST_COLUMNS, REAL, DatasetError, dfdc_manifest

from ..conftest import shared

PRESENT_FAKES = {"brtujopkby": "gnmmhlbzge", "widuwuoiur": "ybqmttnept", "yhffcuhhjy": "wdpsifpppf"}
ABSENT_FAKES = {"awnfpubqmo", "vtfpbtmgfh", "zvqinhzeah"}  # listed in metadata.json, over 4 MiB, not copied


def touch(path, data=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.fixture
def lynaeydofd_labels(tmp_path):
    """lynaeydofd.mp4 is in no metadata.json of dfdc_mini; its SOURCES file says it is REAL (the DFDC
    lists it as the original of 6 fakes that are not here): its label comes in a labels CSV."""
    path = tmp_path / "labels.csv"
    path.write_text("filename,label\nlynaeydofd.mp4,0\n")
    return path


def test_dfdc_mini_absent_listed_videos_are_an_error_naming_the_file():
    root = shared("dfdc_mini")
    with pytest.raises(DatasetError) as e:
        dfdc_manifest(root)
    text = one_line(e)
    assert "metadata.json" in text and "not found" in text
    assert any(name in text for name in ABSENT_FAKES)


def test_dfdc_mini_unlabelled_root_video_is_an_error_that_says_how_to_label_it():
    with pytest.raises(DatasetError) as e:
        dfdc_manifest(shared("dfdc_mini"), missing="record")
    text = one_line(e)
    assert "lynaeydofd.mp4" in text and "labels=" in text


def test_dfdc_mini_manifest(lynaeydofd_labels):
    root = shared("dfdc_mini")
    m = dfdc_manifest(root, labels=lynaeydofd_labels, missing="record")
    assert list(m.columns) == MANIFEST_COLUMNS + ["problem"]
    rows = m.set_index("video_id")
    assert set(rows.index) == set(PRESENT_FAKES) | ABSENT_FAKES | {"lynaeydofd"}
    assert m["store_key"].is_unique and set(m["dataset"]) == {"dfdc"}
    for vid, original in PRESENT_FAKES.items():
        row = rows.loc[vid]
        assert (row["label"], row["problem"], row["split"]) == (FAKE, "", "train")
        assert row["group"] == f"dfdc-{original}" and row["target_id"] == original  # grouped with its original
        assert row["method"].startswith("dfdc_train_part_") and row["store_key"] == f"dfdc/{row['method']}/{vid}"
        assert (root / row["method"] / f"{vid}.mp4").samefile(row["path"])
    for vid in ABSENT_FAKES:  # recorded, not dropped: the extractor reports them as failed
        assert rows.loc[vid, "problem"].startswith("listed in ") and "metadata.json" in rows.loc[vid, "problem"]
        assert rows.loc[vid, "problem"].endswith("but not found") and rows.loc[vid, "label"] == FAKE
    real = rows.loc["lynaeydofd"]
    assert (real["label"], real["group"], real["problem"], real["store_key"]) == (REAL, "dfdc-lynaeydofd", "",
                                                                                  "dfdc/lynaeydofd")


def test_dfdc_original_found_by_name_is_real_and_shares_its_fakes_group(tmp_path):
    root = tmp_path / "dfdc"
    meta = {"aaa.mp4": {"label": "FAKE", "split": "train", "original": "orig.mp4"},
            "bbb.mp4": {"label": "FAKE", "split": "train", "original": "orig.mp4"},
            "ccc.mp4": {"label": "REAL", "split": "train"}}
    for name in ("aaa.mp4", "bbb.mp4", "ccc.mp4"):
        touch(root / "dfdc_train_part_3" / name)
    touch(root / "dfdc_train_part_3" / "metadata.json", json.dumps(meta).encode())
    touch(root / "originals" / "orig.mp4")  # in no metadata.json, but the original of aaa and bbb
    m = dfdc_manifest(root).set_index("video_id")
    assert m.loc["orig", "label"] == REAL and m.loc["orig", "split"] == "train"
    assert m.loc["aaa", "group"] == m.loc["bbb", "group"] == m.loc["orig", "group"] == "dfdc-orig"
    assert m.loc["ccc", "group"] == "dfdc-ccc" and m.loc["ccc", "label"] == REAL


def test_dfdc_test_set_labels_csv(tmp_path):
    root = tmp_path / "dfdc"
    for name in ("t1.mp4", "t2.mp4", "t3.mp4"):
        touch(root / "test" / name)
    (root / "test" / "labels.csv").write_text("filename,label\nt1.mp4,1\nt2.mp4,0\nt3.mp4,1\n")
    m = dfdc_manifest(root).set_index("video_id")
    assert m["label"].to_dict() == {"t1": FAKE, "t2": REAL, "t3": FAKE}  # 1 = fake
    assert set(m["split"]) == {"test"} and m.loc["t2", "store_key"] == "dfdc/test/t2"
    assert m.loc["t1", "group"] != m.loc["t3", "group"]
    (root / "test" / "labels.csv").write_text("filename,label\nt1.mp4,1\nt2.mp4,0\nt3.mp4,1\nt4.mp4,0\n")
    with pytest.raises(DatasetError) as e:
        dfdc_manifest(root)
    assert "labels.csv" in one_line(e) and "t4.mp4" in str(e.value)
    m = dfdc_manifest(root, missing="record").set_index("video_id")
    assert m.loc["t4", "problem"].endswith("but not found") and m.loc["t1", "problem"] == ""
    (root / "test" / "labels.csv").write_text("filename,label\nt1.mp4,1\nt2.mp4,maybe\nt3.mp4,1\n")
    with pytest.raises(DatasetError) as e:
        dfdc_manifest(root)
    assert "labels.csv line 3" in one_line(e) and "maybe" in str(e.value)


@pytest.mark.parametrize("content, says", [
    (b"{not json", "not a DFDC metadata.json"),
    (b'["aaa.mp4"]', "not a DFDC metadata.json"),
    (b'{"aaa.mp4": {"split": "train"}}', "has no label"),
    (b'{"aaa.mp4": {"label": "MAYBE"}}', "has no label"),
    (b'{"aaa.mp4": "FAKE"}', "has no label"),
])
def test_dfdc_bad_metadata_is_a_one_line_error_naming_the_file(tmp_path, content, says):
    root = tmp_path / "dfdc"
    touch(root / "dfdc_train_part_0" / "aaa.mp4")
    meta = touch(root / "dfdc_train_part_0" / "metadata.json", content)
    with pytest.raises(DatasetError) as e:
        dfdc_manifest(root)
    assert str(meta) in one_line(e) and says in str(e.value)


def test_dfdc_unknown_layout_and_bad_arguments(tmp_path):
    touch(tmp_path / "videos" / "a.mp4")
    with pytest.raises(DatasetError) as e:
        dfdc_manifest(tmp_path)
    assert "metadata.json" in one_line(e) and "labels.csv" in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(DatasetError, match="not found"):
        dfdc_manifest(tmp_path / "absent")
    with pytest.raises(DatasetError, match="missing="):
        dfdc_manifest(tmp_path, missing="skip")
