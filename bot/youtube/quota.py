"""The YouTube Data API quota ledger: every call is written down with its unit cost.

YouTube gives a project a daily number of units (10,000 by default) and resets
it at midnight Pacific time.  Going over means every call fails until then, so
the bot keeps its own books in the database: before each call it checks that
the call's cost still fits the configured budget, and after it records the cost
and the outcome.  The ledger survives restarts, is shared by every process on
the same database, and is what ``find-bot status`` and the benchmark read.

A ``quotaExceeded`` answer from YouTube (someone else spent the project's
quota, or the budget is set higher than the real quota) closes the day too:
nothing is sent again until the next Pacific midnight, *for the budget in force
when YouTube said so*.  Every ledger entry records that budget, so an operator
who raises ``FIND_QUOTA_DAILY_BUDGET`` (SIGHUP or restart; the Google project
got more quota) reopens the day without touching the ledger; if YouTube refuses
again, the day closes again at the new budget.

The budget is split in two shares, each checked before every call: searches
(``search.list``, 100 units) may spend ``FIND_SEARCH_SHARE`` percent of it when
queries are configured, the channels (resolution, ``videos.list`` lookups,
uploads-playlist reads) the rest.  Neither side can starve the other: a burst
of playlist fallbacks cannot eat the searches' day, and searches cannot eat
the lookups'.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import FindError
from bot.logs import log_event
from bot.store import QuotaEntry, utcnow

log = logging.getLogger("find.quota")

PACIFIC = ZoneInfo("America/Los_Angeles")

#: The ledger's name for the videos.list calls that refresh flagged videos' view counts
#: (bot.youtube.views), kept apart so FIND_VIEWS_BUDGET can be checked against the ledger.
VIEWS_METHOD = "videos.list:views"

#: Unit cost of each Data API method we call
#: (developers.google.com/youtube/v3/determine_quota_cost).
COSTS: dict[str, int] = {
    "channels.list": 1,
    "playlistItems.list": 1,
    "videos.list": 1,
    "search.list": 100,
    VIEWS_METHOD: 1,
}

#: Outcome YouTube uses when the project's real quota is gone for the day.
QUOTA_EXCEEDED = "quotaExceeded"
#: The methods paid from the searches' share; everything else is the channels'.
SEARCH_METHODS = frozenset({"search.list"})
#: QuotaExhausted.scope: the whole day's budget is gone (or YouTube said so) ...
DAY = "day"
#: ... or only one side's share is: the other side goes on.
SHARE = "share"


class QuotaExhausted(FindError):
    """The call does not fit in today's budget (or YouTube said the quota is gone).

    ``scope`` is :data:`DAY` when nothing more can be sent today, :data:`SHARE`
    when only the calling side (searches or channels) has used up its share.
    """

    def __init__(self, message: str, *, resets_at: datetime, scope: str = DAY) -> None:
        super().__init__(message)
        self.resets_at = resets_at
        self.scope = scope


def search_budget(budget: int, share_percent: int, queries_configured: bool) -> int:
    """Units a day reserved for searches: their share, or nothing when no query is watched."""
    return budget * share_percent // 100 if queries_configured else 0


def side_of(method: str) -> str:
    return "searches" if method in SEARCH_METHODS else "channels"


def quota_day(now: datetime) -> str:
    """The quota day a moment belongs to: its date in Pacific time (YYYY-MM-DD)."""
    return now.astimezone(PACIFIC).date().isoformat()


def next_reset(now: datetime) -> datetime:
    """The next Pacific midnight, when YouTube refills the quota (DST-safe)."""
    local = now.astimezone(PACIFIC)
    tomorrow = (local + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PACIFIC)
    return midnight.astimezone(now.tzinfo)


def cost_of(method: str) -> int:
    if method not in COSTS:
        raise KeyError(f"no quota cost known for {method}: add it to bot.youtube.quota.COSTS")
    return COSTS[method]


class QuotaLedger:
    """Reads and writes the ``quota_ledger`` table for one daily budget.

    Every write is its own short transaction, so the books are right even if
    the process dies mid-poll, and no database lock is held while the network
    call runs.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        budget: int,
        *,
        search_units: int = 0,
        worker: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.budget = budget
        #: The searches' share of the budget (see :func:`search_budget`).
        self.search_units = min(search_units, budget)
        self.worker = worker
        self.clock = clock

    def used_today(self) -> int:
        """Units recorded for the current Pacific day."""
        with self.sessions() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(QuotaEntry.units), 0)).where(
                    QuotaEntry.day == quota_day(self.clock())
                )
            )
        return int(total or 0)

    def exceeded_today(self) -> bool:
        """Did YouTube answer ``quotaExceeded`` today at this budget or a larger one?

        Then the day is over.  A ``quotaExceeded`` seen under a smaller budget no
        longer counts once the budget is raised: that is the operator saying the
        project's real quota is larger now.
        """
        with self.sessions() as session:
            hit = session.scalar(
                select(QuotaEntry.id)
                .where(
                    QuotaEntry.day == quota_day(self.clock()),
                    QuotaEntry.outcome == QUOTA_EXCEEDED,
                    or_(QuotaEntry.budget.is_(None), QuotaEntry.budget >= self.budget),
                )
                .limit(1)
            )
        return hit is not None

    def remaining(self, method: str | None = None) -> int:
        """Units that may still be spent today (0 once YouTube said the quota is gone).

        With ``method``, what its side (searches or channels) may still spend:
        the smaller of its share's rest and the day's rest.
        """
        if self.exceeded_today():
            return 0
        used = self.usage_by_method()
        left = max(0, self.budget - sum(used.values()))
        if method is None:
            return left
        return min(left, self._share_left(method, used))

    def share_of(self, method: str) -> int:
        """The daily units of ``method``'s side."""
        if method in SEARCH_METHODS:
            return self.search_units
        return self.budget - self.search_units

    def _share_left(self, method: str, used: dict[str, int]) -> int:
        searches = sum(units for m, units in used.items() if m in SEARCH_METHODS)
        spent = searches if method in SEARCH_METHODS else sum(used.values()) - searches
        return max(0, self.share_of(method) - spent)

    def ensure(self, method: str) -> int:
        """Check that one call of ``method`` fits today's budget and its side's share.

        Raises :class:`QuotaExhausted` rather than letting the call go out, so
        the configured budget (and each share) is never exceeded.
        """
        units = cost_of(method)
        if self.exceeded_today():
            left = 0
            used = self.budget
        else:
            spent = self.usage_by_method()
            used = sum(spent.values())
            left = max(0, self.budget - used)
            share_left = self._share_left(method, spent)
            if units <= left and units > share_left:
                side = side_of(method)
                raise QuotaExhausted(
                    f"the {side}' share of today's YouTube quota is used up "
                    f"({self.share_of(method) - share_left}/{self.share_of(method)} units; "
                    f"{method} needs {units}): they resume after midnight Pacific time; "
                    "FIND_SEARCH_SHARE splits FIND_QUOTA_DAILY_BUDGET between searches and "
                    "channels",
                    resets_at=next_reset(self.clock()),
                    scope=SHARE,
                )
        if units > left:
            raise QuotaExhausted(
                f"daily YouTube quota budget reached ({used}/{self.budget} units "
                f"used, {method} needs {units}): discovery resumes after midnight Pacific time; "
                "raise FIND_QUOTA_DAILY_BUDGET only if the Google project's quota is higher",
                resets_at=next_reset(self.clock()),
            )
        return units

    def record(self, method: str, outcome: str = "ok", *, charged: bool = True) -> int:
        """Write one call (made or attempted) and its cost; return the units recorded.

        ``charged=False`` is for attempts that provably never reached YouTube
        (connection refused, unknown host): they are logged at 0 units, so an
        outage cannot burn the local budget without any real spend.
        """
        units = cost_of(method) if charged else 0
        now = self.clock()
        with self.sessions.begin() as session:
            session.add(
                QuotaEntry(
                    at=now,
                    day=quota_day(now),
                    method=method,
                    units=units,
                    outcome=outcome[:64],
                    worker=self.worker,
                    budget=self.budget,
                )
            )
        if outcome != "ok":
            log_event(log, "quota.call_failed", logging.WARNING, method=method, outcome=outcome)
        return units

    def usage_by_method(self, day: str | None = None) -> dict[str, int]:
        """Units per method for ``day`` (default today), for status and the benchmark."""
        day = day or quota_day(self.clock())
        with self.sessions() as session:
            rows = session.execute(
                select(QuotaEntry.method, func.sum(QuotaEntry.units))
                .where(QuotaEntry.day == day)
                .group_by(QuotaEntry.method)
            ).all()
        return {method: int(units) for method, units in rows}


# ------------------------------------------------------------------ pacing
def search_interval_s(search_units: int, active_queries: int, poll_interval_s: int) -> int:
    """Minimum seconds between two searches of the same query, to spread them over the day.

    The searches' share of the budget is divided evenly between the queries; a
    query is searched at most once per poll.  A share too small for one search
    of each query a day gives intervals over a day.
    """
    if active_queries == 0:
        return poll_interval_s
    searches_per_day = search_units / cost_of("search.list") / active_queries
    if searches_per_day <= 0:
        return 86400
    return max(poll_interval_s, math.ceil(86400 / searches_per_day))
