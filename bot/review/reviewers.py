"""Reviewer accounts for the review web page: names, argon2 password hashes, active flag.

Passwords are hashed with argon2id (``argon2-cffi`` defaults, RFC 9106 low
memory profile) and never stored, logged or echoed.  :func:`authenticate`
spends the same hashing work whether or not the name exists, so response
time does not reveal which reviewer names are valid.  Deactivating a reviewer
(rather than deleting the row) keeps the name attached to their past
decisions meaningful and locks them out on their next request.  Deactivation,
a new password and :func:`revoke_sessions` end the reviewer's web sessions on
the server (:mod:`bot.review.web_sessions`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import FindError
from bot.logs import log_event
from bot.review.web_sessions import end_reviewer_sessions
from bot.store import Reviewer

log = logging.getLogger("find.reviewers")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024  # argon2 takes any length; this only bounds the work per request

_hasher = PasswordHasher()
#: Verified against when the name is unknown, so both paths cost one argon2 run.
_DUMMY_HASH = _hasher.hash("find-bot: no such reviewer, constant-time filler")


class ReviewerError(FindError):
    """A reviewer account cannot be created or changed as asked."""


@dataclass(frozen=True)
class ReviewerInfo:
    name: str
    active: bool
    has_password: bool
    created_at: datetime


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise ReviewerError(
            f"reviewer name {name!r} is not valid: use 1-100 letters, digits, '.', '_', '@' or '-'"
            ", starting with a letter or digit"
        )
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ReviewerError(f"the password is shorter than {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ReviewerError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(validate_password(password))


def add_reviewer(
    sessions: sessionmaker[Session],
    name: str,
    password: str | None,
    *,
    reset: bool = False,
) -> ReviewerInfo:
    """Create reviewer ``name`` (or, with ``reset``, set a new password and reactivate).

    ``password`` may be ``None`` for deployments that authenticate through a
    reverse-proxy header: the account then exists (and can be deactivated)
    but cannot log in with a password.
    """
    name = validate_name(name)
    password_hash = hash_password(password) if password is not None else None
    with sessions.begin() as session:
        row = session.scalars(select(Reviewer).where(Reviewer.name == name)).first()
        if row is not None and not reset:
            raise ReviewerError(
                f"reviewer {name!r} already exists: pass --reset to set a new password"
            )
        if row is None:
            row = Reviewer(name=name)
            session.add(row)
        row.password_hash = password_hash
        row.active = True
        session.flush()
        ended = end_reviewer_sessions(session, row.id)  # a new password logs everyone out
        info = _info(row)
    log_event(log, "reviewer.saved", reviewer=name, reset=reset, sessions_ended=ended)
    return info


def set_active(sessions: sessionmaker[Session], name: str, active: bool) -> ReviewerInfo:
    """Deactivate (or reactivate) a reviewer; deactivating ends their web sessions at once."""
    with sessions.begin() as session:
        row = _existing(session, name)
        row.active = active
        ended = 0 if active else end_reviewer_sessions(session, row.id)
        info = _info(row)
    log_event(log, "reviewer.active", reviewer=name, active=active, sessions_ended=ended)
    return info


def revoke_sessions(sessions: sessionmaker[Session], name: str) -> int:
    """End every web session of reviewer ``name`` (they can log in again); return how many."""
    with sessions.begin() as session:
        ended = end_reviewer_sessions(session, _existing(session, name).id)
    log_event(log, "reviewer.sessions_revoked", reviewer=name, sessions_ended=ended)
    return ended


def _existing(session: Session, name: str) -> Reviewer:
    row = session.scalars(select(Reviewer).where(Reviewer.name == (name or "").strip())).first()
    if row is None:
        raise ReviewerError(f"no reviewer {name!r}: `find-bot reviewers list` lists them")
    return row


def check_decider(sessions: sessionmaker[Session], name: str) -> str:
    """``name`` if it is an existing, active reviewer account; else one line saying what to do.

    The CLI's ``--reviewer`` is typed, not authenticated: without this check a
    typo or an invented name ends up in the append-only decision history.
    """
    name = (name or "").strip()
    with sessions() as session:
        row = session.scalars(select(Reviewer).where(Reviewer.name == name)).first()
    if row is None:
        raise ReviewerError(
            f"no reviewer account {name!r}: create it with `find-bot reviewers add {name}` "
            "(`find-bot reviewers list` lists them), or pass --allow-unknown-reviewer"
        )
    if not row.active:
        raise ReviewerError(
            f"reviewer {name!r} is deactivated: reactivate it with "
            f"`find-bot reviewers enable {name}`, or pass --allow-unknown-reviewer"
        )
    return name


def list_reviewers(session: Session) -> list[ReviewerInfo]:
    return [_info(r) for r in session.scalars(select(Reviewer).order_by(Reviewer.name))]


def active_reviewer(session: Session, name: str | None) -> str | None:
    """``name`` if it is an existing, active reviewer (header mode, on every request)."""
    if not name:
        return None
    row = session.scalars(select(Reviewer).where(Reviewer.name == name)).first()
    return name if row is not None and row.active else None


def authenticate(sessions: sessionmaker[Session], name: str, password: str) -> str | None:
    """The reviewer's name if ``password`` is right and the account active, else ``None``.

    Unknown names, inactive accounts and wrong passwords all return ``None``
    after the same argon2 work, so callers cannot tell them apart.  A hash
    made with older parameters is upgraded on successful login.
    """
    name = (name or "").strip()
    if len(password or "") > MAX_PASSWORD_CHARS or len(name) > 200:
        _verify(_DUMMY_HASH, "x")
        return None
    with sessions() as session:
        row = session.scalars(select(Reviewer).where(Reviewer.name == name)).first()
        stored = row.password_hash if row is not None else None
        usable = row is not None and row.active and stored is not None
    ok = _verify(stored if usable and stored else _DUMMY_HASH, password or "")
    if not (ok and usable and stored):
        log_event(log, "reviewer.login_failed", logging.WARNING)  # no name: avoid a user oracle
        return None
    if _hasher.check_needs_rehash(stored):
        with sessions.begin() as session:
            row = session.scalars(select(Reviewer).where(Reviewer.name == name)).first()
            if row is not None:
                row.password_hash = _hasher.hash(password)
    return name


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _info(row: Reviewer) -> ReviewerInfo:
    return ReviewerInfo(
        name=row.name,
        active=bool(row.active),
        has_password=row.password_hash is not None,
        created_at=row.created_at,
    )
