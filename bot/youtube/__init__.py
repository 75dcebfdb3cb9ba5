"""Talking to YouTube: the Data API client, the daily quota ledger, and the Atom parser.

Everything that knows YouTube's wire formats and limits lives here; the discover stage
(:mod:`bot.stages.discover`) decides what to ask for and when.
"""
