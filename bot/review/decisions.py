"""Reviewers' decisions: compare-and-set, appended to the history, banked in the same transaction.

The video's state only changes if it is still the state the reviewer saw, so two
reviewers deciding at once cannot silently overwrite each other: the loser gets a
:class:`DecisionConflict` naming who decided first. Every accepted decision appends a
:class:`~bot.store.ReviewDecision` row (never updated or deleted). Every decision names a
policy reason from ``FIND_POLICY_REASONS``; overturning a confirmed or dismissed video is
a *reversal* (an appeal) and needs a written reason; the video's hashes move into the
bank its new state calls for (:func:`bot.banks.record_decision`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.review.queries import DecisionInfo, ReviewError, decision_info, load_video
from bot.settings import DEFAULT_POLICY_REASONS
from bot.store import (
    Analysis,
    ReviewDecision,
    Video,
    VideoState,
    utcnow,
)

log = logging.getLogger("find.review")


#: Decisions a reviewer can make, each named after the state it moves the video to.
DECISIONS = (VideoState.CONFIRMED.value, VideoState.DISMISSED.value)

#: States a decision may start from (a video needs an analysis to be judged).
DECIDABLE_STATES = (
    VideoState.FLAGGED.value,
    VideoState.ANALYSED.value,
    VideoState.CONFIRMED.value,
    VideoState.DISMISSED.value,
)

MAX_NOTE_CHARS = 4000

#: The other final decision: what a reversal (appeal) turns a decision into.
OPPOSITE = {
    VideoState.CONFIRMED.value: VideoState.DISMISSED.value,
    VideoState.DISMISSED.value: VideoState.CONFIRMED.value,
}


class DecisionConflict(ReviewError):
    """The video changed state since the reviewer looked at it (someone decided first)."""

    exit_code = 3

    def __init__(
        self, message: str, *, current_state: str, by: str | None = None, summary: str = ""
    ) -> None:
        super().__init__(message)
        self.current_state = current_state
        #: Who made the decision that won, when one did.
        self.by = by
        #: The conflict in a few words ("already confirmed by alice at ..."), for the web page.
        self.summary = summary or message


def decide(
    sessions: sessionmaker[Session],
    youtube_id: str,
    decision: str,
    reviewer: str,
    *,
    note: str | None = None,
    expected_state: str | None = VideoState.FLAGGED.value,
    force: bool = False,
    reason: str | None = None,
    reasons: Sequence[str] = DEFAULT_POLICY_REASONS,
    reversal_reason: str | None = None,
) -> DecisionInfo:
    """Record ``reviewer``'s decision on a video, atomically and without losing history.

    ``expected_state`` is the state the reviewer saw (the web page sends the
    state it rendered; the CLI assumes ``flagged``).  The state changes with a
    compare-and-set ``UPDATE ... WHERE state = expected``: when another
    decision got there first the update matches no row and
    :class:`DecisionConflict` names who made it.  PostgreSQL re-checks the
    condition after waiting for a concurrent writer's row lock, and SQLite
    serialises writers with ``BEGIN IMMEDIATE``, so on both only one of two
    simultaneous deciders wins.

    ``force`` supersedes a decision on purpose: the expected state is then the
    current one (still compared-and-set, so a third concurrent writer is
    still detected), and a new history row is appended.

    ``reason`` is the policy reason, one of ``reasons`` (``FIND_POLICY_REASONS``).
    A decision that turns a confirmed video into a dismissed one or back is a
    **reversal** (an appeal): it needs ``reversal_reason`` and records which
    decision it overturns.  The video's hashes follow its new state into the
    fake or benign bank, in the same transaction.
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ReviewError("a decision needs a reviewer name (--reviewer NAME)")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise ReviewError(f"the note is longer than {MAX_NOTE_CHARS} characters")
    reason = (reason or "").strip() or None
    if reason is None or reason not in reasons:
        raise ReviewError(
            (
                "a decision needs a policy reason"
                if reason is None
                else f"{reason!r} is not a policy reason"
            )
            + " (--reason): one of "
            + "; ".join(reasons)
            + " (FIND_POLICY_REASONS)"
        )
    reversal_reason = (reversal_reason or "").strip() or None
    if reversal_reason is not None and len(reversal_reason) > MAX_NOTE_CHARS:
        raise ReviewError(f"the reversal reason is longer than {MAX_NOTE_CHARS} characters")

    with sessions.begin() as session:
        video = load_video(session, youtube_id)
        if force or expected_state is None:
            expected_state = video.state
        if expected_state not in DECIDABLE_STATES:
            raise ReviewError(
                f"video {video.youtube_id} is {video.state}, not analysed yet or out of the "
                "pipeline; only flagged, analysed, confirmed or dismissed videos can be decided"
            )
        reverses = None
        if expected_state in OPPOSITE and decision == OPPOSITE[expected_state]:
            if reversal_reason is None:
                raise ReviewError(
                    f"video {video.youtube_id} is {expected_state}: making it {decision} reverses "
                    "that decision (an appeal) and needs a reason: pass --appeal-reason TEXT"
                )
            reverses = session.scalar(
                select(func.max(ReviewDecision.id)).where(
                    ReviewDecision.video_id == video.id, ReviewDecision.decision == expected_state
                )
            )
        else:
            reversal_reason = None  # only reversals carry one
        analysis_id = session.scalar(
            select(func.max(Analysis.id)).where(Analysis.video_id == video.id)
        )
        result = session.execute(
            update(Video)
            .where(Video.id == video.id, Video.state == expected_state)
            .values(state=decision, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            # Lost the compare-and-set: nothing was written; the winner's
            # decision is read after this (empty) transaction ends.
            lost_to = expected_state
        else:
            lost_to = None
            row = ReviewDecision(
                video_id=video.id,
                reviewer=reviewer,
                decision=decision,
                note=note,
                previous_state=expected_state,
                analysis_id=analysis_id,
                decided_at=utcnow(),
                policy_reason=reason,
                reverses_id=reverses,
                reversal_reason=reversal_reason,
            )
            session.add(row)
            session.flush()
            info = decision_info(row)
            from bot.banks import record_decision

            bank = record_decision(session, video, decision, row.id, reviewer)
    if lost_to is not None:
        raise _conflict(sessions, youtube_id.strip(), lost_to)
    log_event(
        log,
        "review.decided",
        video=youtube_id,
        decision=decision,
        reviewer=reviewer,
        previous_state=expected_state,
        reason=reason,
        reversal=info.is_reversal,
        bank=bank,
    )
    return info


def _conflict(sessions: sessionmaker[Session], youtube_id: str, expected: str) -> DecisionConflict:
    """Explain a lost compare-and-set, reading the state committed by the winner."""
    with sessions() as session:
        video = load_video(session, youtube_id)
        last = session.scalars(
            select(ReviewDecision)
            .where(ReviewDecision.video_id == video.id)
            .order_by(ReviewDecision.id.desc())
            .limit(1)
        ).first()
        state = video.state
        if last is not None and last.decision == state:
            by = last.reviewer
            summary = f"already {state} by {by} at {last.decided_at:%Y-%m-%d %H:%M:%S} UTC"
            if last.note:
                summary += f" (note: {last.note[:80]})"
            message = (
                f"video {youtube_id} was {expected} when you looked but is {summary}; "
                f"check it with `find-bot review show {youtube_id}` and pass --force to add "
                "a superseding decision"
            )
        else:
            by = None
            summary = f"now {state}, not {expected}"
            message = (
                f"video {youtube_id} is {state}, not {expected}; check it with "
                f"`find-bot review show {youtube_id}` and pass --force to decide anyway"
            )
    return DecisionConflict(message, current_state=state, by=by, summary=summary)
