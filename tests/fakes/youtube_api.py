"""A local fake of the YouTube Data API v3, for tests and the quota benchmark.

It speaks the real wire format: the same paths (``/youtube/v3/<resource>``),
parameters, JSON response shapes (``kind``, ``etag``, ``pageInfo``,
``nextPageToken``, ``items``) and error bodies (``{"error": {"code", "message",
"errors": [{"reason", "domain"}], ...}}``) as Google's server, so the real
google-api-python-client talks to it unchanged through
``client_options={"api_endpoint": fake.url}``.

State is plain Python that tests edit directly (add channels and videos,
script errors); the server thread reads it under a lock.  It also keeps its
own quota meter, like YouTube: with ``quota_limit`` set, a call that does not
fit is answered ``403 quotaExceeded``.

It serves the channels' public Atom feeds too (``/feeds/videos.xml?channel_id=``,
the newest 15 public uploads, :mod:`tests.fakes.youtube_feeds`), with ``ETag``
and ``Last-Modified`` and ``304 Not Modified`` for conditional requests, scripted
failures (``fail_feed``) and substitute documents (``serve_feed_document``, for
hostile feeds).  Feed requests are logged apart (``feed_requests``): they cost
no quota and are not API calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeHTTPServer, LocalServer
from tests.fakes.youtube_feeds import FEED_SIZE, channel_feed, feed_entry


def api_key(tag: str) -> str:
    """A made-up key of the shape Google issues (``AIza`` + 35 characters: the settings
    refuse anything else), a different one per ``tag``."""
    body = "".join(c for c in tag if c.isalnum() or c in "-_")
    return "AIza" + (body + "0" * 35)[:35]


VALID_KEY = api_key("FakeYouTubeValidTestKey")
COSTS = {"channels": 1, "playlistItems": 1, "videos": 1, "search": 100}
_ID_CHARS = string.ascii_letters + string.digits + "-_"


def _now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_duration(seconds: int) -> str:
    if seconds <= 0:
        return "P0D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if secs or text == "PT":
        text += f"{secs}S"
    return text


@dataclass
class FakeVideo:
    id: str
    channel_id: str
    title: str
    published_at: datetime
    duration_s: int = 60
    live: str = "none"  # none | live | upcoming
    privacy: str = "public"  # public | unlisted | private
    #: status.containsSyntheticMedia: the uploader declared altered or synthetic content.
    synthetic: bool = False
    description: str = ""
    #: statistics.viewCount (tests raise it to make a video spread); None: hidden.
    views: int | None = 0


@dataclass
class FakeChannel:
    id: str
    title: str
    handle: str | None = None
    #: Upload ids, newest first (the uploads playlist order).
    uploads: list[str] = field(default_factory=list)

    @property
    def uploads_playlist_id(self) -> str:
        return "UU" + self.id[2:]


@dataclass
class ScriptedError:
    """Answer the next ``times`` calls of ``resource`` (or any, if None) with this error."""

    resource: str | None
    status: int
    reason: str
    message: str
    times: int = 1
    domain: str = "youtube.api"
    details_reason: str | None = None
    #: Only calls whose parameters satisfy this are hit (e.g. one playlist).
    match: Callable[[dict[str, str]], bool] | None = None


@dataclass
class RecordedRequest:
    resource: str
    params: dict[str, str]
    status: int


@dataclass
class FeedRequest:
    """One request for a channel feed: what was asked, what was answered."""

    channel_id: str
    status: int
    bytes: int
    conditional: bool


@dataclass
class ScriptedFeedError:
    """Answer the next ``times`` feed requests (of one channel, or any) with ``status``."""

    channel_id: str | None
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeYouTubeState:
    """Channels, videos, errors and counters behind the fake server."""

    def __init__(self, *, seed: int = 1) -> None:
        self.lock = threading.RLock()
        self.random = random.Random(seed)
        self.api_keys: set[str] = {VALID_KEY}
        self.channels: dict[str, FakeChannel] = {}
        self.videos: dict[str, FakeVideo] = {}
        self.errors: list[ScriptedError] = []
        self.requests: list[RecordedRequest] = []
        self.quota_limit: int | None = None
        self.units_used = 0
        #: "Now" as the fake sees it: videos published later are not visible yet.
        self.clock: Callable[[], datetime] = _now
        self.feed_requests: list[FeedRequest] = []
        self.feed_errors: list[ScriptedFeedError] = []
        #: channel id -> a document served instead of the real feed (hostile-feed tests)
        self.feed_documents: dict[str, bytes] = {}
        #: channel id -> (the ids it was rendered from, document, Last-Modified, ETag):
        #: a thousand channels read every few minutes re-render only what changed.
        self._feed_cache: dict[str, tuple[tuple[str, ...], bytes, datetime, str]] = {}

    # --------------------------------------------------------------- setup
    def new_id(self, prefix: str = "", length: int = 11) -> str:
        return prefix + "".join(self.random.choice(_ID_CHARS) for _ in range(length))

    def add_channel(self, title: str = "Channel", handle: str | None = None) -> FakeChannel:
        with self.lock:
            channel = FakeChannel(id=self.new_id("UC", 22), title=title, handle=handle)
            self.channels[channel.id] = channel
            return channel

    def add_video(
        self,
        channel: FakeChannel | str,
        *,
        video_id: str | None = None,
        title: str | None = None,
        published_at: datetime | None = None,
        duration_s: int = 60,
        live: str = "none",
        privacy: str = "public",
        synthetic: bool = False,
    ) -> FakeVideo:
        """Upload a video: it goes to the top of the channel's uploads playlist."""
        with self.lock:
            channel_id = channel.id if isinstance(channel, FakeChannel) else channel
            video = FakeVideo(
                id=video_id or self.new_id(),
                channel_id=channel_id,
                title=title or f"video {len(self.videos) + 1}",
                published_at=published_at or self.clock(),
                duration_s=duration_s,
                live=live,
                privacy=privacy,
                synthetic=synthetic,
            )
            self.videos[video.id] = video
            uploads = self.channels[channel_id].uploads
            uploads.insert(0, video.id)  # newest first; the stable sort keeps ties that way
            uploads.sort(key=lambda vid: self.videos[vid].published_at, reverse=True)
            return video

    def remove_video(self, video_id: str) -> None:
        """Delete a video: it disappears from playlists, searches and videos.list."""
        with self.lock:
            video = self.videos.pop(video_id)
            self.channels[video.channel_id].uploads.remove(video_id)

    def fail(
        self,
        resource: str | None,
        reason: str,
        *,
        status: int | None = None,
        times: int = 1,
        message: str | None = None,
        match: Callable[[dict[str, str]], bool] | None = None,
    ) -> None:
        """Script an error with the real status, domain and message for ``reason``."""
        known = KNOWN_ERRORS.get(reason, {})
        with self.lock:
            self.errors.append(
                ScriptedError(
                    resource=resource,
                    status=status or known.get("status", 500),
                    reason=reason,
                    message=message or known.get("message", reason),
                    times=times,
                    domain=known.get("domain", "global"),
                    details_reason=known.get("details_reason"),
                    match=match,
                )
            )

    def calls(self, resource: str | None = None) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if resource is None or r.resource == resource]

    def fail_feed(
        self,
        channel_id: str | None = None,
        status: int = 500,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` feed requests (of ``channel_id``, or any) with ``status``."""
        with self.lock:
            self.feed_errors.append(ScriptedFeedError(channel_id, status, times, headers or {}))

    def serve_feed_document(self, channel_id: str, body: bytes) -> None:
        """Serve ``body`` as the channel's feed from now on (a malformed or hostile one)."""
        with self.lock:
            self.feed_documents[channel_id] = body

    def feed_calls(self, channel_id: str | None = None) -> list[FeedRequest]:
        with self.lock:
            return [r for r in self.feed_requests if channel_id in (None, r.channel_id)]

    # ---------------------------------------------------------------- feeds
    def feed_document(self, channel: FakeChannel) -> tuple[bytes, datetime, str]:
        """The channel's feed as youtube.com renders it, its Last-Modified time and ETag."""
        uploads = [
            self.videos[vid]
            for vid in channel.uploads
            if self._visible(self.videos[vid]) and self.videos[vid].privacy == "public"
        ][:FEED_SIZE]
        key = tuple(f"{v.id}:{v.title}" for v in uploads)
        cached = self._feed_cache.get(channel.id)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2], cached[3]
        entries = [
            feed_entry(
                v.id,
                channel.id,
                title=v.title,
                channel_title=channel.title,
                published_at=v.published_at,
                description=v.description,
            )
            for v in uploads
        ]
        created = datetime(2015, 1, 1, tzinfo=UTC)
        modified = uploads[0].published_at if uploads else created
        body = channel_feed(channel.id, channel.title, entries, created=created)
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        self._feed_cache[channel.id] = (key, body, modified, etag)
        return body, modified, etag

    def handle_feed(
        self, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            channel_id = params.get("channel_id", "")
            conditional = "if-none-match" in headers or "if-modified-since" in headers
            status, out_headers, body = self._feed(channel_id, headers)
            self.feed_requests.append(FeedRequest(channel_id, status, len(body), conditional))
            return status, out_headers, body

    def _feed(self, channel_id: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        for scripted in self.feed_errors:
            if scripted.times > 0 and scripted.channel_id in (None, channel_id):
                scripted.times -= 1
                return scripted.status, scripted.headers, b"<html>error</html>"
        channel = self.channels.get(channel_id)
        if channel is None:
            return 404, {}, b"<html>Not Found</html>"
        if channel_id in self.feed_documents:
            return 200, {"Content-Type": "text/xml; charset=UTF-8"}, self.feed_documents[channel_id]
        body, modified, etag = self.feed_document(channel)
        out = {
            "Content-Type": "text/xml; charset=UTF-8",
            "ETag": etag,
            "Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True),
            "Cache-Control": "public, max-age=900",
        }
        if "if-none-match" in headers:
            if headers["if-none-match"] == etag:
                return 304, out, b""
        elif "if-modified-since" in headers:
            try:
                since = parsedate_to_datetime(headers["if-modified-since"])
            except (TypeError, ValueError):
                since = None
            if since is not None and modified.replace(microsecond=0) <= since:
                return 304, out, b""
        return 200, out, body

    # ------------------------------------------------------------- serving
    def handle(self, resource: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            status, body = self._handle(resource, params)
            self.requests.append(RecordedRequest(resource, dict(params), status))
            return status, body

    def _handle(self, resource: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if params.get("key") not in self.api_keys:
            return error_body(
                400,
                "badRequest",
                KNOWN_ERRORS["keyInvalid"]["message"],
                domain="global",
                details_reason="API_KEY_INVALID",
            )
        scripted = self._scripted(resource, params)
        if scripted is not None:
            return error_body(
                scripted.status,
                scripted.reason,
                scripted.message,
                domain=scripted.domain,
                details_reason=scripted.details_reason,
            )
        if resource not in COSTS:
            return error_body(404, "notFound", f"Method {resource} not found", domain="global")
        cost = COSTS[resource]
        if self.quota_limit is not None and self.units_used + cost > self.quota_limit:
            known = KNOWN_ERRORS["quotaExceeded"]
            return error_body(403, "quotaExceeded", known["message"], domain=known["domain"])
        self.units_used += cost
        handler = getattr(self, f"_{resource}")
        return handler(params)

    def _scripted(self, resource: str, params: dict[str, str]) -> ScriptedError | None:
        for scripted in self.errors:
            if scripted.resource not in (None, resource) or scripted.times <= 0:
                continue
            if scripted.match is not None and not scripted.match(params):
                continue
            scripted.times -= 1
            return scripted
        return None

    def _visible(self, video: FakeVideo) -> bool:
        return video.published_at <= self.clock()

    # ------------------------------------------------------------ resources
    def _channels(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if "forHandle" in params:
            wanted = params["forHandle"].lstrip("@").lower()
            found = [
                c for c in self.channels.values() if (c.handle or "").lstrip("@").lower() == wanted
            ]
        elif "id" in params:
            ids = params["id"].split(",")
            if len(ids) > 50:
                return error_body(
                    400, "invalidParameter", "Too many ids", domain="youtube.parameter"
                )
            found = [self.channels[i] for i in ids if i in self.channels]
        else:
            return error_body(
                400,
                "missingRequiredParameter",
                "No filter selected. Expected one of: id, forHandle, mine",
                domain="youtube.parameter",
            )
        parts = _parts(params)
        items = [self._channel_resource(c, parts) for c in found]
        body = _list_body("youtube#channelListResponse", items, per_page=5)
        if not items:
            body.pop("items")  # the real API omits `items` when nothing matched
        return 200, body

    def _channel_resource(self, channel: FakeChannel, parts: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kind": "youtube#channel",
            "etag": _etag(channel.id),
            "id": channel.id,
        }
        if "snippet" in parts:
            item["snippet"] = {
                "title": channel.title,
                "description": "",
                "customUrl": channel.handle.lower() if channel.handle else None,
                "publishedAt": "2015-01-01T00:00:00Z",
                "thumbnails": {},
                "localized": {"title": channel.title, "description": ""},
            }
        if "contentDetails" in parts:
            item["contentDetails"] = {
                "relatedPlaylists": {"likes": "", "uploads": channel.uploads_playlist_id}
            }
        return item

    def _playlistItems(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        playlist = params.get("playlistId", "")
        channel = self.channels.get("UC" + playlist[2:]) if playlist.startswith("UU") else None
        if channel is None:
            return error_body(
                404,
                "playlistNotFound",
                "The playlist identified with the request's <code>playlistId</code> parameter "
                "cannot be found.",
                domain="youtube.playlistItem",
            )
        ids = [vid for vid in channel.uploads if self._visible(self.videos[vid])]
        page, next_token, prev_token, per_page = _paginate(ids, params, default=5)
        parts = _parts(params)
        items = []
        for position, vid in page:
            video = self.videos[vid]
            item: dict[str, Any] = {
                "kind": "youtube#playlistItem",
                "etag": _etag(playlist + vid),
                "id": base64.b64encode(f"{playlist}.{vid}".encode()).decode(),
            }
            private = video.privacy == "private"
            if "snippet" in parts:
                item["snippet"] = {
                    "publishedAt": rfc3339(video.published_at),
                    "channelId": channel.id,
                    "title": "Private video" if private else video.title,
                    "description": "This video is private." if private else video.description,
                    "thumbnails": {},
                    "channelTitle": channel.title,
                    "playlistId": playlist,
                    "position": position,
                    "resourceId": {"kind": "youtube#video", "videoId": vid},
                    "videoOwnerChannelTitle": channel.title,
                    "videoOwnerChannelId": channel.id,
                }
            if "contentDetails" in parts:
                details = {"videoId": vid}
                if not private:
                    details["videoPublishedAt"] = rfc3339(video.published_at)
                item["contentDetails"] = details
            items.append(item)
        body = _list_body(
            "youtube#playlistItemListResponse", items, per_page=per_page, total=len(ids)
        )
        _add_tokens(body, next_token, prev_token)
        return 200, body

    def _search(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        terms = params.get("q", "").lower().split()
        after = _parse_time(params.get("publishedAfter"))
        matches = [
            v
            for v in self.videos.values()
            if self._visible(v)
            and v.privacy == "public"
            and all(t in v.title.lower() for t in terms)
            and (after is None or v.published_at > after)
        ]
        if params.get("order", "relevance") == "date":
            matches.sort(key=lambda v: v.published_at, reverse=True)
        page, next_token, prev_token, per_page = _paginate(
            [v.id for v in matches], params, default=5
        )
        items = []
        for _position, vid in page:
            video = self.videos[vid]
            channel = self.channels[video.channel_id]
            items.append(
                {
                    "kind": "youtube#searchResult",
                    "etag": _etag("s" + vid),
                    "id": {"kind": "youtube#video", "videoId": vid},
                    "snippet": {
                        "publishedAt": rfc3339(video.published_at),
                        "channelId": channel.id,
                        "title": video.title,
                        "description": video.description,
                        "thumbnails": {},
                        "channelTitle": channel.title,
                        "liveBroadcastContent": video.live,
                        "publishTime": rfc3339(video.published_at),
                    },
                }
            )
        body = _list_body(
            "youtube#searchListResponse", items, per_page=per_page, total=len(matches)
        )
        body["regionCode"] = "US"
        _add_tokens(body, next_token, prev_token)
        return 200, body

    def _videos(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        ids = [i for i in params.get("id", "").split(",") if i]
        if len(ids) > 50:
            return error_body(400, "invalidParameter", "Too many ids", domain="youtube.parameter")
        parts = _parts(params)
        items = []
        for vid in ids:
            video = self.videos.get(vid)
            # Private and deleted videos are simply absent, as with a key (no OAuth).
            if video is None or video.privacy == "private" or not self._visible(video):
                continue
            channel = self.channels[video.channel_id]
            item: dict[str, Any] = {"kind": "youtube#video", "etag": _etag("v" + vid), "id": vid}
            if "snippet" in parts:
                item["snippet"] = {
                    "publishedAt": rfc3339(video.published_at),
                    "channelId": channel.id,
                    "title": video.title,
                    "description": video.description,
                    "thumbnails": {},
                    "channelTitle": channel.title,
                    "categoryId": "22",
                    "liveBroadcastContent": video.live,
                    "localized": {"title": video.title, "description": video.description},
                }
            if "contentDetails" in parts:
                item["contentDetails"] = {
                    "duration": "P0D" if video.live != "none" else iso_duration(video.duration_s),
                    "dimension": "2d",
                    "definition": "hd",
                    "caption": "false",
                    "licensedContent": False,
                    "contentRating": {},
                    "projection": "rectangular",
                }
            if "status" in parts:
                item["status"] = {
                    "uploadStatus": "processed",
                    "privacyStatus": video.privacy,
                    "containsSyntheticMedia": video.synthetic,
                    "license": "youtube",
                    "embeddable": True,
                    "publicStatsViewable": True,
                    "madeForKids": False,
                }
            if "statistics" in parts:
                # Counts are strings on the wire; a hidden count is simply absent.
                stats = {"likeCount": "0", "favoriteCount": "0", "commentCount": "0"}
                if video.views is not None:
                    stats["viewCount"] = str(video.views)
                item["statistics"] = stats
            items.append(item)
        return 200, _list_body("youtube#videoListResponse", items, per_page=len(items))


# ------------------------------------------------------------------ errors
#: The status, domain and message Google sends for each reason we script.
KNOWN_ERRORS: dict[str, dict[str, Any]] = {
    "keyInvalid": {
        "status": 400,
        "domain": "global",
        "message": "API key not valid. Please pass a valid API key.",
        "details_reason": "API_KEY_INVALID",
    },
    "forbidden": {
        "status": 403,
        "domain": "youtube.common",
        "message": "The request is not properly authorized.",
    },
    "accessNotConfigured": {
        "status": 403,
        "domain": "usageLimits",
        "message": "YouTube Data API v3 has not been used in project 1234 before "
        "or it is disabled.",
        "details_reason": "SERVICE_DISABLED",
    },
    "quotaExceeded": {
        "status": 403,
        "domain": "youtube.quota",
        "message": "The request cannot be completed because you have exceeded your "
        '<a href="/youtube/v3/getting-started#quota">quota</a>.',
    },
    "rateLimitExceeded": {"status": 403, "domain": "usageLimits", "message": "Rate Limit Exceeded"},
    "backendError": {"status": 503, "domain": "global", "message": "Backend Error"},
    "internalError": {"status": 500, "domain": "global", "message": "Internal Error"},
    "playlistNotFound": {
        "status": 404,
        "domain": "youtube.playlistItem",
        "message": "The playlist identified with the request's <code>playlistId</code> "
        "parameter cannot be found.",
    },
    "channelNotFound": {
        "status": 404,
        "domain": "youtube.channel",
        "message": "The channel identified in the request cannot be found.",
    },
}


def error_body(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    details_reason: str | None = None,
) -> tuple[int, dict[str, Any]]:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
    }
    if details_reason:
        # Newer Google errors add google.rpc details; their `reason` is the machine code.
        error["status"] = "INVALID_ARGUMENT" if status == 400 else "PERMISSION_DENIED"
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": details_reason,
                "domain": "googleapis.com",
                "metadata": {"service": "youtube.googleapis.com"},
            }
        ]
    return status, {"error": error}


# ----------------------------------------------------------------- helpers
def _parts(params: dict[str, str]) -> set[str]:
    return {p.strip() for p in params.get("part", "").split(",") if p.strip()}


def _etag(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[:27]


def _list_body(
    kind: str, items: list[dict[str, Any]], *, per_page: int, total: int | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "etag": _etag(kind + str(len(items))),
        "pageInfo": {
            "totalResults": len(items) if total is None else total,
            "resultsPerPage": per_page,
        },
        "items": items,
    }


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    return int(base64.urlsafe_b64decode(padded).decode().split(":")[1])


def _paginate(
    ids: list[str], params: dict[str, str], *, default: int
) -> tuple[list[tuple[int, str]], str | None, str | None, int]:
    per_page = max(0, min(50, int(params.get("maxResults", default))))
    offset = _decode_token(params["pageToken"]) if params.get("pageToken") else 0
    page = list(enumerate(ids))[offset : offset + per_page]
    next_token = _encode_token(offset + per_page) if offset + per_page < len(ids) else None
    prev_token = _encode_token(max(0, offset - per_page)) if offset > 0 else None
    return page, next_token, prev_token, per_page


def _add_tokens(body: dict[str, Any], next_token: str | None, prev_token: str | None) -> None:
    if next_token:
        body["nextPageToken"] = next_token
    if prev_token:
        body["prevPageToken"] = prev_token


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------ server
class _Handler(BaseHTTPRequestHandler):
    server: FakeHTTPServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/feeds/videos.xml":
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out, body = self.server.state.handle_feed(params, headers)
            self.send_response(status)
            for name, value in out.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        prefix = "/youtube/v3/"
        if not parts.path.startswith(prefix):
            self._send(*error_body(404, "notFound", f"no such path {parts.path}"))
            return
        resource = parts.path[len(prefix) :].strip("/")
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self._send(*self.server.state.handle(resource, params))

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class FakeYouTubeServer(LocalServer):
    """Runs :class:`FakeYouTubeState` behind HTTP on 127.0.0.1 (a free port) in a thread."""

    state: FakeYouTubeState

    def __init__(self, state: FakeYouTubeState | None = None) -> None:
        super().__init__(state or FakeYouTubeState(), _Handler, "fake-youtube-api")

    @property
    def feed_url_template(self) -> str:
        """FIND_FEED_URL_TEMPLATE for this server."""
        return f"{self.url}/feeds/videos.xml?channel_id={{id}}"


def published_minutes_ago(minutes: float, *, now: datetime | None = None) -> datetime:
    return (now or _now()) - timedelta(minutes=minutes)
