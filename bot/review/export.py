"""Exports of the decisions: CSV/JSONL reports, and the labelled crops training reads.

The dataset layout is a contract with ``model.training.datasets.load_review_export``
(docs/contracts.md, "Review export").
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.logs import log_event
from bot.review.evidence import crop_path
from bot.review.queries import (
    QueueFilter,
    ReviewError,
    analysis_info,
    decision_info,
    queue_conditions,
    queue_order,
)
from bot.settings import Settings
from bot.store import (
    KNOWN_FAKE_VERDICT,
    REVIEW_STATES,
    Analysis,
    BankMatch,
    ReviewDecision,
    Video,
    VideoState,
)
from bot.terminal import json_text, spreadsheet_cell

log = logging.getLogger("find.review")


#: Export label of each final decision
#: (contract with ``model.training.datasets.load_review_export``).
LABELS = {VideoState.CONFIRMED.value: "fake", VideoState.DISMISSED.value: "real"}

REPORT_FIELDS = (
    "youtube_id",
    "url",
    "state",
    "title",
    "channel_id",
    "channel_title",
    "published_at",
    "discovered_at",
    "score",
    "faces",
    "bundle",
    "analysed_at",
    "decision",
    "reviewer",
    "decided_at",
    "policy_reason",
    "reversal_reason",
    "note",
    "declared_synthetic",
    "bank_match",
    "decisions",
)


def _export_videos(
    session: Session,
    states: Iterable[str],
    since: datetime | None,
    queue_filter: QueueFilter | None = None,
) -> Iterator[Video]:
    if queue_filter is not None:  # the web page's filter: its videos in its order, every page
        query = select(Video).where(*queue_conditions(queue_filter))
        query = query.order_by(*queue_order(queue_filter))
    else:
        query = select(Video).where(Video.state.in_(list(states))).order_by(Video.id)
        if since is not None:
            query = query.where(func.coalesce(Video.published_at, Video.discovered_at) >= since)
    # Stream in id order so a large export never loads everything at once.
    yield from session.scalars(query.execution_options(yield_per=200))


def report_rows(
    session: Session,
    states: Iterable[str] = REVIEW_STATES,
    since: datetime | None = None,
    queue_filter: QueueFilter | None = None,
) -> Iterator[dict[str, Any]]:
    """One reporting row per video: its latest analysis and latest decision.

    ``queue_filter`` (the web page's filter, paging ignored) replaces ``states`` and
    ``since`` when given.
    """
    for video in _export_videos(session, states, since, queue_filter):
        analysis = video.latest_analysis
        last = video.decisions[-1] if video.decisions else None
        yield {
            "youtube_id": video.youtube_id,
            "url": video.url,
            "state": video.state,
            "title": video.title,
            "channel_id": video.channel_youtube_id,
            "channel_title": video.channel_title,
            "published_at": video.published_at.isoformat() if video.published_at else None,
            "discovered_at": video.discovered_at.isoformat(),
            "score": video.score,
            "faces": analysis.faces if analysis else None,
            "bundle": f"{analysis.bundle_id} {analysis.bundle_version}" if analysis else None,
            "analysed_at": analysis.created_at.isoformat() if analysis else None,
            "decision": last.decision if last else None,
            "reviewer": last.reviewer if last else None,
            "decided_at": last.decided_at.isoformat() if last else None,
            "policy_reason": last.policy_reason if last else None,
            "reversal_reason": last.reversal_reason if last else None,
            "note": last.note if last else None,
            "declared_synthetic": video.declared_synthetic,
            "bank_match": _flagging_match(session, video),
            "decisions": [decision_info(d).to_json() for d in video.decisions],
        }


def _flagging_match(session: Session, video: Video) -> str | None:
    """Content id of the fake-bank entry that flagged ``video`` without a model run."""
    if video.verdict != KNOWN_FAKE_VERDICT:
        return None
    return session.scalar(
        select(BankMatch.content_id)
        .where(BankMatch.video_id == video.id, BankMatch.outcome == "flagged")
        .order_by(BankMatch.id.desc())
        .limit(1)
    )


def export_report(
    session: Session,
    out: IO[str],
    fmt: str,
    states: Iterable[str] = REVIEW_STATES,
    since: datetime | None = None,
    queue_filter: QueueFilter | None = None,
) -> int:
    """Write a CSV or JSONL report to ``out``; returns the number of videos written.

    JSONL rows carry the full decision history; CSV rows the latest decision
    and the number of decisions (spreadsheets do not do nested lists).  CSV
    cells that a spreadsheet would run as a formula (a title ``=HYPERLINK(...)``)
    start with ``'`` and show control characters escaped, JSONL strings too
    (:func:`bot.terminal.spreadsheet_cell`, :func:`bot.terminal.json_text`): a
    report written to a terminal cannot drive it.
    """
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in report_rows(session, states, since, queue_filter):
            row = {**row, "decisions": len(row["decisions"])}
            writer.writerow({key: spreadsheet_cell(value) for key, value in row.items()})
            count += 1
    elif fmt == "jsonl":
        for row in report_rows(session, states, since, queue_filter):
            out.write(json_text(row) + "\n")
            count += 1
    else:
        raise ReviewError(f"export format {fmt!r} is not one of csv, jsonl, dataset")
    return count


@dataclass(frozen=True)
class DatasetSummary:
    directory: Path
    videos: int
    crops: int
    fake: int
    real: int
    missing_crops: int


def export_dataset(
    session: Session, settings: Settings, directory: Path, since: datetime | None = None
) -> DatasetSummary:
    """Write the labelled dataset for re-training: ``labels.jsonl`` + ``crops/``.

    Every confirmed (fake) or dismissed (real) video contributes the face
    crops of the analysis its final decision was made on, copied under
    ``crops/<video_id>/``.  The label is the video's current state, which is
    the latest decision, so a superseded decision never leaks into training.
    Crops whose file is gone (media retention) are counted and left out; a
    video with none left is not listed.  ``labels.jsonl`` is written to a
    temporary name and renamed, so a reader never sees half a file.
    """
    directory = Path(directory)
    labels_path = directory / "labels.jsonl"
    if labels_path.exists():
        raise ReviewError(
            f"{directory} already holds an export (labels.jsonl): choose a new --output directory"
        )
    (directory / "crops").mkdir(parents=True, exist_ok=True)
    counts = {"videos": 0, "crops": 0, "fake": 0, "real": 0, "missing": 0}
    tmp = directory / "labels.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as labels:
        for video in _export_videos(session, tuple(LABELS), since):
            last = next((d for d in reversed(video.decisions) if d.decision == video.state), None)
            analysis = _decided_analysis(video, last)
            if last is None or analysis is None:
                continue
            info = analysis_info(analysis)
            copied: list[str] = []
            for crop in info.crops:
                source = crop_path(settings, info, crop.index)
                if source is None:
                    counts["missing"] += 1
                    continue
                relative = f"crops/{video.youtube_id}/{info.id}-{crop.index}-{source.name}"
                target = directory / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
                copied.append(relative)
            if not copied:
                continue
            label = LABELS[video.state]
            row = {
                "video_id": video.youtube_id,
                "label": label,
                "crops": copied,
                "reviewer": last.reviewer,
                "decided_at": last.decided_at.isoformat(),
                "policy_reason": last.policy_reason,
                "analysis_id": info.id,
                "bundle": f"{info.bundle_id} {info.bundle_version}",
                "score": info.video_score,
            }
            labels.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts["videos"] += 1
            counts["crops"] += len(copied)
            counts[label] += 1
    tmp.replace(labels_path)
    log_event(log, "review.exported", directory=str(directory), **counts)
    return DatasetSummary(
        directory=directory,
        videos=counts["videos"],
        crops=counts["crops"],
        fake=counts["fake"],
        real=counts["real"],
        missing_crops=counts["missing"],
    )


def _decided_analysis(video: Video, decision: ReviewDecision | None) -> Analysis | None:
    if decision is not None and decision.analysis_id is not None:
        for analysis in video.analyses:
            if analysis.id == decision.analysis_id:
                return analysis
    return video.latest_analysis
