"""Re-reading the settings on SIGHUP without emptying the watchlist by accident.

Deploy tools and editors replace a settings file by deleting, truncating or
renaming it; a SIGHUP that lands in that moment used to read "no settings"
and applied it: every channel and query was dropped while the daemon looked
healthy.  A reload is therefore stricter than a start:

* the file the daemon started with must still exist and define something
  (a missing or empty file is refused, like any invalid file);
* a result that watches nothing, where something was watched before, is
  refused unless the file says so on purpose with ``FIND_CHANNELS=none``;
* a file that no longer sets a setting that is in force (a half-written
  ``FIND_CHANNELS=@beta,@gamma`` that lost the API key, the database URL and
  everything else) is refused: a reload may change the watchlist freely, and
  other settings only by writing their new value.  Settings fall back to their
  defaults only at a restart.

A refused reload raises :class:`~bot.errors.SettingsError`; the daemon logs it
as one ``config.reload_rejected`` line and keeps the settings in force.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from dotenv import dotenv_values

from bot.errors import SettingsError
from bot.settings import NO_CHANNELS, Settings, env_name, load_settings, read_environment

#: What a reload may drop by leaving it out of the file: the watchlist.
WATCHLIST = ("channels", "search_queries", "watch_nothing")


def read_settings_file(path: Path | None) -> Settings:
    """Load the settings from ``path`` (resolved at start), refusing a gone or empty file."""
    if path is not None:
        if not path.is_file():
            raise SettingsError(
                f"settings file {path} is missing (being replaced?): restore it, then reload again"
            )
        values = dotenv_values(path)
        if not any(value and value.strip() for value in values.values()):
            raise SettingsError(
                f"settings file {path} is empty (being rewritten?): write it completely, "
                "then reload again"
            )
    return load_settings(path)


def check_watchlist_kept(old: Settings, new: Settings, path: Path | None) -> None:
    """Refuse a reload that would stop watching everything unless that is explicit."""
    had = len(old.channels) + len(old.search_queries)
    if had and not (new.channels or new.search_queries) and not new.watch_nothing:
        where = path or "the environment"
        raise SettingsError(
            f"FIND_CHANNELS and FIND_SEARCH_QUERIES are both empty in {where}: that would stop "
            f"watching all {len(old.channels)} channel(s) and {len(old.search_queries)} "
            f"query(ies); to really watch nothing, write FIND_CHANNELS={NO_CHANNELS}"
        )


def check_nothing_dropped(old: Settings, new: Settings, path: Path | None) -> None:
    """Refuse a reload whose file leaves out settings that are in force (half-written file).

    A setting counts as dropped when its value would change and its variable is
    no longer set anywhere (file or environment), so the new value is only the
    default.  Required ones (the API key, the database URL) are named first.
    """
    raw = read_environment(path)
    dropped = [
        f.name
        for f in fields(Settings)
        if f.name not in WATCHLIST
        and getattr(new, f.name) != getattr(old, f.name)
        and not (raw.get(env_name(f.name)) or "").strip()
    ]
    if not dropped:
        return
    dropped.sort(key=lambda name: name not in ("youtube_api_key", "database_url"))
    names = ", ".join(env_name(name) for name in dropped)
    raise SettingsError(
        f"settings file {path or '(environment)'} no longer sets {names} (half-written?): "
        "reloading would put them back to their defaults; write the file completely, then "
        "reload again (to drop settings on purpose, restart the daemon)"
    )
