"""Using trained models: bundles (:mod:`.base`, one class per kind in :mod:`.triplet` and
:mod:`.xception`, the registry in :mod:`.bundle`), scoring videos (:mod:`.predict`) and the
annotated video (:mod:`.annotate`)."""
