"""Faces too small to be evidence never decide a verdict on their own; every track records
what each ensemble member said about it, named by what the member learnt (issue 31 item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.bundle import member_names
from tests.model import synth

DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "model/bundles/default/manifest.json"


def _talking(patch: np.ndarray, i: int) -> np.ndarray:
    """The head turned a few degrees and its mouth at one of three openings: a live face."""
    h, w = patch.shape[:2]
    turned = cv2.warpAffine(
        patch,
        cv2.getRotationMatrix2D((w / 2, h / 2), 6.0 * np.sin(i * 1.3), 1.0),
        (w, h),
        borderMode=cv2.BORDER_REPLICATE,
    )
    mouth = (round(w * 0.49), round(h * 0.63))
    cv2.ellipse(turned, mouth, (round(w * 0.08), round(h * (3 + 9 * (i % 3)) / 240)), 0, 0, 360,
                (60, 20, 30), -1)  # fmt: skip
    return turned


@pytest.fixture(scope="module")
def two_sizes(tmp_path_factory) -> Path:
    """Two people talking: one head at full size (a ~155 px face square), one at half (~77 px)."""
    big = synth.head_patch()
    small = cv2.resize(synth.head_patch(flip=True), None, fx=0.5, fy=0.5,
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    frames = []
    for i in range(32):
        frame = synth.background(640, 360)
        for patch, (x, y) in ((big, (30, 60)), (small, (420, 120))):
            face = _talking(patch, i)
            frame[y : y + face.shape[0], x : x + face.shape[1]] = face
        frames.append(frame)
    return synth.write_video(tmp_path_factory.mktemp("sizes") / "two_sizes.mp4", frames, fps=2.0)


def _score(bundle, detector, path: Path, min_face_px: int):
    from model.scoring import VideoScorer

    scorer = VideoScorer(bundle, detector=detector, frames=16, threshold=0.4,
                         min_face_px=min_face_px)  # fmt: skip
    return scorer.score_path(path)


def test_a_small_face_is_shown_but_the_large_one_decides(two_sizes, tiny_bundle, detector):
    result = _score(tiny_bundle, detector, two_sizes, min_face_px=100)
    assert len(result.tracks) == 2
    large, small = result.tracks  # evidence order: faces large enough to count first
    assert large["face_px"] >= 100 > small["face_px"]
    assert small["small"] and small["small_faces"] == small["faces"]
    assert not large["small"] and not large["static"] and not small["static"]
    assert result.decisive_track == large["track_id"]
    assert result.score == pytest.approx(large["score"], abs=1e-6)
    assert result.evidence_crops[0][0] == large["track_id"]
    record = result.to_dict()
    assert record["min_face_px"] == 100 and record["decisive_track"] == large["track_id"]
    from bot.commands.scan import format_row

    assert "1 track(s) with faces smaller than 100 px (too small to be evidence)" in format_row(
        result
    )


def test_a_video_whose_faces_are_all_too_small_is_not_flagged(two_sizes, tiny_bundle, detector):
    """With every face below the limit the score would have flagged it (>= 0.4); now no
    face may decide: the video keeps its strongest track's score (it still ranks), its
    verdict is real, and the tracks are still listed as evidence."""
    result = _score(tiny_bundle, detector, two_sizes, min_face_px=400)
    assert result.verdict == "real" and result.score >= 0.4
    assert result.score == pytest.approx(max(t["score"] for t in result.tracks), abs=1e-6)
    assert result.small_only and result.decisive_track is None
    assert all(t["small"] and t["score"] >= 0.4 for t in result.tracks)
    assert result.evidence_crops  # still shown to a reviewer
    from bot.commands.scan import format_row

    row = format_row(result)
    assert "smaller than 400 px: too small to judge, ranked by its score but not flagged" in row


def test_each_track_records_every_members_score(two_sizes, tiny_bundle, detector):
    from bot.stages.analyse import scores_record

    result = _score(tiny_bundle, detector, two_sizes, min_face_px=100)
    assert result.members == ["xception_compact 64 px #1", "xception_compact 64 px #2"]
    for track in result.tracks:
        assert len(track["members"]) == 2
        # the tiny bundle averages its members: the track score is their mean
        assert np.mean(track["members"]) == pytest.approx(track["score"], abs=1e-5)
    record = scores_record(result)
    assert record["members"] == result.members and record["min_face_px"] == 100
    assert record["decisive"] == result.decisive_track and record["small_only"] is False
    assert [t["small"] for t in record["tracks"]] == [False, True]
    assert all(len(t["members"]) == 2 and t["face_px"] for t in record["tracks"])
    assert not record["top_frames"][0]["small"]  # faces that may decide come first


def test_the_default_bundle_names_its_members_by_what_they_learnt():
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    assert member_names(manifest) == [
        "self-blended images",
        "talking heads (self-blend, 160 px body)",
        "talking heads (self-blend, 224 px body)",
        "talking heads (DFDC body)",
        "talking heads (DFDC + SBI body)",
    ]
    # Without a description, the training mode names a member.
    plain = {**manifest, "models": [{k: v for k, v in m.items() if k != "description"}
                                    for m in manifest["models"]]}  # fmt: skip
    assert member_names(plain)[0] == "self-blended images"
    described = {**manifest, "models": [{**manifest["models"][0], "description": "lip sync"},
                                        *manifest["models"][1:]]}  # fmt: skip
    assert member_names(described)[0] == "lip sync"


def test_the_limit_is_the_bundles_input_unless_its_manifest_sets_one(
    two_sizes, tiny_bundle_dir, tiny_models, detector, tmp_path
):
    """A bundle written without ``min_face_px`` records its input size and the scanner uses
    it; a recipe that set it lower (a 224 px model trained on enlarged faces) is obeyed by the
    scanner and by ``find-bot evaluate``'s video rule alike."""
    from model.bundle import load_bundle, write_bundle
    from model.scoring import VideoScorer
    from tests.model.conftest import TINY

    plain = load_bundle(tiny_bundle_dir)
    assert plain.min_face_px == plain.input_size
    assert plain.manifest["preprocessing"]["crop"]["min_face_px"] == plain.input_size
    lower = load_bundle(
        write_bundle(
            tmp_path / "lower",
            tiny_models,
            TINY,
            threshold=0.4,
            name="t",
            version="1",
            training={},
            metrics={},
            min_face_px=100,
        )
    )
    assert lower.min_face_px == 100
    result = VideoScorer(lower, detector=detector, frames=16).score_path(two_sizes)
    assert result.min_face_px == 100 and not result.small_only
    assert [t["small"] for t in result.tracks] == [False, True]
    # Without the field (bundles written before it): the input size, as before.
    manifest_file = tmp_path / "lower" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["preprocessing"]["crop"]["min_face_px"]
    manifest_file.write_text(json.dumps(manifest))
    assert load_bundle(tmp_path / "lower").min_face_px == lower.input_size


def test_a_tracks_small_faces_count_only_when_it_has_no_large_one():
    """The one rule the scanner and ``find-bot evaluate`` share (model.scoring.counted_faces)."""
    from model.scoring import counted_faces

    counted, small = counted_faces(np.array([100, 170, 90, 160]), 160)
    assert counted.tolist() == [1, 3] and small is False
    counted, small = counted_faces(np.array([100, 120]), 160)
    assert counted.tolist() == [0, 1] and small is True
    # a whole-image crop (no box) is as large as can be
    counted, small = counted_faces(np.array([np.inf, 20]), 160)
    assert counted.tolist() == [0] and small is False
