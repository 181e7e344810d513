"""Entries a plain folder holds that are not video files (issue 17): dangling symbolic links, link loops,
FIFOs, links to folders and folder loops. Each is listed with its real reason, never skipped without a
word; nothing blocks (a FIFO is never opened) and no loop is followed forever."""
import errno
import os
import signal
import stat

import pytest

from deepfake_keras.data.datasets import (UNKNOWN, DatasetError, dfdc_manifest, folder_manifest, labelled_manifest,
                                          path_problem, scan_videos)

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs symbolic links and FIFOs (POSIX)")


@pytest.fixture(autouse=True)
def no_hang():
    """Fail, rather than hang, if anything opens a FIFO or follows a loop."""
    def stop(*_):
        raise TimeoutError("listing the folder did not finish in 60 s")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def odd_folder(tmp_path):
    """A folder of ordinary videos and every kind of odd entry with a video name."""
    root = tmp_path / "videos"
    touch(root / "good.mp4")
    touch(root / "sub" / "deep.mkv")
    (root / "dangling.mp4").symlink_to(root / "deleted.mp4")
    (root / "self_loop.mp4").symlink_to("self_loop.mp4")
    (root / "loop_a.mp4").symlink_to("loop_b.mp4")
    (root / "loop_b.mp4").symlink_to("loop_a.mp4")
    os.mkfifo(root / "pipe.mp4")
    (root / "link_to_good.mp4").symlink_to(root / "good.mp4")
    (root / "sub" / "up").symlink_to("..")  # a folder loop: sub/up/sub/up/...
    touch(tmp_path / "elsewhere" / "linked.avi")
    (root / "linked_folder").symlink_to(tmp_path / "elsewhere")
    (root / "broken_folder_link").symlink_to(tmp_path / "nowhere")  # no video name: not a video entry
    touch(root / "notes.txt")
    return root


LOOP = "symbolic link loop (too many levels of symbolic links)"
EXPECTED = {
    "good.mp4": "", "sub/deep.mkv": "", "link_to_good.mp4": "", "linked_folder/linked.avi": "",
    "dangling.mp4": "dangling symbolic link (to {root}/deleted.mp4, which does not exist)",
    "self_loop.mp4": LOOP, "loop_a.mp4": LOOP, "loop_b.mp4": LOOP, "pipe.mp4": "not a regular file (FIFO)",
}


def expected(root) -> dict:
    return {name: problem.format(root=root) for name, problem in EXPECTED.items()}


def test_scan_videos_lists_every_entry_with_its_reason(odd_folder):
    found = {p.relative_to(odd_folder).as_posix(): problem for p, problem in scan_videos(odd_folder)}
    assert found == expected(odd_folder)  # the folder loop sub/up is entered once (as the root), not forever
    # a folder to skip (e.g. predict's output folder) is not entered, whatever the path it is reached by
    skipped = {p.relative_to(odd_folder).as_posix() for p, _ in scan_videos(odd_folder, skip=[odd_folder / "sub"])}
    assert skipped == set(EXPECTED) - {"sub/deep.mkv"}
    names = {p.name for p, _ in scan_videos(odd_folder, skip=[odd_folder.parent / "elsewhere"])}
    assert "linked.avi" not in names and "good.mp4" in names  # not entered through the link either


def test_folder_manifest_has_a_row_for_each_with_its_problem(odd_folder):
    m = folder_manifest(odd_folder)
    problems = {k[len("folder/"):]: p for k, p in zip(m["store_key"], m["problem"])}
    assert problems == expected(odd_folder)
    assert set(m["label"]) == {UNKNOWN} and m["store_key"].is_unique
    pipe = m[m["store_key"] == "folder/pipe.mp4"].iloc[0]
    assert pipe["path"] == str(odd_folder / "pipe.mp4") and pipe["video_id"] == "pipe"
    # ordinary files give the rows they always gave
    good = m[m["store_key"] == "folder/good.mp4"].iloc[0]
    assert (good["path"], good["problem"], good["split"]) == (str(odd_folder.resolve() / "good.mp4"), "", "predict")


def test_path_problem_of_single_entries(odd_folder, tmp_path):
    assert path_problem(odd_folder / "good.mp4") == ""
    assert path_problem(odd_folder / "link_to_good.mp4") == ""
    assert path_problem(odd_folder / "dangling.mp4").startswith("dangling symbolic link (to ")
    assert path_problem(odd_folder / "self_loop.mp4") == LOOP
    assert path_problem(odd_folder / "pipe.mp4") == "not a regular file (FIFO)"
    assert path_problem(tmp_path / "absent.mp4") == "file not found"
    assert path_problem(odd_folder) == "folder"
    assert stat.S_ISFIFO(os.lstat(odd_folder / "pipe.mp4").st_mode)  # still there, never opened or changed


def test_an_odd_entry_given_as_the_root_is_one_row_with_its_problem(odd_folder):
    for name in ("pipe.mp4", "dangling.mp4", "loop_a.mp4"):
        m = folder_manifest(odd_folder / name)
        assert list(m["store_key"]) == [f"folder/{name}"] and m["problem"].iloc[0] == expected(odd_folder)[name]
    assert folder_manifest(odd_folder / "good.mp4")["problem"].tolist() == [""]
    with pytest.raises(DatasetError, match="not found"):
        folder_manifest(odd_folder / "absent")


def test_a_folder_that_cannot_be_listed_is_an_entry(tmp_path, monkeypatch):
    root = tmp_path / "videos"
    touch(root / "good.mp4")
    locked = root / "locked"
    touch(locked / "inside.mp4")
    listdir = os.listdir

    def refuse(path):  # a folder without read permission (chmod 0 does not stop root, who runs CI here)
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refuse)
    found = dict(scan_videos(root))
    assert found == {root / "good.mp4": "", locked: "cannot list this folder (Permission denied)"}
    row = folder_manifest(root).set_index("store_key").loc["folder/locked"]
    assert row["problem"] == "cannot list this folder (Permission denied)"


def test_labelled_and_dfdc_loaders_list_odd_entries_too(tmp_path):
    root = tmp_path / "labelled"
    touch(root / "real" / "a.mp4")
    os.mkfifo(root / "real" / "pipe.mp4")
    (root / "fake").mkdir()
    (root / "fake" / "gone.mp4").symlink_to(root / "deleted.mp4")
    m = labelled_manifest(root).set_index("video_id")
    assert m.loc["pipe", "problem"] == "not a regular file (FIFO)"
    assert m.loc["gone", "problem"].startswith("dangling symbolic link")
    assert m.loc["a", "problem"] == ""
    dfdc = tmp_path / "dfdc" / "dfdc_train_part_0"
    touch(dfdc / "metadata.json", b'{"v.mp4": {"label": "REAL"}, "w.mp4": {"label": "REAL"}}')
    os.mkfifo(dfdc / "v.mp4")
    (dfdc / "w.mp4").symlink_to("w.mp4")
    m = dfdc_manifest(dfdc.parent).set_index("video_id")
    assert m["problem"].to_dict() == {"v": "not a regular file (FIFO)", "w": LOOP}
