"""Optional alert when a video is flagged: a JSON POST to ``FIND_WEBHOOK_URL``, retried.

The daemon calls :func:`notify_flagged` after the analysis that flagged a video
has been committed.  An alert is a courtesy, not part of the pipeline: it
never raises into the caller, and a chat service being down only costs a log
line.  The URL often embeds a token (Slack, Mattermost, Discord), so it is
kept in a :class:`~bot.settings.Secret` and never logged; failures name only
the host-free outcome (HTTP status or error class).

The body carries both structured fields and a ``text`` line, so Slack- and
Mattermost-style incoming webhooks show something readable with no adapter.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from bot import __version__
from bot.formats import format_score
from bot.logs import log_event
from bot.settings import Settings
from bot.store import utcnow, video_url

log = logging.getLogger("find.webhook")

DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_S = 1.0
DEFAULT_TIMEOUT_S = 10.0


def flagged_payload(
    video: Any, analysis: Any | None, review_base_url: str | None = None, match: Any | None = None
) -> dict[str, Any]:
    """The JSON body for a flagged video (``video``/``analysis``/``match``: ORM rows or
    look-alikes).

    Only plain column attributes are read, so detached rows work after their
    session closed.  With ``review_base_url`` (``FIND_WEB_BASE_URL``) the alert
    links straight to the video's review page.  ``match`` is the bank match that
    flagged a re-upload of a confirmed fake (then there is no analysis).
    """
    score = getattr(video, "score", None)
    if score is None and analysis is not None:
        score = getattr(analysis, "video_score", None)
    youtube_id = video.youtube_id
    source = getattr(video, "source", None)
    url = video_url(youtube_id, source, getattr(video, "source_url", None))
    title = getattr(video, "title", None) or youtube_id
    channel = getattr(video, "channel_title", None) or getattr(video, "channel_youtube_id", None)
    score_text = format_score(score, missing="?")
    review_url = f"{review_base_url}/videos/{youtube_id}" if review_base_url else None
    declared = getattr(video, "declared_synthetic", None)
    matched = None
    if match is not None:
        matched_id = getattr(match, "matched_youtube_id", None)
        matched = {
            "bank": getattr(match, "bank", None),
            "content_id": getattr(match, "content_id", None),
            "video_id": matched_id,
            "url": f"https://www.youtube.com/watch?v={matched_id}" if matched_id else None,
            "title": getattr(match, "matched_title", None),
            "share": getattr(match, "query_share", None),
        }
    if matched is not None:
        what = f"FIND flagged a re-upload of a confirmed deepfake ({matched['content_id']})"
    else:
        what = f"FIND flagged a possible deepfake (score {score_text})"
    if declared:
        what += " [uploader declared synthetic media]"
    return {
        "event": "video.flagged",
        "video_id": youtube_id,
        "url": url,
        "source": source,
        "submitted_by": getattr(video, "submitted_by", None),
        "title": getattr(video, "title", None),
        "channel_id": getattr(video, "channel_youtube_id", None),
        "channel_title": getattr(video, "channel_title", None),
        "score": score,
        "threshold": getattr(analysis, "threshold", None),
        "faces": getattr(analysis, "faces", None),
        "analysis_id": getattr(analysis, "id", None),
        "bundle": (
            f"{analysis.bundle_id} {analysis.bundle_version}" if analysis is not None else None
        ),
        "flagged_at": utcnow().isoformat(),
        "review_url": review_url,
        "reason": _reason(matched, declared, score, getattr(analysis, "threshold", None)),
        "declared_synthetic": declared,
        "match": matched,
        "text": f"{what}: {title}"
        + (f" — {channel}" if channel else "")
        + (f" {url}" if url else "")
        + (f" — review: {review_url}" if review_url else ""),
    }


def _reason(matched: Any, declared: Any, score: Any, threshold: Any) -> str:
    """Why the video is in the queue: a bank match, its score, or (FIND_DECLARED_SYNTHETIC
    =review) the uploader's declaration alone."""
    if matched:
        return "bank_match"
    below = not isinstance(score, int | float) or (
        isinstance(threshold, int | float) and score < threshold
    )
    return "declared_synthetic" if declared and below else "score"


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_s: float = DEFAULT_BACKOFF_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    video: str | None = None,
) -> bool:
    """POST ``payload``; retry network errors, 429 and 5xx with exponential backoff.

    Other 4xx answers are not retried (the request itself is wrong, e.g. a
    revoked token).  Returns whether the receiver accepted it (2xx).
    """
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"find-bot/{__version__}"}
    for attempt in range(1, attempts + 1):
        outcome: str
        retry = True
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                response.read(4096)
                log_event(log, "webhook.sent", video=video, status=response.status, attempt=attempt)
                return True
        except urllib.error.HTTPError as exc:
            outcome = f"HTTP {exc.code}"
            retry = exc.code == 429 or exc.code >= 500
            exc.close()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            outcome = type(reason).__name__ if not isinstance(reason, str) else "URLError"
        except Exception as exc:
            outcome = type(exc).__name__
            retry = False
        last = attempt == attempts or not retry
        log_event(
            log,
            "webhook.failed" if last else "webhook.retrying",
            logging.WARNING,
            video=video,
            outcome=outcome,
            attempt=attempt,
        )
        if last:
            return False
        time.sleep(backoff_s * 2 ** (attempt - 1))
    return False


def notify_flagged(
    settings: Settings,
    video: Any,
    analysis: Any | None = None,
    *,
    match: Any | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_s: float = DEFAULT_BACKOFF_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> bool:
    """Alert the configured webhook that ``video`` was flagged; ``False`` if off or it failed.

    Blocking (worst case about ``attempts * timeout_s`` plus backoff): call it
    after the flagging transaction has committed, from a worker thread.
    Never raises.
    """
    if settings.webhook_url is None:
        return False
    try:
        payload = flagged_payload(video, analysis, settings.web_base_url, match)
        youtube_id = payload["video_id"]
    except Exception as exc:
        log_event(log, "webhook.failed", logging.WARNING, outcome=f"bad payload: {exc}")
        return False
    return post_json(
        settings.webhook_url.reveal(),
        payload,
        attempts=attempts,
        backoff_s=backoff_s,
        timeout_s=timeout_s,
        video=youtube_id,
    )
