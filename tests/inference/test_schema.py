"""What a bundle may hold: each field type refuses what does not fit and names the field; JSON of any
nesting is measured without recursion; the folder and file checks refuse links, FIFOs and oversized
files without following, opening or blocking on them; bounded copies stay small."""
import json
import math
import os
import threading
from dataclasses import fields

import numpy as np
import pytest

from deepfake_keras.config import BaggingExperiment, BaselinesExperiment, ExtractConfig, TripletExperiment
from deepfake_keras.inference import schema as sc
from deepfake_keras.inference.base import COMMON_FIELDS, EXTRACT_FIELDS
from deepfake_keras.inference.schema import (Boolean, BundleError, Choice, FileRef, Integer, ListOf, Number, Record,
                                             SchemaError, validate)


# ---------------------------------------------------------------- field types

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1, 0, 1, 1e308, None, [0.5], "abc", "0.5", True,
                                   {"v": 0.5}])
def test_threshold_refuses_everything_but_a_number_strictly_between_0_and_1(value):
    with pytest.raises(SchemaError, match=r"^threshold: must (be a finite number in \(0, 1\)|not be null)"):
        validate({"threshold": value}, {"threshold": COMMON_FIELDS["threshold"]})


@pytest.mark.parametrize("value", [1e-9, 0.5, 0.9982525, 1 - 1e-9])
def test_threshold_takes_numbers_inside(value):
    validate({"threshold": value}, {"threshold": COMMON_FIELDS["threshold"]})


def test_integers_are_integers_and_choices_exact():
    field = Integer(1, 256)
    for bad in (2.0, True, "3", 0, 257, 10 ** 400):
        with pytest.raises(SchemaError, match=r"^n: must be an integer in \[1, 256\]"):
            field.check(bad, "n")
    field.check(256, "n")
    agg = COMMON_FIELDS["aggregation"]
    for bad in ("median", "Mean", ["mean"], 1, None):
        with pytest.raises(SchemaError, match="aggregation: must (be one of max, mean, vote|not be null)"):
            agg.check(bad, "aggregation")
    with pytest.raises(SchemaError, match="must be true or false"):
        Boolean().check(1, "flag")


def test_records_name_the_nested_field_and_refuse_unknown_and_missing_ones():
    fields_ = {"extract": Record({"crop_size": Integer(16, 512), "units": ListOf(Integer(1, 8), 1, 3)})}
    with pytest.raises(SchemaError, match=r"^extract\.units\[1\]: must be an integer in \[1, 8\], got 9"):
        validate({"extract": {"crop_size": 64, "units": [1, 9]}}, fields_)
    with pytest.raises(SchemaError, match=r"^extract\.crop_size: missing"):
        validate({"extract": {"units": [1]}}, fields_)
    with pytest.raises(SchemaError, match=r"^extract\.'colour': not a field of this format"):
        validate({"extract": {"crop_size": 64, "units": [1], "colour": "red"}}, fields_)
    with pytest.raises(SchemaError, match=r"^extract: must be an object, got str"):
        validate({"extract": "frames=25"}, fields_)
    with pytest.raises(SchemaError, match=r"^extract\.units: must hold 1 to 3 items, got 4"):
        validate({"extract": {"crop_size": 64, "units": [1, 1, 1, 1]}}, fields_)


def test_a_long_value_is_shown_cut():
    with pytest.raises(SchemaError) as e:
        Choice(("a",)).check("x" * 1_000_000, "kind")
    assert len(str(e.value)) < 200


def test_file_refs_must_be_checksummed_files_inside_the_folder():
    context = {"files": {"a.h5": "0" * 64}}
    FileRef().check("a.h5", "w", context)
    with pytest.raises(SchemaError, match="w: 'bundle.json' is not in the 'files' map"):
        FileRef().check("bundle.json", "w", context)
    for name in ("../a.h5", "/etc/passwd", "a\\b", "~root/x", "a/../a.h5"):
        with pytest.raises(SchemaError, match="leaves the bundle folder"):
            FileRef().check(name, "w", context)
    for name in ("./a.h5", "a//b", "x" * 300):
        with pytest.raises(SchemaError, match="not a plain relative name"):
            FileRef().check(name, "w", context)


def test_extract_fields_cover_every_extract_config_setting():
    """A setting added to ExtractConfig must get its range here, or bundles would refuse it."""
    assert set(EXTRACT_FIELDS) == {f.name for f in fields(ExtractConfig)}
    validate(ExtractConfig().to_dict(), EXTRACT_FIELDS)


@pytest.mark.parametrize("experiment", [TripletExperiment, BaggingExperiment, BaselinesExperiment])
@pytest.mark.parametrize("settings", ["paper", "demo"])
def test_every_experiments_extraction_fits(experiment, settings):
    """The settings the experiments extract faces with (the paper's and the DEMO's) all fit."""
    c = getattr(experiment, settings)()
    config = ExtractConfig(frames_per_video=c.frames_per_video, fps=getattr(c, "fps", None) or None,
                           consecutive=experiment is BaselinesExperiment)
    COMMON_FIELDS["extract"].check(config.to_dict(), "extract")


def test_extract_refuses_settings_that_would_exhaust_memory():
    extract = COMMON_FIELDS["extract"]
    ok = ExtractConfig().to_dict()
    extract.check(ok, "extract")
    for change, message in [({"frames_per_video": 10 ** 9}, r"frames_per_video: must be an integer in \[1, 256\]"),
                            ({"crop_size": 4000}, r"crop_size: must be an integer in \[16, 512\]"),
                            ({"batch_size": 0}, r"batch_size: must be an integer in \[1, 256\]"),
                            ({"detect_size": 32}, "detect_size must be 0"),
                            ({"frames_per_video": 256, "max_frame_side": 7680}, "GiB of frames per video")]:
        with pytest.raises(SchemaError, match=f"^extract.*{message}"):
            extract.check({**ok, **change}, "extract")


# ---------------------------------------------------------------- JSON of any nesting

def test_deeply_nested_json_is_refused_without_recursion():
    for text in ("[" * 200_000 + "]" * 200_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        with pytest.raises(SchemaError, match="bundle.json: nested too deeply"):
            sc.parse_json(text.encode(), "bundle.json")
    deep = json.dumps(json.loads("[" * 40 + "]" * 40))
    assert sc.json_depth(json.loads(deep)) == 40
    with pytest.raises(SchemaError, match="nested too deeply"):
        sc.parse_json(deep.encode(), "x.json", max_depth=32)
    assert sc.json_depth(sc.parse_json(b'{"a": [1, {"b": 2}]}', "x")) == 3
    with pytest.raises(SchemaError, match=r"x.json: not valid JSON"):
        sc.parse_json(b"\xff\xfe", "x.json")


def test_bounded_copy_keeps_a_real_source_whole_and_a_huge_one_small():
    metrics = {k: 0.5 for k in ("acc_fake", "acc_real", "accuracy", "auc", "eer", "eer_threshold", "f1", "n",
                                "n_fake", "n_real", "precision", "recall", "threshold")}
    real = {"demo": True, "description": "Triplets (Semi-hard) + SGD", "experiment": "ffpp_triplet",
            "model": "triplet_sgd", "test": {"frame": metrics, "video": dict(metrics)}}
    assert sc.bounded_copy(real) == real
    huge = {"blob": "x" * 10_000_000, "many": {str(i): i for i in range(100_000)},
            "deep": json.loads("[" * 30 + "]" * 30), "nan": math.nan, ("k" * 5000): 1}
    small = sc.bounded_copy(huge)
    text = json.dumps(small, allow_nan=False)  # no NaN left either
    assert len(text) < 20_000
    assert small["blob"].startswith("xxx") and len(small["blob"]) <= 200


# ---------------------------------------------------------------- the folder and its files

def test_scan_refuses_links_and_special_files_without_following_them(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "w.h5").write_bytes(b"1234")
    (tmp_path / "bundle.json").write_text("{}")
    assert sc.scan_folder(tmp_path) == {"b/w.h5": 4, "bundle.json": 2}
    (tmp_path / "b" / "link").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match=r"b/link: a symbolic link \(to /etc/passwd\).*refused"):
        sc.scan_folder(tmp_path)
    (tmp_path / "b" / "link").unlink()
    (tmp_path / "dirlink").symlink_to(tmp_path / "b")
    with pytest.raises(BundleError, match="dirlink: a symbolic link"):
        sc.scan_folder(tmp_path)
    (tmp_path / "dirlink").unlink()
    os.mkfifo(tmp_path / "b" / "pipe")
    with pytest.raises(BundleError, match=r"b/pipe: not a regular file \(FIFO\); refused"):
        sc.scan_folder(tmp_path)
    (tmp_path / "b" / "pipe").unlink()
    for i in range(sc.MAX_FILES + 1):
        (tmp_path / "b" / f"f{i}").write_bytes(b"")
    with pytest.raises(BundleError, match=f"more than {sc.MAX_FILES} files"):
        sc.scan_folder(tmp_path)


def test_reading_refuses_links_fifos_and_oversized_files_and_never_blocks(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert sc.read_regular(tmp_path / "f", 100) == b"x" * 100
    with pytest.raises(BundleError, match=r"f: 100 bytes, more than the 99 bytes it may have"):
        sc.read_regular(tmp_path / "f", 99)
    (tmp_path / "l").symlink_to(tmp_path / "f")
    with pytest.raises(BundleError, match="l: a symbolic link"):
        sc.read_regular(tmp_path / "l", 1000)
    with pytest.raises(BundleError, match="l: a symbolic link"):
        sc.hash_regular(tmp_path / "l", 1000)
    os.mkfifo(tmp_path / "p")
    result = {}

    def read():
        try:
            sc.read_regular(tmp_path / "p", 1000)
        except BundleError as e:
            result["error"] = str(e)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading a FIFO blocked"
    assert "not a regular file (FIFO)" in result["error"]


def test_weights_files_linking_outside_or_inflating_are_refused(tmp_path):
    import h5py

    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as f:
        f["layers/dense/vars/0"] = np.zeros((16, 8), np.float32)
    sc.check_weights_file(good)
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(4)
    linked = tmp_path / "linked.h5"
    with h5py.File(linked, "w") as f:
        f["layers/dense/vars/0"] = h5py.ExternalLink(str(outside), "/secret")
    with pytest.raises(BundleError, match="linked.h5: layers/dense/vars/0 is a ExternalLink.*refused"):
        sc.check_weights_file(linked)
    soft = tmp_path / "soft.h5"
    with h5py.File(soft, "w") as f:
        f["a"] = np.zeros(3)
        f["b"] = h5py.SoftLink("/a")
    with pytest.raises(BundleError, match="b is a SoftLink"):
        sc.check_weights_file(soft)
    bomb = tmp_path / "bomb.h5"  # 1 GB declared, chunked and never written: a few KB on disk
    with h5py.File(bomb, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(2 ** 28,), dtype="float32", chunks=(2 ** 16,))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(BundleError, match=r"bomb.h5: its datasets hold 1024.0 MB, from a file of .*refused"):
        sc.check_weights_file(bomb)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(BundleError, match="junk.h5: not a readable weights file"):
        sc.check_weights_file(tmp_path / "junk.h5")


def test_numbers_can_be_open_or_closed():
    assert Number(0, 2).describe() == "a finite number in [0, 2]"
    Number(0, 2).check(2, "margin")
    with pytest.raises(SchemaError, match=r"margin: must be a finite number in \[0, 2\], got 'abc'|got str"):
        Number(0, 2).check("abc", "margin")
