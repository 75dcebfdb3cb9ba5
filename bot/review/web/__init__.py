"""The review web page (``find-bot web``): see :mod:`bot.review.web.app`."""

from bot.review.web.app import create_app

__all__ = ["create_app"]
