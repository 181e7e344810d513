"""Model bundles: a saved bundle loads and gives the same scores; a bundle whose files, versions,
FaceNet or classifier types do not match is refused with a message naming the file."""
import json
import shutil

import numpy as np
import pytest
import skops.io as sio

from deepfake_keras.config import FACENET_MARGIN, ExtractConfig
from deepfake_keras.data.inputs import preprocess_faces
from deepfake_keras.inference.base import BUNDLE_FILE, FORMAT_VERSION, BundleError, new_bundle_dir, seal_of
from deepfake_keras.inference.bundle import load_bundle, save_bundle
from deepfake_keras.io import sha256_of
from deepfake_keras.models.triplet import embed
from deepfake_keras.training.classifiers import fit_classifier
from deepfake_keras.training.triplet import train_triplet_head

DIM = 128  # facenet-msceleb-128's embedding size
CONFIG = ExtractConfig(frames_per_video=4, crop_size=160)


@pytest.fixture(scope="module")
def trained():
    """A triplet head (1 epoch) and two classifiers on 48 random unit vectors, two classes."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 24)
    x = rng.normal(size=(48, DIM)).astype(np.float32) + 0.5 * y[:, None]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    head, record = train_triplet_head(x, y, x, y, epochs=1, batch_size=16, seed=0)
    z = embed(head, x)
    classifiers = {"sgd": fit_classifier("sgd", z, y), "rf": fit_classifier("rf", z, y, n_estimators=5)}
    return x, y, head, record, classifiers


def make(path, trained, kind="sgd", **kw):
    x, y, head, record, classifiers = trained
    return save_bundle(path, "triplet", extract_config=CONFIG, head=head, head_record=record,
                       classifier=classifiers[kind], facenet="facenet-msceleb-128", **kw)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return make(tmp_path_factory.mktemp("bundles") / "triplet", trained)


def copy_of(saved, tmp_path):
    return shutil.copytree(saved, tmp_path / "copy")


def edit_meta(path, change, reseal=True):
    """Edit ``bundle.json``; ``reseal``: as one who also recomputes its seal would (the seal catches accidents,
    not adversaries), so that the checks behind it are reached."""
    meta = json.loads((path / BUNDLE_FILE).read_text())
    change(meta)
    if reseal:
        meta["seal"] = seal_of(meta)
    (path / BUNDLE_FILE).write_text(json.dumps(meta))


# ---------------------------------------------------------------- round trip

@pytest.mark.parametrize("kind", ["sgd", "rf"])
def test_triplet_bundle_round_trips_with_the_same_scores(trained, tmp_path, kind):
    x, y, head, record, classifiers = trained
    path = make(tmp_path / "b", trained, kind, source={"model": f"triplet_{kind}"})
    b = load_bundle(path)
    expected = classifiers[kind].predict_proba(embed(head, x))[:, 1]
    np.testing.assert_array_equal(b.score_embeddings(x), expected)
    assert (b.kind, b.threshold, b.aggregation, b.decision) == ("triplet", 0.5, "mean", "score")
    assert b.extract_config == CONFIG
    assert b.facenet_spec.name == "facenet-msceleb-128" and b.facenet_margin == FACENET_MARGIN  # < store 0.3
    meta = json.loads((path / BUNDLE_FILE).read_text())
    assert (meta["format_version"], meta["versions"]["deepfake_keras"]) == (FORMAT_VERSION, "0.1.0")
    assert set(meta["files"]) == {"triplet_head.weights.h5", "triplet_head.json", "classifier.skops"}
    assert meta["facenet"]["sha256"] == "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af"
    assert meta["source"] == {"model": f"triplet_{kind}"}
    assert not list(tmp_path.glob(".*"))  # no temporary folder left beside it


def test_save_never_writes_over_anything(trained, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="never written over anything"):
        make(tmp_path / "mine", trained)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    load_bundle(make(tmp_path / "empty", trained))  # an empty folder is fine
    assert new_bundle_dir(tmp_path, "empty").name == "empty-2"
    assert new_bundle_dir(tmp_path, "new").name == "new"


def test_save_checks_the_parts_fit(trained, tmp_path):
    x, y, head, record, classifiers = trained
    with pytest.raises(BundleError, match="takes 128-d inputs but FaceNet facenet-vggface2-512 gives 512-d"):
        save_bundle(tmp_path / "a", "triplet", extract_config=CONFIG, head=head, head_record=record,
                    classifier=classifiers["sgd"], facenet="facenet-vggface2-512")
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression().fit(embed(head, x), y)
    with pytest.raises(BundleError, match="LogisticRegression is not one a bundle may hold"):
        save_bundle(tmp_path / "b", "triplet", extract_config=CONFIG, head=head, head_record=record,
                    classifier=other, facenet="facenet-msceleb-128")
    with pytest.raises(BundleError, match="threshold"):
        make(tmp_path / "c", trained, threshold=1.5)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("name", ["triplet_head.weights.h5", "triplet_head.json", "classifier.skops"])
def test_a_changed_file_is_refused_by_name(saved, tmp_path, name):
    path = copy_of(saved, tmp_path)
    data = bytearray((path / name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    (path / name).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{name}: changed since the bundle was made"):
        load_bundle(path)


def test_a_missing_or_extra_file_is_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    (path / "classifier.skops").unlink()
    with pytest.raises(BundleError, match="file classifier.skops is missing"):
        load_bundle(path)
    path = shutil.copytree(saved, tmp_path / "extra")
    (path / "other.weights.h5").write_bytes(b"\x89HDF")
    with pytest.raises(BundleError, match="file other.weights.h5 is not part of the bundle"):
        load_bundle(path)


@pytest.mark.parametrize("library,version", [("deepfake_keras", "0.0.9"), ("scikit-learn", "1.5.2"),
                                             ("tensorflow", "2.16.1")])
def test_other_versions_are_refused(saved, tmp_path, library, version):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["versions"].update({library: version}))
    with pytest.raises(BundleError, match=rf"bundle.json: made with {library} {version} \(installed: "):
        load_bundle(path)


def test_other_format_versions_and_non_bundles_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=f"bundle format version {FORMAT_VERSION + 1}"):
        load_bundle(path)
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="no such folder"):
        load_bundle(tmp_path / "nowhere")


@pytest.mark.parametrize("change", [
    lambda m: m["extract"].update(crop_size=m["extract"]["crop_size"] - 1),  # a setting, still valid
    lambda m: m["facenet"].update(margin=0.1),  # how FaceNet's crop is cut
    lambda m: m.update(threshold=0.3),  # the decision
    lambda m: m["versions"].update(numpy="0.0.1"),  # not checked by version, still sealed
])
def test_an_edited_setting_is_refused_by_its_seal_and_descriptions_are_not_sealed(saved, tmp_path, change):
    """``bundle.json`` is sealed: a setting edited by hand (valid, so the schema lets it pass) is refused,
    naming the file; what only describes the model's origin (source, config, created) may change."""
    path = copy_of(saved, tmp_path)
    before = json.loads((path / BUNDLE_FILE).read_text())
    assert before["seal"] == seal_of(before)
    edit_meta(path, change, reseal=False)
    with pytest.raises(BundleError, match=r"bundle.json: edited since the bundle was made \(its seal"):
        load_bundle(path)
    edit_meta(path, lambda m: m.update(before), reseal=False)  # as written: loads again
    edit_meta(path, lambda m: (m["source"].update(note="moved"), m.update(created="then")), reseal=False)
    assert load_bundle(path).meta["source"]["note"] == "moved"


def test_file_names_that_leave_the_bundle_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["files"].update({"../outside.h5": "0" * 64}))
    with pytest.raises(BundleError, match="leaves the bundle folder"):
        load_bundle(path)


def test_other_facenet_weights_are_refused(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["facenet"].update(sha256="f" * 64))
    with pytest.raises(BundleError, match="not the weights the model was trained on"):
        load_bundle(path)


def test_a_classifier_with_untrusted_types_is_refused_before_loading(saved, trained, tmp_path):
    """A Pipeline (allowed at the top) hiding a FunctionTransformer that would call a function: the
    schema check refuses it even with its hash updated, before skops loads anything."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y, head, record, classifiers = trained
    hostile = make_pipeline(FunctionTransformer(np.exp), fit_classifier("sgd", embed(head, x), y)).fit(embed(head, x), y)
    path = copy_of(saved, tmp_path)
    sio.dump(hostile, path / "classifier.skops")
    edit_meta(path, lambda m: m["files"].update({"classifier.skops": sha256_of(path / "classifier.skops")}))
    with pytest.raises(BundleError, match="FunctionTransformer.*refused"):
        load_bundle(path)


# ---------------------------------------------------------------- Xception bags

def test_xception_bundle_round_trips_and_refuses_a_changed_bag(tmp_path):
    import tensorflow as tf

    from deepfake_keras.models.xception import build_xception

    files, models = [], []
    for i in range(2):
        tf.keras.utils.set_random_seed(i)
        model = build_xception(71, weights="none")
        model.save_weights(tmp_path / f"bag{i}.weights.h5")
        files.append(tmp_path / f"bag{i}.weights.h5")
        models.append(model)
    path = save_bundle(tmp_path / "bundle", "xception", extract_config=CONFIG, bag_weights=files, image_size=71)
    b = load_bundle(path)
    assert (b.kind, b.decision, b.image_size, len(b.bags)) == ("xception", "vote", 71, 2)
    faces = np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3)).astype(np.uint8)
    x = preprocess_faces(faces, 71)
    expected = np.stack([m(x, training=False).numpy().ravel() for m in models], axis=1)
    np.testing.assert_allclose(b.bag_probabilities(faces), expected, rtol=0, atol=1e-6)
    scores, per_bag = b.score_faces(faces)
    np.testing.assert_allclose(scores, per_bag.mean(axis=1))
    for field, value, message in [
            ("image_size", 4000, r"xception.image_size: must be an integer in \[1, 512\]"),
            ("image_size", 50, r"xception.image_size: must be at least 71"),
            ("bags", [], r"xception.bags: must hold 1 to 16 items, got 0"),
            ("bags", ["bags/bag_0.weights.h5"] * 2, "xception.bags: holds the same item twice"),
            ("bags", ["bags/bag_9.weights.h5"], r"xception.bags\[0\]: 'bags/bag_9.weights.h5' is not in the 'files'")]:
        edited = shutil.copytree(path, tmp_path / f"edited-{field}-{len(str(value))}")
        edit_meta(edited, lambda m: m["xception"].update({field: value}))
        with pytest.raises(BundleError, match=rf"bundle.json: {message}"):
            load_bundle(edited)
    data = bytearray((path / "bags" / "bag_1.weights.h5").read_bytes())
    data[-100] ^= 0xFF
    (path / "bags" / "bag_1.weights.h5").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"bags/bag_1.weights.h5: changed since the bundle was made"):
        load_bundle(path)


# ---------------------------------------------------------------- links and special files (issue 17)

def rehash(path, name):
    edit_meta(path, lambda m: m["files"].update({name: sha256_of(path / name)}))


def test_a_classifier_symlinked_to_a_file_outside_is_refused_before_it_is_read(saved, tmp_path):
    """The link points at a byte-identical copy outside the folder, so the hash would match: it is the
    link itself that is refused, and the message never shows a sha256 of the outside file."""
    path = copy_of(saved, tmp_path)
    outside = tmp_path / "outside.skops"
    shutil.copyfile(path / "classifier.skops", outside)
    (path / "classifier.skops").unlink()
    (path / "classifier.skops").symlink_to(outside)
    with pytest.raises(BundleError, match=r"classifier.skops: a symbolic link \(to .*outside.skops\).*refused") as e:
        load_bundle(path)
    assert sha256_of(outside) not in str(e.value)


def test_a_listed_symlink_to_etc_passwd_is_refused_without_hashing_it(saved, tmp_path):
    path = copy_of(saved, tmp_path)
    (path / "notes.txt").symlink_to("/etc/passwd")
    edit_meta(path, lambda m: m["files"].update({"notes.txt": "0" * 64}))
    with pytest.raises(BundleError, match=r"notes.txt: a symbolic link \(to /etc/passwd\)") as e:
        load_bundle(path)
    assert sha256_of("/etc/passwd") not in str(e.value)


@pytest.mark.parametrize("what", ["folder link", "bundle.json link", "fifo"])
def test_links_anywhere_and_fifos_are_refused(saved, tmp_path, what):
    path = copy_of(saved, tmp_path)
    if what == "folder link":
        (path / "more").symlink_to(tmp_path)
        match = "more: a symbolic link"
    elif what == "bundle.json link":
        (tmp_path / "meta.json").write_bytes((path / BUNDLE_FILE).read_bytes())
        (path / BUNDLE_FILE).unlink()
        (path / BUNDLE_FILE).symlink_to(tmp_path / "meta.json")
        match = "bundle.json: a symbolic link"
    else:
        import os

        os.mkfifo(path / "pipe")
        match = r"pipe: not a regular file \(FIFO\)"
    with pytest.raises(BundleError, match=match):
        load_bundle(path)


# ---------------------------------------------------------------- every field of bundle.json validated (issue 17)

def _set(dotted, value):
    def change(meta):
        *parents, last = dotted.split(".")
        node = meta
        for p in parents:
            node = node[p]
        node[last] = value
    return change


FIELD_CASES = [  # (field, value, what the message says after "bundle.json: <field>: ")
    ("threshold", float("nan"), r"must be a finite number in \(0, 1\), got nan"),
    ("threshold", -1, r"must be a finite number in \(0, 1\), got -1"),
    ("threshold", 1e308, r"must be a finite number in \(0, 1\), got 1e\+308"),
    ("threshold", None, "must not be null"),
    ("threshold", [0.5], r"must be a finite number in \(0, 1\), got list"),
    ("threshold", "abc", r"must be a finite number in \(0, 1\), got str 'abc'"),
    ("extract", "frames=25", "must be an object, got str"),
    ("aggregation", "median", "must be one of max, mean, vote; got 'median'"),
    ("decision", "vote", "a triplet bundle decides by score, got 'vote'"),
    ("extract.frames_per_video", 10 ** 9, r"must be an integer in \[1, 256\], got 1000000000"),
    ("extract.crop_size", 4000, r"must be an integer in \[16, 512\], got 4000"),
    ("extract.batch_size", 0, r"must be an integer in \[1, 256\], got 0"),
    ("extract.fps", "fast", r"must be a finite number in \[0.01, 240\]"),
    ("facenet.margin", "abc", r"must be a finite number in \[0, 2\], got str 'abc'"),
    ("facenet.standardization", "none", "must be one of fixed, prewhiten"),
    ("triplet_head.settings", BUNDLE_FILE, "'bundle.json' is not in the 'files' map of checksums"),
    ("classifier.type", "sklearn.svm._classes.SVC", "must be one of"),
    ("classifier.n_features", 10 ** 6, r"must be an integer in \[1, 8192\]"),
    ("created", {"a": 1}, "must be a non-empty string"),
]


@pytest.mark.parametrize("field,value,message", FIELD_CASES, ids=[f"{f}={v!r}"[:40] for f, v, _ in FIELD_CASES])
def test_every_field_is_validated_and_named(saved, tmp_path, field, value, message):
    path = copy_of(saved, tmp_path)
    edit_meta(path, _set(field, value))
    with pytest.raises(BundleError, match=rf"bundle.json: {field}: {message}"):
        load_bundle(path)


@pytest.mark.parametrize("change,message", [
    (lambda m: m.pop("files"), "files: missing"),
    (lambda m: m.pop("extract"), "extract: missing"),
    (lambda m: m.update(colour="red"), "'colour': not a field of this format"),
    (lambda m: m["extract"].update(colour="red"), r"extract\.'colour': not a field of this format"),
    (lambda m: m.update(source=json.loads("[" * 50 + "]" * 50)), "bundle.json: nested too deeply"),
    (lambda m: m.update(kind="svm"), "unknown bundle kind 'svm'"),
    (lambda m: m.update(versions="2.15"), "versions: missing or not an object"),
    (lambda m: m["files"].update({BUNDLE_FILE: "0" * 64}), "bundle.json: files: lists bundle.json itself"),
    (lambda m: m["files"].update({"a.h5": "not a sha256"}), r"bundle.json: files.a.h5: 'not a sha256' is not of the"),
])
def test_missing_unknown_and_nested_fields_are_refused(saved, tmp_path, change, message):
    path = copy_of(saved, tmp_path)
    edit_meta(path, change)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


@pytest.mark.parametrize("text,message", [
    ("[" * 200_000 + "]" * 200_000, "bundle.json: nested too deeply"),
    ('{"format": ', "bundle.json: not valid JSON"),
    ("[1, 2]", r"bundle.json: not a deepfake_keras bundle \(format a JSON list\)"),
])
def test_corrupt_or_deeply_nested_bundle_json_is_one_error(saved, tmp_path, text, message):
    path = copy_of(saved, tmp_path)
    (path / BUNDLE_FILE).write_text(text)
    with pytest.raises(BundleError, match=message):
        load_bundle(path)


def test_a_huge_bundle_json_is_refused_before_it_is_parsed(saved, tmp_path):
    from deepfake_keras.inference.schema import MAX_META_BYTES

    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m["source"].update(blob="x" * MAX_META_BYTES))
    with pytest.raises(BundleError, match=r"bundle.json: 1.0 MB, more than the 1.0 MB it may have; refused"):
        load_bundle(path)


def test_a_big_source_loads_but_reports_copy_a_bounded_summary(trained, tmp_path):
    from deepfake_keras.inference.base import source_summary

    source = {"experiment": "ffpp_triplet", "notes": "n" * 300_000, "per_video": {str(i): i for i in range(20_000)}}
    b = load_bundle(make(tmp_path / "b", trained, source=source))
    summary = source_summary(b.meta)
    assert summary["experiment"] == "ffpp_triplet"
    assert len(json.dumps(summary)) < 20_000


def test_adding_a_field_to_the_format_is_one_line(trained, tmp_path, monkeypatch):
    """What the coming calibrated-threshold / demo_model fields will do: one entry in COMMON_FIELDS, and
    bundles with and without the field load, a wrong value is refused by name."""
    from deepfake_keras.inference import base
    from deepfake_keras.inference.schema import Boolean

    path = make(tmp_path / "b", trained)
    monkeypatch.setitem(base.COMMON_FIELDS, "demo_model", Boolean(required=False))
    load_bundle(path)
    other = shutil.copytree(path, tmp_path / "with")
    edit_meta(other, lambda m: m.update(demo_model=True))
    assert load_bundle(other).meta["demo_model"] is True
    edit_meta(other, lambda m: m.update(demo_model="yes"))
    with pytest.raises(BundleError, match="bundle.json: demo_model: must be true or false"):
        load_bundle(other)


def test_save_refuses_what_load_would_refuse(trained, tmp_path):
    for threshold in (0, 1, float("nan")):
        with pytest.raises(BundleError, match=r"threshold: must be a finite number in \(0, 1\)"):
            make(tmp_path / "t", trained, threshold=threshold)
    with pytest.raises(BundleError, match="source: nested too deeply"):
        make(tmp_path / "s", trained, source=json.loads("[" * 50 + "]" * 50))
    assert not any(tmp_path.iterdir())  # nothing written, no temporary folder left


# ---------------------------------------------------------------- the head's settings file (issue 17)

def edit_record(path, change):
    record = json.loads((path / "triplet_head.json").read_text())
    change(record["settings"])
    (path / "triplet_head.json").write_text(json.dumps(record))
    rehash(path, "triplet_head.json")


@pytest.mark.parametrize("change,message", [
    (lambda s: s.update(units=[60000, 60000]), r"settings.units\[0\]: must be an integer in \[1, 8192\], got 60000"),
    (lambda s: s.update(units=[8192, 8192, 8192]), r"settings: a head of [\d,]{11} parameters, more than 10,000,000"),
    (lambda s: s.update(dropout="0.1"), r"settings.dropout: must be a finite number"),
    (lambda s: s.update(input_dim=512), r"settings.input_dim: 512, but bundle.json says triplet_head.input_dim 128"),
    (lambda s: s.pop("embedding_dim"), r"settings.embedding_dim: missing"),
    (lambda s: s.update(normalize="yes"), r"settings.normalize: must be true or false"),
    (lambda s: s.update(initializer="lambda x: x"), r"settings.initializer: 'lambda x: x' is not of the form"),
])
def test_the_head_settings_are_checked_before_the_head_is_built(saved, tmp_path, change, message):
    """triplet_head.json is covered by the checksums (an edit without a new hash is refused by the test
    above); with the hash updated, its settings are still validated before anything is built."""
    path = copy_of(saved, tmp_path)
    edit_record(path, change)
    with pytest.raises(BundleError, match=rf"triplet_head.json: {message}"):
        load_bundle(path)


# ---------------------------------------------------------------- the classifier file (issue 17)

def skops_like(path, entries: dict, compression=None):
    import zipfile

    with zipfile.ZipFile(path, "w", compression=compression or zipfile.ZIP_STORED) as z:
        for name, data in entries.items():
            z.writestr(name, data)


def test_a_classifier_that_inflates_is_refused_before_loading(saved, tmp_path):
    import zipfile

    path = copy_of(saved, tmp_path)
    schema = json.dumps({"__class__": "SGDClassifier", "__module__": "sklearn.linear_model._stochastic_gradient"})
    skops_like(path / "classifier.skops", {"schema.json": schema, "0.npy": bytes(64 << 20)}, zipfile.ZIP_DEFLATED)
    assert (path / "classifier.skops").stat().st_size < 1 << 20  # 64 MB of zeros deflate to ~64 KB
    rehash(path, "classifier.skops")
    with pytest.raises(BundleError, match=r"classifier.skops: inflates to 64.0 MB from .* KB .*refused"):
        load_bundle(path)


@pytest.mark.parametrize("schema,message", [
    ("[" * 200_000 + "]" * 200_000, "schema.json: nested too deeply"),
    (json.dumps(json.loads("[" * 100 + "]" * 100)), "schema.json: nested too deeply"),
    ("{not json", "schema.json: not valid JSON"),
])
def test_a_deeply_nested_or_broken_skops_schema_is_one_error(saved, tmp_path, schema, message):
    path = copy_of(saved, tmp_path)
    skops_like(path / "classifier.skops", {"schema.json": schema})
    rehash(path, "classifier.skops")
    with pytest.raises(BundleError, match=rf"classifier.skops: {message}"):
        load_bundle(path)


def test_a_weights_file_linking_outside_is_refused(saved, tmp_path):
    import h5py

    path = copy_of(saved, tmp_path)
    with h5py.File(tmp_path / "elsewhere.h5", "w") as f:
        f["w"] = np.zeros(3)
    with h5py.File(path / "triplet_head.weights.h5", "a") as f:
        f["extra"] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "/w")
    rehash(path, "triplet_head.weights.h5")
    with pytest.raises(BundleError, match="triplet_head.weights.h5: extra is a ExternalLink"):
        load_bundle(path)


def test_the_cli_says_one_line_and_exits_2_for_a_bad_field(saved, tmp_path, capsys):
    from deepfake_keras import cli

    path = copy_of(saved, tmp_path)
    edit_meta(path, lambda m: m.update(threshold=float("nan")))
    code = cli.main(["predict", str(tmp_path / "clip.mp4"), "--model", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (tmp_path / "out").exists()
    assert len(err) == 1 and "bundle.json: threshold: must be a finite number in (0, 1), got nan" in err[0]


def test_a_calibrated_threshold_is_used_by_default_and_said(trained, tmp_path):
    """A bundle may carry the threshold chosen on its run's validation videos: scoring uses it unless the
    fixed one is asked for, and says which; a DEMO bundle says that it is one."""
    x, y, head, record, classifiers = trained
    calibration = {"threshold": 0.3, "rule": "eer", "videos": 12}
    path = save_bundle(tmp_path / "b", "triplet", extract_config=CONFIG, head=head, head_record=record,
                       classifier=classifiers["sgd"], facenet="facenet-msceleb-128", calibration=calibration,
                       demo_model=True)
    b = load_bundle(path)
    assert b.threshold == 0.3 and "calibrated" in b.threshold_source and b.demo_model
    assert b.video_decision([0.35, 0.35])["verdict"] == "fake"  # 0.35 >= 0.3
    b.threshold_choice = "fixed"
    assert b.threshold == 0.5 and b.threshold_source.startswith("fixed")
    assert b.video_decision([0.35, 0.35])["verdict"] == "real"
    plain = load_bundle(make(tmp_path / "plain", trained))
    assert plain.threshold == 0.5 and not plain.demo_model and "no calibrated threshold" in plain.threshold_source
    edit_meta(path, lambda m: m["calibration"].update(threshold=1.0))
    with pytest.raises(BundleError, match="calibration"):
        load_bundle(path)
