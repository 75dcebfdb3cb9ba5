"""Database rows for tests that need an analysed video but not what the analysis found."""

from __future__ import annotations

from typing import Any

from bot.store import Analysis, Video


def analysis_of(video: Video, **fields: Any) -> Analysis:
    """A minimal analysis of ``video`` (flushed already: it needs the id) in the contract's format.

    One frame, one face, no tracks or timings, the video's own score and verdict at
    threshold 0.5; ``fields`` override any column (``crops``, ``created_at``...).
    """
    values: dict[str, Any] = {
        "video_id": video.id,
        "bundle_id": "b",
        "bundle_version": "1",
        "frames_requested": 1,
        "frames_decoded": 1,
        "faces": 1,
        "tracks": 1,
        "scores": {},
        "video_score": video.score,
        "threshold": 0.5,
        "verdict": video.verdict,
        "timings": {},
        "crops": [],
    }
    return Analysis(**{**values, **fields})
