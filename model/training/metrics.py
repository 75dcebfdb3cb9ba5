"""Binary classification metrics, video-level aggregation, and their text summary.

Conventions (stated once, used everywhere): label 1 = fake = positive class;
a score is a calibrated probability of "fake"; a sample is predicted fake
when ``score >= threshold``.  Metrics that are undefined on the given data
(ROC AUC with one class only) are ``None`` rather than a misleading number,
and precision with no predicted positives is 0.0 (scikit-learn's
``zero_division=0``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

EPS = 1e-7
#: Probability bins of the expected calibration error (15, as in Guo et al. 2017).
ECE_BINS = 15


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """``tn``, ``fp``, ``fn``, ``tp`` for 0/1 arrays."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    return {
        "tn": int(np.sum((y_true == 0) & (y_pred == 0))),
        "fp": int(np.sum((y_true == 0) & (y_pred == 1))),
        "fn": int(np.sum((y_true == 1) & (y_pred == 0))),
        "tp": int(np.sum((y_true == 1) & (y_pred == 1))),
    }


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve, or None when only one class is present."""
    y_true = np.asarray(y_true).astype(int)
    if len(np.unique(y_true)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, np.asarray(scores, dtype=np.float64)))


#: Points of the recorded ROC curve (false-positive rates 0, 0.01, ..., 1) and bins of the
#: recorded score histograms (0-0.05, ..., 0.95-1): a few KB per evaluation in the manifest.
CURVE_POINTS = 101
HISTOGRAM_BINS = 20


def score_curves(y_true: np.ndarray, scores: np.ndarray) -> dict:
    """The shape of a score distribution, small enough to keep in a bundle manifest.

    ``roc_tpr``: the best true-positive rate reachable at a false-positive rate of at
    most ``0, 0.01, ..., 1`` (:data:`CURVE_POINTS` values, the rates implied; ``[]`` with
    one class only).  ``real`` and ``fake``: how many scores of each class fall in each of
    :data:`HISTOGRAM_BINS` equal bins over [0, 1] (1.0 in the last).  ``make docs-figures``
    draws the docs' ROC curves and per-source histograms from these, without the data sets.
    """
    y = np.asarray(y_true).astype(int)
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    tpr_at: list[float] = []
    if len(np.unique(y)) == 2:
        from sklearn.metrics import roc_curve

        fpr, tpr, _ = roc_curve(y, s)
        for target in np.linspace(0.0, 1.0, CURVE_POINTS):
            tpr_at.append(round(float(tpr[fpr <= target + 1e-12].max()), 4))
    return {
        "roc_tpr": tpr_at,
        "bins": HISTOGRAM_BINS,
        "real": [int(c) for c in np.histogram(s[y == 0], bins=edges)[0]],
        "fake": [int(c) for c in np.histogram(s[y == 1], bins=edges)[0]],
    }


def log_loss(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Mean negative log-likelihood of the labels, probabilities clipped to [1e-7, 1-1e-7]."""
    y = np.asarray(y_true, dtype=np.float64)
    if y.size == 0:
        return None
    p = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(
    y_true: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS
) -> float | None:
    """Expected calibration error: |fraction fake - mean probability|, averaged over bins.

    Equal-width probability bins, each weighted by its share of the items
    (Guo et al. 2017).  0 means "of the faces shown as 70 % fake, 70 % are";
    it is the number that says whether reviewers can read the probability
    literally.  Computed on the positive-class probability, both classes.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    if y.size == 0:
        return None
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(y[members].mean() - p[members].mean())
    return float(total)


def binary_metrics(
    y_true: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC, log loss, ECE and the confusion matrix."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    pred = (s >= threshold).astype(int)
    cm = confusion_counts(y, pred)
    n = int(y.size)
    tp, fp, fn = cm["tp"], cm["fp"], cm["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "positives": int(y.sum()),
        "negatives": int(n - y.sum()),
        "threshold": float(threshold),
        "accuracy": (cm["tp"] + cm["tn"]) / n if n else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        # Real items flagged: on real-only footage, the false-alarm rate moderators see.
        "false_positive_rate": cm["fp"] / (cm["fp"] + cm["tn"]) if cm["fp"] + cm["tn"] else None,
        "roc_auc": roc_auc(y, s),
        "log_loss": log_loss(y, s),
        "ece": expected_calibration_error(y, s),
        "confusion": cm,
    }


def mean_score(scores: np.ndarray) -> float:
    return float(np.mean(scores))


def aggregate_by_video(
    video_ids: Sequence[str],
    labels: Sequence[int],
    scores: Sequence[float],
    reduce: Callable[[np.ndarray], float] = mean_score,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Collapse per-crop scores to one score per video (``reduce``, default mean).

    Every crop of a video must carry the same label; a mismatch means the
    dataset adapter is broken, so it raises instead of guessing.
    """
    grouped: OrderedDict[str, list[float]] = OrderedDict()
    video_label: dict[str, int] = {}
    for vid, label, score in zip(video_ids, labels, scores, strict=True):
        if video_label.setdefault(vid, int(label)) != int(label):
            raise ValueError(f"video {vid!r} has crops with different labels")
        grouped.setdefault(vid, []).append(float(score))
    ids = list(grouped)
    return (
        ids,
        np.array([video_label[v] for v in ids], dtype=int),
        np.array([reduce(np.asarray(grouped[v])) for v in ids], dtype=np.float64),
    )


def by_source(
    labels: Sequence[int], scores: Sequence[float], sources: Sequence[str], threshold: float
) -> dict[str, dict]:
    """Per source (a generator, a real dataset): how many of its videos are flagged at
    ``threshold``, and for a fake source its AUC against *every* real video.

    Why: one pooled AUC hides what users meet one by one.  A detector can rank DFDC-like
    swaps well and a new generator below real people (our talking-heads numbers), or
    flag one camera's real footage wholesale; DeepfakeBench reports per method for the
    same reason.  Sources are named ``real/<source>`` and ``fake/<source>``.
    """
    labels_a = np.asarray(labels, np.int64)
    scores_a = np.asarray(scores, np.float64)
    sources_a = np.asarray(sources, dtype=object)
    reals = scores_a[labels_a == 0]
    out: dict[str, dict] = {}
    for name in sorted(set(sources_a.tolist())):
        mask = sources_a == name
        label = int(labels_a[mask][0])
        flagged = int((scores_a[mask] >= threshold).sum())
        entry: dict = {"label": label, "videos": int(mask.sum()), "flagged": flagged}
        if label == 1:
            both = np.concatenate([reals, scores_a[mask]])
            entry["auc_vs_real"] = roc_auc(
                np.r_[np.zeros(len(reals)), np.ones(int(mask.sum()))], both
            )
        out[name] = entry
    return out


def format_by_source(table: dict[str, dict]) -> str:
    """The per-source lines under the summary: flagged share, and AUC for fakes."""
    lines = [f"{'source':<28}{'videos':>8}{'flagged':>10}{'AUC vs real':>13}"]
    for name, row in table.items():
        auc = row.get("auc_vs_real")
        cell = "" if row["label"] == 0 else ("n/a" if auc is None else f"{auc:.4f}")
        flagged = f"{row['flagged']}/{row['videos']}"
        lines.append(f"{name:<28}{row['videos']:>8d}{flagged:>10}{cell:>13}")
    return "\n".join(lines)


def format_summary(report: dict) -> str:
    """Plain-text table of frame- and video-level metrics (for logs and the CLI)."""
    rows = (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "false_positive_rate",
        "roc_auc",
        "log_loss",
        "ece",
    )
    levels = [lvl for lvl in ("frame_level", "video_level") if report.get(lvl)]
    lines = [f"{'metric':<20}" + "".join(f"{lvl:>14}" for lvl in levels)]
    for row in (*rows, "n"):
        cells = []
        for lvl in levels:
            value = report[lvl].get(row)
            if value is None:
                cells.append(f"{'n/a':>14}")
            elif isinstance(value, int):
                cells.append(f"{value:>14d}")
            else:
                cells.append(f"{value:>14.4f}")
        lines.append(f"{row:<20}" + "".join(cells))
    for lvl in levels:
        cm = report[lvl]["confusion"]
        lines.append(f"{lvl} confusion: tn={cm['tn']} fp={cm['fp']} fn={cm['fn']} tp={cm['tp']}")
    return "\n".join(lines)
