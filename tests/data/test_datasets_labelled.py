"""The labelled-folder loader: real/ and fake/ at any depth, or a CSV of path,label[,group][,split]."""
import pytest

from deepfake_keras.data.datasets import FAKE, MANIFEST_COLUMNS, REAL, DatasetError, labelled_manifest


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


def test_real_and_fake_folders_at_any_depth(tmp_path):
    root = tmp_path / "mine"
    touch(root / "real" / "a.mp4")
    touch(root / "real" / "studio" / "day 2" / "b.MOV")
    touch(root / "fake" / "faceswap" / "a.mp4")  # same name as a real one: another video
    touch(root / "fake" / "notes.txt")
    touch(root / "elsewhere.mp4")  # outside real/ and fake/: not labelled, not listed
    m = labelled_manifest(root)
    assert list(m.columns) == MANIFEST_COLUMNS + ["problem"]
    labels = dict(zip(m["store_key"], m["label"]))
    assert labels == {"labelled/real/a.mp4": REAL, "labelled/real/studio/day 2/b.MOV": REAL,
                      "labelled/fake/faceswap/a.mp4": FAKE}
    assert list(m["group"]) == list(m["store_key"])  # no CSV: each video its own group
    assert set(m["split"]) == {"unsplit"} and set(m["dataset"]) == {"labelled"} and set(m["problem"]) == {""}
    only_real = tmp_path / "reals"
    touch(only_real / "real" / "x.mp4")
    assert list(labelled_manifest(only_real)["label"]) == [REAL]


def test_labels_csv_with_groups_and_absolute_paths(tmp_path):
    root = tmp_path / "clips"
    for name in ("a.mp4", "b.mp4", "sub/c.mp4", "d.mp4"):
        touch(root / name)
    outside = touch(tmp_path / "other" / "e.mp4")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label,group\n"
                   "a.mp4,real,person1\n"
                   "b.mp4,FAKE,person1\n"
                   "sub/c.mp4,1,\n"
                   f"{outside},0,person2\n")
    m = labelled_manifest(root, labels=csv).set_index("video_id")
    assert len(m) == 4  # d.mp4 is not listed: the CSV decides
    assert m["label"].to_dict() == {"a": REAL, "b": FAKE, "c": FAKE, "e": REAL}
    assert m.loc["a", "group"] == m.loc["b", "group"] == "person1" and m.loc["e", "group"] == "person2"
    assert m.loc["c", "group"] == m.loc["c", "store_key"] == "labelled/sub/c.mp4"  # no group: itself
    assert m.loc["e", "path"] == str(outside) and ".." not in m.loc["e", "store_key"]
    assert m["store_key"].is_unique and all(k.startswith("labelled/") for k in m["store_key"])
    csv.write_text("path,label,split\na.mp4,0,test\nb.mp4,1,\n")
    m = labelled_manifest(root, labels=csv).set_index("video_id")
    assert m["split"].to_dict() == {"a": "test", "b": "unsplit"}


def test_a_relative_path_out_of_the_root_never_gives_a_store_key_with_dots(tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    touch(tmp_path / "up.mp4")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n../up.mp4,fake\n")
    key = labelled_manifest(root, labels=csv)["store_key"].iloc[0]
    assert ".." not in key.split("/") and key.startswith("labelled/")


@pytest.mark.parametrize("content, says", [
    ("path,label\na.mp4,maybe\n", "line 2: unknown label 'maybe'"),
    ("path,label\na.mp4,real\nb.mp4,2\n", "line 3: unknown label '2'"),
    ("file,kind\na.mp4,real\n", "path,label"),
    ("path,label\n,real\n", "line 2: empty path"),
    ("path,label\n", "lists no video"),
    ("path,label\nsub,real\n", "a folder"),
])
def test_bad_label_csv_is_a_one_line_error_naming_the_file(tmp_path, content, says):
    root = tmp_path / "clips"
    touch(root / "a.mp4")
    (root / "sub").mkdir()
    csv = tmp_path / "labels.csv"
    csv.write_text(content)
    with pytest.raises(DatasetError) as e:
        labelled_manifest(root, labels=csv)
    assert str(csv) in one_line(e) and says in str(e.value)


def test_a_listed_file_that_is_missing_raises_or_is_recorded(tmp_path):
    root = tmp_path / "clips"
    touch(root / "a.mp4")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\na.mp4,real\ngone.mp4,fake\n")
    with pytest.raises(DatasetError) as e:
        labelled_manifest(root, labels=csv)
    assert str(csv) in one_line(e) and "gone.mp4" in str(e.value) and "not found" in str(e.value)
    m = labelled_manifest(root, labels=csv, missing="record").set_index("video_id")
    assert m.loc["a", "problem"] == "" and m.loc["gone", "problem"] == f"listed in {csv} but not found"
    with pytest.raises(DatasetError, match="label file not found"):
        labelled_manifest(root, labels=tmp_path / "absent.csv")


def test_folder_without_real_or_fake_and_empty_folders(tmp_path):
    root = tmp_path / "plain"
    touch(root / "a.mp4")
    with pytest.raises(DatasetError) as e:
        labelled_manifest(root)
    assert str(root) in one_line(e) and "real/" in str(e.value) and "fake/" in str(e.value)
    (root / "real").mkdir()
    (root / "fake" / "deep").mkdir(parents=True)
    with pytest.raises(DatasetError) as e:
        labelled_manifest(root)
    assert str(root) in one_line(e) and "no video files" in str(e.value)
    with pytest.raises(DatasetError, match="not found"):
        labelled_manifest(tmp_path / "absent")
