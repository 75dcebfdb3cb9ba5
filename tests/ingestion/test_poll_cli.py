"""End to end: `find-bot poll --once` discovers and downloads, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.db import session_factory
from bot.store import PollRun, QuotaEntry, Video
from tests.fakes.youtube_api import api_key


def _run_cli(monkeypatch, tmp_path, env: dict[str, str], *argv: str) -> int:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FIND_DATA_DIR", str(tmp_path / "data"))
    return main(list(argv))


def test_poll_once_discovers_and_downloads(ingestion, monkeypatch, tmp_path, capsys) -> None:
    channel = ingestion.channel("Alpha", handle="@alpha")
    from_channel = [ingestion.upload(channel, title=f"clip {i}") for i in range(3)]
    other = ingestion.channel("Beta")
    from_query = ingestion.upload(other, title="a deepfake interview")
    shared = ingestion.upload(channel, title="deepfake on alpha")
    removed = ingestion.upload(channel, title="removed later", serve=False)  # 404 on download
    env = ingestion.env(CHANNELS="@alpha", SEARCH_QUERIES="deepfake")

    assert _run_cli(monkeypatch, tmp_path, env, "poll", "--once") == 0
    out = capsys.readouterr().out
    assert "discover: 6 new video(s)" in out
    assert "download: 5 downloaded, 1 skipped" in out
    assert "quota: 104/10000 units used today" in out

    settings = ingestion.settings(CHANNELS="@alpha", SEARCH_QUERIES="deepfake")
    with session_factory(settings)() as session:
        videos = {v.youtube_id: v for v in session.scalars(select(Video))}
        assert set(videos) == {v.id for v in [*from_channel, from_query, shared, removed]}
        for video in [*from_channel, from_query, shared]:
            row = videos[video.id]
            assert row.state == "downloaded", row.last_error
            assert Path(row.media_path).is_file() and row.media_size > 0
        assert videos[removed.id].state == "skipped"
        assert videos[removed.id].last_error_kind == "removed"
        assert videos[shared.id].discovered_via == f"channel:{channel.id}"
        # Where each came from (issue 20): a channel's upload or a search's result.
        assert videos[shared.id].source == "youtube_upload"
        assert {videos[v.id].source for v in from_channel} == {"youtube_upload"}
        assert videos[from_query.id].source == "youtube_search"
        assert videos[from_query.id].submitted_by is None
        run = session.scalars(select(PollRun)).one()
        assert run.new_videos == 6 and run.finished_at is not None
        units = sum(e.units for e in session.scalars(select(QuotaEntry)))
        assert units == run.units == 1 + 1 + 100 + 2  # handle, page, search, 2 videos.list

    # A second pass finds nothing new and costs one page (the search is not due yet).
    assert _run_cli(monkeypatch, tmp_path, env, "poll", "--once") == 0
    out = capsys.readouterr().out
    assert "discover: 0 new video(s)" in out and "1 unit(s) spent" in out


def test_poll_without_a_key_says_what_to_set(
    sqlite_ingestion, monkeypatch, tmp_path, capsys
) -> None:
    env = sqlite_ingestion.env(CHANNELS="@alpha")
    env["FIND_YOUTUBE_API_KEY"] = ""
    assert _run_cli(monkeypatch, tmp_path, env, "poll", "--once") == 2
    assert "FIND_YOUTUBE_API_KEY is not set" in capsys.readouterr().err


def test_poll_with_an_invalid_key_fails_cleanly(
    sqlite_ingestion, monkeypatch, tmp_path, capsys
) -> None:
    wrong = api_key("WrongKey42")
    env = sqlite_ingestion.env(CHANNELS="@alpha", YOUTUBE_API_KEY=wrong)
    assert _run_cli(monkeypatch, tmp_path, env, "poll", "--once") == 2
    err = capsys.readouterr().err
    assert "find-bot: error: YouTube API refused the key" in err
    assert wrong not in err  # not in the message, not in the logs
    assert len([line for line in err.splitlines() if line.startswith("find-bot: error")]) == 1


@pytest.mark.parametrize("revision", ["base"])
def test_poll_refuses_an_unmigrated_database(tmp_path, monkeypatch, capsys, revision) -> None:
    env = {
        "FIND_YOUTUBE_API_KEY": api_key("k"),
        "FIND_CHANNELS": "@alpha",
        "FIND_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    assert _run_cli(monkeypatch, tmp_path, env, "poll", "--once") == 2
    assert "find-bot db upgrade" in capsys.readouterr().err


def test_poll_with_nothing_to_watch_says_what_to_set(
    sqlite_ingestion, monkeypatch, tmp_path, capsys
) -> None:
    env = sqlite_ingestion.env()
    assert _run_cli(monkeypatch, tmp_path, env, "poll", "--once") == 2
    assert "set FIND_CHANNELS and/or FIND_SEARCH_QUERIES" in capsys.readouterr().err


def test_poll_repeats_on_the_interval(sqlite_ingestion, monkeypatch, tmp_path, capsys) -> None:
    ing = sqlite_ingestion
    channel = ing.channel()
    ing.upload(channel)
    waits: list[float] = []

    def stop_after_first_wait(seconds: float) -> None:
        waits.append(seconds)
        raise KeyboardInterrupt

    import bot.commands.poll

    monkeypatch.setattr(bot.commands.poll.time, "sleep", stop_after_first_wait)
    env = ing.env(CHANNELS=channel.id, POLL_INTERVAL="20m")
    assert _run_cli(monkeypatch, tmp_path, env, "poll") == 130  # Ctrl-C while waiting
    assert waits == [1200]
    out = capsys.readouterr().out
    assert "discover: 1 new video(s)" in out and "next poll in 1200s" in out
