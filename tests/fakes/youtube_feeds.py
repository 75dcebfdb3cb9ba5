"""YouTube's Atom documents as YouTube serves them: channel feeds and WebSub notifications.

Used by the fake API server (``/feeds/videos.xml?channel_id=``) and the fake
WebSub hub.  The shapes follow what youtube.com sends: the ``yt:`` and
``media:`` namespaces, ``yt:videoId``/``yt:channelId`` on each entry, the
feed-level ``yt:channelId`` without its ``UC`` prefix, newest entry first, at
most 15 entries.  Also a few hostile documents for the parser tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

#: Entries in a channel feed, as on youtube.com.
FEED_SIZE = 15
NAMESPACES = (
    'xmlns:yt="http://www.youtube.com/xml/schemas/2015" '
    'xmlns:media="http://search.yahoo.com/mrss/" '
    'xmlns="http://www.w3.org/2005/Atom"'
)


def atom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def feed_entry(
    video_id: str,
    channel_id: str,
    *,
    title: str,
    channel_title: str,
    published_at: datetime,
    updated_at: datetime | None = None,
    description: str = "",
) -> str:
    """One ``<entry>`` of a channel feed."""
    watch = f"https://www.youtube.com/watch?v={video_id}"
    return f"""
 <entry>
  <id>yt:video:{video_id}</id>
  <yt:videoId>{video_id}</yt:videoId>
  <yt:channelId>{channel_id}</yt:channelId>
  <title>{escape(title)}</title>
  <link rel="alternate" href={quoteattr(watch)}/>
  <author>
   <name>{escape(channel_title)}</name>
   <uri>https://www.youtube.com/channel/{channel_id}</uri>
  </author>
  <published>{atom_time(published_at)}</published>
  <updated>{atom_time(updated_at or published_at)}</updated>
  <media:group>
   <media:title>{escape(title)}</media:title>
   <media:content url="https://www.youtube.com/v/{video_id}?version=3" \
type="application/x-shockwave-flash" width="640" height="390"/>
   <media:thumbnail url="https://i2.ytimg.com/vi/{video_id}/hqdefault.jpg" \
width="480" height="360"/>
   <media:description>{escape(description)}</media:description>
   <media:community>
    <media:starRating count="3" average="5.00" min="1" max="5"/>
    <media:statistics views="42"/>
   </media:community>
  </media:group>
 </entry>"""


def channel_feed(
    channel_id: str, channel_title: str, entries: Iterable[str], *, created: datetime
) -> bytes:
    """A channel's feed document around already rendered entries (newest first)."""
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<feed {NAMESPACES}>
 <link rel="self" href="http://www.youtube.com/feeds/videos.xml?channel_id={channel_id}"/>
 <id>yt:channel:{channel_id[2:]}</id>
 <yt:channelId>{channel_id[2:]}</yt:channelId>
 <title>{escape(channel_title)}</title>
 <link rel="alternate" href="https://www.youtube.com/channel/{channel_id}"/>
 <author>
  <name>{escape(channel_title)}</name>
  <uri>https://www.youtube.com/channel/{channel_id}</uri>
 </author>
 <published>{atom_time(created)}</published>{"".join(entries)}
</feed>
"""
    return body.encode()


def push_notification(
    channel_id: str,
    video_id: str,
    *,
    title: str,
    channel_title: str,
    published_at: datetime,
    updated_at: datetime | None = None,
    hub: str = "https://pubsubhubbub.appspot.com",
) -> bytes:
    """What the hub POSTs when a channel uploads (or edits) a video."""
    topic = f"https://www.youtube.com/xml/feeds/videos.xml?channel_id={channel_id}"
    updated = updated_at or published_at
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:yt="http://www.youtube.com/xml/schemas/2015" xmlns="http://www.w3.org/2005/Atom">
 <link rel="hub" href="{hub}"/>
 <link rel="self" href="{topic}"/>
 <title>YouTube video feed</title>
 <updated>{updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")}</updated>
 <entry>
  <id>yt:video:{video_id}</id>
  <yt:videoId>{video_id}</yt:videoId>
  <yt:channelId>{channel_id}</yt:channelId>
  <title>{escape(title)}</title>
  <link rel="alternate" href="http://www.youtube.com/watch?v={video_id}"/>
  <author>
   <name>{escape(channel_title)}</name>
   <uri>http://www.youtube.com/channel/{channel_id}</uri>
  </author>
  <published>{atom_time(published_at)}</published>
  <updated>{updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")}</updated>
 </entry>
</feed>
""".encode()


def deleted_notification(channel_id: str, video_id: str, when: datetime) -> bytes:
    """What the hub POSTs when a video is deleted: a tombstone, no entry."""
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:at="http://purl.org/atompub/tombstones/1.0" xmlns="http://www.w3.org/2005/Atom">
 <at:deleted-entry ref="yt:video:{video_id}" when="{atom_time(when)}">
  <link href="https://www.youtube.com/watch?v={video_id}"/>
  <at:by>
   <name>channel</name>
   <uri>https://www.youtube.com/channel/{channel_id}</uri>
  </at:by>
 </at:deleted-entry>
</feed>
""".encode()


# ------------------------------------------------------------------ hostile
def billion_laughs() -> bytes:
    """The classic entity-expansion bomb (a few hundred bytes, gigabytes when expanded)."""
    levels = ['<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        levels.append(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">')
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE feed [\n'
        + "\n".join(levels)
        + f"\n]>\n<feed {NAMESPACES}><title>&lol9;</title></feed>\n"
    ).encode()


def external_entity(path: str = "/etc/passwd") -> bytes:
    """An entry whose title would pull in a local file (XXE)."""
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "file://{path}">]>\n'
        f"<feed {NAMESPACES}><entry><yt:videoId>aaaaaaaaaaa</yt:videoId>"
        "<title>&xxe;</title></entry></feed>\n"
    ).encode()


def huge_feed(channel_id: str, size: int) -> bytes:
    """A well-formed feed padded past ``size`` bytes with a long description."""
    padding = "x" * size
    entry = feed_entry(
        "hugehugehug",
        channel_id,
        title="huge",
        channel_title="huge",
        published_at=datetime(2026, 1, 1, tzinfo=UTC),
        description=padding,
    )
    return channel_feed(channel_id, "huge", [entry], created=datetime(2015, 1, 1, tzinfo=UTC))
