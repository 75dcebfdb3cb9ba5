"""Quiet, consistent output (issue 31 item 6), walked command by command through the console
script with its output redirected (pipes, as a script, cron or a log sees it): each line once,
no log lines or progress bars there, no library chatter, one format for scores and thresholds.
"""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import os
import pty
import re
import struct
import sys
import termios
from pathlib import Path

import pytest

from bot.formats import format_score
from bot.terminal import progress_bar
from tests.model.synth import face_video
from tests.test_until_empty import find_bot

#: A log line in the text format: what used to follow every line `submit` printed.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z (DEBUG|INFO|WARNING) ", re.M)
#: A tqdm frame: `` 50%|█████     | 1/2 [00:12<00:12, 12.0s/file]``.
PROGRESS_BAR = re.compile(r"\d+%\|.*\| \d+/\d+ \[")
#: More digits than three after the point, after the word threshold or score.
LONG_NUMBER = re.compile(r"(threshold|score)\W{0,3}\d\.\d{4,}")


def _check_quiet(result, command: str, *, human: bool = True) -> None:
    """What every command owes a redirected output (``human``: not JSON, which keeps every
    digit for machines)."""
    out, err = result.stdout.splitlines(), result.stderr.splitlines()
    assert not LOG_LINE.search(result.stderr), f"{command}: log lines\n{result.stderr}"
    # (text mode turns a bar's carriage returns into newlines: look for the bar itself)
    assert not PROGRESS_BAR.search(result.stdout + result.stderr), f"{command}: a progress bar"
    # Said twice: on both streams, or the same line twice in a row (a per-file note that
    # recurs for several files is not a repeat).
    both = set(out) & set(err)
    twice = [a for a, b in itertools.pairwise(out) if a == b and a.strip()]
    assert not both and not twice, f"{command}: printed twice: {both or twice}"
    assert "font cache" not in result.stderr and "Matplotlib" not in result.stderr
    if human:
        assert not LONG_NUMBER.search(result.stdout), f"{command}: {result.stdout}"


def test_every_line_once_and_no_log_chatter(tmp_path: Path) -> None:
    clip = face_video(tmp_path / "clip.mp4", n_frames=6)
    steps = [
        ("db", "upgrade"),
        ("submit", "--note", "from a test", str(clip)),
        ("submit", str(clip)),  # a duplicate: said once, not added
        ("review", "list"),
        ("review", "reasons"),
        ("status",),
        ("reviewers", "list"),
        ("db", "current"),
    ]
    for argv in steps:
        result = find_bot(tmp_path, *argv, timeout=300)
        assert result.returncode == 0, (argv, result.stderr)
        _check_quiet(result, " ".join(argv))
        if argv[0] == "submit":  # the line that used to come twice (plain, then as a log line)
            assert result.stderr == ""
            assert len(re.findall(r"clip\.mp4: (added as|already in FIND)", result.stdout)) == 1


def test_model_info_says_what_each_dfdc_number_measures(tmp_path: Path) -> None:
    result = find_bot(tmp_path, "model", "info", timeout=300)
    assert result.returncode == 0, result.stderr
    _check_quiet(result, "model info")
    rows = dict(re.findall(r"^(\w[\w ]*):\s+(.*)$", result.stdout, re.M))
    assert re.fullmatch(r"\d\.\d{3}", rows["threshold"])
    test = rows.get("test split")
    if test is not None:  # the build's own number, on the crops curation kept
        assert "the build's own measure" in test
    for line in result.stdout.splitlines():
        if line.startswith("evaluation:") and "dfdc-faces" in line:
            assert "(find-bot evaluate on all " in line, line


def test_the_score_format_is_three_decimals() -> None:
    assert format_score(0.7935005095051014) == "0.794"
    assert format_score(0.793501) == "0.794" and format_score(1) == "1.000"
    assert format_score(None) == "-" and format_score(None, missing="n/a") == "n/a"
    assert format_score(True) == "-"  # a flag is not a score


def test_a_progress_bar_only_on_a_terminal(monkeypatch) -> None:
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stderr", redirected)
    assert list(progress_bar(range(3), desc="crops")) == [0, 1, 2]
    assert redirected.getvalue() == ""

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            monkeypatch.setattr(sys, "stderr", terminal)
            assert list(progress_bar(range(3), desc="crops")) == [0, 1, 2]
            terminal.flush()
            assert b"crops" in _read_all(leader)
            assert list(progress_bar(range(3), enabled=False)) == [0, 1, 2]
    finally:
        os.close(leader)
        os.close(follower)


def _read_all(fd: int) -> bytes:
    """What the terminal has shown so far."""
    import select

    shown = b""
    while select.select([fd], [], [], 0.2)[0]:
        shown += os.read(fd, 4096)
    return shown


@pytest.mark.slow
def test_scan_redirected_has_no_bar_and_one_threshold_format(tmp_path: Path) -> None:
    clips = [str(face_video(tmp_path / f"c{i}.mp4", n_frames=8, seed=i)) for i in range(2)]
    table = find_bot(tmp_path, "scan", "--frames", "4", *clips)
    assert table.returncode in (0, 1), table.stderr
    _check_quiet(table, "scan")
    assert table.stderr == ""
    assert re.search(r"^model .+, threshold \d\.\d{3}, 4 frames$", table.stdout, re.M)

    as_json = find_bot(tmp_path, "scan", "--json", "--frames", "4", *clips)
    _check_quiet(as_json, "scan --json", human=False)
    assert as_json.stderr == ""
    assert len([json.loads(line) for line in as_json.stdout.splitlines()]) == 2
