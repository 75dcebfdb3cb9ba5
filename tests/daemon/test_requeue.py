"""``find-bot requeue``: the operator's way back for failed videos, on both backends."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.commands.requeue import STATES
from bot.db import session_factory, session_scope
from bot.requeue import REQUEUE_STATES
from bot.settings import Settings
from bot.store import Video, utcnow


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FIND_LOG_LEVEL", "WARNING")

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        return main(list(argv)), out.getvalue(), err.getvalue()

    return run


def _seed(settings: Settings) -> None:
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    (settings.media_dir / "ondisk00001.mp4").write_bytes(b"video bytes")
    failed = {"state": "failed", "attempts": 5, "next_attempt_at": utcnow()}
    with session_scope(settings) as session:
        session.add_all(
            [
                Video(
                    youtube_id="ondisk00001",
                    media_path="ondisk00001.mp4",
                    last_error="internal error in analyse: OSError(30, 'Read-only file system')",
                    last_error_kind="internal",
                    **failed,
                ),
                Video(
                    youtube_id="nofile00001",
                    last_error="download failed: Read-only file system",
                    last_error_kind="internal",
                    **failed,
                ),
                Video(
                    youtube_id="network0001",
                    last_error="network error",
                    last_error_kind="network",
                    **failed,
                ),
                Video(youtube_id="skipped0001", state="skipped", last_error_kind="too_long"),
                Video(youtube_id="flagged0001", state="flagged", score=0.9),
                Video(
                    youtube_id="leased00001",
                    lease_owner="other/download-0",
                    lease_expires_at=utcnow() + timedelta(minutes=5),
                    **failed,
                ),
            ]
        )


def _states(settings: Settings) -> dict[str, tuple[str, int, str | None]]:
    with session_factory(settings)() as session:
        return {
            v.youtube_id: (v.state, v.attempts, v.last_error_kind)
            for v in session.scalars(select(Video))
        }


def test_requeue_by_kind_state_and_id_with_dry_run(settings: Settings, cli) -> None:  # type: ignore[no-untyped-def]
    _seed(settings)
    before = _states(settings)

    code, out, _ = cli("requeue", "--state", "failed", "--kind", "internal", "--dry-run")
    assert code == 0
    assert "would requeue ondisk00001: failed -> downloaded" in out  # the file is still there
    assert "would requeue nofile00001: failed -> new" in out
    assert "network0001" not in out and "leased00001" not in out
    assert "2 video(s) would requeue (dry run: nothing changed)" in out
    assert _states(settings) == before

    code, out, _ = cli("requeue", "--state", "failed", "--kind", "internal")
    assert code == 0 and "2 video(s) requeued" in out
    after = _states(settings)
    assert after["ondisk00001"] == ("downloaded", 0, None)
    assert after["nofile00001"] == ("new", 0, None)
    assert after["network0001"] == before["network0001"]
    assert after["leased00001"] == before["leased00001"]  # being worked on: left alone

    code, out, _ = cli("requeue", "network0001", "skipped0001")
    assert code == 0 and "2 video(s) requeued" in out
    after = _states(settings)
    assert after["network0001"] == ("new", 0, None) and after["skipped0001"] == ("new", 0, None)
    with session_factory(settings)() as session:
        video = session.scalars(select(Video).where(Video.youtube_id == "network0001")).one()
        assert video.next_attempt_at is None and video.last_error is None


def test_requeue_refuses_what_it_must_not_touch(settings: Settings, cli) -> None:  # type: ignore[no-untyped-def]
    _seed(settings)
    before = _states(settings)
    for argv, message in (
        (("requeue",), "say which videos to requeue"),
        (("requeue", "flagged0001"), "video flagged0001 is flagged"),
        (("requeue", "nosuchvideo", "network0001"), "no video 'nosuchvideo'"),
    ):
        code, out, err = cli(*argv)
        assert code == 2 and out == ""
        assert err.startswith("find-bot: error: ") and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert _states(settings) == before
    with pytest.raises(SystemExit):
        cli("requeue", "--state", "flagged")


def test_cli_states_match_the_module() -> None:
    assert tuple(STATES) == REQUEUE_STATES
