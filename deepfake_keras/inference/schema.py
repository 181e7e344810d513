"""What a bundle may hold: the size caps of its files, field types that check one value of its JSON and
say what is wrong, and bounded copies of free-form JSON (see :mod:`.base` for the format).

A bundle's JSON is described by plain dicts of fields, ``{"threshold": Number(0, 1, open_=True), ...}``
(:data:`.base.COMMON_FIELDS`, and each kind's ``Bundle.fields``); :func:`validate` checks a dict
against one and raises :class:`SchemaError` with ``<field>: <what is wrong>``. A field the dict holds
that its description does not know is refused, so adding a field to the format is one line there.

The caps are far above what real bundles hold (measured on the DEMO runs' bundles and on classifiers
fitted at the paper's scale; see each constant), and far below what would exhaust a machine.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from pathlib import Path, PurePosixPath

from ..io import printable

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

#: ``bundle.json``: 4.3-5.6 KB in the DEMO bundles (its ``config`` and ``source`` 1.6-2.3 KB and 0.7-0.9 KB)
MAX_META_BYTES = 1 * MIB
#: ``triplet_head.json`` (settings and training history, 2 numbers per epoch): 1.2-2.2 KB in the DEMO bundles
MAX_RECORD_BYTES = 1 * MIB
#: any one file: an Xception bag's weights are 88 MB (at any input size), a triplet head's 0.58 MB
MAX_FILE_BYTES = 512 * MIB
#: the whole folder: 0.6 MB (triplet, SGD) and 616 MB (Xception, 7 bags; 16 bags would be 1.4 GB)
MAX_BUNDLE_BYTES = 4 * GIB
#: files in the folder (bundle.json aside): 3 (triplet), 7 (Xception, 7 bags)
MAX_FILES = 64
#: ``classifier.skops``, on disk and inflated: 14 KB (SGD), 57 MB (RF of 100 trees on 36,000 frames, the
#: size of FF++ c40 NeuralTextures vs pristine at 25 frames per video; about 4 times more at Celeb-DF's
#: size, estimated: RF trees grow with the frames); skops stores its entries
#: uncompressed (inflated/on disk 1.0), so more than :data:`MAX_INFLATION` times is refused as a zip bomb
MAX_CLASSIFIER_BYTES = 512 * MIB
MAX_INFLATION = 10
#: entries of a skops file and the nesting of its schema: 5-9 entries and depth 14 (SGD, with or without
#: a scaler), 503 entries and depth 13 (RF, 100 trees); its schema.json: 12 KB (SGD), 1.5 MB (RF)
MAX_SKOPS_ENTRIES = 100_000
MAX_SKOPS_DEPTH = 64
MAX_SKOPS_SCHEMA_BYTES = 64 * MIB
#: nesting of bundle.json and triplet_head.json: 4 and 3 in the DEMO bundles
MAX_JSON_DEPTH = 32
#: the declared size of all datasets of a Keras weights file, against its size on disk (Keras writes
#: them uncompressed: 0.96 for a triplet head, 0.996 for an Xception bag); more is a compressed (or
#: sparse) bomb
MAX_H5_INFLATION = 2
#: Xception bags: 7 (the paper's bagging)
MAX_BAGS = 16
#: the dense triplet head: 128 -> 256-256-128 -> 64 has 139,000 parameters (512-d FaceNet: 238,000)
MAX_HEAD_PARAMS = 10_000_000
MAX_HEAD_LAYERS = 16
#: (the sampled frames of one video held in memory: :data:`deepfake_keras.config.MAX_FRAME_BYTES`, shared
#: with extraction, checked by :func:`deepfake_keras.config.frame_memory_problem`)


class BundleError(ValueError):
    """A bundle that cannot be saved or loaded as asked; the message names the folder, the file and
    the problem."""


class SchemaError(BundleError):
    """A value that does not fit its field; the message is ``<field>: <what is wrong>``."""


def shown(value, limit: int = 60) -> str:
    """``repr`` of a value, cut to ``limit`` characters (a field may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def json_depth(value) -> int:
    """How deeply ``value`` (parsed JSON) nests: 0 for a scalar, 1 for a flat list or dict (no recursion,
    so any depth is measured)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        else:
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def parse_json(data: bytes, what: str, max_depth: int = MAX_JSON_DEPTH):
    """Parsed JSON of ``data`` (UTF-8), or :class:`SchemaError` ``<what>: not valid JSON (...)`` / nested
    too deeply. ``NaN`` and ``Infinity`` (which Python's JSON reader takes) are left to the fields."""
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise SchemaError(f"{what}: nested too deeply (more than {max_depth} levels)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise SchemaError(f"{what}: not valid JSON ({e})") from None
    if json_depth(value) > max_depth:
        raise SchemaError(f"{what}: nested too deeply (more than {max_depth} levels)")
    return value


# --------------------------------------------------------------------------- field types

class Field:
    """One value of a JSON record. ``required``: the key must be there; ``nullable``: ``null`` is allowed.
    :meth:`check` raises :class:`SchemaError` naming ``where`` (the field's dotted name); ``context`` is
    the whole record being validated (for fields that refer to others)."""

    def __init__(self, required: bool = True, nullable: bool = False):
        self.required, self.nullable = required, nullable

    def check(self, value, where: str, context=None) -> None:
        if value is None:
            if not self.nullable:
                raise SchemaError(f"{where}: must not be null")
            return
        self.check_value(value, where, context)

    def check_value(self, value, where: str, context) -> None:
        raise NotImplementedError


class Number(Field):
    """A finite JSON number in ``[lo, hi]`` (``open_``: ``(lo, hi)``); ``integer``: an integer (not
    ``true``, not ``2.0``)."""

    def __init__(self, lo, hi, integer: bool = False, open_: bool = False, **kw):
        super().__init__(**kw)
        self.lo, self.hi, self.integer, self.open_ = lo, hi, integer, open_

    def describe(self) -> str:
        what = "an integer" if self.integer else "a finite number"
        return f"{what} in {'(' if self.open_ else '['}{self.lo:g}, {self.hi:g}{')' if self.open_ else ']'}"

    def check_value(self, value, where, context):
        ok_type = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            raise SchemaError(f"{where}: must be {self.describe()}, got {type(value).__name__} {shown(value)}")
        inside = (self.lo < value < self.hi) if self.open_ else (self.lo <= value <= self.hi)
        if isinstance(value, float) and not math.isfinite(value) or not inside:
            raise SchemaError(f"{where}: must be {self.describe()}, got {shown(value)}")


def Integer(lo, hi, **kw) -> Number:
    return Number(lo, hi, integer=True, **kw)


class Boolean(Field):
    def check_value(self, value, where, context):
        if not isinstance(value, bool):
            raise SchemaError(f"{where}: must be true or false, got {shown(value)}")


class Text(Field):
    """A string of at most ``max_len`` characters (at least one), matching ``pattern`` if given."""

    def __init__(self, max_len: int = 200, pattern: str | None = None, **kw):
        super().__init__(**kw)
        self.max_len, self.pattern = max_len, re.compile(pattern) if pattern else None

    def check_value(self, value, where, context):
        if not isinstance(value, str) or not value:
            raise SchemaError(f"{where}: must be a non-empty string, got {type(value).__name__} {shown(value)}")
        if len(value) > self.max_len:
            raise SchemaError(f"{where}: longer than {self.max_len} characters ({len(value)})")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise SchemaError(f"{where}: {shown(value)} is not of the form {self.pattern.pattern}")


def Sha256(**kw) -> Text:
    return Text(64, r"[0-9a-f]{64}", **kw)


class Choice(Field):
    """One of ``values`` (exactly: ``"mean"``, not ``"Mean"`` nor ``["mean"]``)."""

    def __init__(self, values, **kw):
        super().__init__(**kw)
        self.values = tuple(sorted(values)) if not isinstance(values, tuple) else values

    def check_value(self, value, where, context):
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value not in self.values:
            raise SchemaError(f"{where}: must be one of {', '.join(map(str, self.values))}; got {shown(value)}")


class Const(Choice):
    def __init__(self, value, **kw):
        super().__init__((value,), **kw)


def file_name_problem(name) -> str | None:
    """Why ``name`` cannot be a file of a bundle (a relative POSIX name inside the folder), or None."""
    if not isinstance(name, str) or not name:
        return f"must be a non-empty string, got {type(name).__name__} {shown(name)}"
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or "\\" in name or name.startswith("~") or "\x00" in name:
        return f"file name {name!r} leaves the bundle folder; refused"
    if len(name.encode("utf-8", "surrogatepass")) > 255 or name != p.as_posix():
        return f"file name {shown(name)} is not a plain relative name"
    return None


class FileName(Field):
    """A relative POSIX file name that stays inside the bundle folder."""

    def check_value(self, value, where, context):
        problem = file_name_problem(value)
        if problem:
            raise SchemaError(f"{where}: {problem}")


class FileRef(FileName):
    """A file of the bundle: its name is in the record's ``files`` map (so its sha256 is checked),
    and is not bundle.json itself."""

    def check_value(self, value, where, context):
        super().check_value(value, where, context)
        files = (context or {}).get("files")
        if not isinstance(files, dict) or value not in files:
            raise SchemaError(f"{where}: {value!r} is not in the 'files' map of checksums; refused")


class ListOf(Field):
    def __init__(self, item: Field, min_len: int = 0, max_len: int = 64, unique: bool = False, **kw):
        super().__init__(**kw)
        self.item, self.min_len, self.max_len, self.unique = item, min_len, max_len, unique

    def check_value(self, value, where, context):
        if not isinstance(value, list):
            raise SchemaError(f"{where}: must be a list, got {type(value).__name__} {shown(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise SchemaError(f"{where}: must hold {self.min_len} to {self.max_len} items, got {len(value)}")
        for i, item in enumerate(value):
            self.item.check(item, f"{where}[{i}]", context)
        if self.unique and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
            raise SchemaError(f"{where}: holds the same item twice")


class MapOf(Field):
    """A JSON object of any keys (each checked by ``key``) to values (each checked by ``value``)."""

    def __init__(self, key: Field, value: Field, min_len: int = 0, max_len: int = 64, **kw):
        super().__init__(**kw)
        self.key, self.value, self.min_len, self.max_len = key, value, min_len, max_len

    def check_value(self, value, where, context):
        if not isinstance(value, dict):
            raise SchemaError(f"{where}: must be an object, got {type(value).__name__} {shown(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise SchemaError(f"{where}: must hold {self.min_len} to {self.max_len} entries, got {len(value)}")
        for k, v in value.items():
            self.key.check(k, f"{where} key", context)
            self.value.check(v, f"{where}.{k}", context)


class Record(Field):
    """A JSON object with known keys: ``fields`` ({name: Field}); a key it does not know is refused
    (``extra=True``: allowed, unchecked, for training records). ``rule(record) -> problem or None``: a
    check across fields."""

    def __init__(self, fields: dict, extra: bool = False, rule=None, **kw):
        super().__init__(**kw)
        self.fields, self.extra, self.rule = fields, extra, rule

    def check_value(self, value, where, context):
        validate(value, self.fields, where, context, extra=self.extra)
        problem = self.rule(value) if self.rule else None
        if problem:
            raise SchemaError(f"{where}: {problem}")


class Free(Field):
    """Any JSON value (free-form records such as a run's config), bounded by the file's size cap and
    :data:`MAX_JSON_DEPTH`."""

    def __init__(self, max_depth: int = MAX_JSON_DEPTH - 1, **kw):
        super().__init__(**kw)
        self.max_depth = max_depth

    def check_value(self, value, where, context):
        if json_depth(value) > self.max_depth:
            raise SchemaError(f"{where}: nested too deeply (more than {self.max_depth} levels)")


def validate(record, fields: dict, where: str = "", context=None, extra: bool = False) -> None:
    """Check the dict ``record`` against ``fields`` ({name: :class:`Field`}): every required field is
    there and every value fits; no other key unless ``extra``. ``where``: the dotted name of the record
    (prefixed to each field's name in the message). Raises :class:`SchemaError`."""
    prefix = f"{where}." if where else ""
    if not isinstance(record, dict):
        raise SchemaError(f"{where or 'record'}: must be an object, got {type(record).__name__} {shown(record)}")
    context = record if context is None else context
    unknown = sorted(str(k) for k in record if k not in fields)
    if unknown and not extra:
        raise SchemaError(f"{prefix}{shown(unknown[0], 80)}: not a field of this format (known: "
                          f"{', '.join(fields)}){'' if len(unknown) == 1 else f' (and {len(unknown) - 1} more)'}")
    for name, field in fields.items():
        if name not in record:
            if field.required:
                raise SchemaError(f"{prefix}{name}: missing")
            continue
        field.check(record[name], f"{prefix}{name}", context)


# --------------------------------------------------------------------------- files

def size_text(n: int) -> str:
    return f"{n / MIB:.1f} MB" if n >= MIB else f"{n / KIB:.1f} KB" if n >= KIB else f"{n} bytes"


def file_kind(mode: int) -> str:
    """What a file of ``stat`` mode ``mode`` is: symbolic link, FIFO, socket, device, folder."""
    for test, what in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return what
    return "special file"


def _refuse_entry(path: Path, mode: int) -> BundleError:
    if stat.S_ISLNK(mode):
        try:
            target = f" (to {printable(os.readlink(path))})"
        except OSError:
            target = ""
        return BundleError(f"{printable(path)}: a symbolic link{target}; a bundle holds only regular files and "
                           f"nothing outside its folder is read; refused")
    return BundleError(f"{printable(path)}: not a regular file ({file_kind(mode)}); refused")


def scan_folder(root: Path, max_depth: int = 8) -> dict:
    """``{name: size}`` of every file under ``root`` (POSIX names, bundle.json included), looked at with
    ``lstat`` only: a symbolic link, FIFO, socket or device anywhere is refused (BundleError) without
    following or opening it, as are more than :data:`~.schema.MAX_FILES` files or a deeper tree."""
    found, stack, seen = {}, [(root, "", 0)], 0
    while stack:
        folder, prefix, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            raise BundleError(f"{printable(folder)}: cannot be listed ({e.strerror})") from None
        for entry in sorted(entries, key=lambda e: e.name):
            seen += 1
            if seen > 4 * MAX_FILES:
                raise BundleError(f"{printable(root)}: more than {4 * MAX_FILES} entries; not a bundle")
            name = prefix + entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as e:
                raise BundleError(f"{printable(root / name)}: cannot be read ({e.strerror})") from None
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                if depth + 1 > max_depth:
                    raise BundleError(f"{printable(root / name)}: folders nested more than {max_depth} deep; refused")
                stack.append((Path(entry.path), name + "/", depth + 1))
            elif stat.S_ISREG(mode):
                found[name] = st.st_size
                if len(found) > MAX_FILES + 1:
                    raise BundleError(f"{printable(root)}: more than {MAX_FILES} files; not a bundle")
            else:
                raise _refuse_entry(root / name, mode)
    return found


def _open_regular(path: Path, cap: int):
    """``(fd, size)`` of the regular file ``path`` opened without following a symbolic link (nor
    blocking on a FIFO), of at most ``cap`` bytes; BundleError otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise _refuse_entry(path, mode) from None
        raise BundleError(f"{printable(path)}: cannot be read ({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse_entry(path, st.st_mode)
        raise BundleError(f"{printable(path)}: {size_text(st.st_size)}, more than the {size_text(cap)} it may "
                          f"have; refused")
    return fd, st.st_size


def read_regular(path: Path, cap: int) -> bytes:
    """The bytes of the regular file ``path`` (not a link; at most ``cap`` bytes), else BundleError."""
    fd, size = _open_regular(path, cap)
    with os.fdopen(fd, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise BundleError(f"{printable(path)}: more than the {size_text(cap)} it may have; refused")
    return data


def hash_regular(path: Path, cap: int) -> str:
    """sha256 of the regular file ``path`` (not a link; at most ``cap`` bytes), read in 1 MiB blocks."""
    fd, _ = _open_regular(path, cap)
    h, n = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            n += len(block)
            if n > cap:
                raise BundleError(f"{printable(path)}: more than the {size_text(cap)} it may have; refused")
            h.update(block)
    return h.hexdigest()


def check_weights_file(path: Path) -> None:
    """Refuse (BundleError) a Keras weights file (HDF5) that links to other files (external or soft
    links, external or virtual datasets), or whose datasets would inflate past
    :data:`MAX_H5_INFLATION` times its size, before Keras reads it."""
    import h5py

    size, problems, total = path.stat().st_size, [], [0]

    def link(name, lnk):
        if not isinstance(lnk, h5py.HardLink):
            problems.append(f"{name} is a {type(lnk).__name__}")

    def dataset(name, obj):
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual or obj.external:
                problems.append(f"{name} is stored outside the file")
            total[0] += int(obj.size or 0) * obj.dtype.itemsize

    try:
        with h5py.File(path, "r") as f:
            f.visititems_links(link)
            if not problems:
                f.visititems(dataset)
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise BundleError(f"{path}: not a readable weights file ({type(e).__name__}: {e})") from None
    if problems:
        raise BundleError(f"{path}: {problems[0]}; a bundle's weights are read from its own files only; refused")
    if total[0] > MAX_H5_INFLATION * size + MIB:
        raise BundleError(f"{path}: its datasets hold {size_text(total[0])}, from a file of {size_text(size)}; "
                          f"refused")


# --------------------------------------------------------------------------- copies for reports

def bounded_copy(value, max_items: int = 128, max_str: int = 200, max_depth: int = 4):
    """A copy of parsed JSON ``value`` small enough to put in every report: at most ``max_items`` values
    in all (in document order; the rest dropped), strings and keys cut to ``max_str`` characters (so
    at most about 50 KB), containers deeper than ``max_depth`` dropped, NaN and infinities as null. A
    real run's ``source`` (41 values, 0.9 KB, in the DEMO FF++ bundle) is copied whole."""
    budget = [max_items]

    def cut(s: str) -> str:
        return s if len(s) <= max_str else s[:max_str - 3] + "..."

    def copy(node, depth):
        if isinstance(node, str):
            return cut(node)
        if isinstance(node, float) and not math.isfinite(node):
            return None
        if not isinstance(node, (dict, list)):
            return node if isinstance(node, (int, float, bool)) or node is None else cut(str(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        out = {} if isinstance(node, dict) else []
        for k, v in items:
            if budget[0] <= 0:
                break
            if isinstance(v, (dict, list)) and depth + 1 >= max_depth:
                continue
            budget[0] -= 1
            c = copy(v, depth + 1)
            if isinstance(out, dict):
                out[cut(str(k))] = c
            else:
                out.append(c)
        return out

    return copy(value, 0)
