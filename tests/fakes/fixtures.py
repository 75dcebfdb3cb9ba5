"""Pytest fixtures for the fake YouTube Data API and media server.

Use them from any test directory by importing the fixtures into its conftest::

    from tests.fakes.fixtures import (  # noqa: F401
        fake_youtube, ingestion, media_server, sample_videos, sqlite_ingestion,
    )

``ingestion`` is the one most tests want: both servers running, a migrated
database on each backend (it builds on the ``settings`` fixture), and helpers
to upload a video (API metadata + a real mp4 on the media server) and to build
settings and clients pointed at the fakes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.settings import Settings
from tests.conftest import make_settings
from tests.fakes.media_server import MediaServer, make_mp4
from tests.fakes.youtube_api import (
    VALID_KEY,
    FakeChannel,
    FakeVideo,
    FakeYouTubeServer,
    FakeYouTubeState,
)

if TYPE_CHECKING:
    from bot.youtube.client import YouTubeClient


@pytest.fixture
def fake_youtube() -> Iterator[FakeYouTubeServer]:
    """A running fake Data API server; edit ``fake_youtube.state`` to set the scene."""
    with FakeYouTubeServer() as server:
        yield server


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    """A running local media server; register files with ``media_server.state.add``."""
    with MediaServer() as server:
        yield server


@pytest.fixture(scope="session")
def sample_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real H.264 mp4 files, made once per session: ``short`` (2 s) and ``long`` (12 s)."""
    folder = tmp_path_factory.mktemp("sample-videos")
    return {
        "short": make_mp4(folder / "short.mp4", seconds=2),
        "long": make_mp4(folder / "long.mp4", seconds=12),
    }


class Ingestion:
    """Both fakes plus a migrated database, and shortcuts to drive them."""

    def __init__(
        self,
        base: Settings,
        tmp_path: Path,
        api: FakeYouTubeServer,
        media: MediaServer,
        samples: dict[str, Path],
    ) -> None:
        self.base = base
        self.tmp_path = tmp_path
        self.api = api
        self.media = media
        self.samples = samples

    @property
    def youtube(self) -> FakeYouTubeState:
        return self.api.state

    def env(self, **env: str) -> dict[str, str]:
        """FIND_* variables pointing at the fakes and the test database."""
        values = {
            "FIND_DATABASE_URL": self.base.database_url,
            "FIND_YOUTUBE_API_KEY": VALID_KEY,
            "FIND_YOUTUBE_API_ENDPOINT": self.api.url,
            "FIND_MEDIA_URL_TEMPLATE": self.media.url_template,
            "FIND_MIN_FREE_DISK": "1M",
            "FIND_DOWNLOAD_RETRIES": "1",
            # Look new uploads up at once, so a single pass shows its result.
            "FIND_ENRICH_WAIT": "0",
            # Feeds are served by the fake too (nothing ever reaches youtube.com), but
            # tests read channels through the uploads playlist unless they ask for feeds
            # (CHANNEL_FEEDS="true"): most were written for it,
            # and it stays the fallback path.
            "FIND_FEED_URL_TEMPLATE": self.api.feed_url_template,
            "FIND_CHANNEL_FEEDS": "false",
        }
        values.update(
            {k if k.startswith("FIND_") else f"FIND_{k.upper()}": v for k, v in env.items()}
        )
        return values

    def settings(self, **env: str) -> Settings:
        return make_settings(self.tmp_path, **self.env(**env))

    def client(self, settings: Settings, **kwargs: Any) -> YouTubeClient:
        """A real client on the fake, with millisecond backoff so retry tests are fast."""
        from bot.stages.discover import make_client

        kwargs.setdefault("backoff_base_s", 0.01)
        return make_client(settings, **kwargs)

    def channel(self, title: str = "Channel", handle: str | None = None) -> FakeChannel:
        return self.youtube.add_channel(title, handle=handle)

    def upload(
        self,
        channel: FakeChannel,
        *,
        sample: str = "short",
        serve: bool = True,
        published_at: datetime | None = None,
        **kwargs: Any,
    ) -> FakeVideo:
        """Publish a video on the fake API and (unless ``serve=False``) its mp4 on the media
        server."""
        video = self.youtube.add_video(channel, published_at=published_at, **kwargs)
        if serve:
            self.media.state.add(f"{video.id}.mp4", self.samples[sample])
        return video


@pytest.fixture
def ingestion(
    settings: Settings,
    tmp_path: Path,
    fake_youtube: FakeYouTubeServer,
    media_server: MediaServer,
    sample_videos: dict[str, Path],
) -> Ingestion:
    """Fakes + migrated database, on SQLite and PostgreSQL."""
    return Ingestion(settings, tmp_path, fake_youtube, media_server, sample_videos)


@pytest.fixture
def sqlite_ingestion(
    sqlite_settings: Settings,
    tmp_path: Path,
    fake_youtube: FakeYouTubeServer,
    media_server: MediaServer,
    sample_videos: dict[str, Path],
) -> Ingestion:
    """Fakes + migrated SQLite database, for tests where the backend does not matter."""
    return Ingestion(sqlite_settings, tmp_path, fake_youtube, media_server, sample_videos)
