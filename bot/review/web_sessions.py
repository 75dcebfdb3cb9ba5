"""Review web sessions kept in the database, so they can be ended for real.

A signed cookie alone cannot be taken back: logging out only deletes the
browser's copy, and a copied cookie (a shared machine, a proxy log, malware)
stays valid until it expires.  So the cookie carries only a random token and
this table holds its SHA-256; a request is let in only while that row exists,
is unexpired and belongs to an active reviewer.  Logout deletes the row,
``find-bot reviewers revoke NAME`` deletes all of a reviewer's rows, and so do
a new password and deactivation (:mod:`bot.review.reviewers`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.store import Reviewer, WebSession, utcnow

#: A session ends this long after login, however active the reviewer is.
SESSION_MAX_AGE = timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    sessions: sessionmaker[Session], reviewer: str, *, now: datetime | None = None
) -> str:
    """Start a session for active reviewer ``reviewer``; return the token for the cookie."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    with sessions.begin() as session:
        row = session.scalars(select(Reviewer).where(Reviewer.name == reviewer)).one()
        session.execute(delete(WebSession).where(WebSession.expires_at < now))  # tidy up
        session.add(
            WebSession(
                token_hash=_digest(token),
                reviewer_id=row.id,
                created_at=now,
                expires_at=now + SESSION_MAX_AGE,
            )
        )
    return token


def session_reviewer(
    session: Session, token: str | None, *, now: datetime | None = None
) -> str | None:
    """The reviewer a cookie's token stands for, or ``None`` (unknown, ended, expired, inactive)."""
    if not token or not isinstance(token, str):
        return None
    return session.scalar(
        select(Reviewer.name)
        .join(WebSession, WebSession.reviewer_id == Reviewer.id)
        .where(
            WebSession.token_hash == _digest(token),
            WebSession.expires_at > (now or utcnow()),
            Reviewer.active.is_(True),
        )
    )


def close_session(sessions: sessionmaker[Session], token: str | None) -> bool:
    """End the session of this token (logout); ``True`` if there was one."""
    if not token or not isinstance(token, str):
        return False
    with sessions.begin() as session:
        result = session.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
        return bool(result.rowcount)


def end_reviewer_sessions(session: Session, reviewer_id: int) -> int:
    """End every session of one reviewer, inside the caller's transaction; return how many."""
    result = session.execute(delete(WebSession).where(WebSession.reviewer_id == reviewer_id))
    return int(result.rowcount or 0)
