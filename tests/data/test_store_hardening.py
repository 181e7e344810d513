"""A face store reused with other files, or damaged, says so and names the file."""
import pandas as pd
import pytest

from deepfake_keras import cli
from deepfake_keras.data.datasets import MANIFEST_COLUMNS
from deepfake_keras.data.store import FaceStore, StoreError, refuse_other_files

from ..tiny_store import make_store, noise_crops


def manifest_of(keys, folder):
    return pd.DataFrame([{**dict.fromkeys(MANIFEST_COLUMNS, ""), "store_key": k, "video_id": k.split("/")[-1],
                          "path": str(folder / f"{k.split('/')[-1]}.mp4"), "label": 0, "split": "test"}
                         for k in keys], columns=MANIFEST_COLUMNS)


def test_a_store_filled_from_other_files_is_refused_unless_allowed(tmp_path):
    store = make_store(tmp_path / "store", {"folder/a.mp4": (0, "test", noise_crops(1, 0))})
    meta = store.status("folder/a.mp4")
    mine = manifest_of(["folder/a.mp4"], tmp_path / "one")
    mine["path"] = meta["path"]
    assert refuse_other_files(store.root, mine) == []  # the same file: fine
    other = manifest_of(["folder/a.mp4", "folder/b.mp4"], tmp_path / "two")  # same name, another root
    with pytest.raises(StoreError, match=r"holds 1 of these videos extracted from other files .*folder/a\.mp4"):
        refuse_other_files(store.root, other)
    assert refuse_other_files(store.root, other, allow=True) == [("folder/a.mp4", str(meta["path"]),
                                                                   str(other["path"][0]))]
    assert refuse_other_files(tmp_path / "new", other) == []  # no store yet


@pytest.mark.parametrize("damaged, what", [("folder/a.mp4/video.json", "video record"),
                                          ("extract_config.json", "extraction settings")])
def test_a_damaged_store_file_is_named(tmp_path, damaged, what, capsys):
    store = make_store(tmp_path / "store", {"folder/a.mp4": (0, "test", noise_crops(1, 0))})
    (store.root / damaged).write_text("{not json")
    with pytest.raises(StoreError, match=rf"{damaged}: the store's {what} is not valid JSON"):
        FaceStore.open(store.root).rebuild_index()
    with pytest.raises(StoreError, match=rf"{damaged}: the store's {what}"):
        FaceStore.open(store.root).status("folder/a.mp4")
    if damaged == "extract_config.json":  # the command line: one line naming the file, exit 2
        assert cli.main(["embed", "--store", str(store.root), "--facenet", "facenet-msceleb-128", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert damaged in err and "not valid JSON" in err and "Traceback" not in err
