"""Watched channels through the Data API: resolve ids and @handles, read uploads playlists.

A channel is resolved once (``channels.list``: its id and uploads playlist, cached in
its row). Its uploads playlist is then paged newest first down to the channel's cursor
(the last video seen), 1 unit per 50 items: for every channel when feeds are off, and
otherwise only for channels whose feed asked for it (``playlist_due``: the feed failed
repeatedly or showed 15 new uploads at once). The cursor moves only after what the read
found is stored, so a crash or an error mid-read loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.settings import Settings
from bot.stages.discover.lookup import BATCH, Candidate, lookup_due, record_finds
from bot.stages.discover.report import DiscoverReport
from bot.store import Channel, Video
from bot.youtube.client import ApiKeyError, YouTubeClient, YouTubeError, parse_rfc3339
from bot.youtube.ids import checked_video_id
from bot.youtube.quota import QuotaExhausted

log = logging.getLogger("find.discover")


#: A channel seen for the first time contributes only its newest page (50 uploads), not its
#: whole back catalogue; FIND_MIN_PUBLISHED narrows that further.
FIRST_POLL_PAGES = 1

#: Safety cap when the last seen video vanished from the playlist (deleted): stop paging here.
MAX_CHANNEL_PAGES = 10


@dataclass
class _ChannelTask:
    """A detached snapshot of a channel row: safe to use while no session is open."""

    id: int
    configured_as: str
    youtube_id: str | None
    uploads_playlist_id: str | None
    last_seen_video_id: str | None
    #: Publication time of the last seen video: paging also stops at anything older, in case
    #: that video was deleted from the playlist.
    last_seen_published: datetime | None = None


def read_playlists(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    report: DiscoverReport,
    *,
    owed_only: bool,
    hold: bool,
) -> None:
    """Page uploads playlists down to each channel's cursor; store finds, then move it.

    ``owed_only``: only channels whose feed asked for it (``playlist_due``).
    """
    due = lookup_due(settings, now, at_once=not hold)
    for task in _channels_to_poll(sessions, owed_only=owed_only):
        try:
            candidates, newest = _page_uploads(client, task, settings.min_published_at)
        except (ApiKeyError, QuotaExhausted):
            raise
        except YouTubeError as exc:
            _channel_failed(sessions, task, str(exc), report, forget_playlist=exc.status == 404)
            continue
        report.found |= record_finds(settings, sessions, candidates, now, lookup_due=due)
        _advance_cursor(sessions, task.id, newest, now)
        report.channels_polled += 1
        report.playlist_reads += 1


def resolve_channels(
    sessions: sessionmaker[Session], client: YouTubeClient, report: DiscoverReport
) -> None:
    """Find the id and uploads playlist of every channel that lacks them (once, then cached)."""
    with sessions() as session:
        pending = [
            (row.id, row.configured_as)
            for row in session.scalars(
                select(Channel).where(
                    Channel.active.is_(True), Channel.uploads_playlist_id.is_(None)
                )
            )
        ]
    ids = [(row_id, name) for row_id, name in pending if not name.startswith("@")]
    handles = [(row_id, name) for row_id, name in pending if name.startswith("@")]
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        try:
            items = client.channels_by_id([name for _, name in chunk])
        except ApiKeyError:
            raise
        except YouTubeError as exc:
            for row_id, name in chunk:
                _record_channel_error(sessions, row_id, name, str(exc), report)
            continue
        by_id = {item["id"]: item for item in items}
        for row_id, name in chunk:
            _save_resolution(sessions, row_id, name, by_id.get(name), report)
    for row_id, handle in handles:
        try:
            item = client.channel_by_handle(handle)
        except ApiKeyError:
            raise
        except YouTubeError as exc:
            _record_channel_error(sessions, row_id, handle, str(exc), report)
            continue
        _save_resolution(sessions, row_id, handle, item, report)


def _save_resolution(
    sessions: sessionmaker[Session],
    row_id: int,
    name: str,
    item: dict[str, Any] | None,
    report: DiscoverReport,
) -> None:
    if item is None:
        _record_channel_error(
            sessions,
            row_id,
            name,
            f"channel {name} not found on YouTube: check the id or handle in FIND_CHANNELS",
            report,
        )
        return
    playlist = (item.get("contentDetails") or {}).get("relatedPlaylists", {}).get("uploads")
    with sessions.begin() as session:
        row = session.get(Channel, row_id)
        twin = session.scalars(
            select(Channel).where(Channel.youtube_id == item["id"], Channel.id != row_id)
        ).first()
        if twin is not None:
            message = (
                f"channel {name} is the same channel as {twin.configured_as} ({item['id']}): "
                "remove one of them from FIND_CHANNELS"
            )
            row.last_error = message
            report.errors.append(message)
            return
        if not playlist:
            message = f"channel {name} has no uploads playlist: check FIND_CHANNELS"
            row.last_error = message
            report.errors.append(message)
            return
        row.youtube_id = item["id"]
        row.title = (item.get("snippet") or {}).get("title")
        row.uploads_playlist_id = playlist
        row.last_error = None
    log_event(log, "discover.channel_resolved", channel=name, channel_id=item["id"])


def _channels_to_poll(sessions: sessionmaker[Session], *, owed_only: bool) -> list[_ChannelTask]:
    """Active resolved channels, the longest-unpolled first (they go first if quota is short).

    ``owed_only``: only those whose feed asked for a playlist read.
    """
    with sessions() as session:
        query = select(Channel).where(
            Channel.active.is_(True), Channel.uploads_playlist_id.is_not(None)
        )
        if owed_only:
            query = query.where(Channel.playlist_due.is_not(None))
        rows = session.scalars(
            query.order_by(Channel.last_polled_at.is_not(None), Channel.last_polled_at, Channel.id)
        ).all()
        cursors = [r.last_seen_video_id for r in rows if r.last_seen_video_id]
        published = dict(
            session.execute(
                select(Video.youtube_id, Video.published_at).where(Video.youtube_id.in_(cursors))
            ).all()
        )
        return [
            _ChannelTask(
                r.id,
                r.configured_as,
                r.youtube_id,
                r.uploads_playlist_id,
                r.last_seen_video_id,
                published.get(r.last_seen_video_id),
            )
            for r in rows
        ]


def _page_uploads(
    client: YouTubeClient, task: _ChannelTask, min_published: datetime | None
) -> tuple[list[Candidate], str | None]:
    """Page the uploads playlist newest first until the last seen video.

    Returns the unseen candidates and the newest id (the channel's next cursor).
    """
    assert task.uploads_playlist_id is not None
    found: list[Candidate] = []
    newest: str | None = None
    token: str | None = None
    max_pages = FIRST_POLL_PAGES if task.last_seen_video_id is None else MAX_CHANNEL_PAGES
    for _page in range(max_pages):
        response = client.playlist_page(task.uploads_playlist_id, token)
        for item in response.get("items") or []:
            details = item.get("contentDetails") or {}
            snippet = item.get("snippet") or {}
            raw_id = details.get("videoId") or (snippet.get("resourceId") or {}).get("videoId")
            if not raw_id:
                continue
            video_id = checked_video_id(raw_id, source=f"channel:{task.youtube_id}", logger=log)
            if video_id is None:
                continue
            newest = newest or video_id
            if video_id == task.last_seen_video_id:
                return found, newest
            published = parse_rfc3339(details.get("videoPublishedAt"))
            if min_published and published and published < min_published:
                return found, newest
            if task.last_seen_published and published and published < task.last_seen_published:
                return found, newest  # the last seen video was deleted: older ones are seen
            found.append(
                Candidate(
                    video_id=video_id,
                    via=f"channel:{task.youtube_id}",
                    published_at=published,
                    title=snippet.get("title"),
                    channel_id=task.youtube_id,
                    channel_title=snippet.get("channelTitle"),
                )
            )
        token = response.get("nextPageToken")
        if not token:
            break
    return found, newest


def _advance_cursor(
    sessions: sessionmaker[Session], channel_id: int, newest: str | None, now: datetime
) -> None:
    """Move the channel's cursor once everything its read found is stored."""
    with sessions.begin() as session:
        row = session.get(Channel, channel_id)
        if row is None:
            return
        row.last_polled_at = now
        row.last_seen_video_id = newest or row.last_seen_video_id
        row.playlist_due = None
        if not (row.last_error or "").startswith("feed"):  # a failing feed stays visible
            row.last_error = None


def _channel_failed(
    sessions: sessionmaker[Session],
    task: _ChannelTask,
    message: str,
    report: DiscoverReport,
    *,
    forget_playlist: bool,
) -> None:
    """One bad channel is recorded and skipped; the others go on."""
    text = f"channel {task.configured_as}: {message}"
    with sessions.begin() as session:
        row = session.get(Channel, task.id)
        if row is not None:
            row.last_error = text[:2000]
            if forget_playlist:  # re-resolve next time: the playlist or channel is gone
                row.uploads_playlist_id = None
    report.errors.append(text)
    log_event(
        log, "discover.channel_failed", logging.WARNING, channel=task.configured_as, error=message
    )


def _record_channel_error(
    sessions: sessionmaker[Session], row_id: int, name: str, message: str, report: DiscoverReport
) -> None:
    with sessions.begin() as session:
        row = session.get(Channel, row_id)
        if row is not None:
            row.last_error = message[:2000]
    report.errors.append(message)
    log_event(log, "discover.channel_failed", logging.WARNING, channel=name, error=message)
