"""Helpers shared by command handlers: settings and logging from the CLI flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from bot.logs import configure_logging
from bot.settings import Settings, load_settings, parse_float, parse_int


def settings_from_args(args: argparse.Namespace, *, service: bool = False) -> Settings:
    """Load settings (honouring ``--env-file``) and set up logging accordingly.

    A ``service`` (the daemon, the web and push servers) logs at FIND_LOG_LEVEL: its log
    is its output.  Any other command prints what it did itself, so its log shows only
    warnings and errors (:func:`command_log_level`): ``submit`` printed each line twice,
    once plain and once as an INFO event, before.
    """
    settings = load_settings(getattr(args, "env_file", None))
    level = settings.log_level if service else command_log_level(settings.log_level)
    configure_logging(level, settings.log_format)
    if service:
        # matplotlib (the score plots) keeps its font cache here, built once, not in a home
        # directory a service user may not have (it then warns and rebuilds at every start).
        os.environ.setdefault("MPLCONFIGDIR", str(settings.data_dir / "matplotlib"))
    return settings


def command_log_level(level: str) -> str:
    """A one-shot command's log level: INFO (the daemon's default) becomes WARNING, since the
    command prints its own results; DEBUG, WARNING and above stay as configured."""
    return "WARNING" if level == "INFO" else level


def open_database(args: argparse.Namespace) -> tuple[Settings, Any]:
    """Settings and a session factory for a command that reads or writes the database.

    Stops with the one-line "run find-bot db upgrade" error on an unmigrated database.
    """
    from bot import db

    settings = settings_from_args(args)
    db.check_schema(settings)
    return settings, db.session_factory(settings)


def arg_type(parse: Callable[..., Any], **limits: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` from one of the settings parsers, so flags and
    environment variables accept and reject values the same way."""

    def convert(text: str) -> Any:
        try:
            return parse(text, **limits)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")  # shown by argparse on errors
    return convert


#: ``type=`` for a probability or score flag (0..1).
probability = arg_type(partial(parse_float, minimum=0.0, maximum=1.0))


def int_between(minimum: int, maximum: int) -> Callable[[str], int]:
    """``type=`` for a whole-number flag within ``minimum..maximum``."""
    return arg_type(parse_int, minimum=minimum, maximum=maximum)


def ask(question: str, *, secret: bool = False) -> str | None:
    """Ask one question on the terminal; ``None`` when input ended (Ctrl-D) instead.

    Every interactive prompt goes through here, so that Ctrl-D is an answer ("no",
    "nothing given") the caller turns into its one-line error, never an ``EOFError``
    traceback.  ``secret``: not echoed (getpass), for passwords.
    """
    import getpass
    import sys

    try:
        return getpass.getpass(question) if secret else input(question)
    except EOFError:
        print(file=sys.stderr)  # end the prompt's line: the error goes on its own
        return None
