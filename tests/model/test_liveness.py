"""Live and static faces: a picture in the scene never decides a video's verdict (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.frames import sample_frames
from model.liveness import is_static, track_motion
from model.tracks import build_tracks, merge_split_tracks
from tests.model import synth


@pytest.fixture(scope="module")
def live_and_still(tmp_path_factory) -> Path:
    return synth.live_and_still_video(tmp_path_factory.mktemp("live") / "live_still.mp4")


def test_talking_face_is_live_and_pinned_photo_is_static(live_and_still, detector):
    sample = sample_frames(live_and_still, 16)
    tracks = merge_split_tracks(build_tracks(detector.detect_video(sample.frames)))
    assert len(tracks) == 2
    by_side = sorted(tracks, key=lambda t: t.faces[0].box[0])
    motions = [track_motion(sample.frames, t.frame_positions, t.faces) for t in by_side]
    assert not is_static(motions[0]), motions
    assert is_static(motions[1]), motions


def test_static_track_never_outranks_the_live_one(live_and_still, tiny_bundle, detector):
    from model.scoring import VideoScorer

    result = VideoScorer(tiny_bundle, detector=detector, frames=16).score_path(live_and_still)
    assert [t["static"] for t in result.tracks] == [False, True]  # live first
    live = result.tracks[0]
    assert result.score == pytest.approx(live["score"], abs=1e-6)
    assert not result.static_only
    assert result.to_dict()["tracks"][1]["static"] is True
    assert set(result.to_dict()["tracks"][1]) >= {"motion", "mouth_motion", "static"}
    assert result.evidence_crops[0][0] == live["track_id"]  # the first evidence is the person


def test_only_still_pictures_are_scored_like_an_image(tmp_path, tiny_bundle, detector):
    from model.scoring import VideoScorer

    # one photo shown as a video (a slideshow of one picture)
    frame = synth.background(640, 360)
    head = synth.head_patch()
    frame[60 : 60 + head.shape[0], 30 : 30 + head.shape[1]] = head
    video = synth.write_video(tmp_path / "still.mp4", [frame] * 48)
    result = VideoScorer(tiny_bundle, detector=detector, frames=16).score_path(video)
    assert result.static_only and result.to_dict()["static_only"] is True
    assert result.score == pytest.approx(result.tracks[0]["score"], abs=1e-6)


def test_a_split_photo_track_is_merged_back():
    from model.faces import Face

    face = Face((100, 100, 80, 100), 0.99, {})
    moved = Face((104, 98, 80, 100), 0.99, {})
    detections = [[face], [face]] + [[]] * 6 + [[moved], [moved]]
    assert len(build_tracks(detections)) == 2  # the gap rule closes the first track
    merged = merge_split_tracks(build_tracks(detections))
    assert len(merged) == 1 and merged[0].frame_positions == [0, 1, 8, 9]


def test_scan_of_a_missing_file_answers_before_tensorflow_loads(tmp_path):
    """Issue 19 item 5: a missing file is reported without loading TensorFlow or the model."""
    import subprocess
    import sys
    import time

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    code = (
        "import sys; from bot.cli import main; rc = main(['scan', '--bundle', sys.argv[1], "
        "sys.argv[2]]); print('tf' if 'tensorflow' in sys.modules else 'no-tf'); sys.exit(rc)"
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(bundle), str(tmp_path / "nope.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "nope.mp4: no such file" in done.stderr
    assert done.stdout.strip().endswith("no-tf")
    assert time.perf_counter() - start < 60  # loaded machine; without TF it is < 1 s idle


def _shared_clip(relative: str) -> Path:
    from model.training.datasets import has_shared_data, shared_data_dir

    if not has_shared_data():
        pytest.skip(f"real face data not found at {shared_data_dir()} (see ../shared/README.md)")
    return shared_data_dir() / relative


def test_dfdc_wall_photo_is_static_and_the_speaker_decides(tiny_bundle, detector):
    """The framed photo behind the speaker in DFDC yhffcuhhjy (it outscored the swapped
    speaker, 0.961 against 0.579) is one static track; the top track is the speaker."""
    from model.scoring import VideoScorer

    clip = _shared_clip("dfdc-videos/yhffcuhhjy.mp4")
    result = VideoScorer(tiny_bundle, detector=detector).score_path(clip)
    assert len(result.tracks) == 2, [(t["faces"], t["top_frames"][0]["box"]) for t in result.tracks]
    speaker, photo = result.tracks
    assert not speaker["static"] and photo["static"]
    assert speaker["top_frames"][0]["box"][2] > 2 * photo["top_frames"][0]["box"][2]  # bigger
    assert result.score == pytest.approx(speaker["score"], abs=1e-6)
    assert not result.static_only


@pytest.mark.parametrize("clip", ["grid/grid_sbwe5n/sbwe5n.mpg", "grid/grid_lwbsza/lwbsza.mpg"])
def test_still_grid_speakers_are_live(clip, detector):
    """GRID speakers barely move their heads (the stillest real faces we have) but talk."""
    path = _shared_clip(f"real-videos/{clip}")
    sample = sample_frames(path, 32)
    tracks = merge_split_tracks(build_tracks(detector.detect_video(sample.frames)))
    assert len(tracks) == 1
    motion = track_motion(sample.frames, tracks[0].frame_positions, tracks[0].faces)
    assert not is_static(motion), motion
