"""`find-bot run --until-empty`'s loop (bot.service.drain) on pending downloads: the real
download stage against the fake media server, counted per outcome, then an empty queue."""

from __future__ import annotations

from bot.db import session_factory, session_scope
from bot.service.drain import drain
from bot.store import Video, VideoState


def test_pending_downloads_are_fetched_and_counted(sqlite_ingestion) -> None:
    channel = sqlite_ingestion.channel()
    served = sqlite_ingestion.upload(channel)
    gone = sqlite_ingestion.upload(channel, serve=False)  # the media server has no file
    # A worker host that only downloads (FIND_ANALYSE_WORKERS=0), as the daemon would.
    settings = sqlite_ingestion.settings(ANALYSE_WORKERS="0", DOWNLOAD_RETRIES="0")
    with session_scope(settings) as session:
        for video in (served, gone):
            session.add(Video(youtube_id=video.id, state=VideoState.NEW.value))
    said: list[str] = []

    report = drain(settings, session_factory(settings), say=said.append)

    assert report.counts["download"]["downloaded"] == 1
    assert sum(report.counts["download"].values()) == 2 and not report.counts["analyse"]
    assert report.summary()[-1 - bool(report.waiting)] == "the queue is empty"
    assert report.stopped is None
    assert len(said) == 2 and any(f"({served.id}): downloaded" in line for line in said)
    with session_scope(settings) as session:
        states = {v.youtube_id: v.state for v in session.query(Video)}
    assert states[served.id] == VideoState.DOWNLOADED.value  # waits for an analyse worker
    # Nothing due any more: a second run does nothing and says so.
    again = drain(settings, session_factory(settings))
    assert again.processed == 0
    assert again.summary()[0] == "nothing was queued: the queue is empty"
    # The downloaded one waits for an analyse worker (none on this host): said, not hidden.
    assert again.waiting >= 1 and "wait for a later retry" in again.summary()[-1]
