"""``find-bot db``: create and upgrade the database schema (Alembic)."""

from __future__ import annotations

import argparse

from bot.commands.common import settings_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="create, upgrade and inspect the database schema")
    db_sub = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    up = db_sub.add_parser("upgrade", help="apply migrations (creates the database if needed)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    up.set_defaults(handler=_upgrade)

    down = db_sub.add_parser("downgrade", help="revert migrations to REVISION (e.g. base)")
    down.add_argument("revision", help="target revision, or 'base' to drop everything")
    down.set_defaults(handler=_downgrade)

    current = db_sub.add_parser("current", help="show the database's revision and the code's")
    current.set_defaults(handler=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from bot import db

    settings = settings_from_args(args)
    db.upgrade(settings, args.revision)
    print(f"database {settings.redacted_database_url} is at {db.current_revision(settings)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from bot import db

    settings = settings_from_args(args)
    db.downgrade(settings, args.revision)
    print(
        f"database {settings.redacted_database_url} is at {db.current_revision(settings) or 'base'}"
    )
    return 0


def _current(args: argparse.Namespace) -> int:
    from bot import db

    settings = settings_from_args(args)
    current, head = db.current_revision(settings), db.head_revision()
    state = "up to date" if current == head else "needs `find-bot db upgrade`"
    print(f"database: {settings.redacted_database_url}")
    print(f"current:  {current or 'none (empty database)'}")
    print(f"head:     {head} ({state})")
    return 0
