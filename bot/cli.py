"""Entry point of the ``find-bot`` console command."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from bot import __version__
from bot.commands import COMMAND_MODULES
from bot.errors import FindError
from bot.logs import quiet_native_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="find-bot",
        description="FIND (Fake Is Now Detected): find deepfake videos on YouTube.",
    )
    parser.add_argument("--version", action="version", version=f"find-bot {__version__}")
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="settings file to read (default: .env in the current directory, if present)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area has not landed; anything else is a real bug
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_native_logging()  # before any command can import TensorFlow
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FindError as exc:
        from bot.terminal import printable  # messages may quote titles, names, server replies

        print(f"find-bot: error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("find-bot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`find-bot review list | head`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        # A path we cannot use (read-only, missing, full, forbidden): name it, no traceback.
        from bot.hostfault import describe
        from bot.terminal import printable

        print(f"find-bot: error: {printable(describe(exc))}", file=sys.stderr)
        return 2
    finally:
        # Flush, but do not close: logging.shutdown() would also close handlers that
        # libraries (absl, via TensorFlow) built around someone else's stderr.
        for handler in logging.getLogger().handlers:
            handler.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
