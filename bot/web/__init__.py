"""The review web page (``find-bot web``): see :mod:`bot.web.app`."""

from bot.web.app import create_app

__all__ = ["create_app"]
