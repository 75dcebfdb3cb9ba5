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

#: Unit cost of each Data API method we call
#: (developers.google.com/youtube/v3/determine_quota_cost).
COSTS: dict[str, int] = {
    "channels.list": 1,
    "playlistItems.list": 1,
    "videos.list": 1,
    "search.list": 100,
}

#: Outcome YouTube uses when the project's real quota is gone for the day.
QUOTA_EXCEEDED = "quotaExceeded"


class QuotaExhausted(FindError):
    """The call does not fit in today's budget (or YouTube said the quota is gone)."""

    def __init__(self, message: str, *, resets_at: datetime) -> None:
        super().__init__(message)
        self.resets_at = resets_at


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
        raise KeyError(f"no quota cost known for {method}: add it to bot.quota.COSTS")
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
        worker: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.budget = budget
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

    def remaining(self) -> int:
        """Units that may still be spent today (0 once YouTube said the quota is gone)."""
        if self.exceeded_today():
            return 0
        return max(0, self.budget - self.used_today())

    def ensure(self, method: str) -> int:
        """Check that one call of ``method`` fits today's budget; return its cost.

        Raises :class:`QuotaExhausted` rather than letting the call go out, so
        the configured budget is never exceeded.
        """
        units = cost_of(method)
        left = self.remaining()
        if units > left:
            now = self.clock()
            raise QuotaExhausted(
                f"daily YouTube quota budget reached ({self.budget - left}/{self.budget} units "
                f"used, {method} needs {units}): discovery resumes after midnight Pacific time; "
                "raise FIND_QUOTA_DAILY_BUDGET only if the Google project's quota is higher",
                resets_at=next_reset(now),
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
def polls_left_today(now: datetime, poll_interval_s: int) -> int:
    """How many more polls run before the quota resets (at least this one)."""
    seconds = (next_reset(now) - now).total_seconds()
    return max(1, math.ceil(seconds / poll_interval_s))


def channel_reserve(active_channels: int, now: datetime, poll_interval_s: int) -> int:
    """Units kept back so every channel can still be polled until the reset.

    A channel poll costs one ``playlistItems.list`` page (plus a share of a
    ``videos.list`` batch); searches cost 100.  Keeping this reserve is how
    cheap channels are served before expensive searches when the budget is near.
    """
    if active_channels == 0:
        return 0
    polls = polls_left_today(now, poll_interval_s)
    per_poll = active_channels + math.ceil(active_channels / 50)
    return polls * per_poll


def search_interval_s(
    budget: int, active_channels: int, active_queries: int, poll_interval_s: int
) -> int:
    """Minimum seconds between two searches of the same query, to spread them over the day.

    What is left of the budget after a day of channel polls is shared evenly
    between the queries; with too little left a query is searched less often
    than every poll, never more often.
    """
    if active_queries == 0:
        return poll_interval_s
    polls_per_day = math.ceil(86400 / poll_interval_s)
    channel_units = polls_per_day * (active_channels + math.ceil(active_channels / 50))
    spare = max(0, budget - channel_units)
    searches_per_day = spare / cost_of("search.list") / active_queries
    if searches_per_day <= 0:
        return 86400
    return max(poll_interval_s, math.ceil(86400 / searches_per_day))
