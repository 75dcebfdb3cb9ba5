"""Reading YouTube's Atom documents (channel feeds, WebSub notifications) without trusting them.

Both come from the network: a channel feed from youtube.com (or whatever
answers there), a push notification from anyone who can reach the callback
URL.  So a document is

1. refused above :data:`MAX_DOCUMENT_BYTES` (callers also stop *reading* there),
2. checked by defusedxml, which refuses any DTD and so every entity
   declaration (billion laughs, quadratic blow-up) and external reference
   before anything is expanded or fetched, and refuses malformed XML,
3. read by feedparser (the same bytes; it never sees a DTD, and a document it
   cannot parse strictly is refused rather than guessed at by its loose parser),
4. validated: an Atom ``feed`` whose entries each carry a ``yt:videoId``
   (11 characters) and the ``yt:channelId`` of the channel that was asked for.
   One foreign entry refuses the whole document: a feed that lies about one
   video cannot be trusted about the others.

Anything else raises :class:`FeedError`, one line naming the document and
what was wrong, which the caller records against the channel.
"""

from __future__ import annotations

import calendar
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import FindError
from bot.youtube.ids import is_video_id

#: Real channel feeds are ~10-60 KB (15 entries with descriptions); notifications ~1 KB.
MAX_DOCUMENT_BYTES = 1024 * 1024
#: YouTube lists 15 entries; more than this is not a YouTube feed.
MAX_ENTRIES = 100
ATOM_FEED_TAG = "{http://www.w3.org/2005/Atom}feed"
#: Entries dated further than this ahead of our clock are not believed (clocks differ a
#: little; an upload dated next year is a lie): the feed poller and the push receiver
#: both drop them (:func:`from_the_future`), so neither stores them.
MAX_CLOCK_SKEW = timedelta(minutes=15)


class FeedError(FindError):
    """A document that is not a well-formed YouTube Atom feed of the expected channel."""


@dataclass(frozen=True)
class FeedEntry:
    """One upload as a feed or notification lists it (no duration, live status or privacy)."""

    video_id: str
    channel_id: str
    title: str | None
    channel_title: str | None
    published_at: datetime | None
    updated_at: datetime | None


def parse_youtube_atom(body: bytes, channel_id: str, *, what: str) -> list[FeedEntry]:
    """The entries of a YouTube Atom document about ``channel_id``, newest first as served.

    ``what`` names the document in errors ("feed of UC…", "push notification for UC…").
    """
    if len(body) > MAX_DOCUMENT_BYTES:
        raise FeedError(
            f"{what}: refused, {len(body)} bytes is over the {MAX_DOCUMENT_BYTES} byte limit"
        )
    _check_safe_xml(body, what)
    parsed = _feedparser_parse(body)
    if parsed.get("bozo"):
        reason = str(parsed.get("bozo_exception") or "unparseable")[:200]
        raise FeedError(f"{what}: refused, not a well-formed feed ({reason})")
    feed_channel = (parsed.get("feed") or {}).get("yt_channelid")
    # The feed-level id is served both with and without the "UC" prefix: accept either.
    if feed_channel and feed_channel not in (channel_id, channel_id[2:]):
        raise FeedError(
            f"{what}: refused, it is the feed of channel {_shown(feed_channel)}, not {channel_id}"
        )
    raw_entries = parsed.get("entries") or []
    if len(raw_entries) > MAX_ENTRIES:
        raise FeedError(
            f"{what}: refused, {len(raw_entries)} entries is more than a YouTube feed "
            f"has (at most {MAX_ENTRIES} accepted)"
        )
    return [_entry(raw, channel_id, what) for raw in raw_entries]


def from_the_future(entry: FeedEntry, now: datetime) -> bool:
    """Is ``entry`` dated more than :data:`MAX_CLOCK_SKEW` after ``now``?  Such an entry is
    dropped and counted (``future=N``), by whichever reader met it."""
    return entry.published_at is not None and entry.published_at - now > MAX_CLOCK_SKEW


def _check_safe_xml(body: bytes, what: str) -> None:
    """defusedxml's verdict: no DTD, no entities, no external references, well-formed, Atom."""
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedError(
            f"{what}: refused, it declares a DTD, entities or external references "
            f"({type(exc).__name__}); nothing in it was expanded or fetched"
        ) from None
    except ParseError as exc:
        raise FeedError(f"{what}: refused, not well-formed XML ({exc})") from None
    if root.tag != ATOM_FEED_TAG:
        raise FeedError(f"{what}: refused, not an Atom feed (root element {_shown(root.tag)})")


def _feedparser_parse(body: bytes) -> Any:
    import feedparser

    # A file object, never bytes or str: feedparser treats a string that looks like a
    # URL or a path as one, and would fetch or open it.  No HTML is rendered from the
    # result, so sanitising and URI resolution are skipped.
    return feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)


def _entry(raw: Any, channel_id: str, what: str) -> FeedEntry:
    video_id = raw.get("yt_videoid")
    if not is_video_id(video_id):
        raise FeedError(f"{what}: refused, an entry has no valid yt:videoId ({_shown(video_id)})")
    entry_channel = raw.get("yt_channelid")
    if entry_channel != channel_id:
        raise FeedError(
            f"{what}: refused, entry {video_id} belongs to channel {_shown(entry_channel)}, "
            f"not {channel_id}"
        )
    author = raw.get("author_detail") or {}
    return FeedEntry(
        video_id=video_id,
        channel_id=channel_id,
        title=(raw.get("title") or None) and str(raw.get("title"))[:500],
        channel_title=(author.get("name") or None) and str(author.get("name"))[:300],
        published_at=_when(raw.get("published_parsed")),
        updated_at=_when(raw.get("updated_parsed")),
    )


def _when(parsed: Any) -> datetime | None:
    """feedparser's UTC struct_time as an aware datetime."""
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _shown(value: object) -> str:
    """A value from the document, safe to put in a log line or an error."""
    text = repr(value) if not isinstance(value, str) else value
    return re.sub(r"[^\w.:@/-]", "?", text)[:60]
