"""End-to-end scoring of synthetic videos and images with the tiny bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.frames import FrameSample
from model.scoring import VideoScorer, top_k_mean


@pytest.fixture(scope="module")
def scorer(tiny_bundle, detector):
    return VideoScorer(tiny_bundle, detector=detector, frames=6)


def test_top_k_mean():
    assert top_k_mean([0.1, 0.9, 0.5, 0.7], k=2) == pytest.approx(0.8)
    assert top_k_mean([0.3], k=5) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        top_k_mean([])


def test_one_face_video(scorer, media_dir, tiny_bundle):
    result = scorer.score_path(media_dir / "one_face.mp4")
    assert result.verdict in ("fake", "real") and result.error is None
    assert (result.frames_requested, result.frames_decoded) == (6, 6)
    assert result.faces == 6 and len(result.tracks) == 1
    track = result.tracks[0]
    assert track["faces"] == 6
    # Track score is the top-5 mean of its face scores; the video score is the track's.
    face_scores = sorted((f["score"] for f in track["top_frames"]), reverse=True)
    assert result.score == pytest.approx(track["score"])
    assert track["score"] == pytest.approx(np.mean(face_scores[:5]), abs=1e-5)
    assert result.verdict == ("fake" if result.score >= 0.5 else "real")
    # The evidence: the frames that drove the score, with crops at the model's input size.
    top = track["top_frames"][0]
    assert top["frame_index"] in range(48) and len(top["box"]) == 4
    assert top["timestamp_s"] == pytest.approx(top["frame_index"] / 24.0, abs=1e-3)
    assert len(result.evidence_crops) == 3
    track_id, frame_index, crop = result.evidence_crops[0]
    assert (track_id, frame_index) == (track["track_id"], top["frame_index"])
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert set(result.timings) == {"decode_s", "decode_wait_s", "detect_s", "classify_s", "total_s"}
    assert (result.bundle_id, result.bundle_version) == (tiny_bundle.id, tiny_bundle.version)


def test_result_dict_is_json_safe(scorer, media_dir):
    data = scorer.score_path(media_dir / "two_faces.mp4").to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["evidence"] and "evidence_crops" not in data


def test_two_people_are_judged_separately(scorer, media_dir):
    result = scorer.score_path(media_dir / "two_faces.mp4")
    assert len(result.tracks) == 2 and result.faces == 12
    assert all(t["faces"] == 6 for t in result.tracks)
    # Each track's boxes stay on its own side of the frame (no identity swaps).
    for track in result.tracks:
        xs = {f["box"][0] < 320 for f in track["top_frames"]}
        assert len(xs) == 1
    # The video score is the maximum over tracks, and tracks are listed best first.
    best = max(t["score"] for t in result.tracks)
    assert best == result.tracks[0]["score"]
    assert result.score == pytest.approx(best, abs=1e-6)  # track scores are rounded to 1e-6


def test_no_face_video(scorer, media_dir):
    result = scorer.score_path(media_dir / "no_face.mp4")
    assert result.verdict == "no_face" and result.score is None
    assert result.frames_decoded == 6 and result.faces == 0 and result.tracks == []


def test_corrupt_and_missing_files_are_errors_not_exceptions(scorer, media_dir):
    for name in ("corrupt.mp4", "missing.mp4"):
        result = scorer.score_path(media_dir / name)
        assert result.verdict == "error" and result.score is None
        assert name in result.error and "\n" not in result.error
        assert result.frames_decoded == 0 and result.frames_requested == 6
        json.dumps(result.to_dict())


def test_faces_detected_while_the_video_decodes_are_those_found_afterwards(scorer, media_dir):
    """Issue 19 item 3: score_path detects faces while the later frames still decode;
    the verdict, tracks and boxes are those of detecting the finished sample, and scoring
    waited for decoding no longer than the decoding took."""
    from model.frames import sample_frames

    path = media_dir / "two_faces.mp4"
    overlapped = scorer.score_path(path)
    afterwards = scorer.score_sample(path, "video", sample_frames(path, scorer.frames))
    assert overlapped.to_dict()["tracks"] == afterwards.to_dict()["tracks"]
    assert overlapped.score == pytest.approx(afterwards.score)
    assert len(scorer._load_following(path).faces) == 6  # detected while it decoded
    timings = overlapped.timings
    assert 0.0 <= timings["decode_wait_s"] <= timings["decode_s"] + 0.05
    stages = timings["decode_wait_s"] + timings["detect_s"] + timings["classify_s"]
    assert timings["total_s"] == pytest.approx(stages)


def test_images_are_scored_too(scorer, media_dir):
    result = scorer.score_path(media_dir / "astronaut.png")
    assert result.kind == "image" and result.frames_decoded == 1
    assert result.faces == 1 and result.verdict in ("fake", "real")


def test_threshold_override(tiny_bundle, detector, media_dir):
    low = VideoScorer(tiny_bundle, detector=detector, frames=4, threshold=0.0)
    high = VideoScorer(tiny_bundle, detector=detector, frames=4, threshold=1.0)
    path = media_dir / "one_face.mp4"
    assert low.score_path(path).verdict == "fake"
    assert high.score_path(path).verdict == "real"
    assert VideoScorer(tiny_bundle, detector=detector).threshold == tiny_bundle.threshold
    with pytest.raises(ValueError, match="threshold"):
        VideoScorer(tiny_bundle, detector=detector, threshold=2.0)


def test_score_sample_of_decoded_frames(scorer):
    from tests.model import synth

    photo = synth.astronaut()
    moved = np.roll(photo, 20, axis=1)  # the same person, 20 px to the right
    sample = FrameSample([photo, moved], [10, 20], [1.0, 2.0], 2, 2, 10.0, 30)
    result = scorer.score_sample("in-memory", "video", sample)
    assert result.faces == 2 and len(result.tracks) == 1  # one person, two faces
    assert {f["frame_index"] for f in result.tracks[0]["top_frames"]} == {10, 20}


def test_a_truncated_video_is_a_partial_verdict(tiny_bundle, detector, tmp_path):
    """2 of 32 frames decoded: the verdict is kept, but marked partial everywhere."""
    from model.scoring import MIN_DECODED_FRACTION
    from tests.fakes.damaged_media import truncated_face_video

    path = truncated_face_video(tmp_path / "cut.avi", keep=0.1)
    result = VideoScorer(tiny_bundle, detector=detector, frames=32).score_path(path)
    assert result.verdict in ("fake", "real") and result.faces >= 1
    assert result.frames_decoded < MIN_DECODED_FRACTION * 32 and result.frames_failed > 0
    assert result.partial and result.to_dict()["partial"] is True


def test_a_cut_faststart_download_is_partial_though_most_frames_decode(
    tiny_bundle_dir, tiny_bundle, detector, tmp_path, capsys, monkeypatch
):
    """Issue 30 item 5: 21 of 32 frames decode from a faststart MP4 cut at 70 % (more than
    half), but the file ends before its header says: the verdict is partial all the same,
    and `scan` warns and exits 1."""
    from bot.cli import main
    from tests.fakes.damaged_media import truncated_faststart_video

    path = truncated_faststart_video(tmp_path / "cut.mp4", keep=0.7)
    result = VideoScorer(tiny_bundle, detector=detector, frames=32).score_path(path)
    assert result.verdict in ("fake", "real") and result.faces >= 1
    assert result.frames_decoded >= 16 and result.frames_failed > 0
    assert result.partial and result.to_dict()["partial"] is True
    assert result.truncated and result.to_dict()["truncated"] is True

    monkeypatch.setenv("FIND_DATA_DIR", str(tmp_path / "data"))
    assert main(["scan", "--bundle", str(tiny_bundle_dir), str(path)]) == 1
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert "partial" in warning and "ends before its container says" in warning


def test_full_and_short_videos_are_not_partial(scorer, media_dir, tiny_bundle, detector):
    """A video with fewer frames than asked for is complete: all that were tried decoded."""
    result = scorer.score_path(media_dir / "one_face.mp4")
    assert not result.partial and result.to_dict()["partial"] is False
    many = VideoScorer(tiny_bundle, detector=detector, frames=200)  # 48-frame video
    result = many.score_path(media_dir / "one_face.mp4")
    assert result.frames_decoded == 48 and result.frames_failed == 0 and not result.partial


def test_scan_warns_about_a_partial_verdict_and_exits_1(
    tiny_bundle_dir, media_dir, tmp_path, capsys, monkeypatch
):
    from bot.cli import main
    from tests.fakes.damaged_media import truncated_face_video

    monkeypatch.setenv("FIND_DATA_DIR", str(tmp_path / "data"))
    cut = truncated_face_video(tmp_path / "cut.avi", keep=0.1)
    code = main(
        ["scan", "--bundle", str(tiny_bundle_dir), str(cut), str(media_dir / "one_face.mp4")]
    )
    out, err = capsys.readouterr()
    assert code == 1
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert str(cut) in warning and "partial" in warning and "of 32 sampled frames" in warning
    [row] = [line for line in out.splitlines() if line.endswith(str(cut))]
    assert row.split()[0] in ("fake*", "real*")
    assert "(1 partial)" in out.splitlines()[-1]
    code = main(["scan", "--json", "--bundle", str(tiny_bundle_dir), str(cut)])
    assert code == 1 and json.loads(capsys.readouterr().out)["partial"] is True
