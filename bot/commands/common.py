"""Helpers shared by command handlers: settings and logging from the CLI flags."""

from __future__ import annotations

import argparse

from bot.logs import configure_logging
from bot.settings import Settings, load_settings


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load settings (honouring ``--env-file``) and set up logging accordingly."""
    settings = load_settings(getattr(args, "env_file", None))
    configure_logging(settings.log_level, settings.log_format)
    return settings
