"""Face detection with MTCNN, made fast without changing what it finds.

Layered as in facenet-pytorch: :meth:`FaceDetector.detect` (every face of
every frame) -> :func:`select_largest` -> :func:`crop_face`.

The naive way (:func:`detect_naive`: ``MTCNN().detect_faces`` on each
full-resolution frame) spends nearly all its time in the first MTCNN stage,
PNet, which slides over an image pyramid that starts at 12/20 of a 1080p frame.
:class:`FaceDetector` runs PNet and RNet on a batch of frames downscaled to
``detect_size`` pixels on their longer side, maps the candidate boxes back to
full resolution and runs the last stage, ONet, on the full-resolution pixels,
so the final boxes, landmarks and confidences come from the same network
looking at the same pixels as the naive detector's. ONet runs once on the
candidates of every frame of the batch (one call of the network instead of one
per frame: a quarter of the detection time on 1080p clips).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
MTCNN_MIN_FACE = 20  # mtcnn's own default smallest face, in pixels of the image it sees
MTCNN_WINDOW = 12  # PNet's input window: no pyramid level may be smaller
PYRAMID_FACTOR = 0.709  # mtcnn's scale factor between pyramid levels
PNET_THRESHOLD = 0.6  # mtcnn's PNet confidence threshold
ONET_THRESHOLD = 0.8  # mtcnn's ONet confidence threshold (StageONet's threshold_onet)
ONET_NMS = 0.7  # mtcnn's ONet non-maximum suppression threshold (StageONet's nms_onet)


def _mtcnn():
    from mtcnn import MTCNN

    return MTCNN()


def mtcnn_input(images):
    """MTCNN's input scaling of uint8 RGB images: ``(x - 127.5) / 128`` as a float32 tensor."""
    import tensorflow as tf

    return (tf.convert_to_tensor(images, tf.float32) - 127.5) / 128.0


def _rows_to_faces(rows: np.ndarray, scale: float = 1.0) -> list:
    """MTCNN rows ``[img, x1, y1, x2, y2, conf, lx1..lx5, ly1..ly5]`` -> face dicts.

    Coordinates are divided by ``scale`` (to undo a resize of the frame).
    """
    faces = []
    for r in rows:
        x1, y1, x2, y2 = (float(v) / scale for v in r[1:5])
        faces.append({
            "box": [x1, y1, x2, y2],
            "confidence": float(r[5]),
            "landmarks": {name: [float(r[6 + k]) / scale, float(r[11 + k]) / scale] for k, name in enumerate(LANDMARKS)},
        })
    return faces


class FaceDetector:
    """MTCNN on batches of equal-size frames (see the module docstring).

    ``detect_size=0`` runs every stage at full resolution.
    ``min_face`` is the smallest face searched for, as a fraction of the
    shorter frame side, but never below MTCNN's 20 pixels at detection scale:
    at ``detect_size=480`` a 1080p frame is searched for faces of 80 pixels and
    up (7.4% of its height; the naive detector goes down to 20 pixels).
    """

    def __init__(self, detect_size: int = 480, min_face: float = 0.05):
        self.detect_size = detect_size
        self.min_face = min_face
        self._mtcnn = _mtcnn()
        self._pnet, self._rnet, self._onet = self._mtcnn.stages

    def detect(self, frames: list) -> list:
        """All faces of each frame (RGB uint8 arrays of one size), boxes ``[x1, y1, x2, y2]``
        in the frame's pixels, sorted by confidence as MTCNN gives them."""
        if not frames:
            return []
        h, w = frames[0].shape[:2]
        if any(f.shape[:2] != (h, w) for f in frames):
            raise ValueError("FaceDetector.detect needs frames of one size; call it per size")
        s = min(1.0, self.detect_size / max(h, w)) if self.detect_size else 1.0
        small = np.stack(frames) if s == 1.0 else np.stack(
            [cv2.resize(f, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) for f in frames])
        min_face_px = max(MTCNN_MIN_FACE, self.min_face * min(small.shape[1:3]))
        candidates = self._candidates(small, min_face_px)
        if candidates is None or len(candidates) == 0:
            return [[] for _ in frames]
        candidates = candidates.copy()
        candidates[:, 1:5] /= s
        rows = self._refine(frames, candidates)
        return [_rows_to_faces(rows[rows[:, 0] == k]) for k in range(len(frames))]

    def _candidates(self, small: np.ndarray, min_face_px: float):
        """PNet proposals over the image pyramid, then RNet: ``(n, 6)`` rows ``[image, x1, y1, x2, y2,
        confidence]`` in the pixels of ``small``; ``None`` when no candidate is left."""
        norm = mtcnn_input(small)
        shapes = np.array([small.shape[1:3]] * len(small))
        boxes = self._proposals(norm, min(small.shape[1:3]), min_face_px)
        if len(boxes) == 0:
            return None
        return self._rnet(bboxes_batch=boxes, images_normalized=norm, images_oshapes=shapes)

    def _proposals(self, norm, min_side: int, min_face_px: float) -> np.ndarray:
        """mtcnn's PNet stage (``mtcnn.stages.stage_pnet.StagePNet.__call__``, mtcnn 1.0.0, same steps
        and thresholds) over a pyramid without its levels smaller than PNet's 12-pixel window.

        mtcnn 1.0.0 counts its pyramid levels as if the pyramid started at scale 1, but it starts at
        ``12 / min_face_size``: with a smallest face above 20 pixels the last levels come out below 12
        pixels, and PNet raises ``InvalidArgumentError`` ("Must provide as many biases...") on them.
        Seen on a 1200 x 1200 photo searched for faces of 60 pixels (deepface's ``img18.jpg``): mtcnn
        found no face at all, while the levels of 12 pixels and more find it. Where mtcnn's pyramid
        was valid, the levels kept are exactly its levels."""
        from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
        from mtcnn.utils.images import build_scale_pyramid, scale_images

        scales = build_scale_pyramid(min_side, min_side, min_face_size=min_face_px, scale_factor=PYRAMID_FACTOR)
        scales = scales[np.floor(min_side * scales) >= MTCNN_WINDOW]
        batch = norm.shape[0]
        found = []
        for scale in scales:
            bbox_reg, bbox_class = self._pnet._model(scale_images(norm, scale))
            boxes = generate_bounding_box(bbox_reg, bbox_class, PNET_THRESHOLD)
            boxes = upscale_bboxes(boxes, np.asarray([scale] * batch))
            found.append(smart_nms_from_bboxes(boxes, threshold=0.5, method="union", initial_sort=False))
        boxes = np.concatenate(found, axis=0) if found else np.empty((0, 6))
        boxes = smart_nms_from_bboxes(boxes, threshold=0.7, method="union", initial_sort=True)
        return resize_to_square(boxes)

    def _refine(self, frames: list, boxes: np.ndarray) -> np.ndarray:
        """mtcnn's ONet stage (``mtcnn.stages.stage_onet.StageONet.__call__``, mtcnn 1.0.0, same steps and
        thresholds) on the full-resolution pixels around ``boxes`` (RNet's rows, column 0 the frame):
        MTCNN rows ``[frame, x1, y1, x2, y2, conf, lx1..lx5, ly1..ly5]`` in the frames' pixels.

        Each frame's 48-pixel patches are cut from the region of the frame that holds its boxes (only
        that region is normalised; ONet's crops outside the frame are zero-padded either way), and ONet
        runs once on the patches of every frame. The steps after ONet move boxes and landmarks by
        offsets scaled to each box, so they are done in the frames' pixels for all frames at once."""
        from mtcnn.utils.bboxes import adjust_bboxes, pick_matches, replace_confidence, smart_nms_from_bboxes
        from mtcnn.utils.images import extract_patches
        from mtcnn.utils.landmarks import adjust_landmarks
        import tensorflow as tf

        kept, patches = [], []
        h, w = frames[0].shape[:2]
        for k, frame in enumerate(frames):
            mine = boxes[boxes[:, 0] == k]
            if len(mine) == 0:
                continue
            # the region that holds every box, clipped to the frame
            x0 = int(max(0, np.floor(mine[:, 1].min()) - 1))
            y0 = int(max(0, np.floor(mine[:, 2].min()) - 1))
            x1 = int(min(w, np.ceil(mine[:, 3].max()) + 2))
            y1 = int(min(h, np.ceil(mine[:, 4].max()) + 2))
            if x1 <= x0 or y1 <= y0:
                continue
            region = mine.copy()
            region[:, 0] = 0
            region[:, [1, 3]] -= x0
            region[:, [2, 4]] -= y0
            patches.append(extract_patches(mtcnn_input(frame[None, y0:y1, x0:x1]), region, expected_size=(48, 48)))
            kept.append(mine)
        if not kept:
            return np.empty((0, 16))
        rows = np.concatenate(kept)
        offsets, landmarks, scores = self._onet._model(tf.concat(patches, axis=0))
        landmarks = adjust_landmarks(landmarks, rows)
        rows = adjust_bboxes(replace_confidence(rows, scores), offsets)
        rows = np.concatenate([rows, landmarks], axis=-1)
        rows = pick_matches(rows, scores_column=5, score_threshold=ONET_THRESHOLD)
        rows = smart_nms_from_bboxes(rows, threshold=ONET_NMS, method="min", initial_sort=True)
        if len(rows) == 0:
            return np.empty((0, 16))
        rows = np.array(rows, dtype=np.float64)
        rows[:, [1, 3]] = rows[:, [1, 3]].clip(0, w - 1)
        rows[:, [2, 4]] = rows[:, [2, 4]].clip(0, h - 1)
        return rows


def detect_naive(frame: np.ndarray, detector=None) -> list:
    """The baseline: ``MTCNN().detect_faces`` on one full-resolution frame.

    Returns faces in the same form as :meth:`FaceDetector.detect`.
    """
    detector = detector or _mtcnn()
    out = []
    for d in detector.detect_faces(frame):
        x, y, bw, bh = d["box"]
        out.append({"box": [float(x), float(y), float(x + bw), float(y + bh)], "confidence": float(d["confidence"]),
                    "landmarks": {k: [float(v[0]), float(v[1])] for k, v in d["keypoints"].items()}})
    return out


def box_area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def select_largest(faces: list, min_confidence: float = 0.95):
    """The face with the largest box among those with confidence >= ``min_confidence``
    (among all if none is that sure), or None.

    Largest-of-all alone picks MTCNN's large low-confidence false positives
    (seen on FF++ ``004.mp4``: a 0.82 box on a background larger than the face).
    """
    sure = [f for f in faces if f["confidence"] >= min_confidence] or faces
    return max(sure, key=lambda f: box_area(f["box"])) if sure else None


def iou(a, b) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def crop_box(box, margin: float) -> tuple:
    """The square ``(x1, y1, x2, y2)`` (integers, may leave the frame) cut around ``box``:
    side ``(1 + margin) * max(width, height)``, same centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(1.0, (1 + margin) * max(box[2] - box[0], box[3] - box[1]))
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = int(round(side))
    return x1, y1, x1 + n, y1 + n


def crop_face(frame: np.ndarray, box, size: int, margin: float) -> np.ndarray:
    """Square crop around ``box`` (see :func:`crop_box`), black where it leaves the frame,
    resized to ``size`` x ``size``."""
    x1, y1, x2, y2 = crop_box(box, margin)
    h, w = frame.shape[:2]
    out = np.zeros((y2 - y1, x2 - x1) + frame.shape[2:], dtype=frame.dtype)
    sx1, sy1, sx2, sy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = frame[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if out.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(out, (size, size), interpolation=interp)
