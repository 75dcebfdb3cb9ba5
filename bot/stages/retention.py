"""Retention: delete downloaded media once it has served its purpose, and old rows by policy.

Media (``FIND_MEDIA_RETENTION``):

* ``keep-flagged`` (default): a video's file is deleted once it is analysed as
  not-a-deepfake, skipped or failed; flagged and reviewed videos keep theirs
  for reviewers until ``FIND_FLAGGED_MEDIA_DAYS`` (0 = forever) have passed
  since the video last changed state.
* ``delete-all``: every file is deleted once the video left the pipeline
  (analysed, flagged, reviewed, skipped or failed).  Face crops are kept, so
  reviewers still see the evidence.
* ``keep-all``: nothing is deleted.

Rows (``FIND_ROW_RETENTION_DAYS``, 0 = never): videos analysed as real,
skipped or failed, older than that, are deleted with their analyses and
crops, as are old quota-ledger entries, poll runs and worker rows.  Flagged
and reviewed videos are always kept: they are evidence and training labels.
Such a row's file is deleted by the host whose store holds it (whatever the
media policy), and the row only after that (:func:`file_accounted_for`).

Crops no analysis refers to (:func:`sweep_crops`: an analysis whose transaction rolled
back after its crops were written; the temporary file of a write that crashed) are
deleted from this host's media store once they are older than :data:`CROP_GRACE_S`.

Only files under ``media_dir`` are ever deleted, and videos that are leased
(being worked on) are never touched.  With several hosts, each keeps its own media
store (:mod:`bot.mediahost`) unless ``FIND_MEDIA_SHARED``: a host deletes and marks only
the files of its own store (and those with no store recorded, from before stores had
ids), so a video whose file lives elsewhere is never marked deleted while its file stays
on the other host's disk.  Each process with workers cleans its own store every hour
(:func:`clean_store`; the daemon runs it), the active scheduler the rows.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, select, true, update

from bot.atomicfile import is_temporary
from bot.db import session_scope
from bot.logs import log_event
from bot.mediahost import existing_media_host_id
from bot.settings import Settings
from bot.store import (
    REVIEW_STATES,
    Analysis,
    PollRun,
    QuotaEntry,
    Video,
    VideoState,
    Worker,
    utcnow,
)
from bot.youtube.ids import is_media_key

log = logging.getLogger("find.retention")

#: States whose media is never needed again (the video is done and not evidence).
DONE_NOT_EVIDENCE = (
    VideoState.ANALYSED.value,
    VideoState.SKIPPED.value,
    VideoState.FAILED.value,
)
#: Quota entries are needed for today's budget; keep at least this many days whatever the policy.
MIN_LEDGER_DAYS = 2
#: Videos deleted per transaction, so a big first cleanup does not hold a long lock.
BATCH = 200
#: An unreferenced crop younger than this is left alone: its analysis may still be on its
#: way to the database (crops are written inside the transaction that records them).
CROP_GRACE_S = 3600.0
#: The files an analysis writes under ``crops/<video>/``: ``<analysis id>-...`` images.
_CROP_FILE = re.compile(r"\d+-[^/]*\.(?:jpg|jpeg|png)", re.IGNORECASE)


@dataclass
class RetentionReport:
    media_deleted: int = 0
    media_bytes: int = 0
    media_missing: int = 0
    rows_deleted: int = 0
    ledger_deleted: int = 0
    crops_deleted: int = 0
    crops_bytes: int = 0

    def as_fields(self) -> dict[str, Any]:
        return asdict(self)


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _delete_file(path: Path) -> int | None:
    """Delete a media file; its size, or ``None`` when there is none (already gone: in a
    shared store another host's pass may be first)."""
    try:
        if not path.is_file():
            return None
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return None
    return size


def in_this_store(settings: Settings) -> Any:
    """Videos whose file this process's ``media_dir`` holds: every video when the store is
    shared, else those downloaded into this store and those with no store recorded."""
    if settings.media_shared:
        return true()
    host = existing_media_host_id(settings.media_dir)
    if host is None:
        return Video.media_host.is_(None)
    return or_(Video.media_host.is_(None), Video.media_host == host)


def row_cutoff(settings: Settings, now: datetime) -> datetime | None:
    """Finished rows last changed before this are deleted; ``None``: rows are kept."""
    days = settings.row_retention_days
    return None if days <= 0 else now - timedelta(days=days)


def rows_due(cutoff: datetime) -> Any:
    """The ``WHERE`` clause for videos row retention deletes at ``cutoff``."""
    return Video.state.in_(DONE_NOT_EVIDENCE) & (Video.updated_at < cutoff)


def media_candidates(settings: Settings, now: datetime) -> Any:
    """The ``WHERE`` clause for videos of this store whose file may be deleted now, or
    ``None`` (nothing to delete).

    Besides the media policy, the file of a row that row retention is about to delete goes
    too (under ``keep-all`` as well: the row and its file always went together): each host
    deletes those of its own store, so the scheduler never deletes a row whose file is on
    another host's disk (:func:`cleanup_rows` waits for the mark).
    """
    policy = settings.media_retention
    if policy == "keep-all":
        due = None
    elif policy == "delete-all":
        due = Video.state.in_(DONE_NOT_EVIDENCE + REVIEW_STATES)
    else:
        due = Video.state.in_(DONE_NOT_EVIDENCE)
        if settings.flagged_media_days > 0:
            old = now - timedelta(days=settings.flagged_media_days)
            due = or_(due, Video.state.in_(REVIEW_STATES) & (Video.updated_at < old))
    cutoff = row_cutoff(settings, now)
    expiring = None if cutoff is None else rows_due(cutoff)
    reasons = [clause for clause in (due, expiring) if clause is not None]
    if not reasons:
        return None
    unleased = or_(Video.lease_expires_at.is_(None), Video.lease_expires_at < now)
    return (
        Video.media_path.is_not(None),
        Video.media_deleted_at.is_(None),
        unleased,
        in_this_store(settings),
        or_(*reasons),
    )


def cleanup_media(settings: Settings, now: datetime | None = None) -> RetentionReport:
    """Delete downloaded files the policy no longer needs; mark them ``media_deleted_at``."""
    now = now or utcnow()
    report = RetentionReport()
    where = media_candidates(settings, now)
    if where is None:
        return report
    while True:
        with session_scope(settings) as session:
            videos = session.scalars(select(Video).where(*where).order_by(Video.id).limit(BATCH))
            videos = list(videos)
            for video in videos:
                path = settings.media_file(video.media_path)
                if path is None:  # an empty path names no file: nothing to delete
                    report.media_missing += 1
                elif not _inside(settings.media_dir, path):
                    log_event(
                        log,
                        "retention.outside_media_dir",
                        logging.WARNING,
                        video=video.youtube_id,
                        path=str(path),
                    )
                elif (size := _delete_file(path)) is not None:
                    report.media_deleted += 1
                    report.media_bytes += size
                    log_event(
                        log,
                        "retention.media_deleted",
                        video=video.youtube_id,
                        state=video.state,
                        bytes=size,
                    )
                else:
                    report.media_missing += 1
                # Keep updated_at: deleting a file is bookkeeping, not a state change, and
                # row retention and flagged_media_days count from the last real change.
                session.execute(
                    update(Video)
                    .where(Video.id == video.id)
                    .values(media_deleted_at=now, updated_at=Video.updated_at)
                    .execution_options(synchronize_session=False)
                )
        if len(videos) < BATCH:
            return report


def file_accounted_for(settings: Settings, cutoff: datetime) -> Any:
    """Rows whose file no store still holds, or that this host deletes itself.

    A file in another host's store is deleted (and marked) by that host's own pass, so
    its row waits for the mark; a store whose processes have not been seen since
    ``cutoff`` (longer than row retention: a host taken out of service, its disk gone
    with it) holds the row back no longer.
    """
    live_stores = select(Worker.media_host).where(
        Worker.media_host.is_not(None), Worker.last_seen_at >= cutoff
    )
    return or_(
        Video.media_path.is_(None),
        Video.media_deleted_at.is_not(None),
        in_this_store(settings),
        Video.media_host.not_in(live_stores),
    )


def cleanup_rows(settings: Settings, now: datetime | None = None) -> RetentionReport:
    """Delete old finished rows (never flagged or reviewed ones) and their files (files of
    this store; a row whose file is in another host's store waits until that host has
    deleted it)."""
    now = now or utcnow()
    report = RetentionReport()
    cutoff = row_cutoff(settings, now)
    if cutoff is None:
        return report
    where = (rows_due(cutoff), file_accounted_for(settings, cutoff))
    while True:
        with session_scope(settings) as session:
            videos = list(
                session.scalars(select(Video).where(*where).order_by(Video.id).limit(BATCH))
            )
            for video in videos:
                if video.media_path and video.media_deleted_at is None:
                    path = settings.media_file(video.media_path)
                    if path is not None and _inside(settings.media_dir, path) and path.is_file():
                        path.unlink()
                crops = settings.media_dir / "crops" / video.youtube_id
                if _inside(settings.media_dir, crops) and crops.is_dir():
                    shutil.rmtree(crops, ignore_errors=True)
                log_event(log, "retention.row_deleted", video=video.youtube_id, state=video.state)
                session.delete(video)  # analyses and decisions cascade
            report.rows_deleted += len(videos)
        if len(videos) < BATCH:
            break
    ledger_cutoff = min(cutoff, now - timedelta(days=MIN_LEDGER_DAYS))
    with session_scope(settings) as session:
        result = session.execute(delete(QuotaEntry).where(QuotaEntry.at < ledger_cutoff))
        report.ledger_deleted = int(result.rowcount or 0)
        session.execute(delete(PollRun).where(PollRun.started_at < cutoff))
        session.execute(delete(Worker).where(Worker.last_seen_at < cutoff))
    return report


def run_retention(settings: Settings, now: datetime | None = None) -> RetentionReport:
    """One full pass: this store (:func:`clean_store`), then the rows; the active scheduler
    runs it hourly.  The rows come last: this store's pass has deleted and marked the files
    of the rows about to go, and a deleted row's crops go with it."""
    now = now or utcnow()
    report = clean_store(settings, now)
    rows = cleanup_rows(settings, now)
    report.rows_deleted, report.ledger_deleted = rows.rows_deleted, rows.ledger_deleted
    return report


def clean_store(settings: Settings, now: datetime | None = None) -> RetentionReport:
    """This host's media store only (its files by the media policy, then stray crops): what
    a process with workers runs every hour when it is not the active scheduler, whose
    :func:`run_retention` starts with it."""
    now = now or utcnow()
    report = cleanup_media(settings, now)
    crops = sweep_crops(settings, now)
    report.crops_deleted, report.crops_bytes = crops.crops_deleted, crops.crops_bytes
    return report


def sweep_crops(
    settings: Settings, now: datetime | None = None, *, grace_s: float = CROP_GRACE_S
) -> RetentionReport:
    """Delete, under this host's ``media_dir/crops/``, the crop files no analysis refers to
    and the temporary files of interrupted writes, once older than ``grace_s``.

    Crops are written inside the transaction that records their analysis: when it rolls
    back (the database went away at the commit, the lease was lost) the files stay and
    the retry writes new ones under a new analysis id (issue 30).  Only folders of known
    videos are looked at, only file names an analysis writes, and a file is kept while
    any analysis of its video names it; several hosts may sweep one shared store.
    """
    now = now or utcnow()
    report = RetentionReport()
    root = settings.media_dir / "crops"
    if not root.is_dir():
        return report
    cutoff = now.timestamp() - grace_s
    keys = sorted(entry.name for entry in os.scandir(root) if is_media_key(entry.name))
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        with session_scope(settings) as session:
            known = set(
                session.scalars(select(Video.youtube_id).where(Video.youtube_id.in_(batch)))
            )
            records = session.execute(
                select(Analysis.crops).join(Video).where(Video.youtube_id.in_(batch))
            ).scalars()
            referenced = {
                str(settings.media_file(record[view]))
                for crops in records
                for record in crops or []
                for view in ("path", "context", "heatmap")
                if isinstance(record, dict) and record.get(view)
            }
        for key in batch:
            if key not in known:
                continue
            try:
                _sweep_folder(root / key, referenced, cutoff, report)
            except OSError as exc:  # one unreadable folder does not stop the sweep
                log_event(log, "retention.crops_unreadable", logging.WARNING, error=str(exc))
    if report.crops_deleted:
        log_event(
            log,
            "retention.crops_swept",
            files=report.crops_deleted,
            bytes=report.crops_bytes,
            note="crops of analyses that were never recorded, and interrupted writes",
        )
    return report


def _sweep_folder(folder: Path, referenced: set[str], cutoff: float, report: Any) -> None:
    """Delete the old unreferenced crops and temporary files of one video's folder."""
    for entry in os.scandir(folder):
        name = entry.name
        if not (is_temporary(name) or _CROP_FILE.fullmatch(name)):
            continue
        if not is_temporary(name) and str(folder / name) in referenced:
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
            if not entry.is_file(follow_symlinks=False) or stat.st_mtime >= cutoff:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:  # another host's sweep of a shared store was first
            continue
        report.crops_deleted += 1
        report.crops_bytes += stat.st_size
