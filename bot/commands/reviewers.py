"""``find-bot reviewers``: accounts for the review web page, and their sessions.

``list``, ``add``, ``disable``, ``enable`` and ``revoke`` act through
:mod:`bot.review.reviewers`, the same functions the web page relies on.  The
account commands are also reachable under their first names
(``find-bot review add-reviewer``, ``reviewers``, ``disable-reviewer``,
``enable-reviewer``), which existing scripts use; ``review --help`` does not
list them, so that new users learn one spelling.
"""

from __future__ import annotations

import argparse
import sys

from bot.commands.common import ask
from bot.errors import FindError
from bot.terminal import printable

#: new name -> old name under ``find-bot review``
_LEGACY = {
    "add": "add-reviewer",
    "list": "reviewers",
    "disable": "disable-reviewer",
    "enable": "enable-reviewer",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reviewers",
        help="reviewer accounts for the web page: list, add, disable, enable, revoke sessions",
        description="Manage who may use the review web page, and end their web sessions.",
    )
    sub = parser.add_subparsers(dest="reviewers_command", metavar="ACTION", required=True)
    add_account_commands(sub, legacy=False)
    revoke = sub.add_parser(
        "revoke",
        help="end every web session of a reviewer (they can log in again)",
        description=(
            "Log reviewer NAME out everywhere: every web session (cookie) of theirs is "
            "refused from the next request on, including copies. The account stays active; "
            "use `disable` to lock it, or `add --reset` for a new password (both also end "
            "the sessions)."
        ),
    )
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(handler=_revoke)


def add_account_commands(sub: argparse._SubParsersAction, *, legacy: bool) -> None:
    """The account sub-commands, under ``reviewers`` (or their old names under ``review``)."""

    def name(new: str) -> str:
        return _LEGACY[new] if legacy else new

    def listed(text: str) -> dict[str, str]:
        """argparse lists a sub-command only when it has a help text: old names get none."""
        return {} if legacy else {"help": text}

    add = sub.add_parser(
        name("add"),
        **listed("create a reviewer account for the web page"),
        description=(
            "Create reviewer NAME. The password is asked for twice on the terminal, or read "
            "from the first line of stdin with --password-stdin; it is stored as an argon2 hash."
        ),
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--no-password",
        action="store_true",
        help="no password (for reverse-proxy header authentication only)",
    )
    add.add_argument(
        "--reset",
        action="store_true",
        help="the reviewer exists: set a new password and reactivate (ends their sessions)",
    )
    add.set_defaults(handler=_add)

    listing = sub.add_parser(name("list"), **listed("list reviewer accounts"))
    listing.set_defaults(handler=_list)
    for new, active in (("disable", False), ("enable", True)):
        what = "reactivate a reviewer" if active else "deactivate a reviewer (ends their sessions)"
        sp = sub.add_parser(name(new), **listed(what))
        sp.add_argument("name", metavar="NAME")
        sp.set_defaults(handler=_set_active, active=active)


def _add(args: argparse.Namespace) -> int:
    from bot.commands.common import open_database
    from bot.review import reviewers

    reviewers.validate_name(args.name)  # fail before asking for a password
    if args.no_password:
        password = None
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise FindError("--password-stdin: stdin had no password on its first line")
    else:
        if not sys.stdin.isatty():
            raise FindError("no terminal to ask for the password: use --password-stdin")
        password = ask(f"password for {args.name}: ", secret=True)
        again = None if password is None else ask("again: ", secret=True)
        if password is None or again is None:  # Ctrl-D
            raise FindError("no password given (input ended); nothing was changed")
        if again != password:
            raise FindError("the two passwords differ; nothing was changed")
    if password is not None:
        reviewers.validate_password(password)
    _settings, sessions = open_database(args)
    info = reviewers.add_reviewer(sessions, args.name, password, reset=args.reset)
    print(
        f"reviewer {printable(info.name)} {'updated' if args.reset else 'created'}"
        f"{'' if info.has_password else ' (no password: header authentication only)'}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from bot.commands.common import open_database
    from bot.review import reviewers

    _settings, sessions = open_database(args)
    with sessions() as session:
        rows = reviewers.list_reviewers(session)
    if not rows:
        print("no reviewers yet: `find-bot reviewers add NAME`")
    for r in rows:
        flags = ("active" if r.active else "disabled") + ("" if r.has_password else ", no password")
        created = r.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        name = printable(r.name)  # checked when added; a row written by other means is not
        print(f"{name:<30} {flags:<24} created {created}")
    return 0


def _set_active(args: argparse.Namespace) -> int:
    from bot.commands.common import open_database
    from bot.review import reviewers

    _settings, sessions = open_database(args)
    info = reviewers.set_active(sessions, args.name, args.active)
    print(f"reviewer {printable(info.name)} {'enabled' if info.active else 'disabled'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from bot.commands.common import open_database
    from bot.review import reviewers

    _settings, sessions = open_database(args)
    ended = reviewers.revoke_sessions(sessions, args.name)
    print(f"reviewer {printable(args.name)}: {ended} web session(s) ended")
    return 0
