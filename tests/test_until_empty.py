"""A newcomer's path (issue 31 item 5): submit files, `find-bot run --until-empty` processes
them and exits 0 saying what it did; the demo's samples carry their known label."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.commands.demo import label_samples, sample_label
from bot.db import session_factory
from bot.stages.submit import Submitter, submit
from bot.store import Video
from tests.conftest import SHARED_DATA
from tests.model.synth import face_video

FIND_BOT = Path(sys.executable).with_name("find-bot")


def find_bot(tmp_path: Path, *argv: str, timeout: int = 580) -> subprocess.CompletedProcess[str]:
    """The console command on a database under ``tmp_path``, no key, output captured (a pipe,
    not a terminal: what a script or a log sees)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIND_")}
    env.update(FIND_DATA_DIR=str(tmp_path / "data"), FIND_FRAMES_PER_VIDEO="4", HOME=str(tmp_path))
    return subprocess.run(
        [str(FIND_BOT), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_until_empty_processes_the_queue_and_says_what_it_did(tmp_path: Path) -> None:
    clips = [face_video(tmp_path / f"clip-{i}.mp4", n_frames=12, seed=i) for i in range(2)]
    assert find_bot(tmp_path, "db", "upgrade").returncode == 0
    submitted = find_bot(tmp_path, "submit", *map(str, clips))
    assert submitted.returncode == 0, submitted.stderr

    done = find_bot(tmp_path, "run", "--until-empty")

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no log lines, no library chatter
    lines = done.stdout.splitlines()
    per_video = [x for x in lines if x.startswith("analyse: clip-")]
    assert len(per_video) == 2, done.stdout
    analysed = "(flagged for review|below the threshold|no face found)"
    for line in per_video:  # a score is shown as every score is: three decimals
        assert re.search(rf"\(sub-[0-9a-f]{{12}}\): {analysed}(, score \d\.\d{{3}})?$", line), line
    [summary] = [x for x in lines if x.startswith("analyse: 2 video(s): ")]
    assert re.fullmatch(rf"analyse: 2 video\(s\): \d {analysed}(, \d {analysed})?", summary)
    assert lines[-1] == "the queue is empty"

    # Nothing left: says so at once (no model loaded) and still exits 0.
    again = find_bot(tmp_path, "run", "--until-empty", timeout=120)
    assert again.returncode == 0 and again.stdout == "nothing was queued: the queue is empty\n"

    refused = find_bot(tmp_path, "run", "--until-empty", "--role", "scheduler", timeout=120)
    assert refused.returncode != 0 and "--role worker or all" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_generated_demo_clips_are_known_real(tmp_path: Path) -> None:
    from bot.commands.demo import sample_inputs

    clips = sample_inputs(None, 2, tmp_path)  # what the demo makes without shared data
    assert [sample_label(Path(c)) for c in clips] == ["real", "real"]
    assert sample_label(tmp_path / "some-upload.mp4") is None


def test_dfdc_labels_come_from_metadata_json(tmp_path: Path) -> None:
    folder = tmp_path / "dfdc-videos"
    folder.mkdir()
    (folder / "metadata.json").write_text(
        json.dumps({"aaa.mp4": {"label": "FAKE", "original": "b.mp4"}, "b.mp4": {"label": "REAL"}})
    )
    assert sample_label(folder / "aaa.mp4") == "fake"
    assert sample_label(folder / "b.mp4") == "real"
    assert sample_label(folder / "unlisted.mp4") is None
    assert sample_label(tmp_path / "real-videos" / "misc" / "x" / "clip.mp4") == "real"


@pytest.mark.data
def test_the_shared_demo_samples_all_have_a_label() -> None:
    from bot.commands.demo import sample_inputs, shared_data

    data = shared_data(None)
    if data is None:
        pytest.skip(f"{SHARED_DATA} has no dfdc-videos/")
    labels = {Path(p).name: sample_label(Path(p)) for p in sample_inputs(data, None, data)}
    assert None not in labels.values()
    assert list(labels.values()).count("real") >= 2  # the DFDC real one and the real clips


def test_submitted_samples_store_their_label(sqlite_settings, tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    clips = [face_video(tmp_path / "samples" / "synthetic-1.mp4", n_frames=6)]
    clips.append(face_video(tmp_path / "other.mp4", n_frames=6, seed=3))
    inputs = [str(c) for c in clips]
    sessions = session_factory(sqlite_settings)
    outcomes = submit(sqlite_settings, sessions, inputs, Submitter("demo", note="FIND demo"))
    label_samples(sessions, outcomes, inputs)
    with sessions() as session:
        labels = {v.title: v.demo_label for v in session.query(Video)}
    assert labels == {"synthetic-1.mp4": "real", "other.mp4": None}
