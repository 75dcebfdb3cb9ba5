"""``find-bot scan`` and ``find-bot model info`` through the real CLI entry point."""

from __future__ import annotations

import json
import shutil

import pytest

from bot.cli import main


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch, tmp_path):
    """No .env or FIND_* variables from the developer's machine leak into the CLI.

    Commands configure logging with a handler on the current ``sys.stderr``,
    which under pytest is the capture of *this* test; the root logger's
    handlers are restored afterwards so the next test does not write to a
    closed capture.
    """
    import logging
    import os

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for key in list(os.environ):
        if key.startswith("FIND_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FIND_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_scan_json_lines_and_exit_code_with_a_failure(capsys, tiny_bundle_dir, media_dir):
    code = main(
        [
            "scan",
            str(media_dir / "one_face.mp4"),
            str(media_dir / "corrupt.mp4"),
            str(media_dir / "astronaut.png"),
            "--bundle",
            str(tiny_bundle_dir),
            "--frames",
            "4",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1  # one file failed...
    assert [r["verdict"] != "error" for r in rows] == [True, False, True]  # ...others reported
    assert rows[0]["frames_requested"] == 4 and rows[0]["faces"] == 4
    assert "corrupt.mp4" in rows[1]["error"]


def test_scan_table_directory_and_crops(capsys, tiny_bundle_dir, media_dir, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(media_dir / "one_face.mp4", folder)
    shutil.copy(media_dir / "no_face.mp4", folder)
    crops = tmp_path / "crops"
    code = main(
        [
            "scan",
            str(folder),
            "--bundle",
            str(tiny_bundle_dir),
            "--frames",
            "4",
            "--threshold",
            "0.0",
            "--save-crops",
            str(crops),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "VERDICT" in out and "threshold 0.000," in out  # three decimals, as everywhere
    lines = {line.split()[-1]: line.split()[0] for line in out.splitlines() if ".mp4" in line}
    assert lines == {str(folder / "no_face.mp4"): "no_face", str(folder / "one_face.mp4"): "fake"}
    assert "2 file(s): 1 fake, 0 real, 1 no_face, 0 error" in out
    saved = list(crops.rglob("*.jpg"))
    assert len(saved) == 3 and all(p.parent.name.startswith("one_face-") for p in saved)


def test_scan_without_a_bundle_says_how_to_get_one(capsys, tmp_path):
    code = main(["scan", str(tmp_path), "--bundle", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "find-bot train" in err and "FIND_MODEL_BUNDLE" in err


def test_scan_uses_the_bundle_from_settings(capsys, monkeypatch, tiny_bundle_dir, media_dir):
    monkeypatch.setenv("FIND_MODEL_BUNDLE", str(tiny_bundle_dir))
    monkeypatch.setenv("FIND_FRAMES_PER_VIDEO", "3")
    assert main(["scan", str(media_dir / "one_face.mp4"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["bundle_id"] == "tiny-test" and row["frames_requested"] == 3


def test_scan_refuses_a_tampered_bundle(capsys, tiny_bundle_dir, media_dir, tmp_path):
    bundle = shutil.copytree(tiny_bundle_dir, tmp_path / "b")
    (bundle / "model_0.npz").write_bytes(b"tampered")
    code = main(["scan", str(media_dir / "one_face.mp4"), "--bundle", str(bundle)])
    assert code == 2 and "sha256 mismatch" in capsys.readouterr().err


def test_model_info(capsys, tiny_bundle_dir, tmp_path):
    assert main(["model", "info", str(tiny_bundle_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny-test 0.0.1" in out and "model 1:" in out and "xception_compact 64 px" in out
    assert "mean of probabilities, temperature 2.000" in out
    assert "verification: OK" in out.splitlines()[-1]
    assert '"format_version"' not in out  # the summary, not the ~600-line manifest
    assert "records no metrics and no evaluations" not in out  # it has metrics
    assert main(["model", "info", str(tiny_bundle_dir), "--full"]) == 0
    assert '"format_version": 2' in capsys.readouterr().out

    # A recorded evaluation shows each source's line under its own.
    from model.training.evaluate import record_evaluation

    recorded = shutil.copytree(tiny_bundle_dir, tmp_path / "recorded")
    by_source = {
        "fake/hallo": {"label": 1, "videos": 6, "flagged": 3, "auc_vs_real": 0.8125,
                       "auc_vs_real_ci95": [0.6, 0.95]},
        "fake/sonic": {"label": 1, "videos": 2, "flagged": 0, "auc_vs_real": 0.5},
        "real/vox": {"label": 0, "videos": 14, "flagged": 0},
    }  # fmt: skip
    level = {"roc_auc": 0.8, "roc_auc_ci95": [0.7, 0.9]}
    level["confusion"] = {"tp": 3, "fn": 3, "fp": 0, "tn": 14}
    report = {"dataset": "folder:x", "split": "all", "samples": 20, "threshold": 0.5}
    report |= {"frame_level": level, "video_level": level, "skipped": []}
    record_evaluation(recorded, "xval", {**report, "video_by_source": by_source})
    assert main(["model", "info", str(recorded)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("evaluation:   xval"))
    assert lines[at].startswith("evaluation:   xval: AUC 0.800 (95 % CI 0.700-0.900), ")
    # Each fake source with its interval; one recorded before intervals existed, without.
    assert lines[at + 1].split("by source: ")[1] == (
        "fake/hallo AUC 0.812 (95 % CI 0.600-0.950), 3/6 flagged; "
        "fake/sonic AUC 0.500, 0/2 flagged; real/vox 0/14 flagged"
    )

    bundle = shutil.copytree(tiny_bundle_dir, tmp_path / "b")
    (bundle / "model_1.npz").unlink()
    assert main(["model", "info", str(bundle), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is False and "model file missing" in report["problems"][0]
    assert report["manifest"]["name"] == "tiny-test"


def test_help_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; from bot.cli import build_parser; build_parser(); "
        "heavy = ('tensorflow', 'cv2', 'mtcnn', 'keras'); "
        "print(any(m.split('.')[0] in heavy for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scan_prints_each_row_into_a_pipe_as_soon_as_its_file_is_done(
    tiny_bundle_dir, media_dir, tmp_path
):
    """Issue 19 item 5: each verdict reaches a pipe when its file is done, not when the
    whole directory is (a block-buffered pipe would deliver the six rows at once)."""
    import subprocess
    import sys
    import time

    folder = tmp_path / "videos"
    folder.mkdir()
    for n in range(6):
        shutil.copy(media_dir / "two_faces.mp4", folder / f"{n}.mp4")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "scan", str(folder), "--bundle", str(tiny_bundle_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        arrived = [time.perf_counter() for line in process.stdout if ".mp4" in line]
        assert process.wait(timeout=300) == 0
    finally:
        process.kill()
    assert len(arrived) == 6
    # scanning one file takes well over 0.1 s, so rows written as files finish are spread
    assert arrived[-1] - arrived[0] > 0.5, "the rows arrived together, at the end"
