"""Channel Atom feeds: the zero-quota way to see new uploads, read politely.

``https://www.youtube.com/feeds/videos.xml?channel_id=UC…`` lists a channel's
15 newest uploads without an API key and without quota.  Reading it:

* **schedule**: each channel has its own due time (``feed_next_at``), set to
  one ``FIND_POLL_INTERVAL`` after its last read, ±20 % at random, so a
  thousand channels spread over the interval instead of arriving together;
  a channel with a live push subscription (:mod:`bot.stages.discover.websub`) is read every
  ``FIND_WEBSUB_POLL_INTERVAL`` instead (push is the fast path, the feed the
  safety net);
* **politeness**: at most :data:`CONCURRENCY` requests at a time and
  :data:`RATE_PER_S` a second, conditional GETs (``If-None-Match`` /
  ``If-Modified-Since``: an unchanged feed answers 304 with no body), and a
  429 pauses every read for its ``Retry-After`` (5 minutes if none);
* **safety**: bodies over :data:`bot.youtube.atom.MAX_DOCUMENT_BYTES` are cut off while
  reading, and what is read goes through :mod:`bot.youtube.atom` (defused XML, entries
  of the right channel only);
* **never a missed upload**: the ids of the last read are kept
  (``feed_seen``).  New entries are those above the first already-seen one.
  A full feed (15 entries) that shares no id with the last read may hide
  uploads beyond the 15, so the channel's uploads playlist is read too
  (``playlist_due``), back to the playlist cursor that only moves once that
  read is done.  A channel whose feed fails :data:`FALLBACK_AFTER` times in a
  row (404, 5xx, refused documents, timeouts) is read through its uploads
  playlist at its normal cadence, and its feed is tried again with
  exponential backoff until it works.

Finds become video rows at once (:func:`bot.stages.discover.lookup.record_finds`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.settings import Settings
from bot.stages.discover.lookup import Candidate, lookup_due, record_finds
from bot.store import Channel, utcnow
from bot.youtube.atom import (
    MAX_DOCUMENT_BYTES,
    FeedEntry,
    FeedError,
    from_the_future,
    parse_youtube_atom,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("find.feeds")

#: YouTube's feeds list this many entries: a read with this many new ones may hide more.
FEED_SIZE = 15
#: Parallel requests to the feed host, and requests per second, at most.
CONCURRENCY = 4
RATE_PER_S = 5.0
#: Consecutive failed reads after which the uploads playlist stands in for the feed.
FALLBACK_AFTER = 3
#: The failing feed is retried after interval x 2^(failures - FALLBACK_AFTER), at most this.
MAX_RETRY_S = 6 * 3600
#: Pause after a 429 without Retry-After, and the longest pause a Retry-After may ask for.
RATE_LIMIT_PAUSE_S = 300.0
MAX_RATE_LIMIT_PAUSE_S = 3600.0
#: Rate-limited for this long without a good read: the channels not read count it as a
#: failure, so they reach the playlist fallback instead of waiting out the block unseen.
LONG_RATE_LIMIT_S = 1800.0
#: Each channel's next read: the interval times a random factor in 1 +/- this.
JITTER = 0.2


@dataclass
class FeedRead:
    """The outcome of one feed request."""

    channel_id: str
    status: str  # changed | unchanged | failed | not_sent
    entries: list[FeedEntry] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    http_status: int | None = None
    bytes: int = 0


class FeedReader:
    """Reads channel feeds over one pooled HTTP client, politely; safe to share across passes.

    ``rate_per_s=None`` lifts the rate limit (the benchmark's simulated day).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.Client | None = None,
        concurrency: int = CONCURRENCY,
        rate_per_s: float | None = RATE_PER_S,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from bot.httpclient import make_http_client

        self.settings = settings
        self.concurrency = concurrency
        self.http = http or make_http_client(max_connections=concurrency)
        self._owns_http = http is None
        self._interval = 1.0 / rate_per_s if rate_per_s else 0.0
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._limited_since: float | None = None
        #: Counters for logs and the benchmark: requests sent, 304s, body bytes read.
        self.requests = 0
        self.not_modified = 0
        self.bytes = 0

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    # ------------------------------------------------------------ pause
    def paused_for(self) -> float:
        """Seconds left of a 429 pause (0 when reads may go out)."""
        return max(0.0, self._paused_until - self._monotonic())

    def _pause(self, seconds: float) -> None:
        with self._lock:
            now = self._monotonic()
            self._paused_until = max(self._paused_until, now + seconds)
            if self._limited_since is None:
                self._limited_since = now

    def _cleared(self) -> None:
        with self._lock:
            self._limited_since = None

    def _wait_for_slot(self) -> None:
        if not self._interval:
            return
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        if slot > now:
            self._sleep(slot - now)

    # ------------------------------------------------------------ reads
    def read_many(self, asks: list[tuple[str, str | None, str | None]]) -> list[FeedRead]:
        """Read (channel id, etag, last-modified) feeds, at most ``concurrency`` at a time."""
        if not asks:
            return []
        if len(asks) == 1 or self.concurrency <= 1:
            return [self.read(*ask) for ask in asks]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="feed") as pool:
            return list(pool.map(lambda ask: self.read(*ask), asks))

    def read(self, channel_id: str, etag: str | None, last_modified: str | None) -> FeedRead:
        """One conditional GET of a channel's feed, parsed and checked."""
        import httpx

        if self.paused_for() > 0:
            message = f"feed reads paused for {self.paused_for():.0f}s after HTTP 429"
            since = self._limited_since
            if since is not None and self._monotonic() - since >= LONG_RATE_LIMIT_S:
                return self._failed(channel_id, f"feed of {channel_id}: {message}", 429)
            return FeedRead(channel_id, "not_sent", error=message)
        self._wait_for_slot()
        url = self.settings.feed_url_template.format(id=channel_id)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        what = f"feed of {channel_id}"
        with self._lock:
            self.requests += 1
        try:
            with self.http.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 304:
                    self._cleared()
                    with self._lock:
                        self.not_modified += 1
                    return FeedRead(channel_id, "unchanged", http_status=304)
                if status == 429:
                    pause = _retry_after_s(response.headers.get("Retry-After"))
                    self._pause(pause)
                    return self._failed(
                        channel_id,
                        f"{what}: HTTP 429 (rate-limited): feed reads paused for {pause:.0f}s",
                        status,
                    )
                if status != 200:
                    advice = (
                        "the channel may be gone or its id wrong"
                        if status in (404, 410)
                        else "retried later"
                    )
                    return self._failed(channel_id, f"{what}: HTTP {status}; {advice}", status)
                body = _read_capped(response, what)
        except FeedError as exc:
            return self._failed(channel_id, str(exc), 200)
        except httpx.HTTPError as exc:
            return self._failed(
                channel_id, f"{what}: network error ({type(exc).__name__}: {exc}); retried later"
            )
        self._cleared()
        with self._lock:
            self.bytes += len(body)
        try:
            entries = parse_youtube_atom(body, channel_id, what=what)
        except FeedError as exc:
            return self._failed(channel_id, str(exc), 200, size=len(body))
        return FeedRead(
            channel_id,
            "changed",
            entries=entries,
            etag=(response.headers.get("ETag") or None),
            last_modified=(response.headers.get("Last-Modified") or None),
            http_status=200,
            bytes=len(body),
        )

    @staticmethod
    def _failed(
        channel_id: str, error: str, status: int | None = None, *, size: int = 0
    ) -> FeedRead:
        return FeedRead(channel_id, "failed", error=error[:1000], http_status=status, bytes=size)


def _read_capped(response: httpx.Response, what: str) -> bytes:
    """The (decompressed) body, refused as soon as it passes the size limit."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise FeedError(
                f"{what}: refused, the document is over the {MAX_DOCUMENT_BYTES} byte limit "
                "(reading stopped there)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after_s(value: str | None) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date), within sane bounds."""
    seconds = RATE_LIMIT_PAUSE_S
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(value) - utcnow()).total_seconds()
            except (TypeError, ValueError):
                seconds = RATE_LIMIT_PAUSE_S
    return min(MAX_RATE_LIMIT_PAUSE_S, max(1.0, seconds))


# ===================================================================== pass
@dataclass
class FeedPass:
    """What one :func:`read_feeds` call did, for the discover report."""

    read: int = 0
    unchanged: int = 0
    failed: int = 0
    found: set[str] = field(default_factory=set)
    #: Entries dated too far ahead to believe (bot.youtube.atom.from_the_future): dropped.
    future: int = 0
    fallbacks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _FeedTask:
    """A detached snapshot of a channel row, safe to use while no session is open."""

    id: int
    channel_id: str
    configured_as: str
    etag: str | None
    last_modified: str | None
    failures: int
    checked_at: datetime | None
    seen: list[str] | None
    cursor: str | None
    push_active: bool


def read_feeds(
    settings: Settings,
    sessions: sessionmaker[Session],
    reader: FeedReader,
    now: datetime,
    *,
    force: bool = False,
    hold: bool = True,
) -> FeedPass:
    """Read the feeds that are due (all with ``force``), store new uploads, schedule the next.

    Channels that must be read through their playlist instead get ``playlist_due``;
    the discover stage reads those with the Data API.  The new uploads are stored
    first, then every channel row is updated in one transaction: a crash in
    between only means the same uploads are found (and ignored) again.
    """
    result = FeedPass()
    tasks = _due(sessions, now, force=force)
    fetch = [t for t in tasks if _feed_worth_trying(settings, t, now)]
    standing_in = [t for t in tasks if t not in fetch]  # failing feeds: the playlist's turn
    reads = reader.read_many([(t.channel_id, t.etag, t.last_modified) for t in fetch])
    outcomes = list(zip(fetch, reads, strict=True))

    hidden: dict[int, bool] = {}
    candidates: list[Candidate] = []
    for task, read in outcomes:
        if read.status == "changed":
            # An entry dated far ahead is not believed, as in a push notification: it is
            # neither stored nor kept as seen (nor the cursor), as if the feed lacked it.
            believed = [e for e in read.entries if not from_the_future(e, now)]
            result.future += len(read.entries) - len(believed)
            full = len(read.entries) >= FEED_SIZE
            read.entries = believed
            entries, hidden[task.id] = _new_entries(task, believed, full=full)
            candidates += [_candidate(task, e) for e in entries]
    due = lookup_due(settings, now, at_once=not hold)
    result.found = record_finds(settings, sessions, candidates, now, lookup_due=due)

    failed: list[tuple[_FeedTask, str, int]] = []
    with sessions.begin() as session:
        ids = [t.id for t in tasks]
        rows = {r.id: r for r in session.scalars(select(Channel).where(Channel.id.in_(ids)))}
        for task in standing_in:
            if task.id in rows:
                _stand_in(settings, rows[task.id], task, now)
                result.fallbacks.append(task.configured_as)
        for task, read in outcomes:
            row = rows.get(task.id)
            if row is None:
                continue
            if read.status == "changed":
                result.read += 1
                if _apply_changed(settings, row, task, read, now, hidden=hidden[task.id]):
                    result.fallbacks.append(task.configured_as)
            elif read.status == "unchanged":
                result.unchanged += 1
                _apply_unchanged(settings, row, task, now)
            elif read.status == "failed":
                result.failed += 1
                message = read.error or "feed read failed"
                result.errors.append(f"channel {task.configured_as}: {message}")
                failures = _apply_failed(settings, row, task, message, now)
                if failures >= FALLBACK_AFTER:
                    result.fallbacks.append(task.configured_as)
                failed.append((task, message, failures))
            # not_sent (paused after a 429): still due, tried at the next pass
    for task, message, failures in failed:
        log_event(
            log,
            "feeds.failed",
            logging.WARNING,
            channel=task.configured_as,
            failures=failures,
            error=message,
        )
    for task, _read in outcomes:
        if hidden.get(task.id):
            log_event(
                log,
                "feeds.fallback",
                channel=task.configured_as,
                reason="a full feed sharing nothing with the last read: the playlist is read too",
            )
    if reads:
        log_event(
            log,
            "feeds.read",
            logging.INFO if result.found or result.failed or result.future else logging.DEBUG,
            channels=len(reads),
            changed=result.read,
            unchanged=result.unchanged,
            failed=result.failed,
            new=len(result.found),
            future=result.future,
        )
    return result


def _candidate(task: _FeedTask, entry: FeedEntry) -> Candidate:
    return Candidate(
        video_id=entry.video_id,
        via=f"feed:{task.channel_id}",
        published_at=entry.published_at,
        title=entry.title,
        channel_id=task.channel_id,
        channel_title=entry.channel_title,
    )


def _due(sessions: sessionmaker[Session], now: datetime, *, force: bool) -> list[_FeedTask]:
    with sessions() as session:
        query = select(Channel).where(
            Channel.active.is_(True),
            Channel.youtube_id.is_not(None),
            Channel.uploads_playlist_id.is_not(None),
        )
        if not force:
            query = query.where(Channel.feed_next_at.is_(None) | (Channel.feed_next_at <= now))
        rows = session.scalars(
            query.order_by(Channel.feed_next_at.is_not(None), Channel.feed_next_at, Channel.id)
        )
        return [
            _FeedTask(
                id=r.id,
                channel_id=r.youtube_id,
                configured_as=r.configured_as,
                etag=r.feed_etag,
                last_modified=r.feed_last_modified,
                failures=r.feed_failures or 0,
                checked_at=r.feed_checked_at,
                seen=list(r.feed_seen) if r.feed_seen is not None else None,
                cursor=r.last_seen_video_id,
                push_active=push_active(r, now),
            )
            for r in rows
        ]


def push_active(channel: Channel, now: datetime) -> bool:
    """Does the hub push this channel's uploads to us now (a verified, unexpired lease)?"""
    return (
        channel.push_state == "active"
        and channel.push_expires_at is not None
        and channel.push_expires_at > now
    )


def _interval_s(settings: Settings, push: bool) -> int:
    return settings.websub_poll_interval_s if push else settings.poll_interval_s


def next_read_at(settings: Settings, now: datetime, *, push: bool = False) -> datetime:
    """The next read of a channel: one interval away, +/- JITTER, so channels stay spread."""
    factor = random.uniform(1 - JITTER, 1 + JITTER)
    return now + timedelta(seconds=_interval_s(settings, push) * factor)


def _feed_worth_trying(settings: Settings, task: _FeedTask, now: datetime) -> bool:
    """A failing feed is retried with exponential backoff; in between the playlist stands in."""
    if task.failures < FALLBACK_AFTER or task.checked_at is None:
        return True
    backoff = min(
        MAX_RETRY_S,
        settings.poll_interval_s * 2 ** (task.failures - FALLBACK_AFTER),
    )
    return now >= task.checked_at + timedelta(seconds=backoff)


def _new_entries(
    task: _FeedTask, entries: list[FeedEntry], *, full: bool
) -> tuple[list[FeedEntry], bool]:
    """The entries above the first one already seen, and whether uploads may be hidden
    (``full``: the feed listed as many entries as it can show).

    Seen: the ids of the last read, or, for a channel read only through its playlist
    so far, the playlist cursor.  A channel never read before contributes its whole
    feed (its newest 15 uploads), like the first page of its playlist.
    """
    seen = set(task.seen or ())
    if task.cursor:
        seen.add(task.cursor)
    if not seen:
        return entries, False
    new: list[FeedEntry] = []
    for entry in entries:
        if entry.video_id in seen:
            return new, False
        new.append(entry)
    return new, full


def _apply_changed(
    settings: Settings,
    row: Channel,
    task: _FeedTask,
    read: FeedRead,
    now: datetime,
    *,
    hidden: bool,
) -> bool:
    """A read with a body: new validators and ids; True when a playlist read is now owed."""
    row.feed_etag = (read.etag or "")[:200] or None
    row.feed_last_modified = (read.last_modified or "")[:64] or None
    row.feed_checked_at = row.feed_read_at = row.last_polled_at = now
    row.feed_failures = 0
    row.feed_seen = [e.video_id for e in read.entries]
    row.feed_next_at = next_read_at(settings, now, push=task.push_active)
    if row.last_error and row.last_error.startswith("feed"):
        row.last_error = None
    if hidden:
        row.playlist_due = (
            f"feed listed {len(read.entries)} new uploads and none seen before: "
            "more may be hidden beyond it"
        )
        return True
    if row.playlist_due is None and read.entries:
        # The playlist cursor follows the feed, unless a playlist read is still owed:
        # then it must stay where that read has to go back to.
        row.last_seen_video_id = read.entries[0].video_id
    return False


def _apply_unchanged(settings: Settings, row: Channel, task: _FeedTask, now: datetime) -> None:
    row.feed_checked_at = row.feed_read_at = row.last_polled_at = now
    row.feed_failures = 0
    row.feed_next_at = next_read_at(settings, now, push=task.push_active)
    if row.last_error and row.last_error.startswith("feed"):
        row.last_error = None


def _apply_failed(
    settings: Settings, row: Channel, task: _FeedTask, message: str, now: datetime
) -> int:
    """Record the error; from FALLBACK_AFTER failures on, owe a playlist read; the count."""
    failures = task.failures + 1
    row.feed_failures = failures
    row.feed_checked_at = now
    row.feed_next_at = next_read_at(settings, now, push=task.push_active)
    row.last_error = (message if message.startswith("feed") else f"feed: {message}")[:2000]
    if failures >= FALLBACK_AFTER:
        row.playlist_due = f"feed failed {failures} times in a row: {message}"[:300]
    return failures


def _stand_in(settings: Settings, row: Channel, task: _FeedTask, now: datetime) -> None:
    """The feed is failing and its retry is not due: this turn, the playlist is read."""
    row.feed_next_at = next_read_at(settings, now, push=task.push_active)
    if row.playlist_due is None:
        row.playlist_due = f"feed failed {task.failures} times in a row; retried later"
