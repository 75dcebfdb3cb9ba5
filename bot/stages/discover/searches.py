"""Watched search queries: ``search.list`` at 100 units a call, paced by their share of the quota.

Each due query is searched for videos published after its last good poll (with an
overlap: YouTube indexes new videos late), at most ``FIND_SEARCH_SHARE`` of the daily
budget over the day, so the channels never starve. Why a query waits, and until when,
is written to its row for ``find-bot status``; ``last_success_at`` moves only after
what the search found is stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.settings import Settings
from bot.stages.discover.lookup import Candidate, record_finds
from bot.stages.discover.report import DiscoverReport
from bot.store import SearchQuery
from bot.youtube.client import ApiKeyError, YouTubeClient, YouTubeError, parse_rfc3339
from bot.youtube.ids import checked_video_id
from bot.youtube.quota import DAY, QuotaExhausted, cost_of, next_reset, search_interval_s

log = logging.getLogger("find.discover")


#: Pages of 50 results per search (100 units each).
MAX_SEARCH_PAGES = 2

#: Searches look back this far past the last good poll: YouTube indexes new videos with a delay.
SEARCH_OVERLAP = timedelta(hours=1)

#: First search of a query, when FIND_MIN_PUBLISHED is not set, looks back this far.
FIRST_SEARCH_WINDOW = timedelta(days=1)


@dataclass
class _QueryTask:
    id: int
    query: str
    last_success_at: datetime | None


def run_searches(
    settings: Settings,
    sessions: sessionmaker[Session],
    client: YouTubeClient,
    now: datetime,
    report: DiscoverReport,
) -> None:
    share = client.ledger.search_units
    cost = cost_of("search.list")
    for task in _queries_to_search(settings, sessions, now, share):
        reason: str | None = None
        next_at: datetime | None = None
        if share < cost:
            reason = (
                f"never: FIND_SEARCH_SHARE={settings.search_share}% of "
                f"FIND_QUOTA_DAILY_BUDGET={settings.quota_daily_budget} is {share} units a "
                f"day, below the {cost} one search costs; raise either"
            )
        else:
            try:
                client.ledger.ensure("search.list")
            except QuotaExhausted as exc:
                if exc.scope == DAY:
                    raise
                left = client.ledger.remaining("search.list")
                reason = (
                    f"deferred: the searches' share of today's quota is used up "
                    f"({share - left}/{share} units); waits for the quota reset"
                )
                next_at = next_reset(now)
        if reason is not None:
            report.queries_deferred += 1
            log_event(log, "discover.search_deferred", query=task.query, reason=reason)
            _query_waits(sessions, task.id, reason, next_at)
            continue
        _mark_query_polled(sessions, task, now)
        try:
            candidates = _search(client, task, settings.min_published_at, now)
        except ApiKeyError:
            raise
        except QuotaExhausted as exc:
            if exc.scope == DAY:
                raise
            report.queries_deferred += 1
            _query_waits(sessions, task.id, f"deferred: {exc}", next_reset(now))
            continue
        except YouTubeError as exc:
            _query_failed(sessions, task, str(exc), report)
            continue
        report.queries_polled += 1
        report.found |= record_finds(settings, sessions, candidates, now, lookup_due=now)
        with sessions.begin() as session:
            row = session.get(SearchQuery, task.id)
            if row is not None:
                row.last_success_at = now
                row.last_error = None


def _queries_to_search(
    settings: Settings, sessions: sessionmaker[Session], now: datetime, share: int
) -> list[_QueryTask]:
    """Active queries whose turn has come, given how often the searches' share lets each run.

    The others are marked as waiting for their turn (reason and time, for status).
    """
    with sessions() as session:
        rows = session.scalars(
            select(SearchQuery)
            .where(SearchQuery.active.is_(True))
            .order_by(
                SearchQuery.last_polled_at.is_not(None), SearchQuery.last_polled_at, SearchQuery.id
            )
        ).all()
        interval = timedelta(seconds=search_interval_s(share, len(rows), settings.poll_interval_s))
        # A little slack so a poll that starts a few seconds early still counts.
        slack = timedelta(seconds=min(60, settings.poll_interval_s // 10))
        due, waiting = [], []
        for r in rows:
            task = _QueryTask(r.id, r.query, r.last_success_at)
            if r.last_polled_at is None or now - r.last_polled_at >= interval - slack:
                due.append(task)
            else:
                waiting.append((task, r.last_polled_at + interval))
    hours = interval.total_seconds() / 3600
    for task, due_at in waiting:
        _query_waits(
            sessions,
            task.id,
            f"pacing: the searches' share ({share} units a day, FIND_SEARCH_SHARE="
            f"{settings.search_share}%) allows one search of each query every {hours:.1f} h",
            due_at,
        )
    return due


def _search(
    client: YouTubeClient, task: _QueryTask, min_published: datetime | None, now: datetime
) -> list[Candidate]:
    """Videos newer than the query's last good poll (with overlap), newest first."""
    if task.last_success_at is not None:
        after = task.last_success_at - SEARCH_OVERLAP
    else:
        after = now - FIRST_SEARCH_WINDOW
    if min_published and min_published > after:
        after = min_published
    found: list[Candidate] = []
    token: str | None = None
    for _page in range(MAX_SEARCH_PAGES):
        response = client.search_page(task.query, after, token)
        for item in response.get("items") or []:
            raw_id = (item.get("id") or {}).get("videoId")
            if not raw_id:
                continue
            video_id = checked_video_id(raw_id, source="search.list", logger=log)
            if video_id is None:
                continue
            snippet = item.get("snippet") or {}
            found.append(
                Candidate(
                    video_id=video_id,
                    via=f"query:{task.query}"[:520],
                    published_at=parse_rfc3339(snippet.get("publishedAt")),
                    title=snippet.get("title"),
                    channel_id=snippet.get("channelId"),
                    channel_title=snippet.get("channelTitle"),
                )
            )
        token = response.get("nextPageToken")
        if not token:
            break
    return found


def _mark_query_polled(sessions: sessionmaker[Session], task: _QueryTask, now: datetime) -> None:
    with sessions.begin() as session:
        row = session.get(SearchQuery, task.id)
        if row is not None:
            row.last_polled_at = now
            row.waiting_reason = row.next_search_at = None


def _query_waits(
    sessions: sessionmaker[Session], query_id: int, reason: str, next_at: datetime | None
) -> None:
    """Write down why a query was not searched now and when it will be (for status)."""
    with sessions.begin() as session:
        row = session.get(SearchQuery, query_id)
        if row is not None:
            row.waiting_reason = reason[:1000]
            row.next_search_at = next_at


def queries_wait_for_quota(sessions: sessionmaker[Session], resume_at: datetime) -> None:
    """The pass stopped on the quota: every active query waits for the reset."""
    with sessions.begin() as session:
        for row in session.scalars(select(SearchQuery).where(SearchQuery.active.is_(True))):
            row.waiting_reason = (
                "the day's quota is used up; searches resume after the reset "
                "(or when FIND_QUOTA_DAILY_BUDGET is raised)"
            )
            if row.next_search_at is None or row.next_search_at < resume_at:
                row.next_search_at = resume_at


def _query_failed(
    sessions: sessionmaker[Session], task: _QueryTask, message: str, report: DiscoverReport
) -> None:
    text = f"query {task.query!r}: {message}"
    with sessions.begin() as session:
        row = session.get(SearchQuery, task.id)
        if row is not None:
            row.last_error = text[:2000]
    report.errors.append(text)
    log_event(log, "discover.query_failed", logging.WARNING, query=task.query, error=message)
