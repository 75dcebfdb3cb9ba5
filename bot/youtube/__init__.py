"""Talking to YouTube: the Data API client, the daily quota ledger, and the Atom parser.

Everything that knows YouTube's wire formats and limits lives here; the discover stage
(:mod:`bot.stages.discover`) decides what to ask for and when.
"""

from typing import Any

from bot import compat


def __getattr__(name: str) -> Any:
    """``bot.youtube`` was the client module before 0.2: its names still resolve, with a warning."""
    return compat.moved_attribute(__name__, name, "bot.youtube.client")
