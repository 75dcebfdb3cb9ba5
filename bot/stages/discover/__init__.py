"""The discover stage: find new uploads on watched channels and search queries.

One pass (:mod:`.passes`) syncs the watchlist from the settings (:mod:`.watchlist`), reads
the channels' Atom feeds (:mod:`.feeds`), keeps WebSub push subscriptions (:mod:`.websub`),
reads the uploads playlists and searches it owes, and looks new finds up with
``videos.list`` in shared batches (:mod:`.lookup`). Every find is stored at once as a
``new`` video row: the download stage takes it from there.
"""

from bot.stages.discover.passes import discover_once, make_client, tick_once
from bot.stages.discover.report import DiscoverReport

__all__ = ["DiscoverReport", "discover_once", "make_client", "tick_once"]
