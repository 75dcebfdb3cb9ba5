"""Which stored URLs the review page may write into a link, and which of them are YouTube.

A video's URL comes from the YouTube API, from ``find-bot submit`` or from an
imported bank, and is written into ``href``.  Jinja escapes it, but escaping
does not stop a ``javascript:`` URL from running when clicked (only the CSP
did), so only ``http(s)`` URLs become links.  "Watch on YouTube" used to be
decided by the text ``youtube.com/`` anywhere in the URL, so
``https://evil.example/youtube.com/x`` passed for YouTube; it is decided by
the parsed host now.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: The hosts a "Watch on YouTube" link may point at.
YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"})


def link_kind(url: str | None) -> str | None:
    """``youtube``, ``web`` (another http(s) site) or None (no link: missing or unsafe).

    A URL with a backslash, whitespace or a control character is no link either:
    browsers read ``https://evil.example\\@youtube.com/`` as a path on evil.example,
    while :func:`urllib.parse.urlsplit` sees youtube.com as its host.
    """
    if not url or any(c == "\\" or c.isspace() or not c.isprintable() for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # a malformed IPv6 literal, for one
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return "youtube" if host in YOUTUBE_HOSTS else "web"
