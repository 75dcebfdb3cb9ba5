"""``find-bot run``: the daemon (scheduler and/or stage workers) until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

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
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from bot import db
    from bot.daemon import Daemon

    settings = settings_from_args(args)
    db.check_schema(settings)
    if args.role in ("all", "scheduler"):
        settings.require("youtube_api_key", f"run --role {args.role}")
    daemon = Daemon(settings, args.role, env_file=args.env_file)
    daemon.install_signal_handlers()
    code = daemon.run()
    _exit_now_if_stuck(code)
    return code


def _exit_now_if_stuck(code: int) -> None:
    """Exit at once when a non-daemon thread (a discover stuck in HTTP) would delay exit.

    The shutdown bound is a promise to systemd (TimeoutStopSec): Python would
    otherwise join such threads at interpreter exit, for as long as they take.
    Everything that matters is already committed or released at this point.
    """
    main = threading.main_thread()
    stuck = [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]
    if stuck:
        logging.getLogger("find.daemon").info(
            "daemon.exit_now", extra={"threads": ",".join(t.name for t in stuck)}
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
