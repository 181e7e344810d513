"""The demo's image synthesis on tiny, hand-made inputs: maps, warps, masks, swaps, compositing."""
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from deepfake_keras.demo import synth

# a face's five landmarks in a 200 x 240 photo: eyes 40 px apart
LM = np.array([[80.0, 100.0], [120.0, 100.0], [100.0, 122.0], [84.0, 145.0], [116.0, 145.0]])


def textured(h=240, w=200, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(h // 8, w // 8, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def test_similarity_recovers_a_known_map():
    m = synth.about((50, 60), angle_deg=17, scale=1.3, shift=(4, -7))
    got = synth.similarity(LM, synth.apply(m, LM))
    assert np.allclose(got, m, atol=1e-9)
    # reflections are never returned: mirrored points get the best rotation instead
    mirrored = LM * [-1, 1]
    assert np.linalg.det(synth.similarity(LM, mirrored)[:, :2]) > 0
    with pytest.raises(ValueError):
        synth.similarity(LM, LM[:3])


def test_compose_applies_the_last_map_first():
    a = synth.about((0, 0), 90)
    b = np.array([[1.0, 0, 10], [0, 1, 0]])
    p = np.array([[1.0, 2.0]])
    assert np.allclose(synth.apply(synth.compose(a, b), p), synth.apply(a, synth.apply(b, p)))


def test_align_to_frame_places_the_eyes():
    m = synth.align_to_frame(LM, 256, 48)
    eyes = synth.apply(m, LM[:2])
    assert np.isclose(np.linalg.norm(eyes[1] - eyes[0]), 48, rtol=0.03)
    assert abs(eyes[1, 1] - eyes[0, 1]) < 1.0  # upright
    assert np.allclose(synth.apply(m, LM).mean(0), [128, 0.52 * 256], atol=1e-6)


def test_landmark_warp_puts_landmarks_on_landmarks():
    src_lm = LM * 1.1 + [5, -3]
    src = np.zeros((260, 230, 3), np.uint8)
    for x, y in src_lm:
        src[int(round(y)) - 1:int(round(y)) + 2, int(round(x)) - 1:int(round(x)) + 2] = 255
    dst_lm = LM + np.array([[0, 0], [2, 1], [-1, 2], [1, -1], [0, 1]])  # not a similarity of src_lm
    out = synth.landmark_warp(src, src_lm, dst_lm, (240, 200))
    assert out.shape == (240, 200, 3)
    for x, y in dst_lm:
        patch = out[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3, 0]
        assert patch.max() > 100, (x, y)


def test_face_mask_is_an_ellipse_around_the_face():
    mask = synth.face_mask(LM, (240, 200))
    assert mask.dtype == np.float32 and mask.max() == 1.0
    assert mask[122, 100] == 1.0 and mask[5, 5] == 0.0 and mask[235, 100] == 0.0
    soft = synth.face_mask(LM, (240, 200), feather=0.2)
    assert 0 < soft[mask > 0].min() < 1 and soft.sum() < mask.sum()


def test_color_transfer_matches_the_target_colours():
    mask = synth.face_mask(LM, (240, 200))
    src = textured(seed=1).astype(np.float32) * 0.5 + [100, 0, 0]
    dst = textured(seed=2).astype(np.float32)
    out = synth.color_transfer(src, dst, mask)
    sel = mask > 0.5
    assert np.abs(out[sel].mean(0) - dst[sel].mean(0)).max() < 6
    assert np.abs(src[sel].mean(0) - dst[sel].mean(0)).max() > 30
    with pytest.raises(ValueError):
        synth.color_transfer(src, dst, np.zeros((240, 200), np.float32))


@pytest.mark.parametrize("blend", synth.BLENDS)
def test_swap_touches_only_the_face(blend):
    target, source = textured(seed=3), textured(seed=4)
    swapped, mask = synth.swap_face(target, LM, source, LM + 3, blend)
    assert swapped.shape == target.shape and mask.shape == target.shape[:2]
    outside = mask == 0
    assert np.array_equal(swapped[outside], target[outside].astype(np.float32))
    inside = mask > 0.9
    assert np.abs(swapped[inside] - target[inside]).mean() > 10
    with pytest.raises(ValueError):
        synth.swap_face(target, LM, source, LM, "deepfacelab")


def test_composite_leaves_everything_outside_the_mask_alone():
    size = 128
    frames = [textured(size, size, seed=k).astype(np.float32) for k in range(3)]
    swapped = np.full((240, 200, 3), 255, np.float32)
    mask = synth.face_mask(LM, (240, 200))
    maps = [synth.align_to_frame(LM, size, 24)] * 3
    jitters = synth.jitter(np.random.default_rng(0), 3, (64, 64))
    out = synth.composite(frames, swapped, mask, maps, jitters, size)
    support = cv2.warpAffine(mask, maps[0], (size, size)) > 0  # the mask as the frame sees it
    assert 0 < support.sum() < 0.4 * size * size
    for f, o in zip(frames, out):
        changed = np.any(o != f, axis=2)
        assert changed.sum() > 0.8 * support.sum()
        assert not (changed & ~support).any()


def test_jitter_is_small_and_smooth():
    maps = synth.jitter(np.random.default_rng(0), 200, (100, 100), shift=0.7, smooth=0.9)
    shifts = np.array([synth.apply(m, [[100, 100]])[0] - 100 for m in maps])
    assert 0.4 < shifts.std() < 1.0
    steps = np.diff(shifts, axis=0)
    assert steps.std() < 0.6 * shifts.std()  # neighbouring frames are close
    with pytest.raises(ValueError):
        synth.jitter(np.random.default_rng(0), 3, (0, 0), smooth=1.0)


def test_motion_and_finish_are_deterministic():
    mo = synth.motion(np.random.default_rng(5), 8, 10)
    mo2 = synth.motion(np.random.default_rng(5), 8, 10)
    assert np.array_equal(mo.zoom, mo2.zoom) and mo.noise_seed == mo2.noise_seed
    assert np.all(np.abs(mo.angle) <= 4) and np.all(np.abs(mo.dx) <= 12)
    frames = synth.render(textured(), synth.frame_transforms(synth.align_to_frame(LM, 128, 24), mo, 128), 128)
    a, b = synth.finish(frames, mo), synth.finish(frames, mo, synth.sensor_noise(mo, 8, 128))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].dtype == np.uint8 and a[0].shape == (128, 128, 3)


def test_load_photo_decodes_by_content_and_drops_alpha():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    out = synth.load_photo(buf.getvalue())  # PNG bytes, whatever the file was called
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[3, 3]) == (128, 128, 128)
    webp = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(webp, format="WEBP", lossless=True)
    assert synth.load_photo(webp.getvalue()).shape == (4, 4, 3)
