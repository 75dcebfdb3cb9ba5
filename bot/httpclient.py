"""The HTTP client FIND uses for what is not the Data API: channel feeds and the WebSub hub.

One place sets what every such request should have: a User-Agent that says
who is asking, timeouts on every phase, no cookies kept, a bounded
connection pool (the politeness limit towards one host), and redirects
followed only a few times.  The Data API keeps google-api-python-client's
own transport; yt-dlp keeps its own.
"""

from __future__ import annotations

import httpx

from bot import __version__

USER_AGENT = f"find-bot/{__version__} (YouTube moderation; feed reader)"
TIMEOUT = httpx.Timeout(20.0, connect=10.0)


def make_http_client(*, max_connections: int = 4) -> httpx.Client:
    """A client with at most ``max_connections`` open connections (per process)."""
    return httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=TIMEOUT,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=True,
        max_redirects=3,
    )
