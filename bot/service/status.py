"""What ``find-bot status`` shows: the state of the pipeline, read from the database only.

Everything comes from the tables the daemons write (videos, workers, quota
ledger, poll runs), so status works from any machine that can reach the
database and says the same thing whichever daemon is running where.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.db import session_scope
from bot.hostfault import HOST_FAULT_KINDS
from bot.settings import Settings
from bot.stages.discover.lookup import BATCH as LOOKUP_BATCH
from bot.stages.discover.watchlist import EMPTY_WATCHLIST
from bot.store import (
    STAGE_INPUT,
    Analysis,
    Channel,
    PollRun,
    QuotaEntry,
    ReviewDecision,
    SearchQuery,
    Video,
    VideoState,
    Worker,
    utcnow,
)
from bot.terminal import printable
from bot.youtube.quota import (
    QUOTA_EXCEEDED,
    SEARCH_METHODS,
    VIEWS_METHOD,
    next_reset,
    search_budget,
)
from bot.youtube.quota import quota_day as _quota_day

#: A worker not seen for this long is listed as gone (its heartbeat is every 10 s).
WORKER_STALE_S = 120
RECENT_ERRORS = 10
#: The window of the per-channel flag and dismiss rates (drift signals).
DRIFT_DAYS = 7
#: Channels listed in the text status (all of them in --json and the metrics).
DRIFT_LINES = 10


def quota_day(now: datetime | None = None) -> str:
    """YouTube's quota day (:func:`bot.youtube.quota.quota_day`), for now by default."""
    return _quota_day(now or utcnow())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def collect_status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Queue depth per stage, recent errors, quota, bundle, last poll and workers, as a dict."""
    now = now or utcnow()
    with session_scope(settings) as session:
        states = dict(
            session.execute(select(Video.state, func.count()).group_by(Video.state)).all()
        )
        stages = {}
        for stage, state in STAGE_INPUT.items():
            rows = session.execute(
                select(Video.lease_expires_at, Video.next_attempt_at).where(
                    Video.state == state.value
                )
            ).all()
            leased = sum(1 for lease, _ in rows if lease is not None and lease >= now)
            waiting = sum(
                1
                for lease, retry in rows
                if (lease is None or lease < now) and retry is not None and retry > now
            )
            stages[stage] = {
                "queued": len(rows),
                "in_progress": leased,
                "backing_off": waiting,
                "ready": len(rows) - leased - waiting,
            }
        errors = [
            {
                "video": v.youtube_id,
                "state": v.state,
                "kind": v.last_error_kind,
                "attempts": v.attempts,
                "error": (v.last_error or "")[:300],
                "at": _iso(v.updated_at),
            }
            for v in session.scalars(
                select(Video)
                .where(Video.last_error.is_not(None))
                .order_by(Video.updated_at.desc())
                .limit(RECENT_ERRORS)
            )
        ]
        postponed = session.scalars(
            select(Video)
            .where(
                Video.state.in_([state.value for state in STAGE_INPUT.values()]),
                Video.last_error_kind.in_(HOST_FAULT_KINDS),
            )
            .order_by(Video.updated_at.desc())
        ).all()
        host_faults = {
            "videos": len(postponed),
            "kinds": sorted({v.last_error_kind for v in postponed}),
            "latest": None if not postponed else (postponed[0].last_error or "")[:500],
            "at": None if not postponed else _iso(postponed[0].updated_at),
        }
        day = quota_day(now)
        by_method = dict(
            session.execute(
                select(QuotaEntry.method, func.coalesce(func.sum(QuotaEntry.units), 0))
                .where(QuotaEntry.day == day)
                .group_by(QuotaEntry.method)
            ).all()
        )
        used = sum(int(units) for units in by_method.values())
        search_used = sum(int(u) for m, u in by_method.items() if m in SEARCH_METHODS)
        channels = _channel_status(session, now)
        refused = session.scalars(
            select(QuotaEntry)
            .where(QuotaEntry.day == day, QuotaEntry.outcome == QUOTA_EXCEEDED)
            .order_by(QuotaEntry.budget.desc().nulls_first(), QuotaEntry.id.desc())
            .limit(1)
        ).first()
        searches = [
            {
                "query": q.query,
                "last_searched_at": _iso(q.last_polled_at),
                "last_success_at": _iso(q.last_success_at),
                "waiting": q.waiting_reason,
                "next_search_at": _iso(q.next_search_at),
                "last_error": q.last_error,
            }
            for q in session.scalars(
                select(SearchQuery).where(SearchQuery.active.is_(True)).order_by(SearchQuery.id)
            )
        ]
        last_poll = session.scalars(
            select(PollRun).order_by(PollRun.started_at.desc()).limit(1)
        ).first()
        workers = [
            {
                "id": w.id,
                "role": w.role,
                "host": w.hostname,
                "pid": w.pid,
                "bundle": f"{w.bundle_id} {w.bundle_version}" if w.bundle_id else None,
                "started_at": _iso(w.started_at),
                "last_seen_at": _iso(w.last_seen_at),
                "alive": w.status != "stopped"
                and not w.status.startswith("failed")
                and w.last_seen_at >= now - timedelta(seconds=WORKER_STALE_S),
                "status": w.status,
            }
            for w in session.scalars(
                select(Worker)
                .where(Worker.last_seen_at >= now - timedelta(days=1))
                .order_by(Worker.last_seen_at.desc())
            )
        ]
        bundles = [
            {"bundle": bid, "version": ver, "analyses": n}
            for bid, ver, n in session.execute(
                select(Analysis.bundle_id, Analysis.bundle_version, func.count())
                .group_by(Analysis.bundle_id, Analysis.bundle_version)
                .order_by(func.max(Analysis.id).desc())
            ).all()
        ]
        drift = collect_drift(session, now)
    in_use = sorted({w["bundle"] for w in workers if w["alive"] and w["bundle"]})
    return {
        "database": settings.redacted_database_url,
        "generated_at": _iso(now),
        "states": {s.value: int(states.get(s.value, 0)) for s in VideoState},
        "stages": stages,
        "review_queue": int(states.get(VideoState.FLAGGED.value, 0)),
        "recent_errors": errors,
        "host_faults": host_faults,
        "quota": {
            **_quota_status(day, int(used or 0), settings.quota_daily_budget, refused, now),
            **_share_status(settings, search_used, used - search_used),
            # The flagged videos' view-count refresh, paid from the channels' share.
            "views": {"used": int(by_method.get(VIEWS_METHOD, 0)), "budget": settings.views_budget},
        },
        "channels": channels,
        "searches": searches,
        "watchlist_empty": channels["watched"] == 0 and not searches,
        "enrich_wait_s": settings.enrich_wait_s,
        "model": {
            "configured": str(settings.model_bundle),
            "configured_name": _configured_bundle(settings),
            "active": _active_bundle(settings),
            "in_use": in_use,
            "analyses_by_bundle": bundles,
        },
        "drift": drift,
        "last_poll": None
        if last_poll is None
        else {
            "started_at": _iso(last_poll.started_at),
            "finished_at": _iso(last_poll.finished_at),
            "new_videos": last_poll.new_videos,
            "units": last_poll.units,
            "errors": last_poll.errors,
            "note": last_poll.note,
        },
        "workers": workers,
    }


def _quota_status(
    day: str, used: int, budget: int, refused: QuotaEntry | None, now: datetime
) -> dict[str, Any]:
    """Today's use, and whether YouTube's quotaExceeded closed the day for this budget."""
    closed = refused is not None and (refused.budget is None or refused.budget >= budget)
    return {
        "day": day,
        "used": used,
        "budget": budget,
        "exceeded_at": _iso(refused.at) if refused else None,
        "exceeded_budget": refused.budget if refused else None,
        "closed_until": _iso(next_reset(now)) if closed or used >= budget else None,
    }


def _share_status(settings: Settings, search_used: int, channel_used: int) -> dict[str, Any]:
    """Today's spend of each side against its share of the budget (bot.youtube.quota)."""
    share = search_budget(
        settings.quota_daily_budget, settings.search_share, bool(settings.search_queries)
    )
    return {
        "searches": {"used": search_used, "share": share, "percent": settings.search_share},
        "channels": {"used": channel_used, "share": settings.quota_daily_budget - share},
    }


def _channel_status(session: Any, now: datetime) -> dict[str, Any]:
    """How the watched channels are being read: feeds, playlist fallbacks, push, lookups."""
    from bot.stages.discover.feeds import FALLBACK_AFTER, push_active

    rows = session.scalars(select(Channel).where(Channel.active.is_(True))).all()
    on_playlist = [r for r in rows if r.playlist_due or (r.feed_failures or 0) >= FALLBACK_AFTER]
    failing = [r for r in rows if 0 < (r.feed_failures or 0) < FALLBACK_AFTER]
    read = [r.feed_read_at for r in rows if r.feed_read_at is not None]
    pushed = [r for r in rows if push_active(r, now)]
    pending = [r for r in rows if r.push_state in ("subscribing", "unsubscribing")]
    refused = [r for r in rows if r.push_state in ("denied", "failed")]
    expiring = [r.push_expires_at for r in pushed if r.push_expires_at is not None]
    waiting, first_due = session.execute(
        select(func.count(), func.min(Video.lookup_due_at)).where(Video.lookup_due_at.is_not(None))
    ).one()
    errors = [
        {"channel": r.configured_as, "error": (r.last_error or r.push_error or "")[:300]}
        for r in rows
        if r.last_error or (r.push_error and r.push_state in ("denied", "failed"))
    ][:RECENT_ERRORS]
    return {
        "watched": len(rows),
        "unresolved": sum(1 for r in rows if r.uploads_playlist_id is None),
        "feeds_ok": sum(1 for r in rows if r.feed_read_at is not None) - len(failing),
        "feeds_failing": len(failing),
        "on_playlist": len(on_playlist),
        "last_feed_read": _iso(max(read)) if read else None,
        "push_active": len(pushed),
        "push_pending": len(pending),
        "push_refused": len(refused),
        "push_first_expiry": _iso(min(expiring)) if expiring else None,
        "awaiting_lookup": int(waiting or 0),
        # The lookups go out when 50 wait or the oldest is due, whichever comes first
        # (bot.stages.discover.lookup): so by this time at the latest.
        "lookup_release_at": None
        if not waiting
        else _iso(now if waiting >= LOOKUP_BATCH or first_due <= now else first_due),
        "errors": errors,
    }


def collect_drift(session: Any, now: datetime, days: int = DRIFT_DAYS) -> list[dict[str, Any]]:
    """Per channel (or source, for videos without one) over the last ``days`` days.

    ``analysed``: videos with an analysis in the window; ``flagged``: those of them that
    went to review (flagged, confirmed or dismissed now); ``decisions``/``dismissed``:
    review decisions made in the window on the group's videos (a reversal counts as a
    decision).  A channel that floods the queue with false alarms shows a high flag rate
    *and* a high dismiss rate.  Busiest groups first.
    """
    since = now - timedelta(days=days)
    group = func.coalesce(Video.channel_youtube_id, "source:" + Video.source)
    rows: dict[str, dict[str, Any]] = {}

    def row(key: str, title: str | None) -> dict[str, Any]:
        return rows.setdefault(
            key,
            {
                "group": key,
                "title": title,
                "analysed": 0,
                "flagged": 0,
                "decisions": 0,
                "dismissed": 0,
            },
        )

    review = (VideoState.FLAGGED.value, VideoState.CONFIRMED.value, VideoState.DISMISSED.value)
    analysed = (
        select(
            group, func.max(Video.channel_title), Video.state, func.count(func.distinct(Video.id))
        )
        .join(Analysis, Analysis.video_id == Video.id)
        .where(Analysis.created_at >= since)
        .group_by(group, Video.state)
    )
    for key, title, state, n in session.execute(analysed).all():
        r = row(key, title)
        r["analysed"] += int(n)
        if state in review:
            r["flagged"] += int(n)
    decided = (
        select(group, func.max(Video.channel_title), ReviewDecision.decision, func.count())
        .join(ReviewDecision, ReviewDecision.video_id == Video.id)
        .where(ReviewDecision.decided_at >= since)
        .group_by(group, ReviewDecision.decision)
    )
    for key, title, decision, n in session.execute(decided).all():
        r = row(key, title)
        r["decisions"] += int(n)
        if decision == VideoState.DISMISSED.value:
            r["dismissed"] += int(n)
    for r in rows.values():
        r["flag_rate"] = round(r["flagged"] / r["analysed"], 4) if r["analysed"] else None
        r["dismiss_rate"] = round(r["dismissed"] / r["decisions"], 4) if r["decisions"] else None
    return sorted(rows.values(), key=lambda r: (-r["flagged"], -r["analysed"], r["group"]))


def _active_bundle(settings: Settings) -> dict[str, Any] | None:
    """The bundle analyses use now: an adapted version (with when and from what) or the base."""
    try:
        from model.bundle import read_manifest
        from model.versions import active_bundle, active_entry, bundles_root

        path = active_bundle(settings.data_dir, settings.model_bundle)
        if path is None:
            return None
        manifest = read_manifest(path)
        entry = active_entry(bundles_root(settings.data_dir), settings.model_bundle)
    except Exception as exc:  # status must still print: say what is wrong instead
        return {"error": str(exc)}
    return {
        "name": manifest.get("name"),
        "version": manifest.get("version"),
        "path": str(path),
        "adapted": entry is not None,
        "promoted_at": None if entry is None else entry.get("promoted_at"),
    }


def _configured_bundle(settings: Settings) -> str | None:
    """Name and version from the configured bundle's manifest (cheap: no weights loaded)."""
    try:
        from model.bundle import read_manifest

        manifest = read_manifest(settings.model_bundle)
    except Exception:
        return None
    return f"{manifest.get('name')} {manifest.get('version')}"


def _duration(seconds: int) -> str:
    """``10800`` -> ``3h``: as the setting would be written."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _channels_line(channels: dict[str, Any]) -> str:
    line = f"channels: {channels['watched']} watched"
    if channels["unresolved"]:
        line += f" ({channels['unresolved']} not resolved yet)"
    if channels["last_feed_read"]:
        line += (
            f"; feeds: {channels['feeds_ok']} ok, {channels['feeds_failing']} failing, "
            f"{channels['on_playlist']} read through the uploads playlist instead; "
            f"last feed read {channels['last_feed_read']}"
        )
    elif channels["on_playlist"]:
        line += f"; {channels['on_playlist']} read through the uploads playlist"
    return line


def render_status(status: dict[str, Any]) -> str:
    """Human-readable status, a screenful."""
    lines = [f"database: {status['database']}  (at {status['generated_at']})", ""]
    lines.append("queue:")
    for stage, row in status["stages"].items():
        lines.append(
            f"  {stage:<9} {row['queued']:>6} queued  ({row['ready']} ready, "
            f"{row['in_progress']} in progress, {row['backing_off']} waiting to retry)"
        )
    lines.append(f"  review    {status['review_queue']:>6} flagged, waiting for a reviewer")
    states = status["states"]
    totals = ", ".join(f"{n} {state}" for state, n in states.items() if n)
    lines.append(f"  totals    {totals or 'no videos yet'}")
    faults = status["host_faults"]
    if faults["videos"]:
        lines += [
            "",
            f"HOST FAULT: {faults['videos']} video(s) postponed by a fault of this machine "
            f"({', '.join(faults['kinds'])}), not of the videos; they use no attempts and "
            "retry by themselves once it is fixed",
            f"  latest ({faults['at']}): {faults['latest']}",
        ]
    quota = status["quota"]
    channels = status["channels"]
    lines += ["", _channels_line(channels)]
    if status["watchlist_empty"]:
        lines.append(f"watchlist: {EMPTY_WATCHLIST}")
    if channels["push_active"] or channels["push_pending"] or channels["push_refused"]:
        lines.append(
            f"push:     {channels['push_active']} subscription(s) live, "
            f"{channels['push_pending']} waiting for the hub, {channels['push_refused']} "
            f"refused or failed; first renewal due before {channels['push_first_expiry']}"
        )
    wait = _duration(status["enrich_wait_s"])
    if channels["awaiting_lookup"]:
        lines.append(
            f"lookups:  {channels['awaiting_lookup']} video(s) waiting for a shared "
            f"videos.list lookup (FIND_ENRICH_WAIT={wait}), released by "
            f"{channels['lookup_release_at']}; downloads do not wait for it"
        )
    else:
        lines.append(f"lookups:  none waiting (FIND_ENRICH_WAIT={wait})")
    searches, channel_share = quota["searches"], quota["channels"]
    lines += [
        f"quota:    {quota['used']} / {quota['budget']} units used today ({quota['day']} Pacific)",
        f"          searches {searches['used']} / {searches['share']} units "
        f"(FIND_SEARCH_SHARE={searches['percent']}%), channels {channel_share['used']} / "
        f"{channel_share['share']}, of which view counts {quota['views']['used']} / "
        f"{quota['views']['budget']} (FIND_VIEWS_BUDGET)",
    ]
    if quota["exceeded_at"]:
        lines.append(
            f"          YouTube answered quotaExceeded at {quota['exceeded_at']} "
            f"(budget then {quota['exceeded_budget'] or '?'}); a larger "
            "FIND_QUOTA_DAILY_BUDGET reopens the day"
        )
    if quota["closed_until"]:
        lines.append(f"          discovery paused until {quota['closed_until']} (the quota reset)")
    for q in status["searches"]:
        when = q["last_searched_at"] or "never"
        line = f"search:   {q['query']!r} last searched {when}"
        if q["waiting"]:
            line += f"; {q['waiting']}"
            if q["next_search_at"]:
                line += f"; next search by {q['next_search_at']}"
        lines.append(line)
    poll = status["last_poll"]
    if poll is None:
        lines.append("last poll: never")
    else:
        lines.append(
            f"last poll: {poll['started_at']} ({poll['new_videos']} new videos, "
            f"{poll['units']} units, {poll['errors']} errors)"
            + (f" {poll['note']}" if poll["note"] else "")
        )
    model = status["model"]
    lines.append(
        f"model:    in use {', '.join(model['in_use']) or 'none (no analyse worker running)'}; "
        f"configured {model['configured_name'] or model['configured']}"
    )
    active = model.get("active") or {}
    if active.get("error"):
        lines.append(f"          active bundle: {active['error']}")
    elif active:
        how = f"adapted, promoted {active['promoted_at']}" if active["adapted"] else "not adapted"
        lines.append(f"          active {active['name']} {active['version']} ({how})")
    for row in model["analyses_by_bundle"]:
        lines.append(f"          {row['analyses']} analyses by {row['bundle']} {row['version']}")
    lines += ["", f"drift (last {DRIFT_DAYS} days, per channel or source):"]
    if not status["drift"]:
        lines.append("  nothing analysed or decided")
    for r in status["drift"][:DRIFT_LINES]:
        name = r["group"] + (f" ({r['title']})" if r["title"] else "")
        flag_rate = "n/a" if r["flag_rate"] is None else f"{r['flag_rate']:.0%}"
        dismiss_rate = "n/a" if r["dismiss_rate"] is None else f"{r['dismiss_rate']:.0%}"
        lines.append(
            f"  {name}: {r['analysed']} analysed, {r['flagged']} flagged ({flag_rate}); "
            f"{r['decisions']} decisions, {r['dismissed']} dismissed ({dismiss_rate})"
        )
    if len(status["drift"]) > DRIFT_LINES:
        lines.append(f"  ... {len(status['drift']) - DRIFT_LINES} more (find-bot status --json)")
    lines += ["", "workers:"]
    if not status["workers"]:
        lines.append("  none seen in the last day")
    for w in status["workers"]:
        if w["alive"]:
            state = "up"
        elif w["status"] == "stopped" or w["status"].startswith("failed"):
            state = w["status"].split(" ")[0]
        else:
            state = "gone"
        lines.append(
            f"  {w['id']:<28} {w['role']:<9} {state:<7} seen {w['last_seen_at']}  {w['status']}"
        )
    if status["channels"]["errors"]:
        lines += ["", "channel errors:"]
        for e in status["channels"]["errors"]:
            lines.append(f"  {e['channel']}: {e['error']}")
    lines += ["", "recent errors:"]
    if not status["recent_errors"]:
        lines.append("  none")
    for e in status["recent_errors"]:
        lines.append(
            f"  {e['at']}  {e['video']:<12} {e['state']:<10} {e['kind'] or '-':<12} "
            f"attempt {e['attempts']}: {e['error']}"
        )
    # Channel names, queries and error texts come from outside: one line each, no controls.
    return "\n".join(printable(line) for line in lines)
