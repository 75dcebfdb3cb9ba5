"""Download stage: fetch a discovered video with yt-dlp's Python API, safely.

:func:`make_download_handler` builds the handler that :func:`bot.queue.run_one`
runs for the ``download`` stage.  For one video it

1. checks the media disk has at least ``FIND_MIN_FREE_DISK`` free,
2. downloads a format OpenCV can decode (H.264 or VP9, never AV1) at most
   ``FIND_MAX_HEIGHT`` high and ``FIND_MAX_FILESIZE`` big, optionally only the
   first ``FIND_DOWNLOAD_MINUTES`` (with ffmpeg: the system's, or imageio-ffmpeg's),
3. into a private temporary folder under the media dir, then checks OpenCV can
   read it and renames it to ``<media dir>/<video id>.<ext>`` — atomically, so a
   crash never leaves a half file where the analyse stage would find it,
4. classifies failures: **permanent** ones (private, removed, age or region
   restricted, members-only, too long, too big, undecodable) end the video in
   ``skipped`` with the reason; **transient** ones (network, 403/429, "confirm
   you're not a bot", truncated transfer) are retried here with
   backoff up to ``FIND_DOWNLOAD_RETRIES``, then handed to the queue, which
   retries later with longer backoff until ``FIND_MAX_ATTEMPTS``; **host faults**
   (a full, read-only, forbidden or vanished media directory, :mod:`bot.hostfault`)
   postpone the video without using an attempt.

The page yt-dlp opens is ``FIND_MEDIA_URL_TEMPLATE`` (YouTube's watch page by
default; the tests point it at a local media server); for a submission (a ``sub-`` key)
it is the submitted URL, downloaded again when its media store is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bot.hostfault import (
    DISK_FULL,
    HOST_FAULT,
    HOST_FAULT_KINDS,
    describe,
    fault_kind,
    message_kind,
)
from bot.logs import log_event
from bot.mediahost import media_host_id
from bot.queue import Apply, Job, ShutdownRequested, StageFailure, StageHandler
from bot.settings import Settings
from bot.store import SUBMISSION_KEY_PREFIX, Video, VideoState
from bot.youtube.ids import is_media_key, require_media_key, shown

log = logging.getLogger("find.download")

PARTIAL_DIR = ".partial"
#: Wall-clock limit of one download attempt: a transfer trickling for longer is cut off
#: (and retried later) so it cannot hold a worker forever.
DOWNLOAD_TIMEOUT_S = 30 * 60
#: Leftover temporary folders older than this are removed when a handler is built.
STALE_PARTIAL_S = 6 * 3600

# (pattern, kind, permanent, what to do).  First match wins, so the specific
# "confirm you're not a bot" comes before the general "sign in".
_CLASSES: list[tuple[re.Pattern[str], str, bool, str]] = [
    (
        re.compile(r"confirm you.?re not a bot", re.I),
        "bot_check",
        False,
        "YouTube asks to confirm this is not a bot: retried later; if it persists, "
        "update yt-dlp or slow down polling",
    ),
    (re.compile(r"private video", re.I), "private", True, "the video is private: nothing to do"),
    (
        re.compile(r"members[- ]only|join this channel|subscriber_only|premium_only", re.I),
        "members_only",
        True,
        "the video is for channel members only: nothing to do",
    ),
    (
        re.compile(r"confirm your age|age[- ]restricted|inappropriate for some users", re.I),
        "age_restricted",
        True,
        "the video is age-restricted: nothing to do without cookies",
    ),
    (
        re.compile(
            r"not made this video available|not available (in your country|from your location)|"
            r"geo[- ]?restrict|blocked it in your",
            re.I,
        ),
        "region_restricted",
        True,
        "the video is blocked in this server's region: nothing to do",
    ),
    (
        re.compile(r"too long|over FIND_MAX_DURATION", re.I),
        "too_long",
        True,
        "raise FIND_MAX_DURATION (or set FIND_DOWNLOAD_MINUTES) to analyse such videos",
    ),
    (
        re.compile(r"larger than max-filesize|too big", re.I),
        "too_big",
        True,
        "raise FIND_MAX_FILESIZE to download such videos",
    ),
    (
        re.compile(r"requested format is not available|no video formats", re.I),
        "no_format",
        True,
        "no H.264/VP9 format within FIND_MAX_HEIGHT: nothing to do",
    ),
    (
        re.compile(
            r"live event will begin|premieres in|is live|live stream|is_live|is_upcoming", re.I
        ),
        "live",
        True,
        "live or upcoming broadcasts are not downloaded",
    ),
    (
        re.compile(r"unsupported url", re.I),
        "unsupported",
        True,
        "no yt-dlp extractor knows this site: download the video some other way and "
        "submit the file",
    ),
    (
        re.compile(r"\bAV1\b", re.I),
        "av1",
        True,
        "the video is AV1 only, which OpenCV cannot decode reliably: nothing to do "
        "(re-encode it to H.264 and submit the file)",
    ),
    (
        re.compile(
            r"video unavailable|has been removed|been terminated|no longer available|"
            r"does not exist|HTTP Error 404|HTTP Error 410",
            re.I,
        ),
        "removed",
        True,
        "the video was removed or never existed: nothing to do",
    ),
    (
        re.compile(r"HTTP Error 429|too many requests", re.I),
        "rate_limited",
        False,
        "YouTube is rate-limiting this server: retried later with backoff",
    ),
    (
        re.compile(r"HTTP Error 403|forbidden", re.I),
        "forbidden",
        False,
        "access was refused (403), often temporary: retried later",
    ),
    (
        re.compile(
            r"content too short|did not get any data|incomplete|truncated|"
            r"downloaded \d+ bytes, expected|bytes read, \d+ more expected",
            re.I,
        ),
        "truncated",
        False,
        "the transfer was cut off: retried",
    ),
    (
        re.compile(
            r"timed? ?out|connection|network|temporary failure|reset by peer|"
            r"HTTP Error 5\d\d|unable to download",
            re.I,
        ),
        "network",
        False,
        "network error: retried later",
    ),
]


def classify(video_id: str, error_text: str) -> StageFailure:
    """Turn a yt-dlp error message into a permanent or transient :class:`StageFailure`."""
    lines = [line.strip() for line in (error_text or "").replace("\r", "\n").splitlines()]
    text = " ".join(line for line in lines if line)
    text = re.sub(r"^(ERROR:\s*)+", "", text)
    text = re.sub(r"\s*\(caused by .*\)\s*$", "", text)[:300]  # yt-dlp repeats the cause
    host = message_kind(text)
    if host is not None:  # the media disk, not the video: never charged to the video
        advice = "free space on the media disk" if host == DISK_FULL else "fix FIND_MEDIA_DIR"
        return StageFailure(
            f"download of {video_id} postponed ({host}): {text}; {advice}, the download is "
            "retried later",
            permanent=False,
            kind=host,
            counts_as_attempt=False,
        )
    for pattern, kind, permanent, advice in _CLASSES:
        if pattern.search(text):
            return StageFailure(
                f"download of {video_id} failed ({kind}): {text}; {advice}",
                permanent=permanent,
                kind=kind,
            )
    return StageFailure(
        f"download of {video_id} failed: {text or 'unknown error'}; retried later",
        permanent=False,
        kind="transient",
    )


# ================================================================== handler
def make_download_handler(
    settings: Settings,
    *,
    retry_base_s: float = 5.0,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> StageHandler:
    """The ``download`` stage handler for :func:`bot.queue.run_one`; ``stop``: the daemon's
    shutdown event, which ends the wait before a retry (see :func:`download_video`)."""
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    clean_partials(settings.media_dir)
    store: list[str] = []

    def handler(job: Job) -> Apply:
        if not is_media_key(job.youtube_id):  # stored before ids were checked at the boundary
            raise StageFailure(
                f"download of {shown(job.youtube_id)!r} skipped: not a YouTube video id, so no "
                "file is ever written for it",
                permanent=True,
                kind="invalid_id",
            )
        url = None  # a YouTube id: FIND_MEDIA_URL_TEMPLATE
        if job.youtube_id.startswith(SUBMISSION_KEY_PREFIX):
            url = job.source_url
            if url is None:
                raise StageFailure(
                    f"{job.youtube_id} is a submitted file whose copy is not on this host: "
                    "submit the file again (find-bot submit PATH)",
                    permanent=True,
                    kind="media_missing",
                )
        check_media_dir(settings, job.youtube_id)
        if not store:  # the media store's id (bot.mediahost): which workers can analyse it
            store.append(media_host_id(settings.media_dir))
        path, size = download_video(
            settings,
            job.youtube_id,
            url=url,
            retry_base_s=retry_base_s,
            timeout_s=timeout_s,
            sleep=sleep,
            stop=stop,
        )

        def apply(session: Session, video: Video) -> None:
            video.state = VideoState.DOWNLOADED.value
            video.media_path = str(path)
            video.media_host = store[0]
            video.media_size = size
            video.media_deleted_at = None

        return apply

    return handler


def download_video(
    settings: Settings,
    video_id: str,
    *,
    url: str | None = None,
    info: dict[str, Any] | None = None,
    retry_base_s: float = 5.0,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> tuple[Path, int]:
    """Download one video into the media dir; return its path and size in bytes.

    ``url`` is the page to open (default: ``FIND_MEDIA_URL_TEMPLATE`` for ``video_id``,
    a submitted URL otherwise); the file is named after ``video_id`` either way.  When
    ``info`` is given, yt-dlp's title and duration are copied into it.
    Transient failures are retried ``FIND_DOWNLOAD_RETRIES`` times with
    exponential backoff and jitter; then the last :class:`StageFailure` is raised.
    Once ``stop`` is set (SIGTERM) no new attempt starts: the wait before a retry ends
    at once with :class:`~bot.queue.ShutdownRequested`, and the video is released.
    """
    attempt = 0
    while True:
        check_disk_space(settings, video_id)
        try:
            return _download_once(settings, video_id, timeout_s, url=url, info_out=info)
        except StageFailure as failure:
            if failure.permanent or failure.kind in HOST_FAULT_KINDS:
                raise  # retrying at once cannot help: not the video, not the network
            if attempt >= settings.download_retries:
                raise
            attempt += 1
            delay = random.uniform(0.5, 1.0) * retry_base_s * 2 ** (attempt - 1)
            log_event(
                log,
                "download.retry",
                logging.WARNING,
                video=video_id,
                kind=failure.kind,
                attempt=attempt,
                delay_s=round(delay, 2),
                error=str(failure),
            )
            if stop is None:
                sleep(delay)
            elif stop.wait(delay):
                raise ShutdownRequested(
                    f"download of {video_id}: stopping before attempt {attempt + 1}"
                ) from failure


# =================================================================== checks
def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem of ``path`` (tests replace this to simulate a full disk)."""
    return shutil.disk_usage(path).free


def check_media_dir(settings: Settings, video_id: str) -> None:
    """The media dir must still be there: it is created at start, so gone means unmounted.

    Recreating it would quietly fill the disk below the mount point with
    files that workers on other machines cannot see.
    """
    if not settings.media_dir.is_dir():
        raise StageFailure(
            f"download of {video_id} postponed ({HOST_FAULT}): FIND_MEDIA_DIR="
            f"{settings.media_dir} is missing (unmounted?): mount or recreate it, the download "
            "is retried later",
            permanent=False,
            kind=HOST_FAULT,
            counts_as_attempt=False,
        )


def check_disk_space(settings: Settings, video_id: str) -> None:
    free = free_bytes(settings.media_dir)
    if free < settings.min_free_disk_bytes:
        raise StageFailure(
            f"download of {video_id} postponed (disk_full): {settings.media_dir} has "
            f"{_human(free)} free, below "
            f"FIND_MIN_FREE_DISK={_human(settings.min_free_disk_bytes)}; "
            "free space or move FIND_MEDIA_DIR, the download is retried later",
            permanent=False,
            kind=DISK_FULL,
            counts_as_attempt=False,  # the disk is full, not the video at fault
        )


def probe_video(path: Path) -> tuple[bool, float | None]:
    """Can OpenCV decode a frame, and how long is the video (seconds, if known)?"""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return False, None
        ok, _frame = capture.read()
        frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = capture.get(cv2.CAP_PROP_FPS)
        duration = frames / fps if ok and fps and fps > 0 and frames > 0 else None
        return bool(ok), duration
    finally:
        capture.release()


# ================================================================== yt-dlp
def format_selector(max_height: int) -> str:
    """H.264 first, then VP9, at most ``max_height``; never AV1 (OpenCV cannot decode it).

    Separate video+audio streams are preferred (that is how YouTube serves
    720p), then progressive files; the last fallback accepts a file whose codec
    is unknown (a plain mp4 link) but still not one that says av01.
    """
    h = max_height
    merged = [f"bv*[vcodec^={c}][height<=?{h}]+ba" for c in ("avc1", "vp9", "vp09")]
    single = [f"b[vcodec^={c}][height<=?{h}]" for c in ("avc1", "vp9", "vp09")]
    fallback = [f"b[height<=?{h}][vcodec!^=?av01][vcodec!^=?av1]"]
    return "/".join(merged + single + fallback)


class _Messages:
    """yt-dlp logger that keeps every message (to explain silent skips) and forwards warnings."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        self.lines: list[str] = []

    def debug(self, message: str) -> None:
        self.lines.append(message)

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append(message)
        log_event(
            log,
            "download.ytdlp_warning",
            logging.WARNING,
            video=self.video_id,
            warning=message[:300],
        )

    def error(self, message: str) -> None:
        self.lines.append(message)

    def find(self, pattern: str) -> str | None:
        return next((line for line in self.lines if re.search(pattern, line, re.I)), None)


def ydl_options(
    settings: Settings,
    workdir: Path,
    video_id: str,
    messages: _Messages,
    rejected: dict[str, str],
) -> dict[str, Any]:
    """yt-dlp options for one download into ``workdir``."""

    def match_filter(info: dict[str, Any], *, incomplete: bool = False) -> str | None:
        reason = None if incomplete else _reject_reason(settings, info)
        if reason:
            rejected["reason"] = reason
        return reason

    options: dict[str, Any] = {
        "format": format_selector(settings.max_height),
        "outtmpl": str(workdir / f"{video_id}.%(ext)s"),
        "merge_output_format": "mp4/mkv",
        "max_filesize": settings.max_filesize_bytes,
        "match_filter": match_filter,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "logger": messages,
        "socket_timeout": 30,
        "retries": settings.download_retries,
        "fragment_retries": settings.download_retries,
        "extractor_retries": 1,
        "overwrites": True,
        "cachedir": False,
        "restrictfilenames": True,
    }
    ffmpeg = ffmpeg_dir(settings)
    if ffmpeg is not None:
        options["ffmpeg_location"] = str(ffmpeg)
    if settings.download_minutes and ffmpeg is not None:
        from yt_dlp.utils import download_range_func

        options["download_ranges"] = download_range_func(
            None, [(0, settings.download_minutes * 60)]
        )
    return options


def _reject_reason(settings: Settings, info: dict[str, Any]) -> str | None:
    """Reasons, known before downloading, never to download this video."""
    vid = info.get("id")
    if info.get("live_status") in ("is_live", "is_upcoming") or info.get("is_live"):
        return f"video {vid} is live or upcoming (live stream): not downloaded"
    if info.get("availability") in ("subscriber_only", "premium_only"):
        return f"video {vid} is {info['availability']} (members-only)"
    duration = info.get("duration")
    if duration and not settings.download_minutes and duration > settings.max_duration_s:
        return (
            f"video {vid} lasts {int(duration)}s, over FIND_MAX_DURATION="
            f"{settings.max_duration_s}s (too long)"
        )
    return None


def _download_once(
    settings: Settings,
    video_id: str,
    timeout_s: float,
    *,
    url: str | None = None,
    info_out: dict[str, Any] | None = None,
) -> tuple[Path, int]:
    """One yt-dlp run in a private temp folder, then an atomic rename into the media dir."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import DownloadCancelled, DownloadError, UnavailableVideoError

    require_media_key(video_id)  # media paths are built only from checked keys
    url = url or settings.media_url_template.format(id=video_id)
    workdir = settings.media_dir / PARTIAL_DIR / f"{video_id}.{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    messages = _Messages(video_id)
    rejected: dict[str, str] = {}
    log_event(log, "download.started", video=video_id)
    started = time.monotonic()
    try:
        try:
            options = ydl_options(settings, workdir, video_id, messages, rejected)
            options["progress_hooks"] = [_deadline_hook(video_id, timeout_s)]
            with YoutubeDL(options) as ydl:
                info = ydl.extract_info(url, download=True)
        except DownloadCancelled as exc:
            raise StageFailure(str(exc), permanent=False, kind="timeout") from None
        except (DownloadError, UnavailableVideoError) as exc:
            # UnavailableVideoError: yt-dlp's wrapper when writing the file fails (ENOSPC).
            raise classify(video_id, str(exc)) from None
        except OSError as exc:
            kind = fault_kind(exc)
            if kind is not None:
                raise StageFailure(
                    f"download of {video_id} postponed ({kind}): {describe(exc)}; "
                    "the download is retried later",
                    permanent=False,
                    kind=kind,
                    counts_as_attempt=False,
                ) from None
            raise classify(video_id, f"network error: {exc}") from None
        if rejected:
            raise classify(video_id, rejected["reason"])
        if info_out is not None and info:
            info_out.update(title=info.get("title"), duration=info.get("duration"))
        produced = _produced_file(info, workdir)
        if produced is None:
            reason = messages.find(r"max-filesize|skipping|aborting") or "yt-dlp wrote no file"
            raise classify(video_id, reason)
        final = _finalise(settings, video_id, produced)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    size = final.stat().st_size
    log_event(
        log,
        "download.done",
        video=video_id,
        size=size,
        path=str(final),
        seconds=round(time.monotonic() - started, 2),
    )
    return final, size


def _deadline_hook(video_id: str, timeout_s: float) -> Callable[[dict[str, Any]], None]:
    """A yt-dlp progress hook that cancels a transfer running past ``timeout_s``."""
    from yt_dlp.utils import DownloadCancelled

    deadline = time.monotonic() + timeout_s

    def hook(progress: dict[str, Any]) -> None:
        if progress.get("status") == "downloading" and time.monotonic() > deadline:
            raise DownloadCancelled(
                f"download of {video_id} took longer than {timeout_s:g}s (timeout): "
                "the connection is too slow; retried later"
            )

    return hook


def _produced_file(info: dict[str, Any] | None, workdir: Path) -> Path | None:
    for download in (info or {}).get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    files = [
        p for p in workdir.glob("*") if p.is_file() and not p.name.endswith((".part", ".ytdl"))
    ]
    return files[0] if len(files) == 1 else None


def check_media_file(settings: Settings, video_id: str, path: Path) -> float | None:
    """Refuse a file the analyse stage could not use; return its duration (seconds) if known.

    Too big (``FIND_MAX_FILESIZE``), undecodable, AV1 (OpenCV's AV1 support depends on
    how it was built, so FIND never relies on it), too long (``FIND_MAX_DURATION``):
    each a permanent :class:`StageFailure`.  Downloads and submitted files share it.
    """
    size = path.stat().st_size
    if size > settings.max_filesize_bytes:
        raise classify(
            video_id,
            f"file is {_human(size)}, larger than max-filesize FIND_MAX_FILESIZE="
            f"{_human(settings.max_filesize_bytes)} (too big)",
        )
    decodable, duration = probe_video(path)
    if decodable and video_fourcc(path) in AV1_FOURCCS:
        raise classify(video_id, f"{path.name} is encoded in AV1")
    if not decodable:
        raise StageFailure(
            f"download of {video_id} failed (undecodable): OpenCV cannot decode {path.name} "
            "(not a video, unsupported codec or corrupt file); nothing to do",
            permanent=True,
            kind="undecodable",
        )
    # A little slack: container durations run slightly over the API's rounded duration.
    slack = max(2.0, 0.02 * settings.max_duration_s)
    if duration and not settings.download_minutes and duration > settings.max_duration_s + slack:
        raise classify(
            video_id,
            f"video lasts {int(duration)}s, too long for FIND_MAX_DURATION="
            f"{settings.max_duration_s}s",
        )
    return duration


#: OpenCV's FOURCC codes for AV1 streams.
AV1_FOURCCS = frozenset({"av01", "AV01", "av1 ", "AV1 "})


def video_fourcc(path: Path) -> str:
    """The FOURCC of the video stream as OpenCV reports it (``avc1``, ``AV01``...; "" if none)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        code = int(capture.get(cv2.CAP_PROP_FOURCC)) if capture.isOpened() else 0
    finally:
        capture.release()
    return code.to_bytes(4, "little").decode("latin-1") if code > 0 else ""


def _finalise(settings: Settings, video_id: str, produced: Path) -> Path:
    """Check the file, then move it into place atomically (fsync, rename, fsync the folder)."""
    check_media_file(settings, video_id, produced)
    with open(produced, "rb") as handle:
        os.fsync(handle.fileno())
    final = settings.media_dir / f"{video_id}{produced.suffix}"
    os.replace(produced, final)
    _fsync_dir(settings.media_dir)
    return final


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def clean_partials(media_dir: Path, older_than_s: float = STALE_PARTIAL_S) -> int:
    """Remove temp folders left by a crashed download (they are never used again)."""
    root = media_dir / PARTIAL_DIR
    removed = 0
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    for child in root.iterdir():
        with contextlib.suppress(OSError):
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
    return removed


# ================================================================== ffmpeg
_ffmpeg_lock = threading.Lock()


def ffmpeg_dir(settings: Settings) -> Path | None:
    """A folder with an ``ffmpeg`` executable: the system's, else imageio-ffmpeg's binary.

    imageio-ffmpeg's binary has a versioned file name that yt-dlp does not
    recognise, so it is linked as ``<data dir>/bin/ffmpeg``.  yt-dlp looks for
    ffmpeg on ``PATH`` when deciding whether it can download a time range, so
    that folder is also put on this process's ``PATH``.
    """
    system = shutil.which("ffmpeg")
    if system:
        return Path(system).parent
    try:
        import imageio_ffmpeg

        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        return None
    folder = settings.data_dir / "bin"
    link = folder / "ffmpeg"
    with _ffmpeg_lock:
        folder.mkdir(parents=True, exist_ok=True)
        if not link.exists() or link.resolve() != exe.resolve():
            tmp = folder / f".ffmpeg-{uuid.uuid4().hex[:8]}"
            tmp.symlink_to(exe)
            os.replace(tmp, link)
        path = os.environ.get("PATH", "")
        if str(folder) not in path.split(os.pathsep):
            os.environ["PATH"] = f"{folder}{os.pathsep}{path}" if path else str(folder)
    return folder


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{size}B"
