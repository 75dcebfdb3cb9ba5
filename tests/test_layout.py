"""The layout's two rules: the engine never imports training, and old import paths keep working.

``model/`` (top level) is the detection engine the daemon and ``find-bot scan`` load;
``model/training/`` builds and measures bundles.  Importing training from the engine
would pull the training stack into every worker, so the direction is checked on the
source (function-level imports included), not on one run's ``sys.modules``.
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

from bot import compat

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
        [p for p in (ROOT / "bot").glob("*.py") if p.name not in ("cli.py", "compat.py")],
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


@pytest.mark.parametrize("old", sorted(compat.MOVED))
def test_old_import_path_is_the_module_at_its_new_home(old: str) -> None:
    new = compat.MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    # One home: nothing is left at the old path to drift from the new one.
    old_path = ROOT / old.replace(".", "/")
    for leftover in (old_path.with_suffix(".py"), old_path / "__init__.py"):
        assert not leftover.exists(), f"{leftover} still exists beside its new home {new}"


def test_moved_names_resolve_through_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(compat.MOVED, "bot.layout_test_old_name", "bot.errors")
    monkeypatch.delitem(sys.modules, "bot.layout_test_old_name", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from bot import layout_test_old_name  # type: ignore[attr-defined]
    import bot.errors

    assert layout_test_old_name is bot.errors
    assert [str(w.message) for w in caught] == [
        f"bot.layout_test_old_name moved to bot.errors"
        f" (the old path goes in {compat.REMOVED_IN}; see CHANGELOG.md)"
    ]
    # The warning points at the import statement above, not at importlib's frames.
    assert caught[0].filename == __file__
    sys.modules.pop("bot.layout_test_old_name", None)


def test_unknown_names_still_fail() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("bot.no_such_module")


def test_the_project_itself_uses_only_the_new_paths() -> None:
    """The old paths are for users' scripts: our own code and tests must not need them."""
    youtube_modules = {p.stem for p in (ROOT / "bot" / "youtube").glob("*.py")}
    sources = [
        path
        for folder in ("bot", "model", "tests", "bench", "migrations")
        for path in (ROOT / folder).rglob("*.py")
        if path.name not in ("compat.py", "test_layout.py")
    ]
    offenders: dict[str, list[str]] = {}
    for path in sources:
        for name in _imported_modules(path):
            parts = name.split(".")
            old_module = any(name == old or name.startswith(old + ".") for old in compat.MOVED)
            old_youtube_name = (
                parts[:2] == ["bot", "youtube"]
                and len(parts) > 2
                and (parts[2] not in youtube_modules)
            )
            if old_module or old_youtube_name:
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert not offenders, f"old import paths in the project: {offenders}"


def test_a_module_that_became_a_package_still_gives_its_old_names() -> None:
    import bot.youtube.client

    moved = r"bot\.youtube\.YouTubeClient moved to bot\.youtube\.client"
    with pytest.warns(DeprecationWarning, match=moved):
        from bot.youtube import YouTubeClient
    assert YouTubeClient is bot.youtube.client.YouTubeClient
    with pytest.raises(ImportError):
        from bot.youtube import NoSuchName  # noqa: F401
