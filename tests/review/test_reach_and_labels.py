"""The queue ordered by score, reach or newest; views, growth and demo labels where reviewers
look (`review list`, `review show`), through bot.cli.main on both backends."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from bot.cli import main
from bot.db import session_scope
from bot.store import Video, utcnow
from tests.review.conftest import seed_video


@pytest.fixture
def cli(settings, monkeypatch, tmp_path):
    """Run the CLI against ``settings``' database; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FIND_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIND_DATABASE_URL", settings.database_url)

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stderr", err)
        code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    return run


def _set(settings, youtube_id: str, **values) -> None:
    with session_scope(settings) as session:
        video = session.query(Video).filter_by(youtube_id=youtube_id).one()
        for key, value in values.items():
            setattr(video, key, value)


@pytest.fixture
def spreading(settings):
    """A sure fake nobody watches, a borderline one spreading fast, and an unmeasured one."""
    seed_video(settings, "vidQUIET001", score=0.95, published_days_ago=2)
    seed_video(settings, "vidSPREAD02", score=0.72, published_days_ago=20)
    seed_video(settings, "vidLOCAL003", score=0.81, published_days_ago=1)
    now = utcnow()
    _set(settings, "vidQUIET001", views=40, views_per_day=10.0, views_at=now)
    _set(
        settings,
        "vidSPREAD02",
        views=2_500_000,
        views_at=now,
        views_before=2_400_000,
        views_before_at=now - timedelta(days=1),
        views_per_day=100_000.0,
    )


def _order(cli, *flags: str) -> list[str]:
    code, out, err = cli("review", "list", "--json", *flags)
    assert code == 0, err
    return [json.loads(line)["youtube_id"] for line in out.splitlines()]


def test_the_queue_orders_by_score_reach_or_newest(cli, spreading) -> None:
    assert _order(cli) == ["vidQUIET001", "vidLOCAL003", "vidSPREAD02"]
    assert _order(cli, "--order", "score") == _order(cli)
    # 0.72 x ln(1 + 100,000) = 8.3 beats 0.95 x ln(11) = 2.3; unmeasured last.
    assert _order(cli, "--order", "reach") == ["vidSPREAD02", "vidQUIET001", "vidLOCAL003"]
    assert _order(cli, "--order", "newest") == ["vidLOCAL003", "vidQUIET001", "vidSPREAD02"]
    # Paging follows the order.
    assert _order(cli, "--order", "reach", "--limit", "1", "--offset", "1") == ["vidQUIET001"]

    code, out, _ = cli("review", "list", "--order", "reach")
    assert code == 0
    header, first, second, third = out.splitlines()[:4]
    assert "VIEWS/D" in header
    assert first.split()[3] == "100k" and second.split()[3] == "10" and third.split()[3] == "-"

    with pytest.raises(SystemExit) as refused:
        cli("review", "list", "--order", "loudest")
    assert refused.value.code == 2


def test_show_gives_views_and_growth(cli, spreading) -> None:
    code, out, _ = cli("review", "show", "vidSPREAD02")
    assert code == 0
    [line] = [x for x in out.splitlines() if x.startswith("views:")]
    assert "2,500,000 views, +100,000 a day (counted " in line

    code, out, _ = cli("review", "show", "vidSPREAD02", "--json")
    record = json.loads(out)
    assert record["views"] == 2_500_000 and record["views_before"] == 2_400_000
    assert record["views_per_day"] == 100_000.0

    code, out, _ = cli("review", "show", "vidLOCAL003")
    assert not [x for x in out.splitlines() if x.startswith("views:")]


def test_demo_samples_show_their_known_label(cli, settings) -> None:
    seed_video(settings, "sub-00000000real", score=0.9)
    seed_video(settings, "sub-00000000fake", score=0.8)
    _set(settings, "sub-00000000real", demo_label="real")
    _set(settings, "sub-00000000fake", demo_label="fake")

    code, out, _ = cli("review", "list")
    assert code == 0
    rows = out.splitlines()[1:3]
    assert rows[0].endswith("[known real \u2014 demo label]")
    assert rows[1].endswith("[known fake \u2014 demo label]")

    code, out, _ = cli("review", "show", "sub-00000000real")
    assert "label:     known real \u2014 demo label" in out.splitlines()
    assert json.loads(cli("review", "list", "--json")[1].splitlines()[0])["demo_label"] == "real"


def test_the_cli_spells_the_orders_as_the_queries_do() -> None:
    from bot.commands.review import ORDERS
    from bot.review.queries import QUEUE_ORDERS

    assert ORDERS == QUEUE_ORDERS


# ------------------------------------------------------------------ the web page
def _web_client(settings):
    import warnings

    with warnings.catch_warnings():  # starlette warns about httpx vs httpx2 on import
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bot.db import session_factory
    from bot.review import reviewers
    from bot.review.web import create_app
    from tests.review.test_web import PASSWORD, _login, _web_settings

    s = _web_settings(settings)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    client = TestClient(create_app(s), base_url="http://127.0.0.1")
    _login(client)
    return client


def _rows(html: str) -> list[str]:
    import re

    return re.findall(r'<tr data-video="([^"]+)"', html)


def test_the_web_queue_orders_by_reach_and_shows_views(settings, spreading) -> None:
    with _web_client(settings) as client:
        assert _rows(client.get("/queue").text) == ["vidQUIET001", "vidLOCAL003", "vidSPREAD02"]
        page = client.get("/queue?order=reach")
        assert page.status_code == 200
        assert _rows(page.text) == ["vidSPREAD02", "vidQUIET001", "vidLOCAL003"]
        assert '<option value="reach" selected>' in page.text
        assert "2,500,000 views, +100,000 a day" in page.text
        # The order travels with the work list: "next" and the export follow it.
        assert "/videos/vidSPREAD02?order=reach" in page.text
        assert "/queue/export.csv?order=reach" in page.text
        assert _rows(client.get("/queue?order=newest").text)[0] == "vidLOCAL003"
        refused = client.get("/queue?order=loudest")
        assert refused.status_code == 400 and "Unknown order" in refused.text

        video = client.get("/videos/vidSPREAD02").text
        assert 'id="views"' in video and "2,500,000 views, +100,000 a day" in video


def test_the_video_page_and_queue_show_a_demo_label(settings) -> None:
    seed_video(settings, "sub-00000000real", score=0.9)
    _set(settings, "sub-00000000real", demo_label="real")
    with _web_client(settings) as client:
        assert "known real \u2014 demo label" in client.get("/queue").text
        page = client.get("/videos/sub-00000000real").text
        assert 'id="known-label"' in page and "known real \u2014 demo label" in page
