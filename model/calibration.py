"""Temperature scaling and the decision-threshold rule, both fitted on validation data.

Temperature scaling (Guo et al., 2017): a network trained with cross-entropy
is over-confident, so its logits are divided by one scalar ``T`` fitted to
minimise the validation negative log-likelihood.  It never changes the
ranking (AUC is unchanged), only how much a "0.97" can be trusted, which
matters because moderators see the probability.

Threshold rule (documented in docs/training.md): among thresholds on the
validation scores whose recall on fakes is at least ``target_recall``,
pick the one with the highest precision (ties: the highest threshold, i.e.
the fewest flags).  A missed deepfake is worse than a reviewer's extra
click, so recall is the constraint and precision the objective.  (The
lowest score always reaches recall 1, so some threshold always qualifies.)
When validation lacks a class the threshold falls back to 0.5.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    from scipy.special import expit

    return expit(np.asarray(x, dtype=np.float64))


def ensemble_probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``mean_m sigmoid(logit_m / T)`` — exactly what ``model.ensemble.Ensemble`` outputs.

    ``logits`` is ``[n_models, N]`` (or ``[N]`` for one model).
    """
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    return sigmoid(z / temperature).mean(axis=0)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = np.clip(ensemble_probabilities(logits, temperature), 1e-12, 1 - 1e-12)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` in [0.05, 20] minimising the NLL of the ensemble output.

    ``logits`` is ``[n_models, N]`` or ``[N]``; the ensemble averages
    ``sigmoid(logit / T)`` over models, and ``T`` is fitted on exactly that.
    Returns 1.0 (no scaling) when validation has a single class, because the
    NLL then decreases without bound as confidence grows.
    """
    from scipy.optimize import minimize_scalar

    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    y = np.asarray(labels).astype(int).ravel()
    if z.shape[1] != y.size:
        raise ValueError(f"{z.shape[1]} logits per model but {y.size} labels")
    if y.size == 0 or len(np.unique(y)) < 2:
        return 1.0
    result = minimize_scalar(
        lambda log_t: _nll(z, y, float(np.exp(log_t))),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))


def calibrate_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, dict]:
    """``fit_temperature`` with the degenerate cases made explicit.

    When validation is perfectly separated (every fake scores above every
    real) the NLL keeps falling as ``T`` shrinks, so the fit only finds the
    search bound and would make the bundle absurdly over-confident; the
    temperature is then left at 1 and the report says why.
    """
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    y = np.asarray(labels).astype(int).ravel()
    if y.size == 0 or len(np.unique(y)) < 2:
        return 1.0, {"rule": "none", "reason": "validation data lacks a class"}
    mean = z.mean(axis=0)
    if mean[y == 1].min() > mean[y == 0].max():
        return 1.0, {"rule": "none", "reason": "validation perfectly separated"}
    temperature = fit_temperature(z, y)
    return temperature, {
        "rule": "nll",
        "nll_before": _nll(z, y, 1.0),
        "nll_after": _nll(z, y, temperature),
    }


def choose_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    target_recall: float = 0.9,
    max_false_alarm_rate: float | None = None,
) -> tuple[float, dict]:
    """The decision threshold by the rule in the module docstring, plus how it was chosen.

    With ``max_false_alarm_rate`` the rule is a false-alarm budget instead:
    the lowest threshold (highest recall) whose share of real items flagged
    is within the budget.  A weak model cannot reach the target recall
    without flagging most real videos, and a queue that is mostly false
    alarms is not reviewed at all; the budget keeps it usable and the
    manifest reports the recall it costs.
    """
    if not 0 < target_recall <= 1:
        raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
    y = np.asarray(labels).astype(int).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    positives, negatives = int(y.sum()), int((1 - y).sum())
    if positives == 0 or negatives == 0:
        return 0.5, {"rule": "default", "reason": "validation data lacks a class"}
    if max_false_alarm_rate is not None:
        return _false_alarm_threshold(y, s, max_false_alarm_rate)
    best: tuple[float, float, float] | None = None  # (precision, threshold, recall)
    for t in np.unique(s):
        pred = s >= t
        tp = int(np.sum(pred & (y == 1)))
        recall = tp / positives
        if recall + 1e-12 < target_recall:
            continue
        precision = tp / int(pred.sum())
        if best is None or (precision, t) > (best[0], best[1]):
            best = (precision, float(t), recall)
    assert best is not None  # the lowest score reaches recall 1
    return best[1], {
        "rule": "target_recall",
        "target_recall": target_recall,
        "recall": best[2],
        "precision": best[0],
    }


def _false_alarm_threshold(y: np.ndarray, s: np.ndarray, budget: float) -> tuple[float, dict]:
    if not 0 <= budget < 1:
        raise ValueError(f"max_false_alarm_rate must be in [0, 1), got {budget}")
    real = np.sort(s[y == 0])
    # Flag scores >= t: at most floor(budget * n_real) real items may reach t.
    allowed = int(np.floor(budget * real.size))
    # The smallest t above the (n_real - allowed)-th real score keeps within budget.
    cut = real[real.size - allowed - 1] if allowed < real.size else -np.inf
    threshold = float(np.nextafter(cut, np.inf)) if np.isfinite(cut) else float(s.min())
    threshold = min(max(threshold, 0.0), 1.0)
    pred = s >= threshold
    recall = float(np.sum(pred & (y == 1)) / max(1, int(y.sum())))
    false_alarms = float(np.sum(pred & (y == 0)) / real.size)
    return threshold, {
        "rule": "false_alarm_budget",
        "max_false_alarm_rate": budget,
        "false_alarm_rate": false_alarms,
        "recall": recall,
    }


def per_source_threshold(
    labels: np.ndarray,
    scores: np.ndarray,
    sources: np.ndarray | list[str],
    budget: float,
    *,
    min_reals: int = 10,
) -> tuple[float, dict]:
    """The lowest threshold that keeps false alarms within ``budget`` on *every* real source.

    A pooled budget is met by the largest source alone: fitted on DFDC-dominated
    validation, 5 % of DFDC reals flagged meant three of four crisp interviews flagged.
    Here each source with at least ``min_reals`` real items gets its own budget
    threshold (:func:`_false_alarm_threshold` on its reals) and the strictest wins;
    sources with fewer reals are reported but cannot move the threshold (one real
    clip would make the budget either 0 % or 100 %).  The report gives every source's
    own threshold, its false-alarm rate at the chosen one, and the recall on all fakes,
    so the cost in recall is visible source by source.
    """
    if not 0 <= budget < 1:
        raise ValueError(f"budget must be in [0, 1), got {budget}")
    y = np.asarray(labels).astype(int).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    src = np.asarray(sources).astype(str).ravel()
    if not (y.size == s.size == src.size):
        raise ValueError(f"{y.size} labels, {s.size} scores and {src.size} sources")
    per_source: dict[str, dict] = {}
    binding, threshold = None, None
    for name in sorted(str(n) for n in set(src[y == 0])):
        reals = s[(src == name) & (y == 0)]
        own = None
        if reals.size >= min_reals:
            own, _ = _false_alarm_threshold(np.zeros(reals.size, int), reals, budget)
            if threshold is None or own > threshold:
                binding, threshold = name, own
        per_source[name] = {"reals": int(reals.size), "own_threshold": own}
    if threshold is None:
        raise ValueError(f"no real source has {min_reals} or more items to set a threshold on")
    for name, entry in per_source.items():
        reals = s[(src == name) & (y == 0)]
        entry["false_alarm_rate"] = float(np.mean(reals >= threshold))
    fakes = s[y == 1]
    recall_by_source = {
        name: float(np.mean(s[(src == name) & (y == 1)] >= threshold))
        for name in sorted(str(n) for n in set(src[y == 1]))
    }
    return threshold, {
        "rule": "false_alarm_budget_per_source",
        "max_false_alarm_rate": budget,
        "min_reals_per_source": min_reals,
        "binding_source": binding,
        "sources": per_source,
        "recall": float(np.mean(fakes >= threshold)) if fakes.size else None,
        "recall_by_source": recall_by_source,
    }
