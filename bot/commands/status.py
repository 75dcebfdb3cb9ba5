"""``find-bot status``: queue depth, errors, quota, model, last poll and workers."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show queue depth per stage, recent errors, quota, model bundle, last poll",
        description=(
            "Read the pipeline's state from the database (works from any machine that can "
            "reach it): videos queued per stage, the review queue, recent errors, YouTube quota "
            "used today, the model bundle in use, the last poll and the running daemons."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the status as one JSON object")
    parser.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    from bot import db
    from bot.commands.common import settings_from_args
    from bot.service.status import collect_status, render_status

    settings = settings_from_args(args)
    db.check_schema(settings)
    status = collect_status(settings)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render_status(status))
    return 0
