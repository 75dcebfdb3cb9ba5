"""``find-bot db``: create and upgrade the database schema (Alembic)."""

from __future__ import annotations

import argparse
import sys

from bot.commands.common import ask, settings_from_args
from bot.terminal import printable


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="create, upgrade and inspect the database schema")
    db_sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    up = db_sub.add_parser("upgrade", help="apply migrations (creates the database if needed)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    up.set_defaults(handler=_upgrade)

    down = db_sub.add_parser("downgrade", help="revert migrations to REVISION (e.g. base)")
    down.add_argument("revision", help="target revision, or 'base' to drop everything")
    down.add_argument(
        "--yes",
        action="store_true",
        help="do not ask: a downgrade drops the tables and columns later migrations added, "
        "with their data (without --yes it asks on a terminal and refuses otherwise)",
    )
    down.set_defaults(handler=_downgrade)

    current = db_sub.add_parser("current", help="show the database's revision and the code's")
    current.set_defaults(handler=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from bot import db

    settings = settings_from_args(args)
    db.upgrade(settings, args.revision)
    url = printable(settings.redacted_database_url)  # a SQLite path may hold anything
    print(f"database {url} is at {db.current_revision(settings)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from bot import db

    settings = settings_from_args(args)
    if not args.yes:
        _confirm_downgrade(settings, args.revision)
    db.downgrade(settings, args.revision)
    print(
        f"database {settings.redacted_database_url} is at {db.current_revision(settings) or 'base'}"
    )
    return 0


def _confirm_downgrade(settings, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Ask on a terminal, refuse otherwise: a downgrade loses data and cannot be undone."""
    from bot import db
    from bot.errors import FindError

    held = db.row_counts(settings)
    what = ", ".join(f"{n} {name}" for name, n in held.items() if n) or "no rows yet"
    target = "base (every table dropped)" if revision == "base" else revision
    warning = (
        f"downgrading {settings.redacted_database_url} to {target} drops what later "
        f"migrations added, with its data; the database holds {what}"
    )
    if sys.stdin.isatty():
        print(f"{warning}.", file=sys.stderr)
        answer = ask("Type 'yes' to downgrade: ")  # Ctrl-D (None) is no
        if answer is not None and answer.strip().lower() == "yes":
            return
        raise FindError("downgrade cancelled: nothing changed")
    raise FindError(f"{warning}: refusing without --yes (back it up first)")


def _current(args: argparse.Namespace) -> int:
    from bot import db

    settings = settings_from_args(args)
    current, head = db.current_revision(settings), db.head_revision()
    state = "up to date" if current == head else "needs `find-bot db upgrade`"
    print(f"database: {printable(settings.redacted_database_url)}")
    print(f"current:  {current or 'none (empty database)'}")
    print(f"head:     {head} ({state})")
    return 0
