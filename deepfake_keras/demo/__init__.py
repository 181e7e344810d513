"""The built-in DEMO dataset: FaceForensics++- and Celeb-DF-format mini datasets made from real
photos, so that every experiment runs end to end on a fresh machine (DESIGN.md section 6).

:func:`build_demo` writes, under one folder::

    <out>/
      DEMO.md               what was built and how (versions, seed, counts, identity split,
                            shortcut AUCs); a copy sits in each dataset root
      demo.json             the same, machine-readable
      ffpp/                 FF++ layout (DESIGN.md section 4), read by datasets.ffpp_manifest:
        original_sequences/youtube/{c23,c40}/videos/NNN.mp4
        manipulated_sequences/{Deepfakes,Face2Face,FaceSwap,NeuralTextures}/{c23,c40}/videos/TTT_SSS.mp4
        splits/{train,val,test}.json      official [target, source] pair lists
        demo_videos.csv                   every video's identities and photos
      celebdf/              Celeb-DF v2 layout, read by datasets.celebdf_manifest:
        Celeb-real/idX_NNNN.mp4  YouTube-real/NNNNN.mp4  Celeb-synthesis/idX_idY_NNNN.mp4
        List_of_testing_videos.txt        '<1 real | 0 fake> <folder>/<file>'
        demo_videos.csv
      .demo_complete.json   written last, atomically: the build is complete

:func:`demo_root` builds into the package cache once and returns a dataset root.

How it is made (details in :mod:`.synth`): a real clip
animates one photo (zoom, pan, roll, hand-held wobble, lighting drift, sensor
noise); a fake clip is the very same clip with another face pasted in the face
ellipse (landmark-aligned warp, colour transfer, Poisson or low-resolution
feathered blend, a small per-frame misalignment). Real and fake clips share
length, size, frame rate, encoder and settings, and a fake equals its real
twin outside the face, so only the face tells them apart.

Identities (:func:`.plan.split_identities`): test identities never appear in a
training or validation video, neither as the target nor as the inserted face.
Within a split every identity is the target of as many fakes as it is the
inserted face, and appears among the reals in the same proportion.

Modules, in the order a build uses them: :mod:`.plan` (sizes, identity split, every video decided),
:mod:`.sources` (photos, landmarks), :mod:`.synth` (animation and face swap), :mod:`.render`
(frames -> H.264 files), :mod:`.shortcut` (the face-blind check), :mod:`.card` (``DEMO.md``),
:mod:`.build` (locking, reuse, the cache copy).
"""
from .build import build_demo, demo_cache_root, demo_root
from .plan import DemoError

__all__ = ["DemoError", "build_demo", "demo_cache_root", "demo_root"]
