"""The analyse stage on a real (tiny, untrained) model bundle and real video files."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import session_factory, session_scope
from bot.queue import WorkQueue, run_one
from bot.settings import Settings
from bot.stages.analyse import Analyser, AnalyserUnavailable
from bot.store import Analysis, Video, VideoFingerprint, VideoState
from tests.conftest import make_settings
from tests.daemon.helpers import add_downloaded_video

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, db_url: str, bundle: Path, **env: str) -> Settings:
    from bot import db

    env.setdefault("FIND_FRAMES_PER_VIDEO", "4")
    s = make_settings(tmp_path, FIND_DATABASE_URL=db_url, FIND_MODEL_BUNDLE=str(bundle), **env)
    db.upgrade(s)
    return s


def _get(settings: Settings, youtube_id: str) -> Video:
    with session_scope(settings) as session:
        video = session.scalars(select(Video).where(Video.youtube_id == youtube_id)).one()
        _ = video.analyses  # load while the session is open
        return video


def test_flagged_video_gets_analysis_crops_and_bundle_id(
    tmp_path: Path, db_url: str, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    settings = _settings(tmp_path, db_url, tiny_bundle_dir, FIND_SCORE_THRESHOLD="0")
    add_downloaded_video(settings, "face0000001", face_videos["face"])
    add_downloaded_video(settings, "empty000001", face_videos["empty"])
    queue = WorkQueue(session_factory(settings), lease_s=60)
    analyser = Analyser(settings)
    assert run_one(queue, "analyse", "t/analyse-0", analyser) is not None
    assert run_one(queue, "analyse", "t/analyse-0", analyser) is not None
    assert run_one(queue, "analyse", "t/analyse-0", analyser) is None

    video = _get(settings, "face0000001")
    assert video.state == VideoState.FLAGGED.value and video.verdict == "fake"
    [analysis] = video.analyses
    assert (analysis.bundle_id, analysis.bundle_version) == ("tiny-daemon-test", "0.0.1")
    assert analysis.threshold == 0.0 and analysis.video_score == video.score
    assert analysis.worker == "t/analyse-0" and analysis.faces >= 1 and analysis.tracks >= 1
    assert set(analysis.timings) == {
        "hash",
        "decode",
        "detect",
        "classify",
        "evidence",
        "total",
        "bank_hash",
    }
    track = analysis.scores["tracks"][0]
    assert set(track) == {"track", "score", "faces", "frames", "static", "small", "face_px",
                          "members"}  # fmt: skip
    assert set(track["frames"][0]) == {"frame", "t", "score", "box"}
    assert len(track["frames"][0]["box"]) == 4
    assert set(analysis.scores["top_frames"][0]) == {
        "track", "frame", "t", "score", "static", "small"
    }  # fmt: skip
    # Why it scored (issue 31): what each member said, named, and the track that decided.
    members = analysis.scores["members"]
    assert len(members) == len(track["members"]) >= 1 and all(members)
    assert analysis.scores["decisive"] == track["track"] and not analysis.scores["small_only"]
    assert analysis.scores["min_face_px"] >= 1 and track["face_px"] >= 1
    assert analysis.crops, "a flagged video needs evidence crops"
    import cv2

    for crop in analysis.crops:
        assert crop["path"].startswith(f"crops/face0000001/{analysis.id}-t{crop['track']}-f")
        assert set(crop) == {
            "path", "track", "frame", "t", "score", "heatmap", "context", "upscaled_from"
        }  # fmt: skip
        assert crop["heatmap"] is None, "no heatmaps for reviewers since issue 22"
        assert isinstance(crop["upscaled_from"], int | None)
        for key in ("path", "context"):
            data = (settings.media_dir / crop[key]).read_bytes()
            assert data[:3] == b"\xff\xd8\xff", "evidence images are JPEG files"
        # Reviewer resolution whatever the model's (64 px here); the frame is the whole frame.
        image = cv2.imread(str(settings.media_dir / crop["path"]))
        frame = cv2.imread(str(settings.media_dir / crop["context"]))
        assert image.shape[:2] == (256, 256)
        assert frame.shape[:2] == (360, 640), "the synthetic video is 640x360"
    json.dumps(analysis.scores, allow_nan=False)
    with session_scope(settings) as session:
        [fingerprint] = session.scalars(
            select(VideoFingerprint).where(VideoFingerprint.video_id == video.id)
        ).all()
        assert len(fingerprint.frames) == 1, "one hash per second of a 1 s video"
        assert len(fingerprint.bank_frames) >= 1, "flagged: every frame kept for the bank"
        assert len(fingerprint.faces) == len(analysis.crops)
        assert all(len(f["hash"]) == 64 for f in fingerprint.faces)

    empty = _get(settings, "empty000001")
    assert empty.state == VideoState.ANALYSED.value and empty.verdict == "no_face"
    assert empty.score is None and empty.analyses[0].crops == []


def test_real_below_threshold_is_analysed_not_flagged(
    sqlite_settings: Settings, tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    settings = _settings(
        tmp_path, sqlite_settings.database_url, tiny_bundle_dir, FIND_SCORE_THRESHOLD="1"
    )
    add_downloaded_video(settings, "face0000002", face_videos["face"])
    queue = WorkQueue(session_factory(settings), lease_s=60)
    run_one(queue, "analyse", "w", Analyser(settings))
    video = _get(settings, "face0000002")
    assert video.state == VideoState.ANALYSED.value and video.verdict == "real"
    assert video.score is not None and video.score < 1


def test_undecodable_file_is_skipped_with_kind_decode(
    sqlite_settings: Settings, tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    settings = _settings(tmp_path, sqlite_settings.database_url, tiny_bundle_dir)
    add_downloaded_video(settings, "corrupt0001", face_videos["corrupt"])
    queue = WorkQueue(session_factory(settings), lease_s=60)
    run_one(queue, "analyse", "w", Analyser(settings))
    video = _get(settings, "corrupt0001")
    assert video.state == VideoState.SKIPPED.value and video.last_error_kind == "decode"
    assert video.last_error and video.analyses == []


def test_missing_file_is_retried_then_fails_never_loops(
    sqlite_settings: Settings, tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    settings = _settings(tmp_path, sqlite_settings.database_url, tiny_bundle_dir)
    add_downloaded_video(settings, "gone0000001", face_videos["face"])
    (settings.media_dir / "videos" / "gone0000001.mp4").unlink()
    queue = WorkQueue(session_factory(settings), lease_s=60, max_attempts=2)
    analyser = Analyser(settings)
    run_one(queue, "analyse", "w", analyser)
    assert _get(settings, "gone0000001").last_error_kind == "media_missing"
    with session_scope(settings) as session:  # skip the backoff wait
        session.scalars(select(Video)).one().next_attempt_at = None
    run_one(queue, "analyse", "w", analyser)
    video = _get(settings, "gone0000001")
    assert video.state == VideoState.FAILED.value and "missing" in (video.last_error or "")


def test_new_bundle_adds_analyses_never_overwrites(
    sqlite_settings: Settings, tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    """Re-analysing with another bundle version keeps both rows, each naming its bundle."""
    settings = _settings(
        tmp_path, sqlite_settings.database_url, tiny_bundle_dir, FIND_SCORE_THRESHOLD="0"
    )
    add_downloaded_video(settings, "face0000003", face_videos["face"])
    queue = WorkQueue(session_factory(settings), lease_s=60)
    run_one(queue, "analyse", "w", Analyser(settings))

    other = tmp_path / "bundle-v2"
    shutil.copytree(tiny_bundle_dir, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["version"] = "0.0.2"
    (other / "manifest.json").write_text(json.dumps(manifest))
    settings2 = make_settings(
        tmp_path,
        FIND_DATABASE_URL=settings.database_url,
        FIND_MODEL_BUNDLE=str(other),
        FIND_FRAMES_PER_VIDEO="4",
        FIND_SCORE_THRESHOLD="0",
    )
    with session_scope(settings) as session:  # an operator re-queues the video
        session.scalars(select(Video)).one().state = VideoState.DOWNLOADED.value
    run_one(queue, "analyse", "w", Analyser(settings2))
    video = _get(settings, "face0000003")
    assert [(a.bundle_id, a.bundle_version) for a in video.analyses] == [
        ("tiny-daemon-test", "0.0.1"),
        ("tiny-daemon-test", "0.0.2"),
    ]
    crops = {c["path"] for a in video.analyses for c in a.crops}
    assert len(crops) == sum(len(a.crops) for a in video.analyses), "crops of v1 overwritten"


def test_missing_or_broken_bundle_refuses_to_start(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, FIND_MODEL_BUNDLE=str(tmp_path / "nothing"))
    with pytest.raises(AnalyserUnavailable, match="no model bundle"):
        Analyser(settings)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(AnalyserUnavailable, match="not usable"):
        Analyser(make_settings(tmp_path, FIND_MODEL_BUNDLE=str(broken)))


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def test_webhook_fires_after_commit_for_flagged_videos(
    sqlite_settings: Settings, tmp_path: Path, tiny_bundle_dir: Path, face_videos: dict[str, Path]
) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = _settings(
            tmp_path,
            sqlite_settings.database_url,
            tiny_bundle_dir,
            FIND_SCORE_THRESHOLD="0",
            FIND_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/hook",
        )
        add_downloaded_video(settings, "face0000004", face_videos["face"])
        add_downloaded_video(settings, "empty000004", face_videos["empty"])
        queue = WorkQueue(session_factory(settings), lease_s=60)
        analyser = Analyser(settings)
        _Hook.received.clear()
        run_one(queue, "analyse", "w", analyser)
        run_one(queue, "analyse", "w", analyser)
        assert _Hook.received == [], "nothing may be sent before the worker loop sends it"
        assert analyser.send_notifications() == 1
        [payload] = _Hook.received
        assert payload["video_id"] == "face0000004"
        assert payload["bundle"] == "tiny-daemon-test 0.0.1"
        with session_scope(settings) as session:
            analysis_id = session.scalars(select(Analysis.id)).first()
        assert payload["analysis_id"] == analysis_id
    finally:
        server.shutdown()


def test_a_truncated_download_is_a_partial_analysis(
    sqlite_settings: Settings,
    tmp_path: Path,
    tiny_bundle_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2 of 32 frames decoded: recorded as partial, and `review show` says so."""
    from bot.cli import main
    from tests.fakes.damaged_media import truncated_face_video

    settings = _settings(
        tmp_path,
        sqlite_settings.database_url,
        tiny_bundle_dir,
        FIND_SCORE_THRESHOLD="0",
        FIND_FRAMES_PER_VIDEO="32",
    )
    add_downloaded_video(settings, "cutvideo001", truncated_face_video(tmp_path / "cut.avi"))
    run_one(WorkQueue(session_factory(settings), lease_s=60), "analyse", "w", Analyser(settings))
    video = _get(settings, "cutvideo001")
    [analysis] = video.analyses
    assert video.state == VideoState.FLAGGED.value and analysis.verdict == "fake"
    assert analysis.partial is True and analysis.frames_decoded < 16

    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", settings.database_url)
    assert main(["review", "show", "cutvideo001"]) == 0
    verdict = [line for line in capsys.readouterr().out.splitlines() if line.startswith("verdict")]
    assert verdict == [
        "verdict:   fake (PARTIAL: too few frames decoded, the file is probably truncated)"
    ]
    assert main(["review", "list"]) == 0
    out = capsys.readouterr().out
    assert "*" in out.splitlines()[1] and "partial analysis" in out
