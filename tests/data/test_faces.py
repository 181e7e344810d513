"""The fast detector agrees with the naive one on real FF++ clips; crops and boxes by hand."""
import numpy as np
import pytest

from deepfake_keras.data.faces import (LANDMARKS, crop_box, crop_face, detect_naive, iou, select_largest)
from deepfake_keras.data.video import read_frames

from ..conftest import shared

FFPP_CLIPS = ["original_sequences/youtube/c23/videos/004.mp4", "original_sequences/youtube/c23/videos/519.mp4",
              "original_sequences/youtube/c23/videos/634.mp4", "manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
              "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4", "manipulated_sequences/FaceSwap/c23/videos/634_660.mp4",
              "manipulated_sequences/Face2Face/c23/videos/750_743.mp4"]


def test_iou_and_largest_by_hand():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    faces = [{"box": [0, 0, 10, 10], "confidence": 0.99}, {"box": [0, 0, 30, 5], "confidence": 0.99},
             {"box": [50, 50, 62, 61], "confidence": 0.99}]
    assert select_largest(faces) is faces[1]  # areas 100, 150, 12*11 = 132
    faces[2]["box"] = [50, 50, 63, 62]       # 13*12 = 156 > 150
    assert select_largest(faces) is faces[2]
    faces[2]["confidence"] = 0.8             # a large unsure box loses to sure ones...
    assert select_largest(faces) is faces[1]
    assert select_largest([faces[2], {"box": [0, 0, 1, 1], "confidence": 0.9}]) is faces[2]  # ...unless none is sure
    assert select_largest([]) is None


def test_crop_box_and_padding_by_hand():
    # box 20 wide, 40 tall, centre (30, 40); margin 0.5 -> side 60 around the centre
    assert crop_box([20, 20, 40, 60], 0.5) == (0, 10, 60, 70)
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_face(frame, [20, 20, 40, 60], size=60, margin=0.5)
    assert crop.shape == (60, 60, 3) and (crop == 200).all()
    # a box at the corner: the part outside the frame is black
    crop = crop_face(frame, [-10, -10, 10, 10], size=20, margin=0.0)
    assert (crop[:10, :10] == 0).all() and (crop[10:, 10:] == 200).all()


@pytest.fixture(scope="module")
def agreement(detector, naive_mtcnn):
    """Ours and the naive detector's largest face on 4 sampled frames of each real FF++ clip."""
    out = []
    for clip in FFPP_CLIPS:
        frames = read_frames(shared("ffpp_mini", clip), frames_per_video=4)
        ours = detector.detect(frames.images)
        for index, image, faces in zip(frames.indices, frames.images, ours):
            base = select_largest(detect_naive(image, naive_mtcnn))
            out.append((clip, index, base, select_largest(faces)))
    return out


def test_every_sampled_ffpp_frame_has_the_naive_detectors_face(agreement):
    assert len(agreement) == 28
    for clip, index, base, mine in agreement:
        assert base is not None, f"premise: the naive detector finds a face in {clip} frame {index}"
        assert mine is not None, f"{clip} frame {index}: the naive detector found a face, ours did not"
    ious = np.array([iou(base["box"], mine["box"]) for _, _, base, mine in agreement])
    # the target: IoU >= 0.8 with the naive box on at least 95% of frames
    assert (ious >= 0.8).mean() >= 0.95, np.round(ious, 3)
    assert ious.min() >= 0.6, np.round(ious, 3)


def test_landmarks_and_confidence_match_the_naive_ones(agreement):
    for clip, index, base, mine in agreement:
        side = base["box"][2] - base["box"][0]
        assert abs(mine["confidence"] - base["confidence"]) < 0.1, f"{clip} frame {index}"
        for name in LANDMARKS:
            d = np.hypot(*np.subtract(mine["landmarks"][name], base["landmarks"][name]))
            assert d < 0.15 * side, f"{clip} frame {index}: {name} is {d:.1f} px from the naive one"


def test_no_face_image_gives_nothing(detector):
    import cv2

    image = cv2.cvtColor(cv2.imread(str(shared("faces", "ipazc_mtcnn", "tests", "images", "no-faces.jpg"))),
                         cv2.COLOR_BGR2RGB)
    assert detector.detect([image]) == [[]]


def test_frames_of_different_sizes_are_refused(detector):
    with pytest.raises(ValueError, match="one size"):
        detector.detect([np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)])


DEEPFACE_IMG18 = ("faces", "serengil_deepface", "tests", "unit", "dataset", "img18.jpg")  # 1200 x 1200, one face


def test_a_large_photo_searched_for_large_faces_finds_its_face():
    """mtcnn 1.0.0's pyramid for a smallest face above 20 px reaches levels under PNet's 12-pixel window
    (PNet then raised InvalidArgumentError, which read as "no face"): the detector keeps only valid levels
    and finds the face, at full resolution and at 480 px, as MTCNN's own detect_faces does."""
    import cv2

    from deepfake_keras.data.faces import FaceDetector

    image = cv2.cvtColor(cv2.imread(str(shared(*DEEPFACE_IMG18))), cv2.COLOR_BGR2RGB)
    naive = select_largest(detect_naive(image))
    assert naive is not None and naive["confidence"] > 0.95
    for detect_size in (0, 480):
        face = select_largest(FaceDetector(detect_size=detect_size, min_face=0.05).detect([image])[0])
        assert face is not None, detect_size
        assert face["confidence"] > 0.95 and iou(face["box"], naive["box"]) > 0.8, detect_size


def test_proposals_are_mtcnns_where_its_pyramid_is_valid(detector):
    """On a 480-pixel frame searched for faces of 20 px and up (the extractor's usual case) the proposals
    equal those of mtcnn's own PNet stage."""
    import cv2

    from deepfake_keras.data.faces import mtcnn_input

    frames = read_frames(shared("ffpp_mini", FFPP_CLIPS[0]), frames_per_video=2)
    small = np.stack([cv2.resize(f, (480, 270), interpolation=cv2.INTER_AREA) for f in frames.images])
    norm = mtcnn_input(small)
    ours = detector._proposals(norm, 270, 20)
    theirs = detector._pnet(bboxes_batch=None, images_normalized=norm, images_oshapes=np.array([[270, 480]] * 2),
                            min_face_size=20)
    assert len(ours) > 0
    np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_onet_on_all_frames_at_once_is_mtcnns_onet_stage_per_frame(detector):
    """The last stage runs ONet once on the patches of every frame; mtcnn's own ONet stage run frame by
    frame on the same RNet boxes gives the same faces (its patches are cut from the whole frame, ours from
    the region around the boxes: sampling positions differ by under a pixel)."""
    import cv2

    from deepfake_keras.data.faces import mtcnn_input

    frames = read_frames(shared("ffpp_mini", FFPP_CLIPS[3]), frames_per_video=3).images
    h, w = frames[0].shape[:2]
    s = 480 / max(h, w)
    small = np.stack([cv2.resize(f, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) for f in frames])
    candidates = detector._candidates(small, 20).copy()
    candidates[:, 1:5] /= s
    ours = detector._refine(frames, candidates)
    for k, frame in enumerate(frames):
        mine = candidates[candidates[:, 0] == k].copy()
        mine[:, 0] = 0
        theirs = np.asarray(detector._onet(images_normalized=mtcnn_input(frame[None]), bboxes_batch=mine))
        got = ours[ours[:, 0] == k]
        assert len(theirs) >= 1 and len(got) == len(theirs), k
        side = theirs[:, 3] - theirs[:, 1]
        assert np.all(np.abs(got[:, 1:5] - theirs[:, 1:5]) < 0.03 * side[:, None]), k
        assert np.all(np.abs(got[:, 5] - theirs[:, 5]) < 0.02), k
        assert np.all(np.abs(got[:, 6:16] - theirs[:, 6:16]) < 0.03 * side[:, None]), k
