"""Review test data: real Video/Analysis rows (contract format) and real JPEG crops on disk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.db import session_factory
from bot.settings import Settings
from bot.store import Analysis, Video, utcnow

CHANNEL_A = "UC" + "a" * 22
CHANNEL_B = "UC" + "b" * 22


@dataclass(frozen=True)
class Seeded:
    youtube_id: str
    analysis_id: int
    crop_paths: list[Path]


def _face_jpeg(path: Path, shift: int = 0) -> None:
    """A small real JPEG: the astronaut's face, shifted so crops differ."""
    from PIL import Image
    from skimage import data

    image = data.astronaut()[30 + shift : 230 + shift, 140:340]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).resize((112, 112)).save(path, "JPEG", quality=85)


def seed_video(
    settings: Settings,
    youtube_id: str,
    *,
    score: float = 0.9,
    state: str = "flagged",
    channel: str = CHANNEL_A,
    title: str | None = None,
    tracks: int = 2,
    crops: int = 3,
    published_days_ago: float = 2.0,
    threshold: float = 0.5,
    partial: bool = False,
    static_tracks: tuple[int, ...] = (),
) -> Seeded:
    """Insert a video and one analysis in the contract's record format, with crops on disk."""
    sessions = session_factory(settings)
    now = utcnow()
    with sessions.begin() as session:
        video = Video(
            youtube_id=youtube_id,
            channel_youtube_id=channel,
            channel_title=f"Channel {channel[-1].upper()}",
            title=title or f"Video {youtube_id}",
            published_at=now - timedelta(days=published_days_ago),
            duration_s=60,
            state=state,
            score=score,
            verdict="fake" if score >= threshold else "real",
            media_path=f"videos/{youtube_id}.mp4",
        )
        session.add(video)
        session.flush()
        track_list = []
        for t in range(tracks):
            frames = [
                {
                    "frame": f,
                    "t": f * 2.0,
                    "score": max(0.0, min(1.0, score - 0.15 * t - 0.03 * ((f + t) % 3))),
                    "box": [10, 10, 80, 80],
                }
                for f in range(8)
            ]
            track_list.append(
                {
                    "track": t,
                    "score": max(x["score"] for x in frames),
                    "faces": 8,
                    "frames": frames,
                    "static": t in static_tracks,
                }
            )
        top = sorted(
            (
                {
                    "track": tr["track"],
                    "frame": fr["frame"],
                    "t": fr["t"],
                    "score": fr["score"],
                    "static": tr["static"],
                }
                for tr in track_list
                for fr in tr["frames"]
            ),
            key=lambda x: -x["score"],
        )[:crops]
        analysis = Analysis(
            video_id=video.id,
            bundle_id="find-xception",
            bundle_version="1.0.0",
            frames_requested=32,
            frames_decoded=2 if partial else 32,
            partial=partial,
            faces=8 * tracks,
            tracks=tracks,
            scores={"tracks": track_list, "top_frames": top},
            video_score=score,
            threshold=threshold,
            verdict=video.verdict,
            timings={"decode": 1.2, "detect": 3.4, "classify": 0.8, "total": 5.4},
            crops=[],
            worker="test-worker",
        )
        session.add(analysis)
        session.flush()
        crop_rows, paths = [], []
        for i, t in enumerate(top):
            rel = f"crops/{youtube_id}/{analysis.id}-t{t['track']}-f{t['frame']}.jpg"
            _face_jpeg(settings.media_dir / rel, shift=i * 7)
            paths.append(settings.media_dir / rel)
            crop_rows.append({"path": rel, **t})
        analysis.crops = crop_rows
        analysis_id = analysis.id
    return Seeded(youtube_id=youtube_id, analysis_id=analysis_id, crop_paths=paths)


@pytest.fixture
def seeded(settings: Settings) -> list[Seeded]:
    """Three flagged videos on two channels, one below-threshold analysed video."""
    return [
        seed_video(settings, "vidAAAAAAA1", score=0.95),
        seed_video(settings, "vidBBBBBBB2", score=0.72, channel=CHANNEL_B, published_days_ago=20),
        seed_video(settings, "vidCCCCCCC3", score=0.81),
        seed_video(settings, "vidDDDDDDD4", score=0.2, state="analysed"),
    ]


from tests.fakes.fixtures import (  # noqa: E402, F401 - fixtures for the declaration test
    fake_youtube,
    media_server,
    sample_videos,
    sqlite_ingestion,
)
