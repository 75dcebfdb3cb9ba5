"""Evaluation of real videos: frames sampled, faces detected, tracks scored as the scanner does."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from model.bundle import load_bundle, write_bundle
from model.classifier import ArchSpec, build_classifier
from model.scoring import VideoScorer
from model.training.evaluate import evaluate

pytestmark = pytest.mark.slow

TINY_SPEC = ArchSpec("xception_compact", 64, 0.0625, 0)


def write_video(path, frames: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    face = astronaut()[:320, 60:380]  # the astronaut's face and shoulders
    frames = [np.roll(face, shift, axis=1) for shift in range(0, 24, 4)]
    write_video(root / "real" / "astronaut.mp4", frames)
    write_video(root / "fake" / "mirrored.mp4", [f[:, ::-1].copy() for f in frames])
    write_video(root / "fake" / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 4)
    (root / "real" / "stills").mkdir()
    for i in (0, 1):  # two stills of one video: one video-level sample
        cv2.imwrite(
            str(root / "real" / "stills" / f"{i}.png"), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR)
        )
    return root


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bundle")
    models = [build_classifier(TINY_SPEC, seed=s) for s in (0, 1)]
    write_bundle(
        directory,
        models,
        TINY_SPEC,
        threshold=0.5,
        temperature=2.0,
        name="tiny",
        version="test",
        training={},
        metrics={},
    )
    return load_bundle(directory)


def test_video_scores_match_the_scanner(video_dataset, bundle, tmp_path):
    report = evaluate(bundle.path, str(video_dataset), tmp_path, frames=6, verbose=0)
    assert [s["key"] for s in report["skipped"]] == ["folder:fake/blank.mp4"]
    assert report["video_level"]["n"] == 3
    assert report["frame_level"]["n"] == 14  # 6 frames x 2 videos + 2 stills, one face each
    scorer = VideoScorer(bundle, frames=6)
    for video in report["videos"]:
        if video["video_id"] == "real/stills":
            continue
        kind = "real" if video["label"] == 0 else "fake"
        path = next((video_dataset / kind).glob(f"{video['video_id'].split('/')[1]}.mp4"))
        expected = scorer.score_path(path).score
        assert video["score"] == pytest.approx(expected, abs=1e-5)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["video_level"] == report["video_level"]
    by_source = saved["video_by_source"]
    assert {name: row["videos"] for name, row in by_source.items()} == {
        "fake/folder": 1,
        "real/folder": 2,
    }
    flagged = sum(v["score"] >= report["threshold"] for v in report["videos"] if v["label"])
    assert by_source["fake/folder"]["flagged"] == flagged


def test_a_track_split_by_the_gap_rule_is_scored_whole_as_the_scanner_does():
    """A face missed for more frames than the gap rule allows comes back as a second track;
    the scanner joins the two (``merge_split_tracks``) and so must the evaluation, or one
    strong part would score the video alone."""
    from pathlib import Path

    from model.training.cache import CachedFace, CacheItem
    from model.training.datasets import Sample
    from model.training.evaluate import _video_score

    box = (100, 100, 200, 200)
    seen = [0, 1, 2, 10, 11, 12]  # missing for 7 sampled frames: beyond MAX_GAP
    faces = [
        CachedFace(frame_index=f, box=box, confidence=0.99, keypoints=np.zeros((5, 2)),
                   largest=True)
        for f in seen
    ]  # fmt: skip
    sample = Sample(
        key="folder:real/a.mp4", path=Path("/x/a.mp4"), label=0, media="video",
        video_id="real/a", identities=("folder:a",), dataset="folder",
    )  # fmt: skip
    item = CacheItem(sample, "ok", Path("/x"), faces, sampled_frames=list(range(13)))
    probabilities = np.array([0.9, 0.9, 0.9, 0.6, 0.6, 0.6])
    # One track of six faces: the top-5 mean is (3 x 0.9 + 2 x 0.6) / 5, not the first part's 0.9.
    assert _video_score([(item, probabilities)]) == pytest.approx(0.78)
