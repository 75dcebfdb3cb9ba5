"""Put videos back in the pipeline after the operator fixed what stopped them.

A video ends in ``failed`` after ``FIND_MAX_ATTEMPTS`` transient errors, and a
host fault that predates :mod:`bot.hostfault` (or a bug) may have sent many
there at once.  ``find-bot requeue`` is the supported way back, instead of
editing the ``videos`` table by hand:

* the selection is explicit: video ids, a state, an error kind, or a
  combination (all must match); nothing is selected by default;
* a video whose downloaded file is still on disk goes back to ``downloaded``
  (only the analysis is redone), any other to ``new`` (downloaded again);
* attempts, backoff and the last error are cleared, so it runs at once;
* videos in the review states (flagged, confirmed, dismissed) are evidence
  with decisions attached and are never moved; videos under a live lease are
  being worked on and are left alone;
* ``dry_run`` reports what would change and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import FindError
from bot.logs import log_event
from bot.settings import Settings
from bot.store import Video, VideoState, utcnow

log = logging.getLogger("find.requeue")

#: States a video can be requeued from.  The review states are never touched.
REQUEUE_STATES = (
    VideoState.FAILED.value,
    VideoState.SKIPPED.value,
    VideoState.NEW.value,
    VideoState.DOWNLOADED.value,
    VideoState.ANALYSED.value,
)


class RequeueError(FindError):
    """The selection names a video that does not exist or cannot be requeued."""


@dataclass(frozen=True)
class Requeued:
    """One video that was (or, in a dry run, would be) put back in the queue."""

    youtube_id: str
    from_state: str
    to_state: str
    kind: str | None
    error: str | None


def requeue(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    video_ids: Sequence[str] = (),
    state: str | None = None,
    kind: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[Requeued]:
    """Requeue the videos matching every given selector; return what changed (or would)."""
    if not (video_ids or state or kind):
        raise RequeueError(
            "say which videos to requeue: VIDEO_ID..., --state STATE and/or --kind KIND "
            "(try --state failed --dry-run)"
        )
    if state is not None and state not in REQUEUE_STATES:
        raise RequeueError(
            f"videos in state {state!r} cannot be requeued: use one of {', '.join(REQUEUE_STATES)}"
        )
    now = now or utcnow()
    query = select(Video).order_by(Video.id).with_for_update()
    if video_ids:
        query = query.where(Video.youtube_id.in_(list(video_ids)))
    query = (
        query.where(Video.state == state) if state else query.where(Video.state.in_(REQUEUE_STATES))
    )
    if kind:
        query = query.where(Video.last_error_kind == kind)
    done: list[Requeued] = []
    with sessions.begin() as session:
        if video_ids:
            _check_named(session, video_ids)
        for video in session.scalars(query):
            if video.lease_expires_at is not None and video.lease_expires_at > now:
                log_event(log, "requeue.busy", video=video.youtube_id, worker=video.lease_owner)
                continue
            target = _target_state(settings, video)
            done.append(
                Requeued(
                    video.youtube_id, video.state, target, video.last_error_kind, video.last_error
                )
            )
            if dry_run:
                continue
            video.state = target
            video.attempts = 0
            video.next_attempt_at = None
            video.last_error = video.last_error_kind = None
            video.lease_owner = video.lease_expires_at = None
    if not dry_run:
        for item in done:
            log_event(
                log,
                "queue.requeued",
                video=item.youtube_id,
                from_state=item.from_state,
                to_state=item.to_state,
                kind=item.kind,
            )
    return done


def _check_named(session: Session, video_ids: Sequence[str]) -> None:
    """Every id named on the command line must exist and be in a requeueable state."""
    found = dict(
        session.execute(
            select(Video.youtube_id, Video.state).where(Video.youtube_id.in_(list(video_ids)))
        ).all()
    )
    for youtube_id in video_ids:
        if youtube_id not in found:
            raise RequeueError(f"no video {youtube_id!r} in the database: check the id")
        if found[youtube_id] not in REQUEUE_STATES:
            raise RequeueError(
                f"video {youtube_id} is {found[youtube_id]}: reviewed and flagged videos are "
                "never requeued"
            )


def _target_state(settings: Settings, video: Video) -> str:
    """``downloaded`` when the file is still there (re-analyse only), else ``new``."""
    path = settings.media_file(video.media_path) if video.media_deleted_at is None else None
    if path is not None and path.is_file():
        return VideoState.DOWNLOADED.value
    return VideoState.NEW.value
