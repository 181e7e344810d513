"""Every setting and its default, in one place: frozen dataclasses.

- :class:`ExtractConfig`: how videos become face crops (every stage that reads a face store).
- :class:`HeadConfig`: the triplet head and its training.
- :class:`XceptionConfig`: the Xception frame classifier and its training (bags, frames only).
- :class:`TripletExperiment`, :class:`BaggingExperiment`, :class:`BaselinesExperiment`: the
  three experiments. Each has ``paper()`` (the paper's settings, used on real data) and
  ``demo()`` (small images, few frames and epochs, for the DEMO data on a laptop CPU), both
  taking overrides; :func:`for_data` picks one by whether a dataset was given. A pipeline's
  ``run(config)`` saves ``asdict(config)`` in its ``config.json``, so that the run can be rebuilt
  exactly.

Where a default is not the paper's, the field's comment says so and why. The functions of the
package take their defaults from these classes (``HeadConfig.epochs`` and so on), never from a
second copy.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import ClassVar


def cache_dir() -> Path:
    """Root of every download and cache of the package.

    ``$DEEPFAKE_KERAS_CACHE`` if set, else ``~/.cache/deepfake_keras``.
    """
    return Path(os.environ.get("DEEPFAKE_KERAS_CACHE", Path.home() / ".cache" / "deepfake_keras"))


class Settings:
    """``to_dict``/``from_dict`` (unknown keys ignored, so older records load) and
    :meth:`override` (``None`` values keep the default)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def override(self, **values):
        """A copy with the given fields replaced; a value of None leaves the field as it is."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no setting {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in values.items() if v is not None})


MAX_FRAMES = 10_000  # frames per video: a 7-minute clip's every frame at 25 fps
MAX_FPS = 1_000.0  # frames per second sampled: more than any video has
MAX_CROP = 2_048  # pixels of a face crop
MAX_FRAME_SIDE = 16_384  # pixels: frames are shrunk to at most this
MAX_BATCH = 1_024  # frames per MTCNN batch
GIB = 1 << 30
#: bytes of one video's sampled frames and their face crops, held in memory together while it is
#: extracted (and while a bundle scores it): at most this (the paper's 25 frames at 1920 px with
#: 299 px crops are 283 MB in the worst case, square frames); see :func:`frame_memory`
MAX_FRAME_BYTES = 2 * GIB


def frame_memory(frames_per_video: int, max_frame_side: int, crop_size: int) -> int:
    """Worst-case bytes of one video's sampled frames and face crops in memory: every sampled frame
    kept (RGB, 8 bits) at ``max_frame_side`` on both sides (a square frame; wider ones take less),
    each with its ``crop_size`` crop."""
    return int(frames_per_video) * 3 * (int(max_frame_side) ** 2 + int(crop_size) ** 2)


def frame_memory_problem(frames_per_video: int, max_frame_side: int, crop_size: int) -> str | None:
    """Why these settings would hold more than :data:`MAX_FRAME_BYTES` per video, or None."""
    held = frame_memory(frames_per_video, max_frame_side, crop_size)
    if held <= MAX_FRAME_BYTES:
        return None
    return (f"frames_per_video {frames_per_video} at max_frame_side {max_frame_side} and crop_size {crop_size} "
            f"would hold up to {held / GIB:.1f} GiB of frames per video (the sampled frames and their face crops), "
            f"more than {MAX_FRAME_BYTES / GIB:g} GiB; lower frames_per_video, max_frame_side or crop_size")


@dataclass(frozen=True)
class ExtractConfig(Settings):
    """How videos become face crops.

    Sampling: ``fps=None`` takes ``frames_per_video`` evenly spaced frames; a
    number samples at that rate (frames per second of video time) and caps at
    ``frames_per_video``. The paper sampled at 1 and 5 frames per second and kept
    10 to 25 frames per video (25 for the triplet runs). ``consecutive=True``
    takes ``frames_per_video`` frames in a row (every frame, or every frame of
    the ``fps`` sampling) from the middle of the video, for the sequence
    models (LSTM/GRU, Conv3D).

    Detection (MTCNN, largest face): the two cheap MTCNN stages (PNet, RNet)
    run on the frame downscaled so that its longer side is ``detect_size``
    pixels; the last stage (ONet, which gives the final box, landmarks and
    confidence) runs on the full-resolution pixels. ``detect_size=0`` runs all
    stages at full resolution (the naive detector). Faces smaller than
    ``min_face`` times the shorter frame side are not searched for.

    Crops: a square of side ``(1 + margin) * max(box width, box height)``
    centred on the box, padded with black where it leaves the frame, resized
    to ``crop_size`` pixels (299 for Xception; FaceNet resizes to 160).
    """

    frames_per_video: int = 25
    fps: float | None = None
    consecutive: bool = False
    crop_size: int = 299
    margin: float = 0.3
    detect_size: int = 480
    min_face: float = 0.05
    max_frame_side: int = 1920
    batch_size: int = 16

    def __post_init__(self):
        for name, low, high in (("frames_per_video", 1, MAX_FRAMES), ("crop_size", 16, MAX_CROP),
                                ("max_frame_side", 64, MAX_FRAME_SIDE), ("batch_size", 1, MAX_BATCH)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and 0 < self.fps <= MAX_FPS):
            raise ValueError(f"fps must be a number above 0 and at most {MAX_FPS} (or None for evenly spaced frames), "
                             f"got {self.fps!r}")
        _check_margin("margin", self.margin)
        if self.detect_size != 0 and self.detect_size < 64:
            raise ValueError(f"detect_size must be 0 (full resolution) or >= 64 pixels, got {self.detect_size}")
        if not 0 <= self.min_face < 1:
            raise ValueError(f"min_face must be a fraction of the frame side in [0, 1), got {self.min_face}")
        problem = frame_memory_problem(self.frames_per_video, self.max_frame_side, self.crop_size)
        if problem:  # every sampled frame is held at once (data.extract.extract_video)
            raise ValueError(problem)


AUTHORS_TRIPLET_CODE = "AKASH2907/deepfakes_video_classification, train_triplets_semi_hard.py (09.py)"


@dataclass(frozen=True)
class HeadConfig(Settings):
    """The triplet head (paper III.E-F) and its training, as the authors' code has them (the paper gives none
    of these; see :mod:`deepfake_keras.models.triplet`). Lines of ``train_triplets_semi_hard.py`` (09.py) of
    AKASH2907/deepfakes_video_classification: ``create_base_network`` (lines 267-281: 512 -> Dense 256 ->
    Dropout 0.1 -> Dense 256 -> Dropout 0.1 -> Dense 128 -> Dropout 0.1 -> Dense 64, the hidden layers ReLU with
    ``kernel_initializer='he_uniform'``, the 64-d output linear); ``triplet_loss_adapted_from_tf`` (lines
    155-228: ``margin = 1.`` line 157, ``pairwise_distance(embeddings, squared=True)`` line 173);
    ``optimizer = Adam(lr=3e-4)`` (line 345); ``batch_size = 32`` (line 294); ``--epochs`` default 10 (line
    291), 20 in their README; ``model.fit`` without callbacks (lines 355-362): no early stopping."""

    units: tuple = (256, 256, 128)  # hidden Dense layers (ReLU): create_base_network, lines 272, 274, 276
    embedding_dim: int = 64  # the linear output, line 278: embedding_size = 64 (line 300)
    dropout: float = 0.1  # after each hidden layer: Dropout(0.1), lines 273, 275, 277
    margin: float = 1.0  # margin = 1. in triplet_loss_adapted_from_tf, line 157
    distance: str = "squared-L2"  # pairwise_distance(embeddings, squared=True), line 173
    learning_rate: float = 3e-4  # Adam(lr=3e-4), line 345
    batch_size: int = 32  # batch_size = 32, line 294; here split evenly between the classes (class-balanced)
    # 20, their README's, not the code's default 10: every epoch is validated and the best one kept, so the
    # longer run can only lower the kept validation loss, and 20 epochs of this head cost seconds
    epochs: int = 20
    patience: int | None = None  # the authors train all epochs (no early stopping); the best epoch is kept
    normalize: bool = False  # the authors' output is linear, not L2-normalised
    initializer: str = "he_uniform"  # of the hidden layers: kernel_initializer='he_uniform', lines 272-276


INPUT_STORAGES = ("png", "raw")  # where the Xception's inputs are read from: see deepfake_keras.data.inputs


def _check_margin(name: str, value) -> None:
    if not 0 <= value <= 2:
        raise ValueError(f"{name} must be between 0 and 2 (a fraction of the box side), got {value}")


def _check_input_storage(value) -> None:
    if value not in INPUT_STORAGES:
        raise ValueError(f"input_storage must be one of {INPUT_STORAGES}, got {value!r}")


@dataclass(frozen=True)
class XceptionConfig(Settings):
    """The Xception frame classifier (paper III.B, IV.B.1, IV.C) and its training."""

    image_size: int = 299  # Xception's native size and the face store's crop size (the paper's)
    batch_size: int = 32
    epochs: int = 30  # the paper: 30-50
    learning_rate: float = 0.002  # the paper (Nadam)
    schedule_decay: float = 0.004  # the paper (Keras 2 Nadam's schedule_decay)
    # early stopping on the validation loss: the authors' EarlyStopping(monitor="val_loss", patience=10)
    # (01.train_CNN.py line 194); the best epoch is kept, as their ModelCheckpoint(save_best_only=True) does
    patience: int = 10
    weights: str = "imagenet"  # the paper's start: ImageNet
    fallback_weights: str = "none"  # start used, loudly, where ImageNet weights cannot be fetched ("stop": stop)
    # the authors' ImageDataGenerator (01.train_CNN.py lines 151-160, see deepfake_keras.data.augment); the
    # paper mentions none. The DEMO runs leave it off (a few epochs on tiny crops)
    augment: bool = True
    # the store's PNG crops, or "raw": a uint8 copy written once beside the store (<store>.raw): the same
    # batches, bit for bit, for less CPU per crop and 2.2x the PNGs' disk space
    input_storage: str = "png"

    def __post_init__(self):
        _check_input_storage(self.input_storage)


@dataclass(frozen=True)
class BaggingConfig(Settings):
    """Bagging against the 7:1 imbalance of Celeb-DF (paper IV.B.1)."""

    bags: int = 7  # the paper
    # training videos held out for validation, per class: the authors' train_test_split(test_size=0.1)
    # (01.train_CNN.py lines 145-146; theirs splits frames, ours whole videos, so no video straddles it)
    val_fraction: float = 0.1
    threshold: float = 0.5  # a probability >= threshold is called fake


FACENET = "facenet-vggface2-512"  # the paper's 512-d FaceNet
FACENET_MARGIN = 0.0
"""Margin of the square face crop FaceNet sees (side ``(1 + margin) * max(box w, h)``, see
:func:`deepfake_keras.data.faces.crop_box`), cut from the stored crop: 0, the square on the MTCNN box's longer
side. The paper is silent; the authors cut their faces with facenet-pytorch's ``MTCNN(margin=40)`` at its
default 160 pixels (``data_preprocessing/face_extraction.py`` line 20: 40 of the 160 pixels are margin, so each
side of the box grows by a third of it, ``extract_face``), kept the box's aspect and stretched it to a square:
about margin 0.33 here, looser than the stored crops (0.3) hold, so their crop cannot be reproduced exactly.

Chosen by measurement. On the real FF++ c23 subset (Deepfakes vs pristine, 4 folds by pair x 3 seeds,
``benchmarks/paper_row_variants.py``, the change of the paper's row paired by fold, mean ± standard error, from
margin 0.2): margin 0.3 -0.026 ± 0.011 (RF), 0.1 +0.020 ± 0.013, 0 +0.039 ± 0.011 (and +0.036 ± 0.012 with SGD,
9 folds of 12 better): the tighter the crop, the better the paper's row. On verification pairs of real photos
(deepface's; the 5-celebrity photos) FaceNet also wants a tight crop: AUC 0.995 / 0.994 / 0.989 / 0.987 at margins
0.1 / 0.2 / 0.3 / 0.4 on the 5-celebrity pairs, same-vs-different d' 7.75 / 7.9 / 7.9 / 6.4 / 5.6 at 0 / 0.1 / 0.2 /
0.3 / 0.4 on deepface's pairs (AUC 1.0 at 0). ``facenet_margin`` (``--facenet-margin``) sets it; a bundle records the margin its
FaceNet saw, so bundles made with another margin keep theirs."""
STANDARDIZATIONS = ("fixed", "prewhiten")  # FaceNet input scalings, see deepfake_keras.embeddings.standardize
FACENET_STANDARDIZATION = "fixed"
"""The input scaling the experiments feed every FaceNet: ``(x - 127.5) / 128``, the paper's 512-d FaceNet's own
(David Sandberg's VGGFace2 model). The 128-d fallback's own is the per-image prewhitening (see
:data:`deepfake_keras.weights.WEIGHTS`), which removes each face's brightness and contrast; on real footage the
fixed scaling scores better with it: on the real FF++ c23 subset (Deepfakes vs pristine, 4 folds by pair x 3
seeds, ``benchmarks/paper_row_variants.py``, paired by fold) the paper's row gained +0.035 ± 0.013 video AUC (RF;
SGD +0.015 ± 0.013) with FaceNet on the box's square, and +0.019 ± 0.011 (SGD +0.026 ± 0.012) with margin 0.2,
9 folds of 12 better in each, while verification of real photos stays perfect (deepface pairs AUC 1.0 with
either). ``facenet_standardization`` (``--facenet-standardization``) sets it, None the weights' own; a bundle
records the scaling its FaceNet used."""
FALLBACK_FACENET = "facenet-msceleb-128"  # used, loudly, where the paper's cannot be fetched ("none": stop)


VIDEO_DECISIONS = ("majority", "mean")
STRATEGIES = ("auto", "one", "mirrored", "multiworker")  # see deepfake_keras.training.distribute


@dataclass(frozen=True)
class _Experiment(Settings):
    """What the three experiments share: the data, the seeds, ``paper()``, ``demo()`` and :func:`for_data`."""

    data_root: str | None = None  # None: the built-in DEMO dataset
    store: str | None = None  # None: a cache folder keyed by dataset and extraction settings
    seed: int = 0  # the run's: splits, initial weights, shuffles, classifiers
    demo_seed: int = 0  # the DEMO dataset's build (its identities, clips), apart from the run's seed
    no_face_score: float | None = None  # test videos without a face: left out (None), or scored with this
    strategy: str = "auto"  # tf.distribute: auto (mirrored over GPUs when there are several), one, mirrored...
    mixed_precision: bool = False  # mixed_float16 on GPUs that have the units for it

    DEMO: ClassVar[dict] = {}

    @classmethod
    def paper(cls, **values):
        """The paper's settings (for real data), with ``values`` overriding (None: default)."""
        return cls().override(**values)

    @classmethod
    def demo(cls, **values):
        """The DEMO settings (small, for 2 CPU cores), with ``values`` overriding (None: default)."""
        return cls(**cls.DEMO).override(**values)

    def __post_init__(self):
        if self.no_face_score is not None and not 0 <= self.no_face_score <= 1:
            raise ValueError(f"no_face_score must be a probability in [0, 1], got {self.no_face_score}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")


@dataclass(frozen=True)
class _TripletRows(_Experiment):
    """The triplet network's settings, in the experiments that train one (FF++ and Celeb-DF)."""

    facenet: str = FACENET
    fallback_facenet: str = FALLBACK_FACENET
    facenet_margin: float = FACENET_MARGIN  # of the crop FaceNet sees, cut from the stored crop
    facenet_standardization: str | None = FACENET_STANDARDIZATION  # None: the weights' own
    triplet_epochs: int = HeadConfig.epochs
    triplet_batch_size: int = HeadConfig.batch_size
    triplet_patience: int | None = HeadConfig.patience
    margin: float = HeadConfig.margin
    dropout: float = HeadConfig.dropout
    distance: str = HeadConfig.distance
    learning_rate: float = HeadConfig.learning_rate
    head_normalize: bool = HeadConfig.normalize
    # a video is fake when most of its frames are (ties: the mean probability), its AUC from the mean
    # probability: the authors' evaluate_triplets.py (10.py lines 300-308); "mean": the mean probability for both
    video_decision: str = "majority"

    def __post_init__(self):
        super().__post_init__()
        _check_margin("facenet_margin", self.facenet_margin)
        if self.facenet_standardization not in (*STANDARDIZATIONS, None):
            raise ValueError(f"facenet_standardization must be one of {STANDARDIZATIONS} (or None: the weights' "
                             f"own), got {self.facenet_standardization!r}")
        if self.video_decision not in VIDEO_DECISIONS:
            raise ValueError(f"video_decision must be one of {VIDEO_DECISIONS}, got {self.video_decision!r}")

    def head(self) -> HeadConfig:
        return replace(HeadConfig(), epochs=self.triplet_epochs, batch_size=self.triplet_batch_size,
                       patience=self.triplet_patience, margin=self.margin, dropout=self.dropout,
                       distance=self.distance, learning_rate=self.learning_rate, normalize=self.head_normalize)


@dataclass(frozen=True)
class TripletExperiment(_TripletRows):
    """FF++ (c40, NeuralTextures vs pristine): FaceNet -> triplet head -> RF / SGD (Tables II-IV, Figs 6-7)."""

    splits: str | None = None
    compression: str = "c40"  # the paper's
    methods: tuple = ("NeuralTextures",)  # the paper's Tables III-IV
    frames_per_video: int = ExtractConfig.frames_per_video  # "utilizing only 25 frames per video"
    folds: int | None = None  # K-fold cross-validation by pair instead of the official split

    # half of each 32-frame DEMO clip: 8 gave test AUC 0.56 at seed 0, 16 gave 0.67
    DEMO: ClassVar[dict] = {"frames_per_video": 16}


@dataclass(frozen=True)
class BaggingExperiment(_TripletRows):
    """Celeb-DF v2: 7 Xception bags and the triplet row (Table I, Figs 4, 5, 7)."""

    frames_per_video: int = ExtractConfig.frames_per_video
    fps: float | None = None  # the paper sampled at 5 fps
    image_size: int = XceptionConfig.image_size
    epochs: int = XceptionConfig.epochs  # per bag
    batch_size: int = XceptionConfig.batch_size
    bags: int = BaggingConfig.bags
    weights: str = XceptionConfig.weights
    fallback_weights: str = XceptionConfig.fallback_weights
    patience: int = XceptionConfig.patience  # of the bags
    augment: bool = XceptionConfig.augment
    input_storage: str = XceptionConfig.input_storage  # of the bags' crops

    DEMO: ClassVar[dict] = {"frames_per_video": 6, "image_size": 96, "epochs": 2, "batch_size": 16, "augment": False}

    def __post_init__(self):
        super().__post_init__()
        _check_input_storage(self.input_storage)


SEQ_LENS = (16, 25, 32)  # the paper: 16 and 32 (III.C), 25 (IV.B.2)
RECURRENT_KINDS = ("lstm", "gru")
SHORT_POLICIES = ("pad", "drop")


@dataclass(frozen=True)
class BaselinesExperiment(_Experiment):
    """FF++: frames-only Xception, Xception features + LSTM/GRU, Conv3D, ConvLSTM (Table II).

    The paper's settings where it gives them (32 frames, 5 fps, 299 px, 16/25/32 frames, 30 epochs as
    for Celeb-DF); ours where it does not (clip size: C3D's 112 px; batch sizes; recurrent epochs).
    """

    splits: str | None = None
    compression: str = "c40"
    methods: tuple = ("NeuralTextures",)
    frames_per_video: int = 32  # consecutive frames stored per video (the longest sequence)
    fps: float = 5.0  # "like Celeb-DF we extracted frames with a frame rate of five"; 0 = every frame
    image_size: int = XceptionConfig.image_size  # of the frames-only Xception
    epochs: int = XceptionConfig.epochs  # of the frames-only Xception
    batch_size: int = XceptionConfig.batch_size
    xception_frames: int = 0  # frames per video the frames-only Xception trains on, evenly spread; 0 = all
    seq_epochs: int = 50  # ours
    clip_frames: int = 32  # the paper (Conv3D)
    clip_size: int = 112  # C3D's input side (the paper gives none)
    conv_epochs: int = 30
    conv_batch_size: int = 8  # ours
    seq_lens: tuple = SEQ_LENS
    kinds: tuple = RECURRENT_KINDS
    short: str = "pad"  # videos with fewer stored frames than a sequence: pad (repeat the last, masked) or drop
    weights: str = XceptionConfig.weights
    fallback_weights: str = XceptionConfig.fallback_weights
    patience: int = XceptionConfig.patience  # of every model
    augment: bool = XceptionConfig.augment  # of the frames-only Xception
    input_storage: str = XceptionConfig.input_storage  # of the frames-only Xception's crops (not the clips')
    triplet_run: str | None = None  # a finished ffpp_triplet run for the triplet row; "none": no row
    folds: int | None = None  # K-fold cross-validation by pair instead of the official split

    # 2 CPU cores, under 15 minutes in all (see the README); every frame of the 32-frame clips
    DEMO: ClassVar[dict] = {"frames_per_video": 32, "fps": 0.0, "image_size": 71, "epochs": 2, "batch_size": 16,
                            "xception_frames": 8, "seq_epochs": 30, "clip_frames": 32, "clip_size": 32,
                            "conv_epochs": 4, "conv_batch_size": 4, "augment": False}

    def __post_init__(self):
        super().__post_init__()
        _check_input_storage(self.input_storage)
        if self.fps < 0:
            raise ValueError(f"fps must be >= 0 (0 = every frame), got {self.fps}")
        for key in ("frames_per_video", "image_size", "epochs", "batch_size", "seq_epochs", "clip_frames",
                    "clip_size", "conv_epochs", "conv_batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.xception_frames < 0:
            raise ValueError(f"xception_frames must be >= 0 (0 = every stored frame), got {self.xception_frames}")
        if not self.seq_lens or min(self.seq_lens) < 1:
            raise ValueError(f"seq_lens must be >= 1, got {self.seq_lens}")
        longest = max([*self.seq_lens, self.clip_frames])
        if longest > self.frames_per_video:
            raise ValueError(f"a sequence of {longest} frames needs frames_per_video >= {longest} (the store holds "
                             f"that many consecutive frames per video), got {self.frames_per_video}")
        if self.short not in SHORT_POLICIES:
            raise ValueError(f"short must be one of {SHORT_POLICIES}, got {self.short!r}")



def for_data(cls, data_root, **values):
    """``cls.paper(...)`` when a dataset is given, else ``cls.demo(...)`` (the DEMO data)."""
    return (cls.paper if data_root else cls.demo)(data_root=data_root, **values)
