"""The one exception family the CLI turns into a single readable line.

Anything a user can cause (bad config, a corrupt video, a missing bundle, a
quota error) is raised as a ``FindError`` subclass whose message names the
input and says what to do.  The CLI prints ``find-bot: error: <message>`` and
exits non-zero; tracebacks are reserved for real bugs.
"""

from __future__ import annotations


class FindError(Exception):
    """A user-facing error: one line, names the input, says what to do."""

    exit_code = 2


class SettingsError(FindError):
    """A configuration value is missing or malformed."""


class DatabaseError(FindError):
    """The database cannot be reached or is not migrated."""


class StartupError(FindError):
    """The daemon cannot start (no bundle, bad role, ...): one line, then a non-zero exit."""
