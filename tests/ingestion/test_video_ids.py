"""Video ids are checked where they enter FIND (issue 21, item 12).

A lying Data API (``FIND_YOUTUBE_API_ENDPOINT`` pointed at a proxy) answers with
``../../pwnd1`` and an id carrying an ESC sequence: neither is stored, neither
reaches a file name, and each is skipped with one sanitised log line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.queue import WorkQueue, run_one
from bot.stages.discover import discover_once
from bot.stages.discover.watchlist import sync_watchlist
from bot.stages.download import make_download_handler
from bot.store import Video, VideoState
from bot.youtube.ids import is_video_id

TRAVERSAL = "../../pwnd1"
ESCAPE = "\x1b[31mabcdef"  # 11 characters, one of them ESC


def test_is_video_id_takes_exactly_eleven_safe_characters() -> None:
    assert is_video_id("dQw4w9WgXcQ") and is_video_id("a-b_c-d_e-f")
    for bad in (TRAVERSAL, ESCAPE, "dQw4w9WgXcQ\n", "short", "dQw4w9WgXcQx", 12345678901, None):
        assert not is_video_id(bad), bad


def test_invalid_ids_from_the_data_api_are_skipped_with_one_clean_line(
    sqlite_ingestion, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    ing = sqlite_ingestion
    channel = ing.channel("Liar")
    good = ing.upload(channel, serve=False, title="deepfake one")
    for bad in (TRAVERSAL, ESCAPE):
        ing.upload(channel, serve=False, video_id=bad, title="deepfake bad")
    settings = ing.settings(CHANNELS=channel.id, SEARCH_QUERIES="deepfake")
    with session_scope(settings) as session:
        sync_watchlist(settings, session)
    with caplog.at_level(logging.WARNING, logger="find"):
        discover_once(settings, ing.client(settings))
    with session_factory(settings)() as session:
        stored = set(session.scalars(select(Video.youtube_id)))
    assert stored == {good.id}
    lines = [r for r in caplog.records if r.getMessage() == "youtube.invalid_video_id"]
    # once from the uploads playlist and once from search.list, for each bad id
    assert len(lines) == 4, [r.__dict__.get("video_id") for r in lines]
    for record in lines:
        assert "\x1b" not in record.video_id and record.video_id in (TRAVERSAL, "??31mabcdef")
    assert not (settings.media_dir.parent.parent / "pwnd1.mp4").exists()


def test_a_stored_invalid_id_is_never_downloaded(sqlite_ingestion, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Rows stored before the check: skipped for good, nothing written outside the media dir."""
    ing = sqlite_ingestion
    settings = ing.settings()
    with session_scope(settings) as session:
        session.add(Video(youtube_id=TRAVERSAL, title="t", discovered_via="test"))
    queue = WorkQueue(session_factory(settings), lease_s=60)
    run_one(queue, "download", "w", make_download_handler(settings))
    with session_factory(settings)() as session:
        video = session.scalars(select(Video)).one()
    assert (video.state, video.last_error_kind) == (VideoState.SKIPPED.value, "invalid_id")
    assert "not a YouTube video id" in video.last_error
    assert not any(settings.media_dir.parent.parent.rglob("pwnd1*"))
