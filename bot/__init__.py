"""FIND bot: discover, download, analyse, flag and review YouTube videos."""

__version__ = "0.2.0"
