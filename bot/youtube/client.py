"""A small, quota-aware wrapper around the YouTube Data API v3 client.

Every request goes through :meth:`YouTubeClient._call`, which

1. checks the call's unit cost against today's budget (:mod:`bot.youtube.quota`) and
   refuses it rather than overspend,
2. runs it, retrying rate limits, 5xx answers and network errors with
   exponential backoff and full jitter,
3. records the cost and outcome of every attempt in the quota ledger,
4. turns the API's error reasons into a few exceptions the discover stage acts
   on: a bad key stops discovery, ``quotaExceeded`` closes the day, a missing
   channel only marks that channel.

The client is built from google-api-python-client's bundled (static)
discovery document, so nothing is fetched at start-up; ``FIND_YOUTUBE_API_ENDPOINT``
points it at another server (the tests' fake).  The API key travels in every
request URL, so error text is scrubbed of it before it reaches a log, a
database row or the terminal.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from bot.errors import FindError
from bot.logs import log_event
from bot.settings import Settings
from bot.store import utcnow
from bot.youtube.quota import (
    QUOTA_EXCEEDED,
    VIEWS_METHOD,
    QuotaExhausted,
    QuotaLedger,
    next_reset,
)

log = logging.getLogger("find.youtube")

#: Reasons that mean the key or project cannot use the API at all: stop discovery.
FATAL_REASONS = frozenset(
    {
        "keyInvalid",
        "API_KEY_INVALID",
        "keyExpired",
        "API_KEY_EXPIRED",
        "forbidden",
        "accessNotConfigured",
        "SERVICE_DISABLED",
        "ipRefererBlocked",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_SERVICE_BLOCKED",
        "dailyLimitExceededUnreg",
    }
)
#: Reasons worth retrying in a moment.
RETRY_REASONS = frozenset(
    {
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "RATE_LIMIT_EXCEEDED",
        "backendError",
        "internalError",
        "serviceUnavailable",
    }
)
#: Reasons that mean the thing asked for does not exist (a bad channel, a deleted playlist).
NOT_FOUND_REASONS = frozenset(
    {"channelNotFound", "playlistNotFound", "playlistItemsNotAccessible", "videoNotFound"}
)

_KEY_PARAM_RE = re.compile(r"([?&]key=)[^&\s\"'>]+")


class YouTubeError(FindError):
    """A Data API call failed; ``reason`` is the API's reason (or ``network``)."""

    def __init__(self, message: str, *, reason: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class ApiKeyError(YouTubeError):
    """The key is invalid, restricted, or the API is not enabled: nothing will work."""


class NotFoundError(YouTubeError):
    """The channel or playlist asked for does not exist (or is private)."""


class TransientApiError(YouTubeError):
    """Rate limits, server or network errors that outlasted the retries."""


def redact_key(text: str, key: str | None = None) -> str:
    """Remove the API key from ``text`` (it is in every request URL)."""
    text = _KEY_PARAM_RE.sub(r"\1***", text)
    if key:
        text = text.replace(key, "***")
    return text


def error_reasons(content: bytes | str | None) -> list[str]:
    """All ``reason`` values in a Google API error body (``errors[]`` and ``details[]``)."""
    if not content:
        return []
    try:
        data = json.loads(content)
    except (ValueError, TypeError):
        return []
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return []
    reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    reasons += [d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)]
    return [r for r in reasons if isinstance(r, str) and r]


def error_message(content: bytes | str | None) -> str:
    """The API's human message from an error body, without HTML tags."""
    try:
        message = json.loads(content or b"")["error"]["message"]
    except (ValueError, TypeError, KeyError):
        return ""
    return re.sub(r"<[^>]+>", "", str(message)).strip()


class _RedactKeyFilter(logging.Filter):
    """googleapiclient logs every request URL (with ``key=``) at INFO: scrub it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "key=" in message:
            record.msg, record.args = redact_key(message), None
        return True


_REDACT_FILTER = _RedactKeyFilter()


def _guard_library_logs() -> None:
    # Filters apply only to records of the logger they are attached to, not to children.
    for name in ("googleapiclient", "googleapiclient.discovery", "googleapiclient.http"):
        logger = logging.getLogger(name)
        if _REDACT_FILTER not in logger.filters:
            logger.addFilter(_REDACT_FILTER)


def build_service(settings: Settings, *, timeout_s: float = 30.0) -> Any:
    """The googleapiclient ``Resource`` for youtube v3, offline, from the static document."""
    import httplib2
    from googleapiclient.discovery import build

    _guard_library_logs()

    key = settings.require("youtube_api_key", "poll").reveal()
    endpoint = settings.youtube_api_endpoint
    options = {"api_endpoint": endpoint} if endpoint else None
    return build(
        "youtube",
        "v3",
        developerKey=key,
        static_discovery=True,
        cache_discovery=False,
        client_options=options,
        http=httplib2.Http(timeout=timeout_s),
    )


class YouTubeClient:
    """The Data API calls discover needs, each one budgeted, retried and recorded."""

    def __init__(
        self,
        settings: Settings,
        ledger: QuotaLedger,
        *,
        service: Any | None = None,
        retries: int = 4,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.service = service if service is not None else build_service(settings)
        self.retries = retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.sleep = sleep
        self.clock = clock
        self.units_spent = 0
        self.calls: dict[str, int] = {}
        key = settings.youtube_api_key
        self._key = key.reveal() if key else None

    # ------------------------------------------------------------ methods
    def channels_by_id(self, channel_ids: list[str]) -> list[dict[str, Any]]:
        """``channels.list`` for up to 50 ids in one unit: snippet + uploads playlist."""
        response = self._call(
            "channels.list",
            lambda: self.service.channels().list(
                part="snippet,contentDetails", id=",".join(channel_ids), maxResults=50
            ),
        )
        return list(response.get("items") or [])

    def channel_by_handle(self, handle: str) -> dict[str, Any] | None:
        """``channels.list(forHandle=...)``: the channel behind an @handle, or ``None``."""
        response = self._call(
            "channels.list",
            lambda: self.service.channels().list(part="snippet,contentDetails", forHandle=handle),
        )
        items = response.get("items") or []
        return items[0] if items else None

    def playlist_page(self, playlist_id: str, page_token: str | None = None) -> dict[str, Any]:
        """One page (up to 50) of a playlist, newest first for an uploads playlist."""
        params: dict[str, Any] = {
            "part": "snippet,contentDetails",
            "playlistId": playlist_id,
            "maxResults": 50,
        }
        if page_token:
            params["pageToken"] = page_token
        return self._call("playlistItems.list", lambda: self.service.playlistItems().list(**params))

    def search_page(
        self, query: str, published_after: datetime, page_token: str | None = None
    ) -> dict[str, Any]:
        """One page of ``search.list`` for videos newer than ``published_after``, newest first."""
        params: dict[str, Any] = {
            "part": "snippet",
            "q": query,
            "type": "video",
            "order": "date",
            "publishedAfter": rfc3339(published_after),
            "maxResults": 50,
        }
        if page_token:
            params["pageToken"] = page_token
        return self._call("search.list", lambda: self.service.search().list(**params))

    def videos(self, video_ids: Iterable[str]) -> list[dict[str, Any]]:
        """``videos.list`` for up to 50 ids: duration, live status, privacy and view count.

        A call costs 1 unit whatever its parts, so ``statistics`` (the view count,
        :mod:`bot.youtube.views`) rides along for free.
        """
        return self._videos("videos.list", "snippet,contentDetails,status,statistics", video_ids)

    def video_views(self, video_ids: Iterable[str]) -> list[dict[str, Any]]:
        """``videos.list(part=statistics)`` for up to 50 ids: the flagged videos' refresh,
        written in the ledger as :data:`~bot.youtube.quota.VIEWS_METHOD` (FIND_VIEWS_BUDGET)."""
        return self._videos(VIEWS_METHOD, "statistics", video_ids)

    def _videos(self, method: str, part: str, video_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(video_ids)
        if not ids:
            return []
        if len(ids) > 50:
            raise ValueError("videos.list takes at most 50 ids per call")
        response = self._call(
            method,
            lambda: self.service.videos().list(part=part, id=",".join(ids), maxResults=50),
        )
        return list(response.get("items") or [])

    # ------------------------------------------------------------ plumbing
    def _call(self, method: str, make_request: Callable[[], Any]) -> dict[str, Any]:
        """Budget, run, retry and record one API call."""
        from googleapiclient.errors import HttpError

        attempt = 0
        while True:
            attempt += 1
            self.ledger.ensure(method)
            reached_server = True
            try:
                response = make_request().execute(num_retries=0)
            except HttpError as exc:
                failure = self._classify_http(method, exc)
            except OSError as exc:  # refused, reset, timed out
                reached_server = not isinstance(exc, ConnectionRefusedError)
                failure = TransientApiError(
                    f"{method}: network error talking to the YouTube API: "
                    f"{redact_key(str(exc), self._key) or type(exc).__name__}",
                    reason="network",
                )
            except Exception as exc:  # httplib2's own errors (ServerNotFoundError...)
                if type(exc).__module__.split(".")[0] != "httplib2":
                    raise
                reached_server = type(exc).__name__ != "ServerNotFoundError"
                failure = TransientApiError(
                    f"{method}: network error talking to the YouTube API: "
                    f"{redact_key(str(exc), self._key)}",
                    reason="network",
                )
            else:
                self._spend(method, "ok")
                return response

            self._spend(method, failure.reason, charged=reached_server)
            if not isinstance(failure, TransientApiError) or attempt > self.retries:
                raise failure
            delay = self._backoff(attempt)
            log_event(
                log,
                "youtube.retry",
                logging.WARNING,
                method=method,
                reason=failure.reason,
                attempt=attempt,
                delay_s=round(delay, 2),
            )
            self.sleep(delay)

    def _spend(self, method: str, outcome: str, *, charged: bool = True) -> None:
        self.units_spent += self.ledger.record(method, outcome, charged=charged)
        self.calls[method] = self.calls.get(method, 0) + 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so retries from many bots do not align."""
        return random.uniform(0, min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempt - 1)))

    def _classify_http(self, method: str, exc: Any) -> YouTubeError | QuotaExhausted:
        status = int(getattr(exc.resp, "status", 0) or 0)
        reasons = error_reasons(exc.content)
        reason = next(iter(reasons), "") or f"http{status}"
        detail = redact_key(error_message(exc.content) or str(exc), self._key)
        if QUOTA_EXCEEDED in reasons:
            failure: Any = QuotaExhausted(
                f"{method}: YouTube says the project's daily quota is used up ({detail}); "
                "discovery resumes after midnight Pacific time, or at once when "
                "FIND_QUOTA_DAILY_BUDGET is raised (the project got more quota)",
                resets_at=next_reset(self.clock()),
            )
            failure.reason = QUOTA_EXCEEDED
            return failure
        fatal = next((r for r in reasons if r in FATAL_REASONS), None)
        if fatal:
            return ApiKeyError(
                f"YouTube API refused the key ({fatal}: {detail}): check FIND_YOUTUBE_API_KEY, "
                "that the YouTube Data API v3 is enabled for its project, and the key's "
                "restrictions",
                reason=fatal,
                status=status,
            )
        if any(r in RETRY_REASONS for r in reasons) or status == 429 or status >= 500:
            return TransientApiError(
                f"{method}: YouTube API error {status} {reason}: {detail}",
                reason=reason,
                status=status,
            )
        if status == 404 or any(r in NOT_FOUND_REASONS for r in reasons):
            return NotFoundError(f"{method}: {detail}", reason=reason, status=status)
        if status in (401, 403):
            return ApiKeyError(
                f"YouTube API refused the request ({status} {reason}: {detail}): "
                "check FIND_YOUTUBE_API_KEY and its restrictions",
                reason=reason,
                status=status,
            )
        return YouTubeError(
            f"{method}: YouTube API error {status} {reason}: {detail}", reason=reason, status=status
        )


def rfc3339(moment: datetime) -> str:
    """The timestamp format the Data API wants: ``2026-01-31T12:00:00Z``."""
    from datetime import UTC

    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    if not text:
        return None
    from datetime import UTC

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_DURATION_RE = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str | None) -> int | None:
    """ISO 8601 duration as the API gives it (``PT1H2M3S``, ``P0D`` for live) in seconds."""
    if not text:
        return None
    match = _DURATION_RE.match(text)
    if not match:
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return int(
        parts.get("d", 0) * 86400
        + parts.get("h", 0) * 3600
        + parts.get("m", 0) * 60
        + parts.get("s", 0)
    )
