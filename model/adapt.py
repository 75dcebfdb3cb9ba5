"""Learning from reviewers: a candidate bundle refitted on decided videos, and the guard.

Engine side (no database, no settings): :mod:`bot.review.learning` gathers the decided
videos and calls :func:`build_candidate` and :func:`guard`; the CLI and the daemon's
scheduled job go through it.  The rules (docs/adaptation.md has the reasoning):

* **Examples.**  A decided video is labelled by its *final* state (confirmed = fake,
  dismissed = real; a reversal counts as what it ended as) and carries its stored
  evidence crops (``Analysis.crops``, the strongest faces of each track).  Videos
  analysed below the threshold and never reviewed are *presumed real*: reviewers only
  see flagged videos, so without them every reviewed real video is a false alarm and a
  false-alarm budget could only be met by flagging nothing.  Presumed-real videos
  count in thresholds and false-alarm rates, never in head fine-tuning.
* **Split.**  By channel when at least :data:`MIN_GROUPS_FOR_GROUP_SPLIT` channels have
  decisions, else by video; a stable hash decides, so a video (channel) in the check
  part stays there in every later adaptation and is never learnt from.
* **Recalibration.**  The combined logit is refitted on the adapt part's crops: Platt
  scaling ``sigmoid(a * z + c)`` with ``a >= 0`` for a stacking combiner (a flipped
  label set yields ``a = 0``, a flat model the guard refuses), the temperature for a
  mean combiner (:func:`model.calibration.fit_temperature`).
* **Threshold.**  The rule recorded in the current manifest (the false-alarm budget, or
  the recall target), on the adapt part's video scores
  (:func:`model.calibration.choose_threshold`).
* **Heads.**  With at least :data:`MIN_VIDEOS_PER_CLASS` reviewed videos of each class
  in the adapt part, the final dense layer (``logit``) of every member is refitted on
  the reviewed crops' features: class-balanced log loss plus an L2 pull towards the
  current weights, at most :data:`HEAD_STEPS` L-BFGS steps.  Below it: calibration and
  threshold only (a few dozen videos fit two numbers, not a thousand weights).
* **Guard.**  Current and candidate are measured on the check part and on a fixed sample
  of the shipped validation set: ROC AUC, false-alarm rate at each one's threshold, and
  recall.  The candidate is refused if on either set its AUC is lower by more than
  :data:`AUC_TOLERANCE`, its false-alarm rate exceeds ``max(current, budget)`` by more
  than :data:`FALSE_ALARM_TOLERANCE`, or (when the current already met the budget there)
  its recall falls by more than :data:`RECALL_TOLERANCE`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Reviewed videos per class in the adapt part before the heads are fine-tuned.
MIN_VIDEOS_PER_CLASS = 50
#: Videos per class (reviewed or presumed real) each part needs for a guarded run.
MIN_PART_PER_CLASS = 5
#: Channels with decisions needed to split by channel (fewer: split by video).
MIN_GROUPS_FOR_GROUP_SPLIT = 8
#: Share of the groups (channels or videos) held out as the check part.
CHECK_SHARE = 0.3
HEAD_STEPS = 50
#: L2 pull of the refitted head towards the current weights (per example, on features).
HEAD_L2 = 1e-2
AUC_TOLERANCE = 0.01
FALSE_ALARM_TOLERANCE = 0.01
RECALL_TOLERANCE = 0.05
#: Crops of the shipped validation set scored per class by the guard (seeded sample).
VALIDATION_PER_CLASS = 200
#: Evidence crops used per video (the analysis keeps up to 3 per track).
CROPS_PER_VIDEO = 6


class AdaptError(Exception):
    """Adaptation cannot run on this data (one line: what is missing, what to do)."""


@dataclass
class Example:
    """One labelled video: its key, split group, label and evidence crops."""

    key: str
    group: str
    label: int  # 1 fake (confirmed), 0 real (dismissed or presumed real)
    crops: list[tuple[Path, int]]  # (JPEG path, track)
    reviewed: bool = True
    decision_id: int | None = None


@dataclass
class Scored:
    """What each member's head sees for a set of examples' crops, and whose crop each is.

    The members' bodies run once per crop; logits under any head (the current one or a
    refitted one) are then a matrix product: current and candidate are compared on
    exactly the same features, and a refitted candidate costs no second network pass.
    """

    examples: list[Example]
    features: list[np.ndarray]  # per member [crops, D]
    owner: np.ndarray  # example index per crop
    track: np.ndarray

    def logits(self, heads: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """``[members, crops]`` logits under ``heads`` (kernel [D], bias per member)."""
        if not self.features or not len(self.owner):
            return np.zeros((len(heads), 0))
        return np.stack([f @ k + b for f, (k, b) in zip(self.features, heads, strict=True)])

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.examples], dtype=int)

    def crop_labels(self) -> np.ndarray:
        return self.labels[self.owner] if len(self.owner) else np.zeros(0, int)


@dataclass
class Candidate:
    """A refitted combiner and threshold, and the members' heads (refitted or current)."""

    heads: list[tuple[np.ndarray, float]]
    combiner: Any
    threshold: float
    record: dict = field(default_factory=dict)


def current_heads(bundle) -> list[tuple[np.ndarray, float]]:
    """Each member's ``logit`` layer as (kernel [D], bias), float64."""
    heads = []
    for model in bundle.ensemble().models:
        kernel, bias = model.get_layer("logit").get_weights()
        heads.append((np.asarray(kernel, np.float64)[:, 0], float(bias[0])))
    return heads


def install_heads(bundle, heads: list[tuple[np.ndarray, float]]) -> list:
    """Put ``heads`` into ``bundle``'s models (in place) and return the models."""
    models = bundle.ensemble().models
    for model, (kernel, bias) in zip(models, heads, strict=True):
        model.get_layer("logit").set_weights(
            [kernel.astype(np.float32)[:, None], np.array([bias], np.float32)]
        )
    return models


# ------------------------------------------------------------------ split
def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16**12)


def split(examples: list[Example]) -> tuple[list[Example], list[Example], str]:
    """Adapt and check parts, by channel when there are enough channels, else by video."""
    groups = {e.group for e in examples if e.reviewed}
    by = "channel" if len(groups) >= MIN_GROUPS_FOR_GROUP_SPLIT else "video"
    adapt, check = [], []
    for e in examples:
        key = e.group if by == "channel" else e.key
        (check if _unit_hash(f"find-adapt:{key}") < CHECK_SHARE else adapt).append(e)
    return adapt, check, by


# ---------------------------------------------------------------- scoring
def read_crop(path: Path, size: int) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def score(bundle, examples: list[Example]) -> Scored:
    """The members' head inputs for every crop of ``examples`` (unreadable crops skipped)."""
    size = bundle.input_size
    crops, owner, track = [], [], []
    for i, example in enumerate(examples):
        for path, tr in example.crops[:CROPS_PER_VIDEO]:
            image = read_crop(path, size)
            if image is not None:
                crops.append(image)
                owner.append(i)
                track.append(tr)
    return _scored(bundle, examples, crops, owner, track)


def _scored(bundle, examples, crops, owner, track) -> Scored:
    size = bundle.input_size
    batch = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    feats = [f.astype(np.float64) for f in bundle.ensemble().head_inputs(batch)]
    return Scored(examples, feats, np.array(owner, int), np.array(track, int))


def video_scores(scored: Scored, probs: np.ndarray) -> np.ndarray:
    """Per example: the highest track mean of its crops' probabilities (NaN: no crop)."""
    out = np.full(len(scored.examples), np.nan)
    for i in range(len(scored.examples)):
        mine = scored.owner == i
        if mine.any():
            tracks = scored.track[mine]
            out[i] = max(float(probs[mine][tracks == t].mean()) for t in np.unique(tracks))
    return out


# ------------------------------------------------------------ candidate
def _stacked_logit(combiner, logits: np.ndarray) -> np.ndarray:
    return combiner.bias + np.asarray(combiner.weights) @ logits


def recalibrate(combiner, logits: np.ndarray, labels: np.ndarray) -> tuple[Any, dict]:
    """Refit the combiner's calibration on crop labels (Platt for stacking, T for mean)."""
    from model.calibration import fit_temperature
    from model.ensemble import MeanCombiner, StackingCombiner, fit_stacking

    z = np.atleast_2d(np.asarray(logits, np.float64))
    mean = z.mean(axis=0)
    if mean[labels == 1].min() > mean[labels == 0].max():
        # Perfectly separated: the fit would only find its search bound (absurd confidence).
        return combiner, {"rule": "kept", "reason": "decisions perfectly separated"}
    if isinstance(combiner, MeanCombiner):
        temperature = fit_temperature(logits, labels)
        return MeanCombiner(temperature), {"rule": "temperature", "temperature": temperature}
    platt = fit_stacking(_stacked_logit(combiner, logits)[None, :], labels, l2=1e-3, balanced=False)
    a, c = platt.weights[0], platt.bias
    new = StackingCombiner(tuple(a * w for w in combiner.weights), a * combiner.bias + c)
    return new, {"rule": "platt", "scale": a, "offset": c}


def threshold_rule(manifest: dict) -> dict:
    """The current bundle's threshold rule (false-alarm budget or recall target)."""
    rule = (manifest.get("training") or {}).get("threshold_rule") or {}
    adaptation = (manifest.get("training") or {}).get("adaptation") or {}
    rule = adaptation.get("threshold_rule_in_force") or rule
    if rule.get("max_false_alarm_rate") is not None:
        return {"max_false_alarm_rate": float(rule["max_false_alarm_rate"])}
    return {"target_recall": float(rule.get("target_recall", 0.9))}


def refit_heads(
    heads: list[tuple[np.ndarray, float]], scored: Scored, reviewed: np.ndarray
) -> tuple[list[tuple[np.ndarray, float]], list[dict]]:
    """Refit each member's final dense layer on the reviewed crops' features."""
    from scipy.optimize import minimize

    y = scored.crop_labels()[reviewed].astype(np.float64)
    weight = np.where(y == 1, 0.5 / max(y.mean(), 1e-9), 0.5 / max(1 - y.mean(), 1e-9))
    new_heads, reports = [], []
    for (kernel, bias), feats in zip(heads, scored.features, strict=True):
        x = feats[reviewed]
        start = np.append(kernel, bias)

        def loss(params, x=x, start=start):
            z = x @ params[:-1] + params[-1]
            p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
            eps = 1e-12
            nll = -(weight * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))).mean()
            g = weight * (p - y) / len(y)
            diff = params - start
            grad = np.append(x.T @ g, g.sum()) + 2 * HEAD_L2 * diff
            return nll + HEAD_L2 * float(diff @ diff), grad

        before = loss(start)[0]
        result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": HEAD_STEPS})
        new_heads.append((result.x[:-1], float(result.x[-1])))
        reports.append(
            {"loss_before": float(before), "loss_after": float(result.fun), "steps": result.nit}
        )
    return new_heads, reports


def reviewed_counts(adapt: list[Example]) -> tuple[int, int]:
    """Reviewed (not presumed-real) videos of the adapt part: (fake, real)."""
    fake = sum(1 for e in adapt if e.reviewed and e.label == 1)
    real = sum(1 for e in adapt if e.reviewed and e.label == 0)
    return fake, real


def fine_tunes(adapt: list[Example]) -> bool:
    """Whether the heads are refitted: enough reviewed videos of *each* class."""
    return min(reviewed_counts(adapt)) >= MIN_VIDEOS_PER_CLASS


def build_candidate(bundle, adapt: list[Example]) -> tuple[Candidate, Scored]:
    """Recalibrate (and, when :func:`fine_tunes`, refit the heads) on ``adapt``.

    Nothing in ``bundle`` changes: refitted heads are returned in the candidate, and
    :func:`install_heads` puts them into a bundle's models once the guard has passed.
    """
    from model.calibration import choose_threshold

    labels = np.array([e.label for e in adapt])
    if len(set(labels.tolist())) < 2:
        raise AdaptError("the adapt part needs both confirmed fakes and real videos")
    reviewed_fake, reviewed_real = reviewed_counts(adapt)
    tune = fine_tunes(adapt)
    scored = score(bundle, adapt)
    crop_labels = scored.crop_labels()
    if len(set(crop_labels.tolist())) < 2:
        raise AdaptError("the adapt part's crops lack a class (are the crops on disk?)")
    heads_now = current_heads(bundle)
    heads = heads_now
    tuning: dict[str, Any] = {
        "fine_tuned": tune,
        "reviewed_videos": {"fake": reviewed_fake, "real": reviewed_real},
        "minimum_per_class": MIN_VIDEOS_PER_CLASS,
    }
    if tune:
        reviewed = np.array([scored.examples[i].reviewed for i in scored.owner], bool)
        heads, tuning["members"] = refit_heads(heads_now, scored, reviewed)
        tuning["rule"] = (
            f"final dense layer only, class-balanced log loss + {HEAD_L2} x L2 to the "
            f"current weights, at most {HEAD_STEPS} L-BFGS steps, reviewed crops only"
        )
    logits = scored.logits(heads)
    combiner, calibration = recalibrate(bundle.combiner, logits, crop_labels)
    vs = video_scores(scored, combiner(logits))
    keep = ~np.isnan(vs)
    reviewed_videos = np.array([e.reviewed for e in adapt], bool)
    rule = threshold_rule(bundle.manifest)
    threshold, how = choose_threshold(
        labels[keep],
        vs[keep],
        rule.get("target_recall", 0.9),
        rule.get("max_false_alarm_rate"),
    )
    now_scores = video_scores(scored, bundle.combiner(scored.logits(heads_now)))
    sure = keep & reviewed_videos
    candidate = Candidate(
        heads=heads,
        combiner=combiner,
        threshold=float(np.clip(threshold, 0.0, 1.0)),
        record={
            "calibration": calibration,
            "threshold_rule": how,
            "threshold_rule_in_force": rule,
            "heads": tuning,
            "crops": len(crop_labels),
            "adapt_auc_current": measure(labels[sure], now_scores[sure], 0.5)["auc"],
        },
    )
    return candidate, scored


# -------------------------------------------------------------- measures
def measure(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """AUC, false-alarm rate and recall at ``threshold`` (examples without a score dropped)."""
    from sklearn.metrics import roc_auc_score

    keep = ~np.isnan(scores)
    y, s = np.asarray(labels)[keep], np.asarray(scores)[keep]
    real, fake = y == 0, y == 1
    flagged = s >= threshold
    return {
        "auc": float(roc_auc_score(y, s)) if real.any() and fake.any() else None,
        "false_alarm_rate": float(flagged[real].mean()) if real.any() else None,
        "recall": float(flagged[fake].mean()) if fake.any() else None,
        "threshold": float(threshold),
        "real": int(real.sum()),
        "fake": int(fake.sum()),
    }


def compare(bundle, candidate: Candidate, scored: Scored) -> dict[str, dict]:
    """Current and candidate measured on the same crops: {"current": .., "candidate": ..}."""
    labels = scored.labels
    now = video_scores(scored, bundle.combiner(scored.logits(current_heads(bundle))))
    new = video_scores(scored, candidate.combiner(scored.logits(candidate.heads)))
    return {
        "current": measure(labels, now, bundle.threshold),
        "candidate": measure(labels, new, candidate.threshold),
    }


def validation_examples(root: Path, per_class: int = VALIDATION_PER_CLASS, seed: int = 0):
    """A seeded sample of ``dfdc-faces/val`` (one crop per source group and class)."""
    rng = np.random.default_rng(seed)
    out = []
    for label, name in ((0, "real"), (1, "fake")):
        groups = sorted(p for p in (root / name).iterdir() if p.is_dir())
        picks = rng.permutation(len(groups))[:per_class]
        for i in sorted(picks):
            files = sorted(groups[i].glob("*.jpg"))
            if files:
                out.append(
                    Example(f"val:{name}/{groups[i].name}", groups[i].name, label, [(files[0], 0)])
                )
    return out


def reframe_tight(path: Path, size: int, margin: float) -> np.ndarray | None:
    """A tight face crop padded black to the scanner's framing (face box = the crop)."""
    import cv2

    image = read_crop(path, size)
    if image is None:
        return None
    inner = max(1, round(size / (1.0 + margin)))
    face = cv2.resize(image, (inner, inner), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((size, size, 3), np.uint8)
    offset = (size - inner) // 2
    canvas[offset : offset + inner, offset : offset + inner] = face
    return canvas


def score_validation(bundle, examples: list[Example]) -> Scored:
    """Head inputs for validation crops, re-framed as the scanner frames faces."""
    crops, owner = [], []
    for i, example in enumerate(examples):
        image = reframe_tight(example.crops[0][0], bundle.input_size, bundle.crop_margin)
        if image is not None:
            crops.append(image)
            owner.append(i)
    return _scored(bundle, examples, crops, owner, [0] * len(owner))


def judge(
    sets: dict[str, dict[str, dict]], budget: float | None, adapt_auc: float | None = None
) -> list[str]:
    """Why the candidate is worse (empty: not worse) from {set: {current, candidate}}.

    ``adapt_auc`` is the current model's video AUC on the adapt part's *reviewed* videos
    (presumed-real ones would inflate it): below 0.5 the decisions rank videos *against*
    the model (flipped labels, a different task), and a
    recalibration (monotone, slope >= 0) can only flatten the model, never learn that.
    """
    reasons = []
    if adapt_auc is not None and adapt_auc < 0.5:
        reasons.append(
            f"decisions: the current model's AUC on the adapt part is {adapt_auc:.3f} < 0.5, "
            "so the decisions contradict the model (flipped labels?): not learning from them"
        )
    for name, pair in sets.items():
        cur, cand = pair["current"], pair["candidate"]
        if cur["auc"] is not None and (
            cand["auc"] is None or cand["auc"] < cur["auc"] - AUC_TOLERANCE
        ):
            reasons.append(f"{name}: AUC {_f(cand['auc'])} < current {_f(cur['auc'])}")
        cur_fa, cand_fa = cur["false_alarm_rate"], cand["false_alarm_rate"]
        if cur_fa is not None and cand_fa is not None:
            allowed = max(cur_fa, budget or 0.0) + FALSE_ALARM_TOLERANCE
            if cand_fa > allowed:
                reasons.append(
                    f"{name}: false-alarm rate {_f(cand_fa)} > allowed {_f(allowed)} "
                    f"(current {_f(cur_fa)})"
                )
            met = budget is None or cur_fa <= budget + FALSE_ALARM_TOLERANCE
            if (
                met
                and cur["recall"] is not None
                and cand["recall"] is not None
                and cand["recall"] < cur["recall"] - RECALL_TOLERANCE
            ):
                reasons.append(
                    f"{name}: recall {_f(cand['recall'])} < current {_f(cur['recall'])} "
                    "while the current met the false-alarm budget"
                )
    return reasons


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def table(sets: dict[str, dict[str, dict]]) -> str:
    """The side-by-side numbers, one line per set and measure."""
    lines = [f"{'set':<12} {'measure':<17} {'current':>9} {'candidate':>9}"]
    for name, pair in sets.items():
        cur, cand = pair["current"], pair["candidate"]
        size = f"{cur['fake']} fake / {cur['real']} real"
        for key, label in (
            ("auc", "AUC"),
            ("false_alarm_rate", "false-alarm rate"),
            ("recall", "recall"),
            ("threshold", "threshold"),
        ):
            lines.append(f"{name:<12} {label:<17} {_f(cur[key]):>9} {_f(cand[key]):>9}")
        lines.append(f"{name:<12} {'(' + size + ')'}")
    return "\n".join(lines)
