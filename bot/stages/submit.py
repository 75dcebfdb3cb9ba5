"""Submissions: videos handed in by a person (``find-bot submit``), beside channels and searches.

A trust-and-safety team also gets videos from user reports, other platforms
and files sent in.  :func:`submit` puts each into the same pipeline as a
YouTube upload, already downloaded, so the analyse stage takes it next:

* a **URL** is downloaded at once by the download stage's own code
  (:func:`bot.stages.download.download_video`: yt-dlp, any site its extractors
  know, the same format, size and duration limits, the same temp-folder-then-rename);
  a YouTube URL is recognised as that YouTube video (its 11-character id), so a
  video already found on a channel is not queued twice;
* a **file** is checked (size, decodable, not AV1, duration), then hard-linked
  into the media store (copied when it is on another filesystem);
* a **directory** is walked for video files.

The row is inserted only once the media is in place and checked, and the
media is removed again if the row cannot be inserted, so a bad input leaves
nothing half-way: one line saying what is wrong and what to do.  The same URL
(its key) or the same bytes (``content_sha256``) never make a second video.
Submitted videos never wait for a Data API lookup (``lookup_due_at`` stays
None): the quota is spent on YouTube discoveries only.

Like a download, a submission records the id of the media store it was placed in
(``videos.media_host``, :mod:`bot.mediahost`), so only workers that see that store
analyse it.  When that store is gone, a submitted URL is downloaded again like any video;
a submitted file cannot be, so it fails (:data:`bot.queue.MEDIA_HOST_GONE`) and
submitting the same file again on a live host puts it back (:func:`submit_file`).
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.logs import log_event
from bot.mediahost import media_host_id
from bot.queue import MEDIA_HOST_GONE, StageFailure
from bot.settings import Settings
from bot.stages.download import (
    PARTIAL_DIR,
    check_disk_space,
    check_media_dir,
    check_media_file,
    download_video,
)
from bot.store import SUBMISSION_KEY_PREFIX, Video, VideoSource, VideoState

log = logging.getLogger("find.submit")

#: What a YouTube video id looks like, and the hosts and paths that carry one.
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_HOSTS = {"youtube.com", "m.youtube.com", "music.youtube.com", "youtube-nocookie.com"}
_YOUTUBE_PATHS = ("shorts", "embed", "live", "v", "e")


@dataclass(frozen=True)
class Submitter:
    """Who hands the videos in, why, and whether they jump the analysis queue."""

    name: str
    note: str | None = None
    priority: bool = False


@dataclass(frozen=True)
class Outcome:
    """What happened to one input: ``added``, ``duplicate`` or ``refused`` (with the line why)."""

    input: str
    status: str
    message: str
    key: str | None = None

    def __str__(self) -> str:
        return self.message


def default_submitter() -> str:
    """The OS user running the command (``submit --submitter`` overrides it)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return f"uid {os.getuid()}"


# ==================================================================== inputs
def _youtube_host(url: str) -> str | None:
    """The YouTube host a URL points at (``youtube.com``, ``youtu.be``...), else None."""
    host = (urlsplit(url.strip()).hostname or "").lower().removeprefix("www.")
    return host if host == "youtu.be" or host in _YOUTUBE_HOSTS else None


def youtube_id_of(url: str) -> str | None:
    """The 11-character video id of a YouTube watch/short/embed/youtu.be URL, else None."""
    parts = urlsplit(url.strip())
    host = _youtube_host(url)
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif host in _YOUTUBE_HOSTS:
        segments = [s for s in parts.path.split("/") if s]
        if segments[:1] == ["watch"]:
            candidate = (parse_qs(parts.query).get("v") or [""])[0]
        elif len(segments) >= 2 and segments[0] in _YOUTUBE_PATHS:
            candidate = segments[1]
        else:
            return None
    else:
        return None
    return candidate if _YOUTUBE_ID.match(candidate) else None


def is_url(text: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", text.strip(), re.I))


def expand_inputs(inputs: list[str]) -> list[tuple[str, Path | str | None]]:
    """Each input as ``(shown name, what to submit)``: a URL, a file, or None (a refusal).

    A directory becomes its video files, sorted; an empty one stays as one entry with
    None so it gets its own line.
    """
    from model.frames import VIDEO_EXTENSIONS

    expanded: list[tuple[str, Path | str | None]] = []
    for raw in inputs:
        if is_url(raw):
            expanded.append((raw, raw.strip()))
            continue
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
            )
            expanded.extend((str(p), p) for p in files)
            if not files:
                expanded.append((raw, None))
        else:
            expanded.append((raw, path))
    return expanded


# ==================================================================== submit
def submit(
    settings: Settings,
    sessions: sessionmaker[Session],
    inputs: list[str],
    submitter: Submitter,
) -> list[Outcome]:
    """Submit every input; one :class:`Outcome` each (errors are outcomes, not exceptions)."""
    from model.frames import VIDEO_EXTENSIONS

    settings.media_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for shown, target in expand_inputs(inputs):
        if target is None:
            kinds = ", ".join(sorted(VIDEO_EXTENSIONS))
            outcome = Outcome(
                shown,
                "refused",
                f"{shown}: no video files in this directory (looked for {kinds}); "
                "give the files or another directory",
            )
        elif isinstance(target, str):
            outcome = _guard(shown, lambda t=target: submit_url(settings, sessions, t, submitter))
        else:
            outcome = _guard(shown, lambda t=target: submit_file(settings, sessions, t, submitter))
        log_event(
            log,
            f"submit.{outcome.status}",
            logging.INFO,
            input=shown,
            video=outcome.key,
            submitter=submitter.name,
        )
        outcomes.append(outcome)
    return outcomes


def _guard(shown: str, work: Any) -> Outcome:
    """Turn the stage's failures into the one line a person reads."""
    try:
        return work()
    except StageFailure as failure:
        text = re.sub(r"^download of .+? (failed|postponed) ?", "", str(failure))
        text = re.sub(r"\[\w+\] [^:]*: ", "", text)  # yt-dlp's "[generic] name: " prefix
        text = re.sub(r"[;,][^;,]*retried (later|without)[^;]*", "", text)  # the daemon's advice
        if not failure.permanent:
            text += "; nothing was stored: fix the cause, then submit it again"
        return Outcome(shown, "refused", f"{shown}: {text}")
    except OSError as exc:
        from bot.hostfault import describe

        return Outcome(shown, "refused", f"{shown}: {describe(exc)}")


def submit_url(
    settings: Settings, sessions: sessionmaker[Session], url: str, submitter: Submitter
) -> Outcome:
    """Download ``url`` now (the download stage's code and limits) and queue it for analysis."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        return Outcome(
            url,
            "refused",
            f"{url}: only http(s) URLs can be submitted (for a local file give its path)",
        )
    youtube_id = youtube_id_of(url)
    if youtube_id is None and _youtube_host(url):
        # A channel, playlist or mistyped watch URL: yt-dlp would treat it as some other
        # page (or a whole channel), retry, and fail late; say what a video URL looks like.
        return Outcome(
            url,
            "refused",
            f"{url}: not the address of one YouTube video (watch?v=, youtu.be/ or shorts/ "
            "with an 11-character id); to follow a channel, add it to FIND_CHANNELS",
        )
    key = youtube_id or SUBMISSION_KEY_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:12]
    existing = _existing(sessions, key=key)
    if existing is not None:
        return _duplicate(url, existing)
    check_media_dir(settings, key)
    info: dict[str, Any] = {}
    # A YouTube video is read through FIND_MEDIA_URL_TEMPLATE, as every YouTube upload is.
    path, size = download_video(
        settings, key, url=None if youtube_id else url, info=info, retry_base_s=1.0
    )
    duration = info.get("duration")
    digest = sha256_file(path)
    return _record(
        sessions,
        url,
        path,
        submitter,
        key=key,
        media_host=media_host_id(settings.media_dir),
        source=VideoSource.SUBMITTED_URL,
        size=size,
        digest=digest,
        title=info.get("title") or None,
        duration=duration,
        source_url=url,
    )


def submit_file(
    settings: Settings, sessions: sessionmaker[Session], path: Path, submitter: Submitter
) -> Outcome:
    """Check a local file, link or copy it into the media store, and queue it for analysis."""
    shown = str(path)
    if not path.exists():
        return Outcome(shown, "refused", f"{shown}: no such file or directory")
    if not path.is_file():
        return Outcome(shown, "refused", f"{shown}: not a regular file")
    check_media_dir(settings, shown)
    check_disk_space(settings, shown)
    duration = check_media_file(settings, shown, path)
    digest = sha256_file(path)
    existing = _existing(sessions, digest=digest)
    if existing is not None and _stranded(existing):
        return _replace_stranded(settings, sessions, shown, path, existing)
    if existing is not None:
        return _duplicate(shown, existing)
    key = SUBMISSION_KEY_PREFIX + digest[:12]
    final = _place(settings, path, key)
    return _record(
        sessions,
        shown,
        final,
        submitter,
        key=key,
        media_host=media_host_id(settings.media_dir),
        source=VideoSource.SUBMITTED_FILE,
        size=final.stat().st_size,
        digest=digest,
        title=path.name,
        duration=duration,
        source_url=None,
    )


# ==================================================================== helpers
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(settings: Settings, source: Path, key: str) -> Path:
    """Hard-link (else copy) ``source`` to ``<media dir>/<key><ext>``, atomically."""
    final = settings.media_dir / f"{key}{source.suffix.lower()}"
    workdir = settings.media_dir / PARTIAL_DIR / f"{key}.{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    staged = workdir / final.name
    try:
        try:
            os.link(source, staged)
        except OSError:  # another filesystem, or links not allowed: copy
            shutil.copyfile(source, staged)
        os.replace(staged, final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return final


def _existing(
    sessions: sessionmaker[Session], *, key: str | None = None, digest: str | None = None
) -> Video | None:
    with sessions() as session:
        query = select(Video)
        query = query.where(Video.youtube_id == key if key else Video.content_sha256 == digest)
        video = session.scalars(query).first()
        if video is not None:
            session.expunge(video)
        return video


#: How a submitted file ends when no worker can read its copy: its media store is gone
#: (:meth:`bot.queue.WorkQueue.release_gone_media`), or a worker found no file.
_STRANDED_KINDS = frozenset({MEDIA_HOST_GONE, "media_missing"})


def _stranded(video: Video) -> bool:
    """A submitted file that stopped because no worker can read its copy: submitting the
    same bytes again is how a person brings it back, so that is not a duplicate."""
    return (
        video.source == VideoSource.SUBMITTED_FILE.value
        and video.state in (VideoState.FAILED.value, VideoState.SKIPPED.value)
        and video.last_error_kind in _STRANDED_KINDS
    )


def _replace_stranded(
    settings: Settings, sessions: sessionmaker[Session], shown: str, path: Path, video: Video
) -> Outcome:
    """Put the same bytes in this host's store and send the stranded video back to analysis.

    Its key, submitter and note stay (the bytes are the same video); only where the file
    lives changes.  Guarded on the row still being stranded, so two hosts re-submitting at
    once cannot both claim it (the loser's copy is removed).
    """
    final = _place(settings, path, video.youtube_id)
    with sessions.begin() as session:
        row = session.get(Video, video.id, with_for_update=True)
        if row is None or not _stranded(row):
            if row is None or row.media_path != str(final):
                with contextlib.suppress(OSError):
                    final.unlink()
            return _duplicate(shown, row or video)
        row.state = VideoState.DOWNLOADED.value
        row.media_path = str(final)
        row.media_host = media_host_id(settings.media_dir)
        row.media_size = final.stat().st_size
        row.media_deleted_at = None
        row.attempts = 0
        row.last_error = row.last_error_kind = None
        row.next_attempt_at = row.lease_owner = row.lease_expires_at = None
    return Outcome(
        shown,
        "added",
        f"{shown}: {video.youtube_id} had no readable copy ({video.last_error_kind}); "
        "the file is in place here again, queued for analysis",
        key=video.youtube_id,
    )


def _duplicate(shown: str, video: Video) -> Outcome:
    return Outcome(
        shown,
        "duplicate",
        f"{shown}: already in FIND as {video.youtube_id} ({video.state}); not added again",
        key=video.youtube_id,
    )


def _record(
    sessions: sessionmaker[Session],
    shown: str,
    path: Path,
    submitter: Submitter,
    *,
    key: str,
    media_host: str,
    source: VideoSource,
    size: int,
    digest: str,
    title: str | None,
    duration: float | None,
    source_url: str | None,
) -> Outcome:
    """Insert the video, ready for analysis; on a duplicate, remove the media just placed."""
    try:
        with sessions.begin() as session:
            session.add(
                Video(
                    youtube_id=key,
                    title=(title or "")[:500] or None,
                    duration_s=int(duration) if duration else None,
                    discovered_via=f"submit:{submitter.name}"[:520],
                    source=source.value,
                    submitted_by=submitter.name[:200],
                    submission_note=submitter.note,
                    source_url=source_url,
                    content_sha256=digest,
                    priority=1 if submitter.priority else 0,
                    state=VideoState.DOWNLOADED.value,
                    media_path=str(path),
                    media_host=media_host,
                    media_size=size,
                )
            )
    except IntegrityError:
        # The same bytes under another name, or a concurrent submission of the same input.
        existing = _existing(sessions, digest=digest) or _existing(sessions, key=key)
        if existing is None:
            raise
        if existing.media_path != str(path):  # never remove the other video's media
            with contextlib.suppress(OSError):
                path.unlink()
        return _duplicate(shown, existing)
    return Outcome(
        shown,
        "added",
        f"{shown}: added as {key}, queued for analysis"
        + (" (priority)" if submitter.priority else ""),
        key=key,
    )
