"""The docs' pictures (issue 31 item 7): every image README.md and docs/*.md show exists, and
``make docs-figures`` (docs/make_figures.py) draws them."""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
#: Markdown images ``![alt](path "title")`` and HTML ``<img src="path">``.
IMAGE = re.compile(
    r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
    r"|<img\b[^>]*\bsrc=\"([^\"]+)\""
)
MAX_BYTES = 300_000


def images(doc: Path) -> list[str]:
    """The image references of a Markdown file, as written."""
    return [a or b for a, b in IMAGE.findall(doc.read_text(encoding="utf-8"))]


def problems(doc: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """What is wrong with ``doc``'s images: missing, outside ``root`` (the repository),
    remote, too big."""
    found = []
    for ref in images(doc):
        if re.match(r"^[a-z]+:", ref):
            found.append(f"{doc.name}: {ref} is remote (the docs must work offline)")
            continue
        path = (doc.parent / ref.split("#")[0]).resolve()
        if not path.is_relative_to(root.resolve()):
            found.append(f"{doc.name}: {ref} lies outside the repository")
        elif not path.is_file():
            found.append(f"{doc.name}: {ref} does not exist (make docs-figures makes the figures)")
        elif path.stat().st_size > MAX_BYTES:
            found.append(f"{doc.name}: {ref} is {path.stat().st_size // 1000} KB (limit 300)")
    return found


def test_every_image_the_docs_show_exists():
    assert [p for doc in DOCS for p in problems(doc)] == []


def test_the_check_finds_a_missing_or_remote_image(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(b"\x89PNG")
    (root / "docs" / "here.png").write_bytes(b"\x89PNG")
    doc = root / "docs" / "x.md"
    doc.write_text(
        '![a](figures/none.png) <img src="https://example.org/a.png"> ![b](../../secret.png)\n'
        '![c](here.png "fine")'
    )
    assert images(doc) == [
        "figures/none.png",
        "https://example.org/a.png",
        "../../secret.png",
        "here.png",
    ]
    found = problems(doc, root)
    assert len(found) == 3 and "none.png does not exist" in found[0]
    assert "remote" in found[1] and "outside the repository" in found[2]


def test_the_docs_show_the_review_page_and_the_detectors_plots():
    review = images(PROJECT_ROOT / "docs" / "review.md")
    for name in ("queue", "video"):
        for width in (390, 1280):
            assert f"figures/{name}-{width}.png" in review
    plots = images(PROJECT_ROOT / "docs" / "training.md")
    assert "figures/roc.png" in plots and "figures/score-histograms.png" in plots
    assert images(PROJECT_ROOT / "README.md"), "the README shows the review page"


def _make_figures():
    spec = importlib.util.spec_from_file_location(
        "make_figures", PROJECT_ROOT / "docs" / "make_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_docs_figures_draws_the_plots_from_the_manifest(tmp_path):
    figures = _make_figures()
    bundle = PROJECT_ROOT / "model" / "bundles" / "default"
    roc = figures.plot_roc(bundle, tmp_path)
    histograms = figures.plot_histograms(bundle, tmp_path)
    for path in (roc, histograms):
        assert path.stat().st_size <= MAX_BYTES and min(_png_size(path)) >= 400

    # A bundle measured before the curves were recorded: one line saying what to run.
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    for record in manifest["evaluations"].values():
        record.pop("curves", None)
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SystemExit, match="make evaluate-default evaluate-xval"):
        figures.plot_roc(old, tmp_path)


@pytest.mark.browser
@pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(),
    reason="/usr/bin/chromium not found: `make system-deps` (Playwright drives Debian's)",
)
def test_docs_figures_takes_the_screenshots(tmp_path):
    figures = _make_figures()
    paths = figures.screenshots(tmp_path, figures.BUNDLE)
    assert sorted(p.name for p in paths) == [
        "queue-1280.png",
        "queue-390.png",
        "video-1280.png",
        "video-390.png",
    ]
    for path in paths:
        width = int(path.stem.rsplit("-", 1)[1])
        assert _png_size(path)[0] == width and path.stat().st_size <= MAX_BYTES
