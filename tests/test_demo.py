"""`find-bot demo`'s pieces that need no model: its settings, its samples."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.commands.demo import demo_environment, sample_inputs, shared_data
from bot.settings import load_settings


def test_the_demo_settings_live_in_its_temp_dir_only(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FIND_DATABASE_URL", "postgresql://someone@prod/find")  # never read
    args = argparse.Namespace(threshold=0.3, frames=8)
    settings = load_settings(environ=demo_environment(tmp_path, args))
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'find.db'}"
    assert settings.media_dir.is_relative_to(tmp_path)
    assert settings.data_dir.is_relative_to(tmp_path)
    assert settings.score_threshold == 0.3 and settings.frames_per_video == 8
    assert settings.youtube_api_key is None  # no key needed
    assert len(settings.web_secret_key.reveal()) >= 48


def test_the_demo_flags_below_the_bundles_threshold_unless_told(tmp_path) -> None:
    """The default bundle's threshold keeps every real source within 5 % of false alarms: on
    the demo's nine samples it flags nothing, so the demo uses a lower one and says so."""
    from model.bundle import default_bundle_path, read_manifest

    bundle_threshold = read_manifest(default_bundle_path())["threshold"]
    plain = argparse.Namespace(threshold=None, frames=None)
    settings = load_settings(environ=demo_environment(tmp_path, plain))
    assert settings.score_threshold is not None and settings.score_threshold < bundle_threshold
    told = argparse.Namespace(threshold=bundle_threshold, frames=None)
    assert load_settings(environ=demo_environment(tmp_path, told)).score_threshold == (
        pytest.approx(bundle_threshold)
    )


def test_without_shared_data_the_demo_makes_its_clips(tmp_path) -> None:
    import cv2

    empty = tmp_path / "no-data"
    empty.mkdir()
    assert shared_data(empty) is None
    clips = sample_inputs(None, 2, tmp_path)
    assert len(clips) == 2 and all(Path(c).is_relative_to(tmp_path) for c in clips)
    assert Path(clips[0]).read_bytes() != Path(clips[1]).read_bytes()  # two videos, not one
    capture = cv2.VideoCapture(clips[0])
    assert capture.read()[0]
    capture.release()


@pytest.mark.data
def test_with_shared_data_the_demo_takes_dfdc_and_a_few_real_clips(tmp_path) -> None:
    data = shared_data(None)
    if data is None:
        pytest.skip("../shared/data (or FIND_SHARED_DATA) has no dfdc-videos/")
    picks = [Path(p) for p in sample_inputs(data, None, tmp_path)]
    dfdc = [p for p in picks if p.parent.name == "dfdc-videos"]
    assert dfdc == sorted((data / "dfdc-videos").glob("*.mp4"))
    real = [p for p in picks if "real-videos" in p.parts]
    assert 1 <= len(real) <= 3
    assert not any(p.is_relative_to(tmp_path) for p in picks)  # nothing generated
