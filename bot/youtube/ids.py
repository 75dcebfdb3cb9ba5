"""YouTube video ids: checked once, where they enter FIND, before anything uses them.

An id arrives from the Data API (playlistItems, search, videos.list), from a
channel feed or a WebSub notification, from a bank file or from the command
line; all of those can lie (``FIND_YOUTUBE_API_ENDPOINT`` may point at a proxy).
The id ends up in file names (``media/<id>.mp4``, ``crops/<id>/``), URLs and log
lines, so only the shape YouTube really uses is accepted: 11 characters of
``A-Z a-z 0-9 _ -``.  Anything else (``../../pwnd1``, an ESC sequence) is skipped
with one log line that shows the value defanged, never raw.
"""

from __future__ import annotations

import logging
import re

from bot.logs import log_event

#: The whole id, nothing before or after it (``fullmatch``: ``$`` would let a newline through).
VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")


def is_video_id(value: object) -> bool:
    """True for a string that is exactly a YouTube video id."""
    return isinstance(value, str) and VIDEO_ID_RE.fullmatch(value) is not None


def shown(value: object, limit: int = 60) -> str:
    """A value from outside, safe in a log line or an error: odd characters become ``?``."""
    text = value if isinstance(value, str) else repr(value)
    return re.sub(r"[^\w.:@/+-]", "?", text, flags=re.ASCII)[:limit]


def checked_video_id(value: object, *, source: str, logger: logging.Logger) -> str | None:
    """``value`` if it is a video id; else ``None``, after one sanitised warning."""
    if is_video_id(value):
        return value  # type: ignore[return-value]
    log_event(
        logger,
        "youtube.invalid_video_id",
        logging.WARNING,
        source=source,
        video_id=shown(value),
        note="skipped: a YouTube video id is 11 characters of A-Z a-z 0-9 _ -",
    )
    return None


def require_video_id(value: object, what: str = "video id") -> str:
    """``value`` if it is a video id, else ``ValueError`` (for paths built from an id)."""
    if not is_video_id(value):
        raise ValueError(f"{what} {shown(value)!r} is not a YouTube video id (11 of A-Za-z0-9_-)")
    return value  # type: ignore[return-value]


#: Keys of videos submitted by hand from outside YouTube (``bot.store.SUBMISSION_KEY_PREFIX``).
SUBMISSION_KEY_RE = re.compile(r"sub-[0-9a-f]{12}")


def is_media_key(value: object) -> bool:
    """True for a stored video's key: a YouTube id or a submission key (both path-safe)."""
    return is_video_id(value) or (
        isinstance(value, str) and SUBMISSION_KEY_RE.fullmatch(value) is not None
    )


def require_media_key(value: object, what: str = "video key") -> str:
    """``value`` if it is a stored video key, else ``ValueError`` (paths are built from it)."""
    if not is_media_key(value):
        raise ValueError(
            f"{what} {shown(value)!r} is neither a YouTube video id nor a submission key"
        )
    return value  # type: ignore[return-value]
