"""Make the database's channel and query rows match the configuration.

The configuration (``FIND_CHANNELS``, ``FIND_SEARCH_QUERIES``) says what to
watch; the rows remember what was learned about each item (resolved channel
id, uploads playlist, last seen video, last successful search).  Syncing
never deletes a row: an item removed from the configuration is only marked
inactive, so adding it back later resumes where it stopped instead of paying
again to resolve it and re-reading its backlog.

The daemon calls :func:`sync_watchlist` at start and on SIGHUP (reload).

An empty watchlist is only applied when the settings say so on purpose
(``FIND_CHANNELS=none``): a daemon restarted without its settings file (the
API key still in the environment) would otherwise deactivate every channel
and query on its first sync.  Reloads have the same guard (:mod:`bot.service.reload`);
this one covers every other way in (start, a discover pass, a standby taking over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import SettingsError
from bot.logs import log_event
from bot.settings import NO_CHANNELS, Settings
from bot.store import Channel, SearchQuery

log = logging.getLogger("find.watchlist")


@dataclass
class WatchlistChange:
    """What one sync changed, as configured strings (channel ids/@handles, query texts)."""

    added_channels: list[str] = field(default_factory=list)
    removed_channels: list[str] = field(default_factory=list)
    added_queries: list[str] = field(default_factory=list)
    removed_queries: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            (self.added_channels, self.removed_channels, self.added_queries, self.removed_queries)
        )

    def __str__(self) -> str:
        if not self.changed:
            return "watchlist unchanged"
        parts = [
            f"{label} {len(items)} {noun}"
            for label, items, noun in (
                ("added", self.added_channels, "channel(s)"),
                ("removed", self.removed_channels, "channel(s)"),
                ("added", self.added_queries, "query(ies)"),
                ("removed", self.removed_queries, "query(ies)"),
            )
            if items
        ]
        return "watchlist: " + ", ".join(parts)


#: Said at `run` start-up and by `status` when nothing is watched (issue 20 item 4).
EMPTY_WATCHLIST = (
    "nothing to watch: no channel (FIND_CHANNELS) and no search query (FIND_SEARCH_QUERIES), "
    "so discovery finds nothing; add some to the settings and reload (SIGHUP) or restart"
)


def check_not_emptied(settings: Settings, session: Session) -> None:
    """Refuse settings that watch nothing while the database still watches something.

    Raises a one-line :class:`SettingsError` unless ``FIND_CHANNELS=none`` says
    the empty watchlist is intended.
    """
    if settings.channels or settings.search_queries or settings.watch_nothing:
        return
    channels = len(session.scalars(select(Channel.id).where(Channel.active.is_(True))).all())
    queries = len(session.scalars(select(SearchQuery.id).where(SearchQuery.active.is_(True))).all())
    if channels or queries:
        raise SettingsError(
            "FIND_CHANNELS and FIND_SEARCH_QUERIES are both empty (settings file missing?), "
            f"but the database watches {channels} channel(s) and {queries} query(ies): "
            "refusing to stop watching them; restore the settings file, or write "
            f"FIND_CHANNELS={NO_CHANNELS} to really watch nothing"
        )


def sync_watchlist(settings: Settings, session: Session) -> WatchlistChange:
    """Add, re-activate and deactivate rows so the active set equals the settings.

    Runs inside the caller's transaction (the caller commits).  Raises
    :class:`SettingsError` (changing nothing) for an accidental empty watchlist,
    see :func:`check_not_emptied`.
    """
    check_not_emptied(settings, session)
    change = WatchlistChange()
    _sync_channels(settings.channels, session, change)
    _sync_queries(settings.search_queries, session, change)
    if change.changed:
        log_event(
            log,
            "watchlist.synced",
            added_channels=len(change.added_channels),
            removed_channels=len(change.removed_channels),
            added_queries=len(change.added_queries),
            removed_queries=len(change.removed_queries),
        )
    return change


def _sync_channels(configured: tuple[str, ...], session: Session, change: WatchlistChange) -> None:
    rows = {row.configured_as: row for row in session.scalars(select(Channel))}
    _sync(
        configured,
        rows,
        lambda name: Channel(configured_as=name, active=True),
        session,
        change.added_channels,
        change.removed_channels,
    )


def _sync_queries(configured: tuple[str, ...], session: Session, change: WatchlistChange) -> None:
    rows = {row.query: row for row in session.scalars(select(SearchQuery))}
    _sync(
        configured,
        rows,
        lambda text: SearchQuery(query=text, active=True),
        session,
        change.added_queries,
        change.removed_queries,
    )


def _sync(
    configured: tuple[str, ...],
    rows: dict[str, Channel] | dict[str, SearchQuery],
    make_row: Callable[[str], Channel | SearchQuery],
    session: Session,
    added: list[str],
    removed: list[str],
) -> None:
    """Activate or create what the config names, deactivate what it no longer names.

    Rows are never deleted: a channel that comes back keeps its cached uploads
    playlist and last seen video, so re-adding it costs no back catalogue.
    """
    for key in configured:
        row = rows.get(key)
        if row is None:
            session.add(make_row(key))
            added.append(key)
        elif not row.active:
            row.active = True
            added.append(key)
    wanted = set(configured)
    for key, row in rows.items():
        if row.active and key not in wanted:
            row.active = False
            removed.append(key)
    session.flush()
