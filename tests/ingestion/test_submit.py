"""`find-bot submit`: URLs (real yt-dlp against the local media server), files and directories.

Nothing here reaches the internet: "sites" are the suite's media server and a
plain local HTTP server for the page no extractor supports.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.db import session_factory
from bot.queue import WorkQueue
from bot.stages.submit import youtube_id_of
from bot.store import QuotaEntry, Video

SUBMITTER = "alice"


def _run_cli(monkeypatch, tmp_path, env: dict[str, str], *argv: str) -> int:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FIND_DATA_DIR", str(tmp_path / "data"))
    return main(list(argv))


def _videos(settings) -> dict[str, Video]:
    with session_factory(settings)() as session:
        rows = list(session.scalars(select(Video)))
        session.expunge_all()
    return {v.youtube_id: v for v in rows}


def _media_files(settings) -> list[Path]:
    """Files in the media store, leftovers of failed work included (temp folders too)."""
    if not settings.media_dir.exists():
        return []
    return sorted(p for p in settings.media_dir.rglob("*") if p.is_file())


def test_urls_files_and_directories_enter_the_pipeline_with_their_source(
    ingestion, monkeypatch, tmp_path, capsys
) -> None:
    media = ingestion.media
    media.state.add("report-1.mp4", ingestion.samples["short"])
    url = f"{media.url}/report-1.mp4"
    local = tmp_path / "inbox" / "sent-in.mp4"
    local.parent.mkdir()
    shutil.copyfile(ingestion.samples["long"], local)
    folder = tmp_path / "folder"
    folder.mkdir()
    other = shutil.copyfile(ingestion.samples["short"], folder / "other.mkv")
    other.write_bytes(other.read_bytes() + b"\0")  # different bytes from the URL's
    (folder / "readme.txt").write_text("not a video, and not picked up from a folder")
    env = ingestion.env()

    code = _run_cli(
        monkeypatch,
        tmp_path,
        env,
        "submit",
        url,
        str(local),
        str(folder),
        "--note",
        "user report #42",
        "--submitter",
        SUBMITTER,
        "--priority",
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.count("queued for analysis") == 4  # three lines and the summary
    settings = ingestion.settings()
    videos = _videos(settings)
    assert len(videos) == 3
    (from_url,) = [v for v in videos.values() if v.source == "submitted_url"]
    assert from_url.source_url == url and from_url.youtube_id.startswith("sub-")
    files = [v for v in videos.values() if v.source == "submitted_file"]
    assert sorted(v.title for v in files) == ["other.mkv", "sent-in.mp4"]
    for video in videos.values():
        assert video.state == "downloaded"
        assert video.submitted_by == SUBMITTER and video.submission_note == "user report #42"
        assert video.priority == 1 and video.lookup_due_at is None
        assert len(video.content_sha256) == 64
        assert Path(video.media_path).is_file() and video.media_path.startswith(
            str(settings.media_dir)
        )
        assert video.url == (url if video.source == "submitted_url" else None)
    assert local.exists()  # the original is never moved away
    with session_factory(settings)() as session:
        assert session.scalar(select(func.count()).select_from(QuotaEntry)) == 0  # no quota

    # A priority submission is analysed before videos that were waiting already.
    with session_factory(settings).begin() as session:
        session.add(Video(youtube_id="waiting0001", state="downloaded", media_path="x"))
    queue = WorkQueue(session_factory(settings))
    job = queue.claim("analyse", "w")
    assert job is not None and job.youtube_id in videos


def test_the_same_url_or_the_same_bytes_is_not_added_twice(
    sqlite_ingestion, monkeypatch, tmp_path, capsys
) -> None:
    media = sqlite_ingestion.media
    media.state.add("a.mp4", sqlite_ingestion.samples["short"])
    media.state.add("same-bytes.mp4", sqlite_ingestion.samples["long"])
    local = shutil.copyfile(sqlite_ingestion.samples["long"], tmp_path / "long-copy.mp4")
    env = sqlite_ingestion.env()
    assert _run_cli(monkeypatch, tmp_path, env, "submit", f"{media.url}/a.mp4", str(local)) == 0
    capsys.readouterr()
    settings = sqlite_ingestion.settings()
    before = _videos(settings)
    requests_for_a = media.state.count("a.mp4")
    files_before = _media_files(settings)

    renamed = shutil.copyfile(local, tmp_path / "renamed.mp4")
    code = _run_cli(
        monkeypatch,
        tmp_path,
        env,
        "submit",
        f"{media.url}/a.mp4",  # the same URL: not even downloaded again
        str(renamed),  # the same bytes under another name
        f"{media.url}/same-bytes.mp4",  # the same bytes from another URL
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("already in FIND as") == 3, out
    assert _videos(settings).keys() == before.keys()
    assert _media_files(settings) == files_before  # the duplicate download was removed
    assert media.state.count("a.mp4") == requests_for_a  # not downloaded again


def test_a_youtube_url_is_that_youtube_video_and_costs_no_quota(
    sqlite_ingestion, monkeypatch, tmp_path, capsys
) -> None:
    channel = sqlite_ingestion.channel("Alpha")
    upload = sqlite_ingestion.upload(channel, title="on youtube")
    env = sqlite_ingestion.env()
    code = _run_cli(
        monkeypatch, tmp_path, env, "submit", f"https://youtu.be/{upload.id}", "--note", "seen"
    )
    assert code == 0, capsys.readouterr().err
    settings = sqlite_ingestion.settings()
    video = _videos(settings)[upload.id]
    assert video.source == "submitted_url" and video.state == "downloaded"
    assert video.url == f"https://www.youtube.com/watch?v={upload.id}"
    assert video.lookup_due_at is None
    with session_factory(settings)() as session:
        assert session.scalar(select(func.count()).select_from(QuotaEntry)) == 0
    capsys.readouterr()
    watch = f"https://www.youtube.com/watch?v={upload.id}&t=3s"
    assert _run_cli(monkeypatch, tmp_path, env, "submit", watch) == 0
    assert f"already in FIND as {upload.id}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ?si=x", "dQw4w9WgXcQ"),
        ("https://m.youtube.com/shorts/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/@somechannel", None),
        ("https://vimeo.com/12345", None),
        ("https://www.youtube.com/watch?v=short", None),
    ],
)
def test_youtube_ids_are_read_from_their_urls(url, expected) -> None:
    assert youtube_id_of(url) == expected


# ----------------------------------------------------------------- bad input
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def html_site(tmp_path) -> Iterator[str]:
    """A web page with no video on it: no yt-dlp extractor supports it."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "page.html").write_text("<html><head><title>hi</title></head><body>no video</body>")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page.html"
    server.shutdown()
    server.server_close()


def _av1_mp4(path: Path) -> Path:
    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", "testsrc=size=160x120:rate=10:duration=1"),
            *("-c:v", "libaom-av1", "-cpu-used", "8", "-pix_fmt", "yuv420p", str(path)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path


@pytest.mark.parametrize(
    "case",
    [
        "unreachable_url",
        "unsupported_site",
        "not_http",
        "non_video_file",
        "av1_file",
        "av1_url",
        "file_too_big",
        "url_too_big",
        "empty_directory",
        "missing_file",
        "youtube_channel",
        "youtube_playlist",
        "youtube_bad_id",
    ],
)
def test_bad_input_gets_one_line_and_stores_nothing(
    case, sqlite_ingestion, html_site, monkeypatch, tmp_path, capsys
) -> None:
    media = sqlite_ingestion.media
    env = sqlite_ingestion.env(DOWNLOAD_RETRIES="0")
    if case == "unreachable_url":
        target = f"http://127.0.0.1:{_closed_port()}/clip.mp4"
        expect = "Connection refused; nothing was stored"
    elif case == "unsupported_site":
        target, expect = html_site, "no yt-dlp extractor knows this site"
    elif case == "not_http":
        target, expect = "ftp://example.org/clip.mp4", "only http(s) URLs"
    elif case == "non_video_file":
        target = str(tmp_path / "notes.mp4")
        Path(target).write_text("meeting notes, not a video\n" * 50)
        expect = "OpenCV cannot decode notes.mp4"
    elif case == "av1_file":
        target, expect = str(_av1_mp4(tmp_path / "av1.mp4")), "AV1"
    elif case == "av1_url":
        media.state.add("av1.mp4", _av1_mp4(tmp_path / "av1.mp4"))
        target, expect = f"{media.url}/av1.mp4", "AV1"
    elif case == "file_too_big":
        target, expect = str(sqlite_ingestion.samples["long"]), "FIND_MAX_FILESIZE"
        env["FIND_MAX_FILESIZE"] = "1K"
    elif case == "url_too_big":
        media.state.add("big.mp4", sqlite_ingestion.samples["long"])
        target, expect = f"{media.url}/big.mp4", "FIND_MAX_FILESIZE"
        env["FIND_MAX_FILESIZE"] = "1K"
    elif case == "empty_directory":
        target, expect = str(tmp_path / "empty"), "no video files in this directory"
        Path(target).mkdir()
        (Path(target) / "notes.txt").write_text("x")
    elif case == "missing_file":
        target, expect = str(tmp_path / "nope.mp4"), "no such file"
    else:  # YouTube addresses that are not one video: refused before any download
        target = {
            "youtube_channel": "https://www.youtube.com/@somechannel",
            "youtube_playlist": "https://www.youtube.com/playlist?list=PL0123456789",
            "youtube_bad_id": "https://youtu.be/%25%25%25",
        }[case]
        expect = "not the address of one YouTube video"

    code = _run_cli(monkeypatch, tmp_path, env, "submit", target)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("find-bot:")]
    assert code == 1
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"find-bot: {target}: ") and expect in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    settings = sqlite_ingestion.settings()
    assert _videos(settings) == {}
    assert _media_files(settings) == []


def test_one_bad_input_does_not_stop_the_others(sqlite_ingestion, monkeypatch, tmp_path, capsys):
    env = sqlite_ingestion.env()
    good = sqlite_ingestion.samples["short"]
    code = _run_cli(monkeypatch, tmp_path, env, "submit", str(tmp_path / "missing.mp4"), str(good))
    captured = capsys.readouterr()
    assert code == 1
    assert "missing.mp4: no such file" in captured.err
    assert "added as sub-" in captured.out
    assert len(_videos(sqlite_ingestion.settings())) == 1
