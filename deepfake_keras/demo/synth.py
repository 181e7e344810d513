"""Image synthesis for the built-in demo dataset: animated photos and face swaps.

Pure functions on RGB ``uint8`` / ``float32`` arrays (no file or network I/O
apart from :func:`load_photo`), used by :mod:`deepfake_keras.demo`:

* a "real" clip animates one photo: :func:`align_to_frame` puts the face at a
  fixed place and size in the frame, :func:`motion` draws a smooth per-clip
  zoom, pan, rotation, wobble and lighting drift, :func:`frame_transforms`
  turns it into one affine map per frame, :func:`render` warps the photo with
  them, and :func:`finish` applies the lighting and sensor noise;
* a "fake" clip is the same clip with another face put in. The swap is done
  once, in the target photo's pixels (:func:`swap_face`: landmark-aligned
  piecewise-affine warp, Reinhard colour transfer in Lab, then either
  Poisson blending with ``cv2.seamlessClone`` or a low-resolution,
  feathered alpha blend); :func:`composite` then pastes that face onto each
  frame of the real clip through the same per-frame map plus a small random
  misalignment, and only inside the face mask. Everything outside the face is
  pixel-for-pixel the real clip, lighting and noise included.

Landmarks are MTCNN's five points as a ``(5, 2)`` array in the order of
:data:`deepfake_keras.data.faces.LANDMARKS`: left eye, right eye, nose, left
and right mouth corner (``x, y`` in pixels).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np

# ArcFace's 5-point template on a 112 x 112 crop, in MTCNN's landmark order.
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
TEMPLATE_IOD = float(np.linalg.norm(TEMPLATE_112[1] - TEMPLATE_112[0]))
# ring of points around the face, in units of the inter-ocular distance around the landmarks'
# centre: the outer vertices of the piecewise-affine warp (they follow the similarity fit)
_RING = np.array([[np.cos(a) * 1.9, np.sin(a) * 2.2] for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)])


# ---------------------------------------------------------------- photos

def load_photo(data: bytes, background=(128, 128, 128)) -> np.ndarray:
    """Decode an image file's bytes by content (JPEG, PNG, WebP...; the extension may lie)
    into RGB ``uint8``; transparency is composited onto ``background``."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
            im = Image.alpha_composite(base, rgba)
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def inter_ocular(landmarks) -> float:
    """Distance between the two eyes, in pixels."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(lm[1] - lm[0]))


def yaw_ratio(landmarks) -> float:
    """How far the nose sits from the middle of the eyes, in inter-ocular distances
    (0 for a frontal face, about 0.5 for a strong profile)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return float(abs(lm[2, 0] - (lm[0, 0] + lm[1, 0]) / 2) / max(inter_ocular(lm), 1e-6))


# ---------------------------------------------------------------- affine maps (2 x 3)

def similarity(src, dst) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping points ``src`` onto ``dst`` (Umeyama), as a 2 x 3 matrix."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"similarity needs two equal (n >= 2, 2) point arrays, got {src.shape} and {dst.shape}")
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var = (s ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / var) if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - m[:, :2] @ ms
    return m


def compose(*maps) -> np.ndarray:
    """The 2 x 3 affine map that applies the last of ``maps`` first: ``compose(a, b)(p) = a(b(p))``."""
    out = np.eye(3)
    for m in maps:
        out = out @ np.vstack([np.asarray(m, dtype=np.float64), [0, 0, 1]])
    return out[:2]


def about(center, angle_deg: float = 0.0, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    """Rotate by ``angle_deg`` (counter-clockwise on screen) and scale about ``center``, then shift."""
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), float(angle_deg), float(scale))
    m[:, 2] += np.asarray(shift, dtype=np.float64)
    return m


def apply(m, points) -> np.ndarray:
    """Map ``(n, 2)`` points through the 2 x 3 affine ``m``."""
    p = np.asarray(points, dtype=np.float64)
    return p @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def align_to_frame(landmarks, frame_size: int, iod: float, center_y: float = 0.52) -> np.ndarray:
    """The similarity that puts a face with ``landmarks`` upright in a ``frame_size`` square,
    its eyes ``iod`` pixels apart and the landmarks' centre at ``(0.5, center_y) * frame_size``."""
    template = TEMPLATE_112 * (iod / TEMPLATE_IOD)
    template = template - template.mean(0) + np.array([0.5, center_y]) * frame_size
    return similarity(landmarks, template)


# ---------------------------------------------------------------- real clips: motion, lighting, noise

@dataclass(frozen=True)
class Motion:
    """A clip's smooth camera and lighting path (per-frame arrays of length ``frames``).

    ``zoom`` (scale about the frame centre), ``angle`` (degrees), ``dx``/``dy``
    (pixels), ``gain`` (``frames x 3``, per RGB channel), ``offset`` (added
    grey level), ``noise`` (standard deviation of the Gaussian sensor noise, grey
    levels), ``noise_seed`` (seed of the per-frame noise).
    """

    zoom: np.ndarray
    angle: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    gain: np.ndarray
    offset: np.ndarray
    noise: float
    noise_seed: int


def _ease(frames: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, frames)
    return (1 - np.cos(np.pi * t)) / 2


def motion(rng: np.random.Generator, frames: int, fps: float) -> Motion:
    """Draw a clip's motion: a slow zoom in or out (about 5-15%), a pan of up to 10 px each way,
    a roll of up to 4 degrees, a small hand-held wobble, brightness and white-balance drift
    of up to about 12%, and sensor noise of 1-3 grey levels."""
    s = _ease(frames)
    t = np.arange(frames) / fps
    z0 = rng.uniform(0.92, 1.04)
    z1 = z0 * rng.uniform(1.05, 1.15)
    if rng.random() < 0.5:
        z0, z1 = z1, z0
    a0, a1 = rng.uniform(-4, 4, size=2)
    p0, p1 = rng.uniform(-10, 10, size=(2, 2))
    wob_amp, wob_freq, wob_phase = rng.uniform(0.5, 1.5), rng.uniform(0.4, 1.2), rng.uniform(0, 2 * np.pi, size=2)
    wobble = wob_amp * np.stack([np.sin(2 * np.pi * wob_freq * t + wob_phase[0]),
                                 np.cos(2 * np.pi * wob_freq * 0.8 * t + wob_phase[1])], axis=1)
    pan = p0 + (p1 - p0) * s[:, None] + wobble
    b0, b1 = rng.uniform(0.88, 1.12, size=2)
    w0, w1 = rng.uniform(0.96, 1.04, size=(2, 3))
    gain = (b0 + (b1 - b0) * s)[:, None] * (w0 + (w1 - w0) * s[:, None])
    o0, o1 = rng.uniform(-8, 8, size=2)
    return Motion(zoom=z0 + (z1 - z0) * s, angle=a0 + (a1 - a0) * s, dx=pan[:, 0], dy=pan[:, 1], gain=gain,
                  offset=o0 + (o1 - o0) * s, noise=float(rng.uniform(1.0, 3.0)),
                  noise_seed=int(rng.integers(2 ** 31)))


def frame_transforms(base: np.ndarray, mo: Motion, frame_size: int) -> list:
    """One 2 x 3 map per frame from photo pixels to frame pixels: ``base`` (see
    :func:`align_to_frame`) followed by the clip's zoom, roll and pan about the frame centre."""
    c = (frame_size / 2, frame_size / 2)
    return [compose(about(c, mo.angle[k], mo.zoom[k], (mo.dx[k], mo.dy[k])), base) for k in range(len(mo.zoom))]


def render(photo: np.ndarray, maps: list, frame_size: int) -> list:
    """Warp ``photo`` through each map into a ``frame_size`` square (``float32``, 0-255).
    Pixels outside the photo repeat its edge, never black bars."""
    src = photo.astype(np.float32)
    return [cv2.warpAffine(src, m, (frame_size, frame_size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE) for m in maps]


def sensor_noise(mo: Motion, frames: int, frame_size: int) -> list:
    """The clip's per-frame Gaussian sensor noise (``float32``, ``frame_size`` square, 3 channels),
    drawn from ``mo.noise_seed``: a real clip and every fake made from it get the same noise."""
    rng = np.random.default_rng(mo.noise_seed)
    return [rng.standard_normal((frame_size, frame_size, 3), dtype=np.float32) * np.float32(mo.noise)
            for _ in range(frames)]


def finish(frames: list, mo: Motion, noise: list | None = None) -> list:
    """Apply the clip's lighting drift and sensor noise (:func:`sensor_noise`, drawn here if not
    given); RGB ``uint8`` frames."""
    if noise is None:
        noise = sensor_noise(mo, len(frames), frames[0].shape[0])
    out = []
    for k, f in enumerate(frames):
        g = f * mo.gain[k].astype(np.float32)
        g += np.float32(mo.offset[k])
        g += noise[k]
        out.append(np.clip(np.rint(g), 0, 255).astype(np.uint8))
    return out


# ---------------------------------------------------------------- fake clips: the swap

def face_mask(landmarks, shape, width: float = 1.05, height: float = 1.38, feather: float = 0.0) -> np.ndarray:
    """An elliptic face mask (``float32`` in [0, 1]) for an image of ``shape``: centred between
    the eyes' and the mouth's centres, ``width``/``height`` semi-axes in inter-ocular distances,
    tilted with the eye line. ``feather`` (in inter-ocular distances) softens the edge inwards."""
    lm = np.asarray(landmarks, dtype=np.float64)
    iod = inter_ocular(lm)
    eyes, mouth = lm[:2].mean(0), lm[3:].mean(0)
    centre = eyes + 0.55 * (mouth - eyes)
    angle = np.degrees(np.arctan2(lm[1, 1] - lm[0, 1], lm[1, 0] - lm[0, 0]))
    scale = 16  # sub-pixel precision for cv2.ellipse
    mask = np.zeros(shape[:2], dtype=np.uint8)
    shrink = feather * iod
    axes = (max(1.0, width * iod - shrink), max(1.0, height * iod - shrink))
    cv2.ellipse(mask, (int(round(centre[0] * scale)), int(round(centre[1] * scale))),
                (int(round(axes[0] * scale)), int(round(axes[1] * scale))), angle, 0, 360, 255, -1,
                lineType=cv2.LINE_AA, shift=4)
    out = mask.astype(np.float32) / 255
    if feather > 0:
        sigma = max(0.5, feather * iod / 2)
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return out


def _ring(landmarks) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    return lm.mean(0) + _RING * inter_ocular(lm)


# triangulation of the 17 points [5 landmarks, 12 ring points], fixed once on the template
def _template_triangles() -> np.ndarray:
    from scipy.spatial import Delaunay

    pts = np.vstack([TEMPLATE_112, _ring(TEMPLATE_112)])
    return Delaunay(pts).simplices.astype(np.int64)


_TRIANGLES = None


def landmark_warp(src: np.ndarray, src_landmarks, dst_landmarks, dst_shape) -> np.ndarray:
    """Warp image ``src`` so that its five landmarks land exactly on ``dst_landmarks``
    (piecewise affine over a fixed triangulation of the landmarks and a ring of points
    around the face that follow the least-squares similarity; the similarity alone
    outside the ring). Returns ``float32`` of ``dst_shape[:2]`` (3 channels)."""
    global _TRIANGLES
    if _TRIANGLES is None:
        _TRIANGLES = _template_triangles()
    sl = np.asarray(src_landmarks, dtype=np.float64)
    dl = np.asarray(dst_landmarks, dtype=np.float64)
    sim_inv = similarity(dl, sl)  # dst -> src
    dst_pts = np.vstack([dl, _ring(dl)])
    src_pts = np.vstack([sl, apply(sim_inv, _ring(dl))])
    h, w = dst_shape[:2]
    index = np.full((h, w), -1, dtype=np.int32)
    for k, tri in enumerate(_TRIANGLES):
        cv2.fillConvexPoly(index, np.round(dst_pts[tri] * 16).astype(np.int32), int(k), lineType=cv2.LINE_8, shift=4)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    maps = np.empty((len(_TRIANGLES) + 1, 2, 3))
    for k, tri in enumerate(_TRIANGLES):
        maps[k] = cv2.getAffineTransform(dst_pts[tri].astype(np.float32), src_pts[tri].astype(np.float32))
    maps[-1] = sim_inv
    m = maps[index]  # index -1 picks the similarity
    map_x = (m[..., 0, 0] * xs + m[..., 0, 1] * ys + m[..., 0, 2]).astype(np.float32)
    map_y = (m[..., 1, 0] * xs + m[..., 1, 1] * ys + m[..., 1, 2]).astype(np.float32)
    return cv2.remap(src.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def color_transfer(src: np.ndarray, dst: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer: shift ``src``'s Lab mean and standard deviation inside ``mask``
    (> 0.5) to ``dst``'s there. Both RGB, 0-255; returns ``float32`` RGB 0-255."""
    sel = mask > 0.5
    if sel.sum() < 16:
        raise ValueError("color_transfer: the mask covers fewer than 16 pixels")
    s = cv2.cvtColor(np.clip(src, 0, 255).astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    d = cv2.cvtColor(np.clip(dst, 0, 255).astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
    ms, ss = s[sel].mean(0), s[sel].std(0) + 1e-3
    md, sd = d[sel].mean(0), d[sel].std(0) + 1e-3
    out = (s - ms) * (sd / ss) + md
    out[..., 0] = np.clip(out[..., 0], 0, 100)
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255, 0, 255).astype(np.float32)


BLENDS = ("poisson", "lowres")


def swap_face(target: np.ndarray, target_landmarks, source: np.ndarray, source_landmarks,
              blend: str = "poisson") -> tuple:
    """Put ``source``'s face into ``target`` (both RGB ``uint8`` photos): landmark-aligned warp,
    colour transfer, then

    * ``"poisson"``: seamless (Poisson) cloning inside the face ellipse, like the
      graphics-based FaceSwap of FaceForensics++;
    * ``"lowres"``: the face resampled through 64 x 64 pixels (the blur of an
      autoencoder's output, like DeepFakes) and alpha-blended with a feathered,
      slightly smaller ellipse.

    Returns ``(swapped, mask)``: the swapped photo (``float32`` RGB 0-255, equal to
    ``target`` outside the mask's support) and the soft mask (``float32`` in [0, 1])
    to paste it with.
    """
    if blend not in BLENDS:
        raise ValueError(f"unknown blend {blend!r}; expected one of {BLENDS}")
    tl = np.asarray(target_landmarks, dtype=np.float64)
    warped = landmark_warp(source, source_landmarks, tl, target.shape)
    hard = face_mask(tl, target.shape)
    recoloured = color_transfer(warped, target, hard)
    tgt = target.astype(np.float32)
    if blend == "poisson":
        pad = 16
        binary = (hard > 0.5).astype(np.uint8) * 255
        src_p = cv2.copyMakeBorder(np.clip(recoloured, 0, 255).astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_REFLECT)
        dst_p = cv2.copyMakeBorder(target, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        msk_p = cv2.copyMakeBorder(binary, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        msk_p[:pad + 1, :] = 0
        msk_p[-pad - 1:, :] = 0
        msk_p[:, :pad + 1] = 0
        msk_p[:, -pad - 1:] = 0
        x, y, w, h = cv2.boundingRect(msk_p)
        cloned = cv2.seamlessClone(src_p, dst_p, msk_p, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
        cloned = cloned[pad:-pad, pad:-pad].astype(np.float32)
        soft = face_mask(tl, target.shape, feather=0.12)
        swapped = tgt * (1 - soft[..., None]) + cloned * soft[..., None]
        return swapped, soft
    # lowres
    iod = inter_ocular(tl)
    cx, cy = tl.mean(0)
    half = 1.6 * iod
    x0, y0 = int(np.floor(cx - half)), int(np.floor(cy - half))
    side = int(np.ceil(2 * half))
    crop_map = np.array([[64 / side, 0, -x0 * 64 / side], [0, 64 / side, -y0 * 64 / side]])
    small = cv2.warpAffine(recoloured, crop_map, (64, 64), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    back = cv2.warpAffine(small, crop_map, (target.shape[1], target.shape[0]),
                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    soft = face_mask(tl, target.shape, width=0.95, height=1.25, feather=0.3)
    swapped = tgt * (1 - soft[..., None]) + np.clip(back, 0, 255) * soft[..., None]
    return swapped, soft


def jitter(rng: np.random.Generator, frames: int, center, shift: float = 0.7, angle: float = 0.6,
           scale: float = 0.012, smooth: float = 0.9) -> list:
    """Per-frame misalignment of a pasted face: small shifts (pixels), rolls (degrees) and
    scalings about ``center`` (frame pixels), as 2 x 3 maps. Each follows a stationary AR(1)
    process with standard deviation ``shift`` / ``angle`` / ``scale`` and frame-to-frame
    correlation ``smooth``: the face drifts and trembles against the head as a swapped face
    does. (Independent jumps every frame, ``smooth=0``, cost the encoder about 5% more bits
    than the real twin clip, a file-size cue; at 0.9 the fake and its twin differ by about 1%.)"""
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    sd = np.array([shift, shift, angle, scale])
    state = rng.normal(0, 1, 4) * sd
    out = []
    for _ in range(frames):
        out.append(about(center, state[2], 1 + state[3], state[:2]))
        state = smooth * state + np.sqrt(1 - smooth ** 2) * rng.normal(0, 1, 4) * sd
    return out


def composite(frames: list, swapped: np.ndarray, mask: np.ndarray, maps: list, jitters: list,
              frame_size: int) -> list:
    """Paste the swapped photo onto each frame of a real clip (``float32`` frames before
    :func:`finish`): the face goes through the frame's map and then its jitter, the mask
    through the frame's map alone, so the pasted face wobbles slightly inside a steady mask.
    Pixels where the mask is 0 are left exactly as they were."""
    out = []
    for f, m, j in zip(frames, maps, jitters):
        a = cv2.warpAffine(mask, m, (frame_size, frame_size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x, y, w, h = cv2.boundingRect((a > 0).astype(np.uint8))
        g = f.copy()
        if w == 0 or h == 0:
            out.append(g)
            continue
        # warp the face straight into the mask's bounding box
        roi = compose([[1, 0, -x], [0, 1, -y]], j, m)
        face = cv2.warpAffine(swapped, roi, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = a[y:y + h, x:x + w, None]
        g[y:y + h, x:x + w] = f[y:y + h, x:x + w] * (1 - a) + face * a
        out.append(g)
    return out
