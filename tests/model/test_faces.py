"""Face detection on a real face photo, and the shared crop function."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.faces import Face, FaceDetector, crop_box, crop_face
from tests.model import synth

# MTCNN's box for the astronaut's face in the 512 x 512 photo at full resolution.
# Detection runs on a downscaled copy, so boxes may differ by a few pixels (~10%).
ASTRONAUT_BOX = (182, 64, 83, 107)
TOLERANCE = 9


def _close(box, expected, tolerance):
    return all(abs(a - b) <= tolerance for a, b in zip(box, expected, strict=True))


def test_detects_the_astronaut_face(detector):
    [faces] = detector.detect([synth.astronaut()])
    assert len(faces) == 1
    face = faces[0]
    assert _close(face.box, ASTRONAUT_BOX, TOLERANCE)
    assert face.confidence > 0.99
    # Plain Python numbers (JSON-safe), keypoints inside the box, eyes above the mouth.
    assert all(type(v) is int for v in face.box)
    assert type(face.confidence) is float
    x, y, w, h = face.box
    for px, py in face.keypoints.values():
        assert type(px) is int and type(py) is int
        assert x <= px <= x + w and y <= py <= y + h
    assert face.keypoints["left_eye"][1] < face.keypoints["mouth_left"][1]


def test_large_frames_are_downscaled_and_boxes_mapped_back(detector):
    big = cv2.resize(synth.astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)
    small_detector = FaceDetector(max_side=512)  # detection runs at 1/3 scale
    small_detector._mtcnn = detector._model()  # share the loaded networks
    [faces] = small_detector.detect([big])
    assert len(faces) == 1
    expected = tuple(3 * v for v in ASTRONAUT_BOX)
    assert _close(faces[0].box, expected, 3 * TOLERANCE)


def test_detection_scale():
    detector = FaceDetector(max_side=960, min_size=40)
    assert detector.detection_scale(720, 1280) == 0.6  # 40 px faces -> 24 px
    assert detector.detection_scale(2160, 3840) == 0.25  # 4K: capped at 960 px
    assert FaceDetector(min_size=10).detection_scale(360, 640) == 1.0  # never upscaled


def test_batch_keeps_frame_order_and_empty_frames(detector):
    photo = synth.astronaut()
    blank = synth.background(512, 512)
    result = detector.detect([blank, photo, blank, photo])
    assert [len(f) for f in result] == [0, 1, 0, 1]
    assert result[1][0].box == result[3][0].box


def test_mixed_frame_sizes(detector):
    photo = synth.astronaut()
    wide = synth.background(800, 400)
    wide[50:290, 100:310] = synth.head_patch()
    result = detector.detect([photo, wide])
    assert len(result[0]) == 1 and len(result[1]) == 1
    x, y, _, _ = result[1][0].box
    assert 100 <= x <= 310 and 50 <= y <= 290  # box is in the wide frame's own coordinates


def test_minimum_size_and_confidence_filters(detector):
    photo = synth.astronaut()
    strict = FaceDetector(min_size=120)
    strict._mtcnn = detector._model()
    assert strict.detect([photo]) == [[]]  # the face is 83 px wide
    tiny = cv2.resize(photo, (128, 128), interpolation=cv2.INTER_AREA)  # face ~21 px
    assert detector.detect([tiny]) == [[]]
    with pytest.raises(ValueError):
        FaceDetector(min_confidence=1.5)


def _face(x, y, w, h):
    return Face(box=(x, y, w, h), confidence=1.0, keypoints={})


def test_crop_is_square_centred_with_margin():
    left, top, side = crop_box(_face(100, 100, 80, 100), margin=0.3)
    assert side == 130  # longer side 100, +30 %
    assert (left + side / 2, top + side / 2) == (140, 150)  # centred on the box


def test_crop_face_size_dtype_and_content():
    frame = np.zeros((300, 300, 3), dtype=np.uint8)
    frame[100:200, 100:200] = (10, 200, 30)
    crop = crop_face(frame, _face(100, 100, 100, 100), size=64, margin=0.3)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    centre = crop[24:40, 24:40].reshape(-1, 3).mean(axis=0)
    assert np.allclose(centre, (10, 200, 30), atol=2)


def test_crop_face_pads_outside_the_frame_with_black():
    frame = np.full((200, 200, 3), 255, dtype=np.uint8)
    crop = crop_face(frame, _face(0, 0, 100, 100), size=130, margin=0.3)
    # The square reaches 15 px past the top and left edges: those pixels are black,
    # and the face stays centred (no shifting of the crop window).
    assert crop[:12, :, :].max() == 0 and crop[:, :12, :].max() == 0
    assert crop[20:, 20:].min() == 255


def test_crop_face_on_a_detected_face(detector):
    photo = synth.astronaut()
    [[face]] = detector.detect([photo])
    crop = crop_face(photo, face, size=96)
    assert crop.shape == (96, 96, 3)
    [[again]] = detector.detect([cv2.resize(crop, (192, 192))])  # the crop still holds a face
    assert again.confidence > 0.95


def _detect_video_recording_sizes(detector, frames, calls=None):
    """``detector.detect_video(frames)``, and the (height, width) of every image MTCNN saw;
    ``calls``, when given, gets each MTCNN call's list of those sizes."""
    seen: list[tuple[int, int]] = []
    mtcnn = detector._model()
    original = mtcnn.detect_faces

    def recording(images, **kwargs):
        seen.extend(image.shape[:2] for image in images)
        if calls is not None:
            calls.append([image.shape[:2] for image in images])
        return original(images, **kwargs)

    mtcnn.detect_faces = recording
    try:
        return detector.detect_video(frames), seen
    finally:
        del mtcnn.detect_faces


def test_detect_video_detects_each_probe_alone_as_the_scanner_does_while_decoding(detector):
    """The scanner detects its probe frames one at a time as they decode; ``detect_video``
    (the training cache, ``find-bot evaluate``, already decoded frames) must find the very
    same boxes, and MTCNN run on a batch of frames puts a box a pixel from where it puts it
    alone -- which moved a video score by 0.007 between evaluation and scan.  So every
    whole-frame probe goes to MTCNN alone, and streaming gives ``detect_video``'s faces."""
    head = synth.astronaut()[0:300, 100:380]
    big = cv2.resize(head, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(25):  # probes 0, 8, 16, 24
        frame = synth.background(1280, 720)
        frame[60 : 60 + big.shape[0], 80 + 6 * i : 80 + 6 * i + big.shape[1]] = big
        frames.append(frame)
    calls: list[list[tuple[int, int]]] = []
    batched, _seen = _detect_video_recording_sizes(detector, frames, calls)
    probe_calls = [call for call in calls if (432, 768) in call]
    assert probe_calls == [[(432, 768)]] * 4
    follower = detector.follow_video()
    for frame in frames:
        follower.add(frame)
    assert follower.finish() == batched


def test_detect_video_probes_whole_frames_and_follows_faces_in_small_windows(detector):
    """Issue 19 item 4: between the probes, a face is looked for only in a small window
    around where the probes saw it; a frame is detected whole where that cannot work --
    the face left the picture (an empty window), or the picture changed as at a cut
    (a jump across the frame; another shot with a second, smaller person the probes
    never see)."""
    head = synth.astronaut()[0:300, 100:380]
    big = cv2.resize(head, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)  # face ~170 px
    small = cv2.resize(head, None, fx=1.1, fy=1.1, interpolation=cv2.INTER_AREA)  # face ~90 px
    frames = []
    for i in range(12):
        frame = synth.background(1280, 720)
        if i == 5:  # a cut: another shot (darker), the person elsewhere and someone else
            frame //= 3
            frame[380 : 380 + small.shape[0], 100 : 100 + small.shape[1]] = small
        x = 700 if i in (3, 5) else 80  # frame 3: the person jumped across the picture
        if i != 7:  # frame 7: the person left the picture
            frame[60 : 60 + big.shape[0], x : x + big.shape[1]] = big
        frames.append(frame)
    fast, seen = _detect_video_recording_sizes(detector, frames)
    full = detector.detect(frames)
    assert [len(f) for f in fast] == [len(f) for f in full] == [1] * 5 + [2] + [1] + [0] + [1] * 4
    for a, b in zip(fast, full, strict=True):
        ordered = zip(sorted(a, key=lambda f: f.box), sorted(b, key=lambda f: f.box), strict=True)
        for fa, fb in ordered:
            assert _close(fa.box, fb.box, 0.1 * fb.box[2])
    # 3 probes (frames 0, 8 and the last) whole at 768x432; the 7 frames of the probes' shot
    # followed in one 192 px window each; whole, on smaller images: frame 7 (its window came
    # back empty), frames 3 and 5 (the picture changed as much as at a cut).
    assert seen.count((432, 768)) == 3
    assert seen.count((192, 192)) == 7
    others = [shape for shape in seen if shape not in ((432, 768), (192, 192))]
    assert len(others) == 3 and all(h * w < 0.4 * 432 * 768 for h, w in others)


def test_a_person_walking_across_the_picture_is_followed_in_one_window(detector):
    """Issue 19 item 4: when both probes of a stretch saw the same person (about as large,
    a few face sizes apart), each frame between is searched in one window where the two
    sightings interpolate to -- not two, and no frame falls back to a whole-frame search."""
    head = synth.astronaut()[0:300, 100:380]
    small = cv2.resize(head, None, fx=1.1, fy=1.1, interpolation=cv2.INTER_AREA)  # face ~90 px
    frames = []
    for i in range(17):  # probes 0, 8, 16
        frame = synth.background(1280, 720)
        x = 60 + 30 * i
        frame[200 : 200 + small.shape[0], x : x + small.shape[1]] = small
        frames.append(frame)
    fast, seen = _detect_video_recording_sizes(detector, frames)
    full = detector.detect(frames)
    assert [len(f) for f in fast] == [len(f) for f in full] == [1] * 17
    for [a], [b] in zip(fast, full, strict=True):  # MTCNN's box at another scale: ~10 % apart
        assert _close(a.box, b.box, 0.15 * b.box[2])
    assert seen.count((192, 192)) == 14  # one window for each frame between the probes
    assert len(seen) == 3 + 14  # the probes, and nothing detected whole
