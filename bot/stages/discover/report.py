"""What one discover pass did: counted by every step, written to its ``poll_runs`` row."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class DiscoverReport:
    """What one pass did; also written to the ``poll_runs`` row."""

    poll_id: int | None = None
    started_at: datetime | None = None
    new_videos: int = 0
    skipped_videos: int = 0
    #: Stored videos still waiting for a shared videos.list lookup (FIND_ENRICH_WAIT).
    awaiting_lookup: int = 0
    units: int = 0
    #: Channels read (feed or playlist) and searches run.
    channels_polled: int = 0
    queries_polled: int = 0
    queries_deferred: int = 0
    #: Feed reads: changed (200), unchanged (304), failed; channels owed a playlist read.
    feeds_read: int = 0
    feeds_unchanged: int = 0
    feeds_failed: int = 0
    playlist_reads: int = 0
    fallbacks: list[str] = field(default_factory=list)
    push_subscribed: int = 0
    errors: list[str] = field(default_factory=list)
    quota_exhausted: bool = False
    #: The channels' share of the budget is used up (searches may go on).
    channel_share_exhausted: bool = False
    #: When to try again after the quota ran out (next Pacific midnight plus jitter).
    resume_at: datetime | None = None
    #: Set when discovery stopped on a key/permission error; nothing will work until fixed.
    fatal: str | None = None
    #: Ids this pass inserted (new rows), to tell new from skipped after the lookups.
    found: set[str] = field(default_factory=set)

    def summary(self) -> str:
        text = (
            f"discover: {self.new_videos} new video(s), {self.skipped_videos} skipped, "
            f"{self.channels_polled} channel(s) and {self.queries_polled} query(ies) polled, "
            f"{self.units} unit(s) spent"
        )
        feeds = self.feeds_read + self.feeds_unchanged + self.feeds_failed
        if feeds:
            text += (
                f", feeds: {feeds} read ({self.feeds_unchanged} unchanged, "
                f"{self.feeds_failed} failed)"
            )
        if self.playlist_reads and feeds:
            text += f", {self.playlist_reads} playlist(s) read"
        if self.awaiting_lookup:
            text += f", {self.awaiting_lookup} waiting for a shared lookup"
        if self.queries_deferred:
            text += f", {self.queries_deferred} search(es) deferred to save quota"
        if self.errors:
            text += f", {len(self.errors)} error(s)"
        if self.quota_exhausted:
            text += "; quota exhausted"
        elif self.channel_share_exhausted:
            text += "; the channels' quota share is used up"
        return text

    @property
    def did_something(self) -> bool:
        return bool(self.found or self.units or self.errors or self.fallbacks)
