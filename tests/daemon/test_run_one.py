"""``run_one`` when recording the result fails (the fix made in bot/queue.py for the daemon)."""

from __future__ import annotations

from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.queue import WorkQueue, run_one
from bot.settings import Settings
from bot.store import Video, VideoState


def test_apply_that_raises_is_recorded_as_a_failure_not_left_leased(settings: Settings) -> None:
    """Before the fix the exception escaped run_one, killing the worker loop's iteration and
    leaving the video leased (and its attempt counted) until the lease expired."""
    with session_scope(settings) as session:
        session.add(Video(youtube_id="applyboom01", state=VideoState.DOWNLOADED.value))
    queue = WorkQueue(session_factory(settings), lease_s=300, max_attempts=3)

    def handler(_job):  # type: ignore[no-untyped-def]
        def apply(_session, video) -> None:  # type: ignore[no-untyped-def]
            video.state = VideoState.ANALYSED.value
            raise RuntimeError("disk full while writing crops")

        return apply

    assert run_one(queue, "analyse", "w/analyse-0", handler) is not None
    with session_scope(settings) as session:
        video = session.scalars(select(Video)).one()
        assert video.state == VideoState.DOWNLOADED.value  # the half-applied result rolled back
        assert video.lease_owner is None and video.lease_expires_at is None
        assert video.last_error_kind == "internal" and "disk full" in (video.last_error or "")
        assert video.next_attempt_at is not None and video.attempts == 1
