"""The benchmarks that ``make bench`` runs finish on a fresh clone (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import claims, quota


def test_claims_falls_back_to_sqlite_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("FIND_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setattr(claims, "SQLITE_FALLBACK", f"sqlite:///{tmp_path}/claims.db")
    assert claims.main(["--videos", "20", "--workers", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert "no FIND_TEST_POSTGRES_URL: measuring SQLite" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["backend"] == "sqlite"
    assert summary["runs"][0]["videos"] == 20


def test_quota_hours_shortens_the_simulated_day(tmp_path: Path, capsys):
    out = tmp_path / "quota.json"
    args = ["--scenario", "feeds", "--hours", "1", "--feed-channels", "20", "--posting", "0.2"]
    assert quota.main([*args, "--out", str(out)]) == 0
    feeds = json.loads(out.read_text())["feeds"]
    assert feeds["setup"]["span_s"] == 3600
    assert feeds["day"]["uploads_found"] == feeds["setup"]["uploads_planned"] > 0
    assert "within 1 h" in capsys.readouterr().out


def test_quota_refuses_a_span_outside_a_day(capsys):
    with pytest.raises(SystemExit) as exit_:
        quota.main(["--hours", "0"])
    assert exit_.value.code == 2
    assert "--hours 0.0: give a span between 0 and 24 hours" in capsys.readouterr().err


def test_scan_bench_decoders_read_the_same_frames(tmp_path):
    """bench/scan.py's decoder comparison (issue 19 item 3) runs on a YouTube-shaped file."""
    from bench import media
    from bench import scan as scan_bench

    frames = scan_bench.synthetic_frames(640, 360, 90)
    path = media.encode(tmp_path / "h264-360p.mp4", frames, (640, 360), gop=250)
    result = scan_bench.compare_decoders(path, 8)
    assert [result[f"{name}_frames"] for name in ("seek", "sequential", "pyav", "ours")] == [8] * 4
    assert all(result[name] > 0 for name in ("seek", "sequential", "pyav", "ours"))


@pytest.mark.data
def test_liveness_bench_runs_on_real_footage(capsys):
    """bench/liveness.py (docs/detection.md, "Live and static faces") runs for real in its
    smallest mode: one real clip and one portrait filmed still and handheld."""
    from bench import liveness
    from bench.media import shared_data

    if shared_data() is None:
        pytest.skip("bench/liveness.py needs ../shared/data (the DFDC and real clips)")
    liveness.main(["--smoke"])
    out = capsys.readouterr().out
    summary = out.split("summary per input class")[1].splitlines()
    rows = {line.split()[0]: line.split() for line in summary[2:] if line.strip()[:1].isalpha()}
    assert {"portrait-still", "portrait-handheld"} <= rows.keys()
    assert any(name.startswith("real-") for name in rows)
    # A still portrait is the one face that is never live; its track is judged static.
    assert int(rows["portrait-still"][3]) >= 1
