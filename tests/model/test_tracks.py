"""Grouping detections into per-person tracks."""

from __future__ import annotations

from model.faces import Face
from model.tracks import build_tracks, centre_distance, iou


def face(x, y, w=80, h=100):
    return Face(box=(x, y, w, h), confidence=0.99, keypoints={})


def test_iou_and_centre_distance():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 10, 10)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9
    assert centre_distance((0, 0, 10, 10), (10, 0, 10, 10)) == 1.0


def test_two_people_moving_become_two_tracks():
    frames = [[face(100 + 30 * i, 100), face(600 - 30 * i, 120)] for i in range(6)]
    tracks = build_tracks(frames)
    assert len(tracks) == 2
    left, right = tracks
    assert [f.box[0] for f in left.faces] == [100 + 30 * i for i in range(6)]
    assert [f.box[0] for f in right.faces] == [600 - 30 * i for i in range(6)]
    assert left.frame_positions == list(range(6))


def test_detection_order_within_a_frame_does_not_matter():
    frames = [[face(100, 100), face(500, 100)], [face(505, 100), face(102, 100)]]
    tracks = build_tracks(frames)
    assert [[f.box[0] for f in t.faces] for t in tracks] == [[100, 102], [500, 505]]


def test_missed_detections_within_the_gap_keep_the_track():
    frames = [[face(100, 100)], [], [], [face(110, 100)]]
    tracks = build_tracks(frames, max_gap=4)
    assert len(tracks) == 1 and tracks[0].frame_positions == [0, 3]


def test_long_absence_starts_a_new_track():
    frames = [[face(100, 100)], [], [], [], [], [], [face(100, 100)]]
    assert len(build_tracks(frames, max_gap=4)) == 2


def test_far_jump_is_a_different_person():
    frames = [[face(100, 100)], [face(400, 100)]]
    assert len(build_tracks(frames)) == 2


def test_no_detections():
    assert build_tracks([[], [], []]) == []
