"""``find-bot websub``: receive WebSub push notifications of new uploads (uvicorn)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "websub",
        help="receive push notifications of new uploads (optional, needs a public URL)",
        description=(
            "Serve the WebSub callback on FIND_WEBSUB_HOST:FIND_WEBSUB_PORT, behind a reverse "
            "proxy that makes it reachable as FIND_WEBSUB_CALLBACK_URL. The discover pass "
            "subscribes every watched channel at FIND_WEBSUB_HUB_URL; this answers the hub's "
            "verifications and stores the uploads it announces (signed with a secret derived "
            "from FIND_WEBSUB_SECRET; forged or malformed notifications are refused and "
            "logged). Feeds are still read, less often, so nothing depends on it. "
            "See docs/ingestion.md."
        ),
    )
    parser.set_defaults(handler=_websub)


def _websub(args: argparse.Namespace) -> int:
    from bot import db
    from bot.commands.common import settings_from_args
    from bot.stages.discover.websub import serve

    settings = settings_from_args(args, service=True)
    settings.require("websub_callback_url", "websub")
    settings.require("websub_secret", "websub")
    db.check_schema(settings)
    serve(settings)
    return 0
