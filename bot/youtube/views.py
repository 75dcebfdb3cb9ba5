"""View counts: what is spreading comes first in the review queue.

A flagged deepfake with a million views a day matters more than one nobody
watches, so FIND records how often each YouTube video is watched:

* **at the lookup** (:mod:`bot.stages.discover.lookup`): the ``statistics`` part rides
  in the same ``videos.list`` call as the duration and privacy, so the first count
  costs no quota at all;
* **while it is flagged** (:func:`refresh_flagged_views`, an hourly scheduler job):
  the counts of flagged YouTube videos are read again, 50 ids per ``videos.list``
  call (1 unit), stalest first, within ``FIND_VIEWS_BUDGET`` units a day.  Those calls
  are written in the quota ledger as :data:`VIEWS_METHOD`, so the daily budget is
  counted from the ledger itself (it survives restarts and is shared by every process)
  and ``find-bot status`` shows them apart from the lookups.

Each measurement keeps the one before it (``views_before``/``views_before_at``) and
the growth between the two, ``views_per_day`` (after the first measurement: since
publication).  The queue's **reach** order (:func:`reach`) is
``score × ln(1 + views gained per day)``: the score still decides among videos that
spread alike, a video nobody watches ranks last, and a thousandfold more views is
weighed about twice, not a thousand times, as much (a near-certain fake with 100
views a day comes before a borderline one with 10,000).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.store import Video, VideoSource, VideoState
from bot.youtube.quota import VIEWS_METHOD, QuotaExhausted, QuotaLedger

if TYPE_CHECKING:
    from bot.settings import Settings
    from bot.youtube.client import YouTubeClient

log = logging.getLogger("find.views")

#: How often the scheduler refreshes the counts of flagged videos.
REFRESH_INTERVAL_S = 3600
#: A count younger than this is not read again (a refresh every run, give or take jitter).
MIN_AGE_S = REFRESH_INTERVAL_S // 2
#: Ids per videos.list call (the API's maximum; 1 unit whatever the count).
BATCH = 50
#: Growth is never measured over less than this: two counts a minute apart would
#: extrapolate a few views into thousands a day.
MIN_SPAN = timedelta(hours=1)
#: The sources whose videos are on YouTube and may be looked up (submissions never are).
YOUTUBE_SOURCES = (VideoSource.YOUTUBE_UPLOAD.value, VideoSource.YOUTUBE_SEARCH.value)


def view_count(item: dict[str, Any]) -> int | None:
    """``statistics.viewCount`` of a videos.list item (a string in the API), or None."""
    raw = (item.get("statistics") or {}).get("viewCount")
    try:
        count = int(raw)
    except (TypeError, ValueError):
        return None
    return count if count >= 0 else None


def record_views(video: Video, count: int | None, now: datetime) -> None:
    """Store a new count and the growth since the previous one (or since publication).

    ``count`` None (the item carried no statistics: hidden by the uploader) changes
    nothing.  The previous measurement is kept, so growth is always between the last two.
    """
    if count is None:
        return
    if video.views is not None and video.views_at is not None:
        before, before_at = video.views, video.views_at
    else:  # the first count: it grew from 0 since publication (when YouTube said when)
        before, before_at = 0, video.published_at
    video.views_before = video.views
    video.views_before_at = video.views_at
    video.views, video.views_at = count, now
    video.views_per_day = growth_per_day(before, before_at, count, now)


def growth_per_day(
    before: int, before_at: datetime | None, count: int, now: datetime
) -> float | None:
    """Views gained per day from ``(before, before_at)`` to ``(count, now)``, never negative
    (YouTube does remove counted views); None when the start is unknown."""
    if before_at is None:
        return None
    span = max(now - before_at, MIN_SPAN)
    return max(0, count - before) / (span / timedelta(days=1))


def reach(score: float | None, views_per_day: float | None) -> float | None:
    """The reach order's key: ``score × ln(1 + views gained per day)`` (None: unmeasured)."""
    if score is None or views_per_day is None:
        return None
    return score * math.log1p(views_per_day)


# ================================================================== refresh
@dataclass
class ViewsRefresh:
    """What one :func:`refresh_flagged_views` run did."""

    refreshed: int = 0
    gone: int = 0
    calls: int = 0
    #: Units the budget still allowed this run when it started.
    allowed: int = 0
    stopped: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_fields(self) -> dict[str, Any]:
        return {
            "refreshed": self.refreshed,
            "gone": self.gone,
            "units": self.calls,
            "allowed": self.allowed,
            "stopped": self.stopped,
        }


def units_allowed(settings: Settings, ledger: QuotaLedger) -> int:
    """Units this run may spend: the day's rest of FIND_VIEWS_BUDGET, spread over its runs.

    A run may take its hourly share (budget / 24, rounded up), never more than is left
    today: a backlog of flagged videos cannot spend the day's budget in the first hour.
    """
    budget = settings.views_budget
    if budget <= 0:
        return 0
    spent = ledger.usage_by_method().get(VIEWS_METHOD, 0)
    per_run = math.ceil(budget * REFRESH_INTERVAL_S / 86400)
    return max(0, min(per_run, budget - spent))


def refresh_flagged_views(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
) -> ViewsRefresh:
    """Read the counts of flagged YouTube videos again, stalest first, within the budget."""
    result = ViewsRefresh(allowed=units_allowed(settings, client.ledger))
    tried: set[int] = set()
    while result.calls < result.allowed:
        batch = _due(sessions, now, exclude=tried)
        if not batch:
            return result
        tried.update(row_id for row_id, _ in batch)
        try:
            items = client.video_views([youtube_id for _, youtube_id in batch])
        except QuotaExhausted as exc:
            result.stopped = str(exc)
            return result
        except Exception as exc:
            from bot.youtube.client import ApiKeyError, YouTubeError

            if isinstance(exc, ApiKeyError) or not isinstance(exc, YouTubeError):
                raise
            result.errors.append(f"videos.list for {len(batch)} flagged video(s): {exc}")
            result.calls += 1
            continue
        result.calls += 1
        refreshed, gone = _apply(sessions, batch, items, now)
        result.refreshed += refreshed
        result.gone += gone
    if _due(sessions, now, exclude=tried):
        result.stopped = f"FIND_VIEWS_BUDGET: {result.allowed} unit(s) this hour spent"
    return result


def _due(
    sessions: sessionmaker[Session], now: datetime, *, exclude: set[int]
) -> list[tuple[int, str]]:
    """Up to 50 flagged YouTube videos whose count is missing or stale, stalest first."""
    query = (
        select(Video.id, Video.youtube_id)
        .where(
            Video.state == VideoState.FLAGGED.value,
            Video.source.in_(YOUTUBE_SOURCES),
            Video.views_at.is_(None) | (Video.views_at < now - timedelta(seconds=MIN_AGE_S)),
        )
        .order_by(Video.views_at.is_not(None), Video.views_at, Video.id)
        .limit(BATCH)
    )
    if exclude:
        query = query.where(Video.id.not_in(exclude))
    with sessions() as session:
        return [(row.id, row.youtube_id) for row in session.execute(query)]


def _apply(
    sessions: sessionmaker[Session],
    batch: list[tuple[int, str]],
    items: list[dict[str, Any]],
    now: datetime,
) -> tuple[int, int]:
    """Write the new counts; a video videos.list no longer returns gains no views."""
    by_id = {item.get("id"): item for item in items}
    refreshed = gone = 0
    with sessions.begin() as session:
        for video in session.scalars(select(Video).where(Video.id.in_([i for i, _ in batch]))):
            item = by_id.get(video.youtube_id)
            if item is None:  # removed or made private: nobody can watch it now
                video.views_per_day, video.views_at = 0.0, now
                gone += 1
                log_event(log, "views.gone", video=video.youtube_id)
                continue
            record_views(video, view_count(item), now)
            refreshed += 1
    return refreshed, gone
