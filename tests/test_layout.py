"""The layout's rules: the engine never imports training, imports follow the data flow, and
the module paths from before the 0.2 layout are gone (one way to import each thing).

``model/`` (top level) is the detection engine the daemon and ``find-bot scan`` load;
``model/training/`` builds and measures bundles.  Importing training from the engine
would pull the training stack into every worker, so the direction is checked on the
source (function-level imports included), not on one run's ``sys.modules``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING = "model.training"
#: The only modules outside model/training that may import it: the CLI front of `find-bot train`.
TRAINING_FRONTS = {"bot/commands/train.py"}


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (``from a import b`` yields a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _engine_and_bot_files() -> list[Path]:
    files = [
        p
        for p in (ROOT / "model").rglob("*.py")
        if "training" not in p.relative_to(ROOT / "model").parts
    ]
    files += list((ROOT / "bot").rglob("*.py"))
    return [p for p in files if str(p.relative_to(ROOT)) not in TRAINING_FRONTS]


def test_engine_and_daemon_never_import_training() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in _imported_modules(path) if n.startswith(TRAINING)
        )
        for path in _engine_and_bot_files()
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"the engine/daemon import training code: {offenders}"


#: Imports point down the data flow and toward the shared plumbing (docs/contracts.md).
#: (area, files, module prefixes its files must not import)
DIRECTIONS = [
    (
        "the plumbing at bot/ top level",
        [p for p in (ROOT / "bot").glob("*.py") if p.name != "cli.py"],
        ("bot.stages", "bot.service", "bot.review", "bot.banks", "bot.youtube", "bot.commands"),
    ),
    (
        "bot/youtube",
        list((ROOT / "bot" / "youtube").rglob("*.py")),
        ("bot.stages", "bot.service", "bot.review", "bot.banks", "bot.commands"),
    ),
    ("bot/stages", list((ROOT / "bot" / "stages").rglob("*.py")), ("bot.service", "bot.commands")),
    (
        "bot/review",
        list((ROOT / "bot" / "review").rglob("*.py")),
        ("bot.stages", "bot.service", "bot.commands"),
    ),
    (
        "bot/banks",
        list((ROOT / "bot" / "banks").rglob("*.py")),
        ("bot.stages", "bot.service", "bot.review", "bot.commands"),
    ),
]


@pytest.mark.parametrize(("area", "files", "forbidden"), DIRECTIONS, ids=[d[0] for d in DIRECTIONS])
def test_imports_follow_the_data_flow(
    area: str, files: list[Path], forbidden: tuple[str, ...]
) -> None:
    assert files, f"{area}: no files found (did the folder move?)"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported_modules(path) if name.startswith(forbidden)
        )
        for path in files
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert not offenders, f"{area} imports against the data flow: {offenders}"


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "def f():\n    from model.training.train import train\n    import model.training.cache\n"
    )
    assert {"model.training.train", "model.training.cache"} <= _imported_modules(source)


#: Module paths from before the 0.2 layout. FIND has no published Python API, so they
#: are gone (0.3): one way to import each thing. Listed here only to check they stay gone.
OLD_PATHS = [
    "model.train",
    "model.datasets",
    "bot.discover",
    "bot.feeds",
    "bot.analyse",
    "bot.reviewers",
    "bot.web",
    "bot.vpdq",
    "bot.daemon",
    "bot.status",
]


@pytest.mark.parametrize("old", OLD_PATHS)
def test_old_module_paths_are_gone(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_no_import_hook_answers_for_moved_modules() -> None:
    import bot  # noqa: F401
    import model  # noqa: F401

    hooks = [f for f in sys.meta_path if type(f).__module__.startswith(("bot", "model"))]
    assert not hooks, f"FIND installs import hooks: {hooks}"
    assert not (ROOT / "bot" / "compat.py").exists()


def test_bot_youtube_is_only_a_package() -> None:
    """``bot.youtube`` was the client module before 0.2; its names live in bot.youtube.client."""
    with pytest.raises(ImportError):
        from bot.youtube import YouTubeClient  # noqa: F401
