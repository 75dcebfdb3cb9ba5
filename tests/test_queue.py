"""The lease queue on both backends: claim, expiry, attempts, backoff, exactly-once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.db import session_factory
from bot.queue import StageFailure, WorkQueue, run_one
from bot.settings import Settings
from bot.store import Analysis, Video, VideoState, utcnow


def _add_videos(settings: Settings, n: int, state: VideoState = VideoState.NEW) -> None:
    with session_factory(settings).begin() as session:
        session.add_all(Video(youtube_id=f"vid{i:08d}", state=state.value) for i in range(n))


def _queue(settings: Settings, **kw: int) -> WorkQueue:
    return WorkQueue(
        session_factory(settings),
        lease_s=kw.get("lease_s", 60),
        max_attempts=kw.get("max_attempts", 3),
    )


def test_claim_takes_each_video_once_and_complete_moves_it_on(settings: Settings) -> None:
    _add_videos(settings, 2)
    queue = _queue(settings)
    first, second = queue.claim("download", "w1"), queue.claim("download", "w2")
    assert first and second and first.video_id != second.video_id
    assert queue.claim("download", "w3") is None  # both leased

    def apply(session, video):  # type: ignore[no-untyped-def]
        video.state = VideoState.DOWNLOADED.value
        video.media_path = "x.mp4"

    assert queue.complete(first, apply)
    with session_factory(settings)() as session:
        video = session.get(Video, first.video_id)
        assert video.state == "downloaded" and video.lease_owner is None and video.attempts == 0
    assert queue.claim("analyse", "w1").video_id == first.video_id


def test_expired_lease_is_taken_again_and_old_owner_cannot_complete(settings: Settings) -> None:
    _add_videos(settings, 1)
    queue = _queue(settings)
    job = queue.claim("download", "crashed")
    later = utcnow() + timedelta(seconds=61)
    retaken = queue.claim("download", "rescuer", now=later)
    assert retaken is not None and retaken.video_id == job.video_id and retaken.attempt == 2
    assert not queue.complete(job, lambda s, v: setattr(v, "state", "downloaded"))
    assert queue.complete(retaken, lambda s, v: setattr(v, "state", "downloaded"))


def test_transient_failures_back_off_then_fail(settings: Settings) -> None:
    _add_videos(settings, 1)
    queue = _queue(settings, max_attempts=2)
    job = queue.claim("download", "w")
    assert queue.fail(job, StageFailure("HTTP 429", permanent=False)) == VideoState.NEW
    assert queue.claim("download", "w") is None  # backing off
    job = queue.claim("download", "w", now=utcnow() + timedelta(hours=7))
    assert queue.fail(job, StageFailure("HTTP 429 again", permanent=False)) == VideoState.FAILED
    with session_factory(settings)() as session:
        video = session.scalars(select(Video)).one()
        assert video.state == "failed" and video.last_error == "HTTP 429 again"


def test_permanent_failure_is_recorded_as_skipped(settings: Settings) -> None:
    _add_videos(settings, 1)
    queue = _queue(settings)

    def handler(job):  # type: ignore[no-untyped-def]
        raise StageFailure(
            f"video {job.youtube_id} was removed by the uploader", permanent=True, kind="removed"
        )

    run_one(queue, "download", "w", handler)
    with session_factory(settings)() as session:
        video = session.scalars(select(Video)).one()
        assert (video.state, video.last_error_kind) == ("skipped", "removed")
        assert "removed by the uploader" in video.last_error


def test_crash_looping_video_ends_failed(settings: Settings) -> None:
    _add_videos(settings, 1)
    queue = _queue(settings, max_attempts=2)
    t = utcnow()
    for i in range(2):  # two workers die holding it
        assert queue.claim("download", f"dead{i}", now=t + timedelta(minutes=2 * i)) is not None
    assert queue.claim("download", "w", now=t + timedelta(minutes=10)) is None
    with session_factory(settings)() as session:
        video = session.scalars(select(Video)).one()
        assert video.state == "failed" and "interrupted 2 times" in video.last_error


def test_release_gives_work_back_without_counting(settings: Settings) -> None:
    _add_videos(settings, 1)
    queue = _queue(settings)
    job = queue.claim("download", "w")
    queue.release(job)
    again = queue.claim("download", "w2")
    assert again is not None and again.attempt == 1


@pytest.mark.parametrize("threads", [4])
def test_threads_process_every_video_exactly_once(settings: Settings, threads: int) -> None:
    _add_videos(settings, 60, VideoState.DOWNLOADED)
    queue = _queue(settings)

    def handler(job):  # type: ignore[no-untyped-def]
        def apply(session, video):  # type: ignore[no-untyped-def]
            session.add(
                Analysis(
                    video_id=video.id,
                    bundle_id="stub",
                    bundle_version="0",
                    frames_requested=1,
                    frames_decoded=1,
                    faces=0,
                    tracks=0,
                    scores={},
                    video_score=None,
                    threshold=0.5,
                    verdict="no_face",
                    timings={},
                    crops=[],
                    worker=job.worker,
                )
            )
            video.state = VideoState.ANALYSED.value

        return apply

    def worker(name: str) -> None:
        while run_one(queue, "analyse", name, handler) is not None:
            pass

    pool = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    with session_factory(settings)() as session:
        per_video = session.execute(
            select(Analysis.video_id, func.count()).group_by(Analysis.video_id)
        ).all()
        assert len(per_video) == 60 and all(count == 1 for _, count in per_video)
        assert session.scalar(select(func.count()).where(Video.state != "analysed")) == 0


def test_failures_that_are_not_the_videos_fault_never_exhaust_attempts(settings: Settings) -> None:
    _add_videos(settings, 1)
    queue = _queue(settings, max_attempts=2)
    later = utcnow()
    for _ in range(4):  # more postponements than max_attempts allows failures
        later += timedelta(hours=7)
        job = queue.claim("download", "w", now=later)
        assert job is not None and job.attempt == 1
        failure = StageFailure(
            "disk full", permanent=False, kind="disk_full", counts_as_attempt=False
        )
        assert queue.fail(job, failure) == VideoState.NEW
    with session_factory(settings)() as session:
        video = session.scalars(select(Video)).one()
        assert (video.state, video.attempts, video.last_error_kind) == ("new", 0, "disk_full")
