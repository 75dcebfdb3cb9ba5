"""Watchlist sync: the database's active channels and queries follow the settings."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.stages.discover.watchlist import sync_watchlist
from bot.store import Channel, SearchQuery
from tests.conftest import make_settings
from tests.fakes.youtube_api import api_key

A = "UC" + "a" * 22
B = "UC" + "b" * 22


def _sync(tmp_path, base, **env):
    settings = make_settings(tmp_path, FIND_DATABASE_URL=base.database_url, **env)
    with session_scope(settings) as session:
        return sync_watchlist(settings, session)


def _active(settings) -> tuple[set[str], set[str]]:
    with session_factory(settings)() as session:
        channels = {c.configured_as for c in session.scalars(select(Channel)) if c.active}
        queries = {q.query for q in session.scalars(select(SearchQuery)) if q.active}
    return channels, queries


def test_sync_adds_removes_and_readds(settings, tmp_path) -> None:
    change = _sync(
        tmp_path,
        settings,
        CHANNELS=f"{A} https://www.youtube.com/@Someone",
        SEARCH_QUERIES="deepfake, interview|ai voice",
    )
    assert sorted(change.added_channels) == sorted([A, "@Someone"])
    assert change.added_queries == ["deepfake, interview", "ai voice"]
    assert _active(settings) == ({A, "@Someone"}, {"deepfake, interview", "ai voice"})

    with session_scope(settings) as session:  # learned state that must survive a removal
        row = session.scalars(select(Channel).where(Channel.configured_as == A)).one()
        row.youtube_id, row.last_seen_video_id = A, "lastseen001"

    change = _sync(tmp_path, settings, CHANNELS=B, SEARCH_QUERIES="ai voice")
    assert change.added_channels == [B]
    assert sorted(change.removed_channels) == sorted([A, "@Someone"])
    assert change.removed_queries == ["deepfake, interview"]
    assert _active(settings) == ({B}, {"ai voice"})

    change = _sync(tmp_path, settings, CHANNELS=f"{A},{B}", SEARCH_QUERIES="ai voice")
    assert change.added_channels == [A] and not change.removed_channels
    with session_factory(settings)() as session:
        row = session.scalars(select(Channel).where(Channel.configured_as == A)).one()
        assert row.active and row.last_seen_video_id == "lastseen001"  # resumes, not re-read

    change = _sync(tmp_path, settings, CHANNELS=f"{A},{B}", SEARCH_QUERIES="ai voice")
    assert not change.changed and str(change) == "watchlist unchanged"


def test_a_restart_without_the_settings_file_keeps_the_watchlist(settings, tmp_path) -> None:
    """The settings file is gone but FIND_YOUTUBE_API_KEY is still in the environment:
    the daemon must refuse to start rather than deactivate every channel and query."""
    from bot.errors import SettingsError
    from bot.service.daemon import Daemon, StartupError
    from bot.stages.discover import discover_once

    _sync(tmp_path, settings, CHANNELS=A, SEARCH_QUERIES="deepfake")
    bare = make_settings(
        tmp_path,
        FIND_DATABASE_URL=settings.database_url,
        YOUTUBE_API_KEY=api_key("KeyFromTheEnvironment"),
        DOWNLOAD_WORKERS="0",
        ANALYSE_WORKERS="0",
    )
    daemon = Daemon(bare, "scheduler")
    try:
        daemon.run()
    except StartupError as exc:
        message = str(exc)
    else:  # pragma: no cover - the assertion below explains
        message = ""
    assert "FIND_CHANNELS=none" in message and "1 channel(s) and 1 query(ies)" in message
    assert "\n" not in message and api_key("KeyFromTheEnvironment") not in message
    assert _active(settings) == ({A}, {"deepfake"})
    # A discover pass (find-bot poll, a standby taking over) is refused the same way.
    with pytest.raises(SettingsError, match="FIND_CHANNELS=none"):
        discover_once(bare)
    assert _active(settings) == ({A}, {"deepfake"})

    # Said on purpose, the same start empties the watchlist.
    change = _sync(tmp_path, settings, CHANNELS="none")
    assert sorted(change.removed_channels + change.removed_queries) == sorted([A, "deepfake"])
    assert _active(settings) == (set(), set())
    assert not _sync(tmp_path, settings).changed  # nothing active: nothing to protect
