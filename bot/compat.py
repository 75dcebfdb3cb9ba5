"""Old import paths that still work after the modules behind them moved.

Scripts written against an earlier layout (``from bot.discover import
discover_once``, ``import model.train``) keep running for one more release:
importing an old name gives the module at its new home (the same object, so
patching either name patches both) and a ``DeprecationWarning`` that names
the new path.  CHANGELOG.md lists every move; remove the entries in
:data:`MOVED` at the release it announces.

This is an import hook rather than a re-exporting stub per old file, so the
folders show only the current layout and no code lives in two places.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

#: Old module path -> its new home.  Both packages (``bot``, ``model``) install the hook.
MOVED: dict[str, str] = {
    # Issue 14: training and evaluation left the engine's folder.
    "model.datasets": "model.training.datasets",
    "model.splits": "model.training.splits",
    "model.cache": "model.training.cache",
    "model.curation": "model.training.curation",
    "model.augment": "model.training.augment",
    "model.sbi": "model.training.sbi",
    "model.batches": "model.training.batches",
    "model.train": "model.training.train",
    "model.calibration": "model.training.calibration",
    "model.evaluate": "model.training.evaluate",
    "model.metrics": "model.training.metrics",
    "model.plots": "model.training.plots",
    # bot/youtube/: the Data API client, its quota ledger and the Atom parser.
    "bot.quota": "bot.youtube.quota",
    "bot.atom": "bot.youtube.atom",
    # bot/stages/: discover (a package), download, analyse, retention.
    "bot.discover": "bot.stages.discover",
    "bot.feeds": "bot.stages.discover.feeds",
    "bot.lookup": "bot.stages.discover.lookup",
    "bot.websub": "bot.stages.discover.websub",
    "bot.watchlist": "bot.stages.discover.watchlist",
    "bot.download": "bot.stages.download",
    "bot.analyse": "bot.stages.analyse",
    "bot.retention": "bot.stages.retention",
    # bot/review/: the reviewers' side, from the flag to the decision (web page included).
    "bot.reviewers": "bot.review.reviewers",
    "bot.web_sessions": "bot.review.web_sessions",
    "bot.webhook": "bot.review.webhook",
    "bot.web": "bot.review.web",
    "bot.web.app": "bot.review.web.app",
    # bot/banks/: re-upload banks, their perceptual hashes (vPDQ) and the hash index.
    "bot.vpdq": "bot.banks.vpdq",
    "bot.hashindex": "bot.banks.hashindex",
    # bot/service/: the daemon, its leadership, reloads, systemd, status and metrics.
    "bot.daemon": "bot.service.daemon",
    "bot.reload": "bot.service.reload",
    "bot.leader": "bot.service.leader",
    "bot.systemd": "bot.service.systemd",
    "bot.metrics": "bot.service.metrics",
    "bot.status": "bot.service.status",
}

#: The release that drops the old paths (CHANGELOG.md says the same).
REMOVED_IN = "0.3.0"


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of a name in :data:`MOVED` with the module at its new home."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        # warnings.warn skips importlib's frames when it counts: 3 is the import statement.
        _warn_moved(spec.name, new, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module is already imported."""


def moved_attribute(package: str, name: str, new_module: str) -> Any:
    """A package's ``__getattr__`` for names of the module that the package replaced.

    ``bot.youtube`` was a module and is now a package: ``from bot.youtube import
    YouTubeClient`` still works, warns, and gets the object from its new module.
    """
    module = importlib.import_module(new_module)
    try:
        value = getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
    _warn_moved(f"{package}.{name}", f"{new_module}.{name}", stacklevel=4)
    return value


def _warn_moved(old: str, new: str, *, stacklevel: int) -> None:
    """The one wording of the warning; ``stacklevel`` counts from here, as in warnings.warn."""
    warnings.warn(
        f"{old} moved to {new} (the old path goes in {REMOVED_IN}; see CHANGELOG.md)",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def install() -> None:
    """Put the hook on ``sys.meta_path`` once (idempotent: both packages call it)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        # First, so an old package path (bot.web) cannot reach the new files under a second name.
        sys.meta_path.insert(0, _MovedModuleFinder())
