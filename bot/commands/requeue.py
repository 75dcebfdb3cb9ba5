"""``find-bot requeue``: retry failed or postponed videos once their cause is fixed."""

from __future__ import annotations

import argparse

#: bot.requeue.REQUEUE_STATES, spelled out so `--help` does not import SQLAlchemy;
#: tests/daemon/test_requeue.py keeps the two equal.
STATES = ("failed", "skipped", "new", "downloaded", "analysed")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "requeue",
        help="put failed (or postponed) videos back in the queue, e.g. after fixing the host",
        description=(
            "Requeue the videos matching every selector given: VIDEO_IDs, --state, --kind "
            "(the error kind shown by `find-bot status`, e.g. host_fault, disk_full, network). "
            "A video whose file is still on disk goes back to 'downloaded' (analysed again), "
            "any other to 'new' (downloaded again); attempts and backoff are reset. Flagged "
            "and reviewed videos are never moved. See docs/daemon.md."
        ),
    )
    parser.add_argument("videos", nargs="*", metavar="VIDEO_ID", help="YouTube video ids")
    parser.add_argument("--state", choices=STATES, help="only videos in this state")
    parser.add_argument("--kind", metavar="KIND", help="only videos whose last error has KIND")
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be requeued, change nothing"
    )
    parser.set_defaults(handler=_requeue)


def _requeue(args: argparse.Namespace) -> int:
    from bot import db
    from bot.commands.common import settings_from_args
    from bot.requeue import requeue
    from bot.terminal import printable

    settings = settings_from_args(args)
    db.check_schema(settings)
    done = requeue(
        db.session_factory(settings),
        settings,
        video_ids=args.videos,
        state=args.state,
        kind=args.kind,
        dry_run=args.dry_run,
    )
    verb = "would requeue" if args.dry_run else "requeued"
    for item in done:
        # The stored error quotes outside text (a server's reply, a file name): one line each.
        why = f"  (was {item.kind}: {(item.error or '')[:120]})" if item.kind else ""
        print(printable(f"{verb} {item.youtube_id}: {item.from_state} -> {item.to_state}{why}"))
    print(f"{len(done)} video(s) {verb}" + (" (dry run: nothing changed)" if args.dry_run else ""))
    return 0
