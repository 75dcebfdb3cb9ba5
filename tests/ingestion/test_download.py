"""Download with real yt-dlp from the local media server, through the queue's run_one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import bot.stages.download
from bot.db import session_factory, session_scope
from bot.hostfault import HostFault
from bot.mediahost import MEDIA_HOST_FILE
from bot.queue import WorkQueue, run_one
from bot.stages.download import classify, format_selector, make_download_handler, probe_video
from bot.store import Video


def _queue_video(settings, youtube_id: str) -> None:
    with session_scope(settings) as session:
        session.add(Video(youtube_id=youtube_id, title="t", discovered_via="test"))


def _video(settings, youtube_id: str) -> Video:
    with session_factory(settings)() as session:
        return session.scalars(select(Video).where(Video.youtube_id == youtube_id)).one()


def _download(settings, **handler_kwargs):
    handler_kwargs.setdefault("retry_base_s", 0.01)
    queue = WorkQueue(
        session_factory(settings), lease_s=settings.lease_s, max_attempts=settings.max_attempts
    )
    return run_one(
        queue, "download", "test-worker", make_download_handler(settings, **handler_kwargs)
    )


def _media_files(settings) -> list[str]:
    media = Path(settings.media_dir)
    return sorted(
        str(p.relative_to(media))
        for p in media.rglob("*")
        if p.is_file() and p.name != MEDIA_HOST_FILE  # the media store's id (bot.mediahost)
    )


def test_download_lands_atomically_under_the_video_id(ingestion) -> None:
    settings = ingestion.settings()
    ingestion.media.state.add("vid00000001.mp4", ingestion.samples["short"])
    _queue_video(settings, "vid00000001")

    job = _download(settings)
    assert job is not None and job.youtube_id == "vid00000001"
    video = _video(settings, "vid00000001")
    assert video.state == "downloaded", video.last_error
    path = Path(video.media_path)
    assert path == settings.media_dir / "vid00000001.mp4"
    assert video.media_size == path.stat().st_size == ingestion.samples["short"].stat().st_size
    assert probe_video(path)[0]
    assert _media_files(settings) == ["vid00000001.mp4"]  # no temp files left behind
    assert _download(settings) is None  # nothing else due


def test_removed_video_is_skipped_with_the_reason(sqlite_ingestion) -> None:
    settings = sqlite_ingestion.settings()
    _queue_video(settings, "gone0000001")  # the media server has no such file: 404
    _download(settings)
    video = _video(settings, "gone0000001")
    assert video.state == "skipped"
    assert video.last_error_kind == "removed"
    assert "gone0000001" in video.last_error and "404" in video.last_error
    assert _media_files(settings) == []


def test_403_then_success_is_retried_in_the_attempt(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(DOWNLOAD_RETRIES="2")
    ing.media.state.add("flaky000001.mp4", ing.samples["short"])
    ing.media.state.fail("flaky000001.mp4", 403, times=1)
    _queue_video(settings, "flaky000001")
    _download(settings)
    video = _video(settings, "flaky000001")
    assert video.state == "downloaded", video.last_error
    statuses = [s for _m, n, s in ing.media.state.requests if n == "flaky000001.mp4"]
    assert statuses[0] == 403 and 200 in statuses


def test_persistent_429_is_left_for_a_later_retry(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(DOWNLOAD_RETRIES="1", MAX_ATTEMPTS="2")
    ing.media.state.add("limited0001.mp4", ing.samples["short"])
    ing.media.state.fail("limited0001.mp4", 429, times=100)
    _queue_video(settings, "limited0001")
    _download(settings)
    video = _video(settings, "limited0001")
    assert video.state == "new" and video.last_error_kind == "rate_limited"
    assert video.next_attempt_at is not None  # backoff before the queue tries again
    assert _download(settings) is None  # not due yet


def test_truncated_transfer_is_resumed(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(DOWNLOAD_RETRIES="2")
    ing.media.state.add("cutoff00001.mp4", ing.samples["long"])
    ing.media.state.truncate("cutoff00001.mp4", times=1)
    _queue_video(settings, "cutoff00001")
    _download(settings)
    video = _video(settings, "cutoff00001")
    assert video.state == "downloaded", video.last_error
    assert video.media_size == ing.samples["long"].stat().st_size
    assert probe_video(Path(video.media_path))[0]


def test_always_truncated_never_leaves_a_partial_file(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(DOWNLOAD_RETRIES="1")
    ing.media.state.add("cutoff00002.mp4", ing.samples["long"])
    ing.media.state.truncate("cutoff00002.mp4", times=100)
    _queue_video(settings, "cutoff00002")
    _download(settings)
    video = _video(settings, "cutoff00002")
    assert video.state == "new" and video.last_error_kind == "truncated", video.last_error
    assert video.media_path is None
    assert _media_files(settings) == []


def test_full_disk_postpones_without_downloading(sqlite_ingestion, monkeypatch) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(MIN_FREE_DISK="2G")
    ing.media.state.add("diskfull001.mp4", ing.samples["short"])
    monkeypatch.setattr(bot.stages.download, "free_bytes", lambda path: 100 * 1024**2)
    _queue_video(settings, "diskfull001")
    with pytest.raises(HostFault):  # recorded, then raised so the worker backs off
        _download(settings)
    video = _video(settings, "diskfull001")
    assert video.state == "new" and video.last_error_kind == "disk_full"
    assert "FIND_MIN_FREE_DISK" in video.last_error and "100.0MiB" in video.last_error
    assert ing.media.state.count("diskfull001.mp4") == 0
    # A full disk is no fault of the video: it waits, but is not pushed towards `failed`.
    assert video.attempts == 0 and video.next_attempt_at is not None


def test_too_big_is_skipped(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(MAX_FILESIZE="1K")
    ing.media.state.add("hugefile001.mp4", ing.samples["short"])
    _queue_video(settings, "hugefile001")
    _download(settings)
    video = _video(settings, "hugefile001")
    assert video.state == "skipped" and video.last_error_kind == "too_big"
    assert "FIND_MAX_FILESIZE" in video.last_error
    assert _media_files(settings) == []


def test_too_long_is_skipped_after_probing(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(MAX_DURATION="3s")
    ing.media.state.add("longvideo01.mp4", ing.samples["long"])
    _queue_video(settings, "longvideo01")
    _download(settings)
    video = _video(settings, "longvideo01")
    assert video.state == "skipped" and video.last_error_kind == "too_long"
    assert _media_files(settings) == []


def test_download_minutes_keeps_only_the_start(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(DOWNLOAD_MINUTES="0.1", MAX_DURATION="8s")  # first 6 seconds
    ing.media.state.add("partial0001.mp4", ing.samples["long"])
    _queue_video(settings, "partial0001")
    _download(settings)
    video = _video(settings, "partial0001")
    assert video.state == "downloaded", video.last_error
    decodable, duration = probe_video(Path(video.media_path))
    assert decodable and duration is not None and duration < 9  # the source is 12 s


def test_format_selector_prefers_h264_and_never_picks_av1() -> None:
    from yt_dlp import YoutubeDL

    def fmt(fid, vcodec, height, acodec="none", ext="mp4"):
        return {
            "format_id": fid,
            "url": f"http://127.0.0.1/{fid}",
            "ext": ext,
            "vcodec": vcodec,
            "acodec": acodec,
            "height": height,
            "protocol": "https",
        }

    formats = [
        fmt("av1-720", "av01.0.05M.08", 720),
        fmt("av1-1080", "av01.0.08M.08", 1080),
        fmt("vp9-720", "vp9", 720, ext="webm"),
        fmt("h264-1080", "avc1.640028", 1080),
        fmt("h264-720", "avc1.4d401f", 720),
        fmt("audio", "none", None, acodec="mp4a.40.2", ext="m4a"),
    ]
    info = {
        "id": "x",
        "title": "x",
        "formats": formats,
        "extractor": "test",
        "extractor_key": "Test",
        "webpage_url": "http://127.0.0.1/x",
    }

    def select(selector, fmts):
        with YoutubeDL({"quiet": True, "format": selector}) as ydl:
            result = ydl.process_ie_result(dict(info, formats=fmts), download=False)
        return result.get("format_id")

    assert select(format_selector(720), formats) == "h264-720+audio"
    no_h264 = [f for f in formats if not f["vcodec"].startswith("avc1")]
    assert select(format_selector(720), no_h264) == "vp9-720+audio"
    only_av1 = [f for f in formats if f["vcodec"].startswith("av01")]
    with pytest.raises(Exception, match="format is not available") as caught:
        select(format_selector(720), only_av1)
    failure = classify("x", str(caught.value))
    assert failure.permanent and failure.kind == "no_format"


@pytest.mark.parametrize(
    ("message", "kind", "permanent"),
    [
        (
            "ERROR: [youtube] abc: Private video. Sign in if you've been granted access",
            "private",
            True,
        ),
        (
            "ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader",
            "removed",
            True,
        ),
        (
            "ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate "
            "for some users.",
            "age_restricted",
            True,
        ),
        (
            "ERROR: [youtube] abc: The uploader has not made this video available in your country",
            "region_restricted",
            True,
        ),
        (
            "ERROR: [youtube] abc: Join this channel to get access to members-only content",
            "members_only",
            True,
        ),
        (
            "ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies",
            "bot_check",
            False,
        ),
        ("ERROR: unable to download video data: HTTP Error 403: Forbidden", "forbidden", False),
        (
            "ERROR: unable to download video data: HTTP Error 429: Too Many Requests",
            "rate_limited",
            False,
        ),
        ("ERROR: [Errno 104] Connection reset by peer", "network", False),
        ("ERROR: Did not get any data blocks", "truncated", False),
        ("ERROR: [youtube] abc: This live event will begin in 3 hours.", "live", True),
    ],
)
def test_failures_are_classified(message: str, kind: str, permanent: bool) -> None:
    failure = classify("abc", message)
    assert (failure.kind, failure.permanent) == (kind, permanent)
    assert "abc" in str(failure)


def test_a_download_running_past_its_deadline_is_cut_off(sqlite_ingestion) -> None:
    ing = sqlite_ingestion
    settings = ing.settings(DOWNLOAD_RETRIES="0")
    ing.media.state.add("slowslow001.mp4", ing.samples["long"])
    _queue_video(settings, "slowslow001")
    _download(settings, timeout_s=0)
    video = _video(settings, "slowslow001")
    assert video.state == "new" and video.last_error_kind == "timeout", video.last_error
    assert "took longer than" in video.last_error
    assert _media_files(settings) == []
