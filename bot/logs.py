"""Structured logging: one line per event, with the video id on every line about a video.

Call ``log_event(logger, "download.done", video="abc", size=123)``; the text
format renders ``download.done video=abc size=123`` and the JSON format one
object per line, for journald or a log shipper.  Secrets never reach here:
settings hold them as :class:`bot.settings.Secret`, which renders masked.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from bot.terminal import has_controls, printable

#: Libraries whose INFO lines are noise at our scale: httpx alone writes an unstructured
#: ``HTTP Request: GET .../feeds/videos.xml`` line per feed read (~96,000 a day at 1,000
#: channels); FIND's own events already say what was read and what came of it.
QUIET_LIBRARIES = (
    "googleapiclient",
    "urllib3",
    "httpx",
    "httpcore",
    "tensorflow",
    "absl",
    "alembic",
    "apscheduler",
)
#: Loggers whose WARNINGs tell an operator nothing to act on: matplotlib says "building
#: the font cache; this may take a moment" the first time a host draws a score plot.
#: Shown again at DEBUG.
QUIET_WARNINGS = ("matplotlib.font_manager",)

#: Record attributes that are not event fields.  ``color_message`` is uvicorn's ANSI-coloured
#: copy of its message (every ``uvicorn.*`` logger, in ``web`` and ``websub``): the message
#: itself is already on the line, and the copy would put raw escape codes in the log.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")
    }


def _render(value: Any) -> str:
    """A field value as one token: quoted and escaped by ``json.dumps`` when it needs to be.

    Values from outside (a file name, a title, a ``Path``) may hold a newline
    followed by a forged log line, or terminal escapes: any control character
    (:func:`bot.terminal.has_controls`) gets the quoted, escaped form too, as
    do spaces, ``=`` and quotes, which would make one field read as several.
    """
    text = str(value)
    if not text or " " in text or "=" in text or '"' in text or has_controls(text):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # A library's message may quote outside text (a request line, a path): escaped too.
        message = printable(record.getMessage())
        parts = [stamp[:-4] + "Z", record.levelname, printable(record.name), message]
        parts += [f"{k}={_render(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            **{
                k: v if isinstance(v, int | float | bool | None) else str(v)
                for k, v in _fields(record).items()
            },
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)  # ASCII only: every control character and bidi override escaped


#: Environment read by native libraries when they are first imported: TensorFlow's C++
#: logging (the cpu_feature_guard, oneDNN and "absl::InitializeLog" start-up lines),
#: glog/absl in the face detectors, gRPC.  Errors still show.
NATIVE_QUIET = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "GLOG_minloglevel": "2",
    "GRPC_VERBOSITY": "ERROR",
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}


def quiet_native_logging() -> None:
    """Keep TensorFlow's and friends' start-up banners off stderr and out of the daemon log.

    Must run before TensorFlow is imported (the variables are read once, at
    load): the CLI entry calls it first thing, and so does anything that may
    import TensorFlow without the CLI (the analyse stage).  A value already in
    the environment wins, so ``TF_CPP_MIN_LOG_LEVEL=0`` still debugs TensorFlow.
    """
    for name, value in NATIVE_QUIET.items():
        os.environ.setdefault(name, value)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 pointed at /dev/null.

    TensorFlow 2.21 prints its oneDNN notice through two copies of absl's C++
    logging before anything can initialise them ("All log messages before
    absl::InitializeLog() is called are written to STDERR"): no environment
    variable silences it.  Only for single-threaded command-line paths (``scan``):
    while the descriptor is redirected, any other thread's stderr is lost too.
    An import error still raises, with its traceback, once stderr is back.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless we debug them on purpose.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in QUIET_WARNINGS:
        debug = logging.getLevelName(level) <= logging.DEBUG
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.ERROR)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with key=value fields (``video=...`` for anything about a video)."""
    logger.log(level, event, extra=fields)


class LogLimiter:
    """At most one line per key per ``interval_s``; the next line says how many were held back.

    For events an outsider can cause at will (refused push requests, a page
    hit during a database outage): one line per request would let anyone
    flood the log and bury what matters.  Keys must come from a small fixed
    set (a status code, a reason class), never from the request, or a
    caller could mint a new key per request; ``max_keys`` bounds them anyway.
    """

    def __init__(self, interval_s: float = 60.0, *, clock: Any = None, max_keys: int = 100) -> None:
        import threading
        import time

        self.interval_s, self.max_keys = interval_s, max_keys
        self.clock = clock or time.monotonic
        self._last: dict[Any, float] = {}
        self._held: dict[Any, int] = {}
        self._lock = threading.Lock()

    def log(
        self,
        logger: logging.Logger,
        event: str,
        level: int = logging.WARNING,
        *,
        key: Any = None,
        **fields: Any,
    ) -> bool:
        """Log ``event`` unless ``key`` was logged less than ``interval_s`` ago; True if logged."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            if key not in self._last and len(self._last) >= self.max_keys:
                oldest = min(self._last, key=self._last.__getitem__)
                self._last.pop(oldest)
                self._held.pop(oldest, None)
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            fields["suppressed"] = held  # like lines held back in the last interval
        log_event(logger, event, level, **fields)
        return True
