"""Learning from the reviewers: gather decided videos, build a guarded candidate, promote it.

The one code path behind ``find-bot model adapt`` and the daemon's scheduled
adaptation (``FIND_ADAPT_INTERVAL``).  The engine side (:mod:`model.adapt`) fits and
measures; this module reads the database and the media directory, decides, and writes
the new version (:mod:`model.versions`).  docs/adaptation.md has the rules.

Which videos teach:

* confirmed and dismissed videos, labelled by their state *now*: a reversed decision
  counts as what it ended as (the history stays in ``review_decisions``);
* not ``known_fake`` bank matches (flagged without a model run: no analysis, no crops,
  and the bank already handles them);
* not videos the uploader declared synthetic: such a decision may judge the disclosure
  (AI scenery, a cartoon) rather than a face, so it is not a face label;
* videos analysed below the threshold and never reviewed, as *presumed real* (capped at
  :data:`PRESUMED_REAL_MAX`, newest first), for thresholds and false-alarm rates only.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.db import session_scope
from bot.errors import FindError
from bot.logs import log_event
from bot.settings import Settings, shared_data_dir
from bot.store import KNOWN_FAKE_VERDICT, Video, VideoState, utcnow

log = logging.getLogger("find.adapt")

#: Presumed-real (analysed, never flagged) videos taken, newest first.
PRESUMED_REAL_MAX = 500


class AdaptRefused(FindError):
    """Adaptation could not run (too few decisions, no crops): one line saying why."""


@dataclass
class AdaptReport:
    """What one adaptation did: the numbers side by side and the outcome."""

    current: str
    candidate: str
    promoted: bool
    dry_run: bool
    reasons: list[str]
    sets: dict[str, dict[str, dict]]
    table: str
    notes: list[str] = field(default_factory=list)
    directory: Path | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        head = f"current {self.current}  candidate {self.candidate}"
        if self.dry_run:
            verdict = "dry run: not promoted" + (
                " (it would be refused: " + "; ".join(self.reasons) + ")"
                if self.reasons
                else " (it would be promoted)"
            )
        elif self.promoted:
            verdict = f"promoted: {self.directory}"
        else:
            verdict = "refused: " + "; ".join(self.reasons)
        return "\n".join([head, self.table, *self.notes, verdict])


def gather(settings: Settings) -> list[Any]:
    """Decided (and presumed-real) videos with their evidence crops on disk."""
    from model.adapt import Example

    decided = (VideoState.CONFIRMED.value, VideoState.DISMISSED.value)
    examples = []
    with session_scope(settings) as session:
        rows = session.scalars(
            select(Video)
            .where(Video.state.in_(decided))
            .options(selectinload(Video.analyses), selectinload(Video.decisions))
            .order_by(Video.id)
        ).all()
        presumed = session.scalars(
            select(Video)
            .where(Video.state == VideoState.ANALYSED.value)
            .options(selectinload(Video.analyses))
            .order_by(Video.id.desc())
            .limit(PRESUMED_REAL_MAX)
        ).all()
        for video, reviewed in [(v, True) for v in rows] + [(v, False) for v in presumed]:
            if video.verdict == KNOWN_FAKE_VERDICT or video.declared_synthetic:
                continue
            analysis = video.latest_analysis
            if analysis is None:
                continue
            crops = [
                (settings.media_dir / c["path"], int(c.get("track", 0)))
                for c in analysis.crops or []
                if c.get("path") and (settings.media_dir / c["path"]).is_file()
            ]
            if not crops:
                continue
            examples.append(
                Example(
                    key=video.youtube_id,
                    group=video.channel_youtube_id or f"video:{video.youtube_id}",
                    label=1 if video.state == VideoState.CONFIRMED.value else 0,
                    crops=crops,
                    reviewed=reviewed,
                    decision_id=video.decisions[-1].id if reviewed and video.decisions else None,
                )
            )
    return examples


def _counts(examples: list) -> dict[str, int]:
    return {
        "confirmed": sum(1 for e in examples if e.reviewed and e.label == 1),
        "dismissed": sum(1 for e in examples if e.reviewed and e.label == 0),
        "presumed_real": sum(1 for e in examples if not e.reviewed),
    }


def run_adaptation(
    settings: Settings,
    *,
    dry_run: bool = False,
    allow_without_validation: bool = False,
    validation_dir: Path | None = None,
    validation_per_class: int | None = None,
    now: _dt.datetime | None = None,
) -> AdaptReport:
    """Build a candidate from the active bundle and the decisions; promote it if not worse."""
    from model import adapt
    from model.bundle import json_safe, load_bundle, write_bundle
    from model.versions import active_bundle_path, bundles_root, promote

    now = now or utcnow()
    base = settings.model_bundle
    root = bundles_root(settings.data_dir)
    current_path = active_bundle_path(root, base)
    examples = gather(settings)
    adapt_part, check_part, by = adapt.split(examples)
    for name, part in (("adapt", adapt_part), ("check", check_part)):
        fake = sum(1 for e in part if e.label == 1)
        real = sum(1 for e in part if e.label == 0)
        if min(fake, real) < adapt.MIN_PART_PER_CLASS:
            raise AdaptRefused(
                f"not enough decided videos to adapt: the {name} part has {fake} fake and "
                f"{real} real (needs {adapt.MIN_PART_PER_CLASS} of each; decisions so far: "
                f"{_counts(examples)}); review more flagged videos and try again"
            )
    current = load_bundle(current_path)
    try:
        candidate, _adapt_scored = adapt.build_candidate(current, adapt_part)
    except adapt.AdaptError as exc:
        raise AdaptRefused(str(exc)) from None
    budget = adapt.threshold_rule(current.manifest).get("max_false_alarm_rate")

    sets: dict[str, dict[str, dict]] = {}
    sets["check"] = adapt.compare(current, candidate, adapt.score(current, check_part))
    notes, reasons = [], []
    val_dir = validation_dir or shared_data_dir() / "dfdc-faces" / "val"
    if (val_dir / "real").is_dir() and (val_dir / "fake").is_dir():
        val_examples = adapt.validation_examples(
            val_dir, validation_per_class or adapt.VALIDATION_PER_CLASS
        )
        val = adapt.score_validation(current, val_examples)
        sets["validation"] = adapt.compare(current, candidate, val)
    else:
        notes.append(f"validation check skipped: no shipped validation set at {val_dir}")
        if not allow_without_validation:
            reasons.append(
                f"the shipped validation set ({val_dir}) is missing, so the candidate could "
                "only be checked on decisions: pass --allow-without-validation to accept that"
            )
    reasons = adapt.judge(sets, budget, candidate.record.get("adapt_auc_current")) + reasons
    if settings.score_threshold is not None:
        notes.append(
            f"note: FIND_SCORE_THRESHOLD={settings.score_threshold} overrides every bundle's "
            "threshold, the adapted one included"
        )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    base_version = str(
        current.manifest.get("training", {}).get("adaptation", {}).get("base_version")
        or current.version
    )
    version = f"{base_version}+adapted.{stamp}"
    record = {
        "promoted_at": now.isoformat(timespec="seconds"),
        "from": {"name": current.id, "version": current.version, "path": str(current.path)},
        "base_version": base_version,
        "split_by": by,
        "decisions": {
            "adapt": _counts(adapt_part),
            "check": _counts(check_part),
            "last_decision_id": max((e.decision_id or 0) for e in examples),
            "adapt_videos": sorted(e.key for e in adapt_part if e.reviewed),
            "check_videos": sorted(e.key for e in check_part if e.reviewed),
        },
        "numbers": sets,
        "notes": notes,
        **candidate.record,
    }
    report = AdaptReport(
        current=f"{current.id} {current.version}",
        candidate=f"{current.id} {version}",
        promoted=False,
        dry_run=dry_run,
        reasons=reasons,
        sets=sets,
        table=adapt.table(sets),
        notes=notes,
        record=record,
    )
    if dry_run or reasons:
        log_event(
            log,
            "adapt.dry_run" if dry_run else "adapt.refused",
            logging.INFO if dry_run else logging.WARNING,
            current=report.current,
            reasons="; ".join(reasons) or None,
        )
        return report
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".candidate-"))
    try:
        write_bundle(
            staging,
            adapt.install_heads(current, candidate.heads),  # our own copy: nobody else uses it
            list(current.specs),
            threshold=candidate.threshold,
            name=current.id,
            version=version,
            training={**(current.manifest.get("training") or {}), "adaptation": record},
            metrics={**(current.manifest.get("metrics") or {}), "adaptation": sets},
            crop_margin=current.crop_margin,
            weights_dtype=current.manifest.get("weights_dtype", "float16"),
            combiner=candidate.combiner.to_dict(),
            member_info=_member_info(current.manifest["models"], candidate.combiner),
        )
        final = root / f"{current.id}-{version}"
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    promote(
        root,
        final,
        base,
        {
            "version": version,
            "promoted_at": record["promoted_at"],
            "from": record["from"],
            "decisions": record["decisions"]["adapt"],
            "last_decision_id": record["decisions"]["last_decision_id"],
            "numbers": json_safe(sets),
        },
    )
    report.promoted, report.directory = True, final
    log_event(log, "adapt.promoted", current=report.current, bundle=report.candidate)
    return report


def _member_info(entries: list[dict], combiner: Any) -> list[dict]:
    """The current members' descriptions, with the recalibrated stacking weights."""
    from model.bundle import WRITTEN_FIELDS

    weights = getattr(combiner, "weights", None)
    info = []
    for i, entry in enumerate(entries):
        kept = {k: v for k, v in entry.items() if k not in WRITTEN_FIELDS}
        if weights is not None and "stacking_weight" in kept:
            kept["stacking_weight"] = float(weights[i])
        info.append(kept)
    return info
