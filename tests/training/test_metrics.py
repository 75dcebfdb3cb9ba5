"""Metrics, calibration and the evaluation report on toy cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.calibration import (
    choose_threshold,
    ensemble_probabilities,
    fit_temperature,
    sigmoid,
)
from model.training.evaluate import Scores, build_report
from model.training.metrics import (
    aggregate_by_video,
    binary_metrics,
    format_summary,
    log_loss,
    roc_auc,
)

# Toy case: two real (0.1, 0.6) and two fake (0.4, 0.9) scores, threshold 0.5.
#   predictions: 0, 1, 0, 1  -> tn=1 (0.1), fp=1 (0.6), fn=1 (0.4), tp=1 (0.9)
#   accuracy 2/4, precision 1/2, recall 1/2, F1 1/2
#   AUC: fake-over-real pairs (0.4>0.1 yes, 0.4>0.6 no, 0.9>0.1 yes, 0.9>0.6 yes) = 3/4
#   log loss: -(ln 0.9 + ln 0.4 + ln 0.4 + ln 0.9) / 4 = -(ln 0.9 + ln 0.4) / 2
LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.6, 0.4, 0.9]


def test_toy_metrics_by_hand():
    m = binary_metrics(LABELS, SCORES, threshold=0.5)
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    assert (m["accuracy"], m["precision"], m["recall"], m["f1"]) == (0.5, 0.5, 0.5, 0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2)
    assert (m["n"], m["positives"], m["negatives"]) == (4, 2, 2)


def test_toy_metrics_at_another_threshold():
    # threshold 0.3: predictions 0, 1, 1, 1 -> tn=1 fp=1 fn=0 tp=2
    m = binary_metrics(LABELS, SCORES, threshold=0.3)
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 0, "tp": 2}
    assert m["accuracy"] == 0.75
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(0.8)  # 2 * (2/3) * 1 / (2/3 + 1)


def test_undefined_metrics_are_none_or_zero():
    assert roc_auc([1, 1], [0.2, 0.8]) is None
    m = binary_metrics([0, 0], [0.1, 0.2], threshold=0.5)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["roc_auc"] is None
    assert log_loss([], []) is None


def test_video_aggregation_mean_and_label_check():
    ids, labels, scores = aggregate_by_video(
        ["a", "b", "a", "b"], [0, 1, 0, 1], [0.2, 0.9, 0.4, 0.5]
    )
    assert ids == ["a", "b"]
    assert labels.tolist() == [0, 1]
    np.testing.assert_allclose(scores, [0.3, 0.7])
    with pytest.raises(ValueError, match="different labels"):
        aggregate_by_video(["a", "a"], [0, 1], [0.1, 0.2])


def test_evaluation_report_on_the_toy_case():
    scores = Scores(
        frame_labels=LABELS,
        frame_scores=SCORES,
        video_ids=["r", "f"],
        video_labels=[0, 1],
        video_scores=[0.35, 0.65],  # both videos right at threshold 0.5
        video_sources=["real/toy", "fake/toy"],
    )
    report = build_report(scores, 0.5)
    assert report["frame_level"]["accuracy"] == 0.5
    assert report["frame_level"]["roc_auc"] == pytest.approx(0.75)
    video = report["video_level"]
    assert video["confusion"] == {"tn": 1, "fp": 0, "fn": 0, "tp": 1}
    assert (video["accuracy"], video["precision"], video["recall"], video["roc_auc"]) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )
    assert video["log_loss"] == pytest.approx(-(math.log(0.65) + math.log(0.65)) / 2)
    text = format_summary(report)
    assert "accuracy" in text and "0.5000" in text and "tn=1 fp=0 fn=0 tp=1" in text


def test_calibration_error_and_false_alarm_rate_by_hand():
    from model.training.metrics import expected_calibration_error

    # Bin [0.2, 0.27): p 0.2, two of ten fake -> |0.2 - 0.2| = 0.
    # Bin [0.8, 0.87): p 0.8, five of ten fake -> |0.5 - 0.8| = 0.3, weight 1/2.
    labels = [1, 1, *[0] * 8, *[1] * 5, *[0] * 5]
    scores = [0.2] * 10 + [0.8] * 10
    assert expected_calibration_error(labels, scores) == pytest.approx(0.15)
    # Perfectly calibrated probabilities have no calibration error.
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.01
    # On real-only footage the false-alarm rate is the share flagged.
    report = binary_metrics([0, 0, 0, 0], [0.1, 0.7, 0.2, 0.3], 0.5)
    assert report["false_positive_rate"] == 0.25 and report["roc_auc"] is None
    assert binary_metrics([1, 1], [0.9, 0.2], 0.5)["false_positive_rate"] is None


# ----------------------------------------------------------------------------- calibration


def test_temperature_recovers_the_generating_temperature():
    # Labels drawn from sigmoid(z / 3): the NLL-optimal temperature is close to 3.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 6, size=20000)
    y = (rng.random(z.size) < sigmoid(z / 3.0)).astype(int)
    assert fit_temperature(z, y) == pytest.approx(3.0, rel=0.1)


def test_temperature_of_an_ensemble_uses_the_mean_of_probabilities():
    logits = np.array([[2.0, -2.0], [4.0, -4.0]])
    np.testing.assert_allclose(
        ensemble_probabilities(logits, 2.0),
        [(sigmoid(1.0) + sigmoid(2.0)) / 2, (sigmoid(-1.0) + sigmoid(-2.0)) / 2],
    )
    assert fit_temperature(logits, [1, 1]) == 1.0  # one class: no scaling


def test_threshold_rule_target_recall_then_precision():
    # Fakes 0.9, 0.8, 0.3; reals 0.7, 0.2.  Recall >= 2/3 allows thresholds
    # 0.8 (recall 2/3, precision 1), 0.7 (2/3, 2/3), 0.3 (1, 3/4), 0.2 (1, 3/5).
    labels = [1, 1, 1, 0, 0]
    scores = [0.9, 0.8, 0.3, 0.7, 0.2]
    t, info = choose_threshold(labels, scores, target_recall=0.6)
    assert t == 0.8 and info["precision"] == 1.0
    t, info = choose_threshold(labels, scores, target_recall=0.9)
    assert t == 0.3 and info["recall"] == 1.0 and info["precision"] == 0.75
    assert choose_threshold([1, 1], [0.2, 0.3])[0] == 0.5  # one class: default


def test_threshold_rule_false_alarm_budget_flags_as_much_as_the_budget_allows():
    # Reals 0.05 .. 0.95 (ten): a 20 % budget lets the two highest (0.85, 0.95) through.
    reals = [round(0.1 * i + 0.05, 2) for i in range(10)]
    fakes = [0.8, 0.7, 0.97]
    labels, scores = [0] * 10 + [1] * 3, reals + fakes
    t, info = choose_threshold(labels, scores, max_false_alarm_rate=0.2)
    assert 0.75 < t < 0.8 and info["rule"] == "false_alarm_budget"
    assert info["false_alarm_rate"] == 0.2 and info["recall"] == pytest.approx(2 / 3)
    # No budget at all: nothing real may be flagged.
    t, info = choose_threshold(labels, scores, max_false_alarm_rate=0.0)
    assert 0.95 < t < 0.97 and info["false_alarm_rate"] == 0.0
    assert info["recall"] == pytest.approx(1 / 3)


def test_separated_validation_leaves_the_temperature_at_one():
    from model.calibration import calibrate_temperature

    t, info = calibrate_temperature(np.array([-3.0, -1.0, 2.0, 5.0]), [0, 0, 1, 1])
    assert t == 1.0 and info["reason"] == "validation perfectly separated"
    t, info = calibrate_temperature(np.array([-3.0, 1.0, -1.0, 5.0]), [0, 0, 1, 1])
    assert info["rule"] == "nll" and info["nll_after"] <= info["nll_before"]


def test_per_source_threshold_holds_the_budget_on_every_real_source_not_the_pooled_one():
    from model.calibration import per_source_threshold

    # A large source whose reals score low (DFDC-like) and a small crisp one whose reals
    # score high: a pooled 10 % budget is met by the large source alone and flags most of
    # the crisp one; the per-source rule must keep both within 10 %.
    big_reals = [i / 100 for i in range(100)]  # 0.00 .. 0.99 -> 90 % cut near 0.90
    crisp_reals = [0.90 + i / 200 for i in range(20)]  # 0.900 .. 0.995
    tiny_reals = [0.999]  # below min_reals: reported, cannot bind
    fakes = [0.95, 0.97, 0.999, 0.9999]
    labels = [0] * 121 + [1] * 4
    scores = big_reals + crisp_reals + tiny_reals + fakes
    sources = ["dfdc"] * 100 + ["crisp"] * 20 + ["tiny"] + ["dfdc", "dfdc", "crisp", "crisp"]

    pooled, _ = choose_threshold(labels, scores, max_false_alarm_rate=0.10)
    assert np.mean(np.array(crisp_reals) >= pooled) > 0.3  # the failure being fixed: 35 %

    t, info = per_source_threshold(labels, scores, sources, 0.10, min_reals=10)
    assert info["rule"] == "false_alarm_budget_per_source"
    assert info["binding_source"] == "crisp"
    assert info["sources"]["crisp"]["false_alarm_rate"] <= 0.10
    assert info["sources"]["dfdc"]["false_alarm_rate"] <= 0.10
    assert info["sources"]["tiny"]["own_threshold"] is None  # too few reals to bind
    # The lowest such threshold: the crisp source's own budget threshold, flagging 2 of 20.
    assert 0.985 < t <= 0.99 and info["sources"]["crisp"]["false_alarm_rate"] == 0.10
    assert info["recall"] == pytest.approx(2 / 4)  # the price, reported
    assert info["recall_by_source"] == {"crisp": 1.0, "dfdc": 0.0}
    with pytest.raises(ValueError, match="no real source"):
        per_source_threshold([0, 1], [0.1, 0.9], ["a", "a"], 0.1, min_reals=10)


def test_score_curves_keep_the_roc_and_the_histograms_by_hand():
    """Issue 31 item 7: what the docs' ROC and histogram plots are drawn from."""
    from model.training.metrics import score_curves

    # Real 0.12, 0.62; fake 0.42, 0.92. Above 0.92 nothing; from 0.92 down: (0, 1/2);
    # 0.62 adds a real: (1/2, 1/2); 0.42 a fake: (1/2, 1); 0.12 a real: (1, 1).
    curves = score_curves([0, 0, 1, 1], [0.12, 0.62, 0.42, 0.92])
    tpr = curves["roc_tpr"]  # at false-positive rates 0, 0.01, ..., 1
    assert len(tpr) == 101
    assert (tpr[0], tpr[49], tpr[50], tpr[100]) == (0.5, 0.5, 1.0, 1.0)
    assert curves["bins"] == 20
    real, fake = curves["real"], curves["fake"]
    assert [i for i, c in enumerate(real) if c] == [2, 12] and sum(real) == 2
    assert [i for i, c in enumerate(fake) if c] == [8, 18] and sum(fake) == 2
    # One class only (real footage): histograms, no ROC curve.
    assert score_curves([0, 0], [0.3, 0.99])["roc_tpr"] == []
    assert score_curves([0, 0], [0.3, 1.0])["real"][-1] == 1  # 1.0 is counted


def test_a_recorded_evaluation_keeps_its_curves_in_the_manifest(tmp_path):
    import json
    import shutil

    from model.training.evaluate import record_evaluation
    from tests.conftest import PROJECT_ROOT

    bundle = tmp_path / "bundle"
    shutil.copytree(PROJECT_ROOT / "model" / "bundles" / "default", bundle)
    scores = Scores(
        frame_labels=LABELS,
        frame_scores=SCORES,
        video_ids=["r", "f"],
        video_labels=[0, 1],
        video_scores=[0.35, 0.65],
        video_sources=["real/toy", "fake/toy"],
    )
    report = {"dataset": "toy", "split": "all", "samples": 4, "skipped": []}
    report.update(build_report(scores, 0.5))
    record_evaluation(bundle, "toy", report)
    recorded = json.loads((bundle / "manifest.json").read_text())["evaluations"]["toy"]
    assert recorded["curves"] == report["curves"]
    assert recorded["curves"]["frame_level"]["roc_tpr"][0] == 0.5
    assert "videos" not in recorded  # per-video scores stay in report.json


def test_by_source_counts_flags_per_source_and_ranks_each_fake_source_against_every_real():
    from model.training.metrics import by_source, format_by_source, format_interval

    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.8, 0.3, 0.9, 0.95, 0.05, 0.15]
    sources = ["real/vox"] * 2 + ["real/stage"] * 2 + ["fake/swap"] * 2 + ["fake/hallo"] * 2
    table = by_source(labels, scores, sources, threshold=0.5)
    assert list(table) == ["fake/hallo", "fake/swap", "real/stage", "real/vox"]
    assert table["real/stage"] == {"label": 0, "videos": 2, "flagged": 1}  # no AUC: real
    assert table["real/vox"] == {"label": 0, "videos": 2, "flagged": 0}
    assert table["fake/swap"]["flagged"] == 2
    assert table["fake/swap"]["auc_vs_real"] == pytest.approx(1.0)
    # 0.05 is below every real; 0.15 is above one of four (0.1): (0 + 1/4) / 2
    assert table["fake/hallo"]["auc_vs_real"] == pytest.approx(0.125)
    assert table["fake/hallo"]["flagged"] == 0
    lines = format_by_source(table).splitlines()
    interval = format_interval(table["fake/hallo"]["auc_vs_real_ci95"])
    assert lines[1].split() == ["fake/hallo", "2", "0/2", "0.1250", interval]
    assert lines[3].split() == ["real/stage", "2", "1/2"]


def test_the_bootstrap_auc_is_roc_auc_score_with_the_resamples_weights():
    """The interval's engine: one weighted Mann-Whitney AUC per resample, ties counted
    half, equal to scikit-learn's ``roc_auc_score`` with the same sample weights."""
    from sklearn.metrics import roc_auc_score

    from model.training.metrics import _resampled_aucs

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + 0.3 * labels, 1)  # many ties
    weights = rng.integers(0, 3, (4, 300)).astype(float)
    expected = [roc_auc_score(labels, scores, sample_weight=w) for w in weights]
    np.testing.assert_allclose(_resampled_aucs(labels, scores, weights), expected, atol=1e-12)


def test_an_auc_interval_is_as_wide_as_the_evidence_and_counts_a_videos_frames_once():
    """79 videos resolve an AUC to about +-0.06; a reader must see that beside the number.
    The interval holds the AUC, narrows as videos are added, and frames copied from one
    video add no evidence: 50 identical frames per video give the interval of one frame
    per video when grouped by video, and a falsely narrow one when not."""
    from model.training.metrics import auc_interval

    rng = np.random.default_rng(0)

    def draw(n):
        labels = np.repeat([0, 1], n)
        return labels, rng.normal(0.0, 1.0, 2 * n) + 0.8 * labels

    labels, scores = draw(40)
    low, high = auc_interval(labels, scores)
    assert low < roc_auc(labels, scores) < high
    assert 0.15 < high - low < 0.35  # 80 items: wide
    many_labels, many_scores = draw(4000)
    many = auc_interval(many_labels, many_scores)
    assert many[1] - many[0] < 0.04 and many[0] < roc_auc(many_labels, many_scores) < many[1]

    videos = [f"v{i}" for i in range(labels.size)]
    frames = np.repeat(np.arange(labels.size), 50)
    grouped = auc_interval(labels[frames], scores[frames], groups=[videos[i] for i in frames])
    assert grouped == auc_interval(labels, scores)  # the same draws of the same videos
    ungrouped = auc_interval(labels[frames], scores[frames])
    assert ungrouped[1] - ungrouped[0] < 0.3 * (high - low)
    assert auc_interval([1, 1, 1], [0.2, 0.5, 0.9]) is None  # one class: no AUC
    # One real video (the six DFDC videos) or four: no interval, not a fake "1.000-1.000";
    # 200 frames of 4 fake videos are 4, not 200.
    assert auc_interval([0, 1, 1, 1, 1, 1], [0.1, 0.5, 0.6, 0.7, 0.8, 0.9]) is None
    assert auc_interval(labels[:44], scores[:44]) is None  # 40 reals, 4 fakes
    assert auc_interval(labels[:45], scores[:45]) is not None  # 5 fakes
    assert auc_interval(labels[frames][:2200], scores[frames][:2200],
                        groups=[videos[i] for i in frames][:2200]) is None  # fmt: skip


def test_the_evaluation_reports_and_prints_each_auc_with_its_interval():
    from model.training.metrics import by_source, format_by_source, format_interval

    rng = np.random.default_rng(3)
    labels = [0] * 12 + [1] * 12
    video_scores = list(rng.random(24) * 0.6 + 0.2 * np.array(labels))
    scores = Scores(
        frame_labels=[y for y in labels for _ in range(3)],
        frame_scores=[s + d for s in video_scores for d in (0.0, 0.01, 0.02)],
        video_ids=[f"v{i}" for i in range(24)],
        video_labels=labels,
        video_scores=video_scores,
        video_sources=["real/vox"] * 12 + ["fake/hallo"] * 6 + ["fake/sonic"] * 6,
        frame_video_ids=[f"v{i}" for i in range(24) for _ in range(3)],
    )
    report = build_report(scores, 0.5)
    for level in ("frame_level", "video_level"):
        low, high = report[level]["roc_auc_ci95"]
        assert low < report[level]["roc_auc"] < high
    # The frames are three near-copies of each video: resampled as videos, their interval is
    # about the videos' own, not a third narrower as 72 independent frames would make it.
    frame_width = np.subtract(*report["frame_level"]["roc_auc_ci95"][::-1])
    video_width = np.subtract(*report["video_level"]["roc_auc_ci95"][::-1])
    assert frame_width == pytest.approx(video_width, rel=0.15)
    summary = format_summary(report).splitlines()
    row = next(line for line in summary if line.startswith("  95 % interval"))
    assert row.split()[3:] == [
        format_interval(report["frame_level"]["roc_auc_ci95"]),
        format_interval(report["video_level"]["roc_auc_ci95"]),
    ]
    table = report["video_by_source"]
    assert table == by_source(labels, video_scores, scores.video_sources, 0.5)
    for name in ("fake/hallo", "fake/sonic"):
        low, high = table[name]["auc_vs_real_ci95"]
        assert low <= table[name]["auc_vs_real"] <= high
    lines = format_by_source(table).splitlines()
    assert lines[0].split()[-3:] == ["95", "%", "CI"]
    hallo = next(line for line in lines if line.startswith("fake/hallo"))
    assert hallo.split()[-1] == format_interval(table["fake/hallo"]["auc_vs_real_ci95"])
    assert "auc_vs_real_ci95" not in table["real/vox"]


def test_a_paired_difference_finds_a_gain_the_two_auc_intervals_cannot():
    """Two detectors on the same 80 videos: the candidate ranks every fake a little higher.
    Their own intervals overlap (neither set of 80 videos resolves the gap), the paired
    difference resamples the same videos for both and excludes no-gain."""
    from model.training.metrics import auc_difference, auc_interval

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    baseline = rng.normal(0.0, 1.0, 80) + 0.8 * labels
    candidate = baseline + 0.3 * labels
    compared = auc_difference(labels, candidate, baseline)
    assert compared["difference"] == pytest.approx(
        roc_auc(labels, candidate) - roc_auc(labels, baseline)
    )
    low, high = compared["ci95"]
    assert 0 < low < compared["difference"] < high
    own, base = auc_interval(labels, candidate), auc_interval(labels, baseline)
    assert own[0] < base[1]  # the unpaired intervals overlap
    same = auc_difference(labels, baseline, baseline)
    assert same["difference"] == 0 and same["ci95"] == [0.0, 0.0]
    noise = auc_difference(labels, baseline + rng.normal(0, 0.5, 80), baseline)
    assert noise["ci95"][0] < 0 < noise["ci95"][1]  # a re-draw, not a gain


def test_comparing_two_reports_joins_their_videos_and_refuses_other_datasets():
    from model.training.evaluate import EvaluationError, compare_reports

    def report(scores, labels=(0, 0, 0, 1, 1, 1), extra=()):
        sources = ["real/vox"] * 3 + ["fake/hallo", "fake/hallo", "fake/sonic"]
        videos = [
            {"video_id": f"v{i}", "label": y, "score": s, "source": src}
            for i, (y, s, src) in enumerate(zip(labels, scores, sources, strict=True))
        ]
        return {"bundle": {"name": "b", "version": "1"}, "videos": videos + list(extra)}

    here = report([0.1, 0.5, 0.3, 0.6, 0.4, 0.9])
    extra = [{"video_id": "w", "label": 0, "score": 0.2}]
    there = report([0.1, 0.5, 0.3, 0.2, 0.4, 0.9], extra=extra)
    compared = compare_reports(here, there)
    assert (compared["videos"], compared["only_here"], compared["only_in_baseline"]) == (6, 0, 1)
    whole = roc_auc([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.6, 0.4, 0.9])
    assert compared["video_level"]["auc"] == pytest.approx(whole)
    hallo = compared["video_by_source"]["fake/hallo"]  # v3, v4 against the three reals
    assert (hallo["auc"], hallo["baseline_auc"]) == (pytest.approx(5 / 6), pytest.approx(3 / 6))
    assert set(compared["video_by_source"]) == {"fake/hallo", "fake/sonic"}
    with pytest.raises(EvaluationError, match="v0: labelled 1 in the baseline report and 0"):
        compare_reports(here, report([0.1] * 6, labels=(1, 0, 0, 1, 1, 1)))
    with pytest.raises(EvaluationError, match="scored none of these videos"):
        compare_reports(here, {"videos": extra})
    with pytest.raises(EvaluationError, match="lack video_id, label or score"):
        compare_reports(here, {"videos": [{"video_id": "v0"}]})
    with pytest.raises(EvaluationError, match="v0: the baseline report's score None is not a"):
        compare_reports(here, {"videos": [{"video_id": "v0", "label": 0, "score": None}]})


def test_the_comparison_table_prints_each_row_and_no_negative_zero():
    """Two AUCs equal up to float error (-1e-17 apart) print as no difference, +0.0000."""
    from model.training.metrics import format_comparison

    row = {"auc": 0.7222, "baseline_auc": 0.7222, "difference": -1e-17, "ci95": [-0.014, 0.021]}
    text = format_comparison({"video_level": row, "video_by_source": {"fake/x": None}})
    lines = text.splitlines()
    assert lines[1].split() == ["all", "videos", "0.7222", "0.7222", "+0.0000", "-0.014", "to",
                                "+0.021"]  # fmt: skip
    assert lines[2].split() == ["fake/x", "n/a"]  # one class only: nothing to compare
    few = {**row, "difference": 0.25, "ci95": None}  # too few videos for an interval
    line = format_comparison({"video_level": few, "video_by_source": {}}).splitlines()[1]
    assert line.split()[-2:] == ["+0.2500", "n/a"]
