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
from collections.abc import Callable, Iterator, Sequence

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


#: Bootstrap resamples behind an AUC's 95 % interval: enough that the interval's ends move
#: by about 0.005 between seeds on xval's 79 videos.
BOOTSTRAP_RESAMPLES = 2000
#: A class with fewer videos (groups) than this gets no interval: a bootstrap of one to four
#: draws cannot show that class's spread (one real video is the same in every resample, and
#: the six DFDC videos' "interval" would read 1.000-1.000).
MIN_GROUPS_PER_CLASS = 5


def auc_interval(
    y_true: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    groups: Sequence[str] | None = None,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> list[float] | None:
    """``[low, high]``: a percentile bootstrap interval of the ROC AUC, or None with one
    class only.

    Why: the sets FIND is chosen on are small (79 xval videos, 6 AniPortrait clips), and
    a difference of 0.02 between two detectors there is a re-draw, not a finding; a
    reader comparing FIND with DeepfakeBench's tables needs the width beside the number.
    Each class is resampled apart (its size fixed, as in DeLong's variance), and whole
    ``groups`` are drawn, not items: the frames of one video are one piece of evidence,
    and counting them apart would make a 5-video set look like a 500-frame one.
    """
    y = np.asarray(y_true).astype(int)
    if len(np.unique(y)) < 2:
        return None
    cluster, strata = _clusters(y, groups)
    if min(members.size for members in strata) < MIN_GROUPS_PER_CLASS:
        return None
    s = np.asarray(scores, dtype=np.float64)
    aucs = np.concatenate(
        [_resampled_aucs(y, s, w) for w in _bootstrap_weights(cluster, strata, resamples, seed)]
    )
    return _percentiles(aucs, level)


def auc_difference(
    y_true: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    groups: Sequence[str] | None = None,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> dict | None:
    """How much better ``scores`` rank than ``baseline`` on the same items: both AUCs,
    their difference and its paired bootstrap interval (``ci95``, None with fewer than
    :data:`MIN_GROUPS_PER_CLASS` groups in a class); None with one class.

    Paired, because two detectors scored on the same videos err on many of the same
    ones: each resample draws the same videos for both, so the interval of the
    difference is far narrower than the two AUCs' own intervals would suggest, and
    "is the candidate better than the default on xval?" gets an answer where the
    unpaired intervals overlap anyway.
    """
    y = np.asarray(y_true).astype(int)
    if len(np.unique(y)) < 2:
        return None
    a = np.asarray(scores, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != y.shape or b.shape != y.shape:
        raise ValueError(f"labels {y.shape}, scores {a.shape} and baseline {b.shape} differ")
    interval = None
    cluster, strata = _clusters(y, groups)
    if min(members.size for members in strata) >= MIN_GROUPS_PER_CLASS:
        differences = np.concatenate(
            [
                _resampled_aucs(y, a, w) - _resampled_aucs(y, b, w)
                for w in _bootstrap_weights(cluster, strata, resamples, seed)
            ]
        )
        interval = _percentiles(differences, level)
    auc, baseline_auc = roc_auc(y, a), roc_auc(y, b)
    return {
        "auc": auc,
        "baseline_auc": baseline_auc,
        "difference": auc - baseline_auc,
        "ci95": interval,
    }


def _clusters(y: np.ndarray, groups: Sequence[str] | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each item's cluster -- its group within its class (a video's frames all carry its
    label) -- and the clusters of each class (reals, fakes): what a resample draws."""
    keys = np.arange(y.size) if groups is None else np.asarray(groups, dtype=object)
    if len(keys) != y.size:
        raise ValueError(f"{len(keys)} groups for {y.size} scores")
    named = np.array([f"{label}|{key}" for label, key in zip(y, keys, strict=True)])
    _, cluster = np.unique(named, return_inverse=True)
    return cluster, [np.unique(cluster[y == label]) for label in (0, 1)]


def _bootstrap_weights(
    cluster: np.ndarray, strata: list[np.ndarray], resamples: int, seed: int, chunk: int = 200
) -> Iterator[np.ndarray]:
    """Resamples as weights, ``chunk`` rows at a time (rows x items, in the items' order):
    how often each item was drawn.  Within each class (``strata``, from :func:`_clusters`)
    whole clusters are drawn with replacement, as many as the class has."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        counts = np.zeros((rows, int(cluster.max()) + 1))
        for members in strata:
            draws = rng.integers(0, members.size, size=(rows, members.size))
            np.add.at(counts, (np.arange(rows)[:, None], members[draws]), 1.0)
        yield counts[:, cluster]


def _resampled_aucs(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One AUC per row of ``weights``: the weighted Mann-Whitney statistic, a tie counting
    half -- ``roc_auc_score`` with these sample weights, for many rows at once."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    tie_starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    w, labels = weights[:, order], y[order]
    negatives = np.add.reduceat(w * (labels == 0), tie_starts, axis=1)
    positives = np.add.reduceat(w * (labels == 1), tie_starts, axis=1)
    below = np.cumsum(negatives, axis=1) - negatives
    pairs = positives.sum(axis=1) * negatives.sum(axis=1)
    return (positives * (below + 0.5 * negatives)).sum(axis=1) / pairs


def _percentiles(values: np.ndarray, level: float) -> list[float]:
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [round(float(low), 4), round(float(high), 4)]


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
            both_labels = np.r_[np.zeros(len(reals)), np.ones(int(mask.sum()))]
            entry["auc_vs_real"] = roc_auc(both_labels, both)
            entry["auc_vs_real_ci95"] = auc_interval(both_labels, both)
        out[name] = entry
    return out


def format_by_source(table: dict[str, dict]) -> str:
    """The per-source lines under the summary: flagged share, and AUC for fakes with its
    95 % bootstrap interval."""
    lines = [f"{'source':<28}{'videos':>8}{'flagged':>10}{'AUC vs real':>13}{'95 % CI':>15}"]
    for name, row in table.items():
        auc = row.get("auc_vs_real")
        cell = "" if row["label"] == 0 else ("n/a" if auc is None else f"{auc:.4f}")
        interval = format_interval(row.get("auc_vs_real_ci95")) if row["label"] == 1 else ""
        flagged = f"{row['flagged']}/{row['videos']}"
        lines.append(f"{name:<28}{row['videos']:>8d}{flagged:>10}{cell:>13}{interval:>15}")
    return "\n".join(lines)


def format_comparison(comparison: dict) -> str:
    """The ``--against`` lines: AUC here and in the baseline, their difference and its
    paired 95 % interval, for all videos and each fake source."""
    lines = [
        f"{'against the baseline':<28}{'AUC':>8}{'baseline':>10}{'difference':>12}{'95 % CI':>18}"
    ]
    rows = {"all videos": comparison.get("video_level"), **comparison.get("video_by_source", {})}
    for name, row in rows.items():
        if not row:
            lines.append(f"{name:<28}{'n/a':>8}")
            continue
        # rounded first, so equal AUCs (a difference of -1e-17) print +0.0000, not -0.0000
        difference = round(row["difference"], 6) + 0.0
        interval = "n/a"
        if row.get("ci95"):
            low, high = (round(v, 6) + 0.0 for v in row["ci95"])
            interval = f"{low:+.3f} to {high:+.3f}"
        lines.append(
            f"{name:<28}{row['auc']:>8.4f}{row['baseline_auc']:>10.4f}"
            f"{difference:>+12.4f}{interval:>18}"
        )
    return "\n".join(lines)


def format_interval(interval: Sequence[float] | None) -> str:
    """``0.684-0.871`` (an interval as the tables print it), ``n/a`` when there is none."""
    if not interval:
        return "n/a"
    return f"{interval[0]:.3f}-{interval[1]:.3f}"


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
        if row == "roc_auc" and any("roc_auc_ci95" in report[lvl] for lvl in levels):
            intervals = [format_interval(report[lvl].get("roc_auc_ci95")) for lvl in levels]
            lines.append(f"{'  95 % interval':<20}" + "".join(f"{i:>14}" for i in intervals))
    for lvl in levels:
        cm = report[lvl]["confusion"]
        lines.append(f"{lvl} confusion: tn={cm['tn']} fp={cm['fp']} fn={cm['fn']} tp={cm['tp']}")
    return "\n".join(lines)
