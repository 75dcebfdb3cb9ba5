"""``find-bot submit``: hand videos to the pipeline by URL, file or directory.

See :mod:`bot.stages.submit`.  One line per input; the exit status is 0 when
every input was added or was already there, 1 when any was refused.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="put videos (URLs, files, directories) into the pipeline",
        description=(
            "Submit videos that did not come from a watched channel or search: a URL (any "
            "site yt-dlp supports, downloaded now within FIND_MAX_FILESIZE and "
            "FIND_MAX_DURATION), a local video file (linked or copied into the media "
            "directory) or a directory of them. Each is queued for analysis; the daemon "
            "(find-bot run) analyses it and flags it for review as any YouTube upload. "
            "The same URL or the same file twice is not added again."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="URL|FILE|DIR", help="what to submit")
    parser.add_argument("--note", help="why it was submitted (shown to reviewers)")
    parser.add_argument(
        "--priority", action="store_true", help="analyse before videos already waiting"
    )
    parser.add_argument(
        "--submitter", help="who submits (recorded with each video; default: the OS user)"
    )
    parser.set_defaults(handler=_submit)


def _submit(args: argparse.Namespace) -> int:
    from bot.commands.common import open_database
    from bot.stages.submit import Submitter, default_submitter, submit
    from bot.terminal import printable

    settings, sessions = open_database(args)
    submitter = Submitter(
        name=(args.submitter or "").strip() or default_submitter(),
        note=(args.note or "").strip() or None,
        priority=args.priority,
    )
    outcomes = submit(settings, sessions, args.inputs, submitter)
    for outcome in outcomes:  # messages quote file names and URLs: one line each, escaped
        if outcome.status == "refused":
            print(f"find-bot: {printable(outcome.message)}", file=sys.stderr)
        else:
            print(printable(outcome.message))
    added = sum(o.status == "added" for o in outcomes)
    if added:
        print(
            f"{added} video(s) queued for analysis: `find-bot run` analyses them "
            "(`--role worker` without an API key)"
        )
    return 1 if any(o.status == "refused" for o in outcomes) else 0
