"""The bundle registry: every kind of bundle by name, and loading any bundle by what its
``bundle.json`` says it is (see :mod:`.base` for the format and what loading refuses)."""
from __future__ import annotations

from pathlib import Path

from .base import Bundle, BundleError, read_bundle_meta
from .triplet import TripletBundle
from .xception import XceptionBundle

#: kind (``bundle.json``'s ``kind``) -> its class; a new kind of model registers here
KINDS = {cls.kind: cls for cls in (TripletBundle, XceptionBundle)}


def load_bundle(path, **options) -> Bundle:
    """Load and verify the bundle at ``path``: its ``bundle.json`` is checked (size, format, versions,
    every field, the folder's files and their hashes) before its kind's class loads any model.
    ``options`` go to the kind's ``load`` (triplet bundles: ``facenet=(model, spec)`` of an already
    loaded FaceNet, ``facenet_file`` for weights outside the registry). Raises
    :class:`~.base.BundleError`."""
    root = Path(path)
    meta = read_bundle_meta(root, KINDS)  # every field checked against its kind's schema
    return KINDS[meta["kind"]].load(root, meta, **options)


def save_bundle(out_dir, kind: str, **settings):
    """Write a bundle of ``kind`` (``triplet`` or ``xception``) with that kind's ``save``
    (:meth:`.triplet.TripletBundle.save`, :meth:`.xception.XceptionBundle.save`)."""
    if kind not in KINDS:
        raise BundleError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return KINDS[kind].save(out_dir, **settings)
