"""FIND bot: discover, download, analyse, flag and review YouTube videos."""

from bot import compat

__version__ = "0.2.0"

compat.install()
