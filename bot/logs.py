"""Structured logging: one line per event, with the video id on every line about a video.

Call ``log_event(logger, "download.done", video="abc", size=123)``; the text
format renders ``download.done video=abc size=123`` and the JSON format one
object per line, for journald or a log shipper.  Secrets never reach here:
settings hold them as :class:`bot.settings.Secret`, which renders masked.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

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

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")
    }


def _render(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or "=" in text or not text) else text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts = [stamp[:-4] + "Z", record.levelname, record.name, record.getMessage()]
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
        return json.dumps(data)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless we debug them on purpose.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with key=value fields (``video=...`` for anything about a video)."""
    logger.log(level, event, extra=fields)
