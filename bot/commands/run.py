"""``find-bot run``: the daemon (scheduler and/or stage workers) until SIGTERM, or
``--until-empty``: what is queued, once, then exit."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from bot.commands.common import settings_from_args

ROLE_HELP = (
    "all: discover + retention + download/analyse workers (one machine, the default); "
    "worker: download/analyse workers only (run many, on many machines, sharing a PostgreSQL "
    "database); scheduler: discover + retention only. Only one process per database runs "
    "discover at a time; other schedulers stand by and take over if it dies"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the pipeline as a service (discover, download, analyse, retention)",
        description=(
            "Run until stopped. SIGTERM/SIGINT finish or release in-flight work and exit 0 "
            "within FIND_SHUTDOWN_GRACE; SIGHUP re-reads the settings file (channels, queries, "
            "poll interval, retention, log level take effect at once; an invalid file is "
            "rejected and the old settings stay). Under systemd (Type=notify) it reports "
            "READY, STATUS and watchdog pings. See docs/daemon.md."
        ),
    )
    parser.add_argument(
        "--role", choices=("all", "worker", "scheduler"), default="all", help=ROLE_HELP
    )
    parser.add_argument(
        "--until-empty",
        action="store_true",
        help="process what is queued (downloads, submitted videos, analyses), print what "
        "became of each and exit 0 once nothing is due; discovers nothing, needs no API key",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from bot import db
    from bot.service.daemon import Daemon

    settings = settings_from_args(args, service=not args.until_empty)
    db.check_schema(settings)
    if args.until_empty:
        return _until_empty(args, settings)
    if args.role in ("all", "scheduler"):
        settings.require("youtube_api_key", f"run --role {args.role}")
    daemon = Daemon(settings, args.role, env_file=args.env_file)
    daemon.install_signal_handlers()
    code = daemon.run()
    exit_process(code)
    return code  # not reached


def _until_empty(args: argparse.Namespace, settings) -> int:  # type: ignore[no-untyped-def]
    """``--until-empty``: the queued videos once through the workers' stages
    (:mod:`bot.service.drain`), one line each, then the counts."""
    from bot.db import session_factory
    from bot.errors import FindError
    from bot.service.drain import drain
    from bot.terminal import echo

    if args.role == "scheduler":
        raise FindError(
            "--until-empty processes the download and analysis queue, which the scheduler "
            "role does not run: use --role worker or all"
        )
    report = drain(settings, session_factory(settings), say=echo)
    for line in report.summary():
        echo(line)
    code = 1 if report.stopped else 0
    if "tensorflow" in sys.modules:  # its thread pools would keep a normal exit waiting
        exit_process(code)
    return code


def exit_process(code: int) -> None:
    """End the process with ``code`` now, without the interpreter's exit sequence.

    When the daemon returns, every result is committed and every unfinished
    job released; what is left are worker threads that may still be inside
    TensorFlow (an analysis released after the grace period) or a discover
    stuck in HTTP.  A normal interpreter exit would run C++ static destructors
    under those threads, and TensorFlow's thread pools then abort the process
    ("terminate called without an active exception", exit 134), or wait for a
    non-daemon thread for as long as it takes.  So flush the logs and leave
    with ``os._exit``: exit 0 after SIGTERM is a promise to systemd.
    """
    from bot.db import dispose_engines

    with contextlib.suppress(Exception):  # close idle connections politely; busy ones die
        dispose_engines()
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
