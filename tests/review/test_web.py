"""The review web app over HTTP (Starlette's test client): auth, CSRF, media, decisions."""

from __future__ import annotations

import re
import warnings

import pytest

with warnings.catch_warnings():  # starlette warns about httpx vs httpx2 on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from bot.db import session_factory
from bot.review import reviewers
from bot.review.web import create_app
from tests.conftest import make_settings
from tests.review.conftest import seed_video

SECRET = "x" * 48
PASSWORD = "correct horse battery"
HTML = {"accept": "text/html"}


def _web_settings(settings, **env):
    """Same database and data dir as ``settings``, plus the web settings under test."""
    base = {
        "FIND_DATABASE_URL": settings.database_url,
        "FIND_WEB_SECRET_KEY": SECRET,
        "FIND_WEB_SECURE_COOKIES": "false",
    }
    base.update(env)
    return make_settings(settings.data_dir.parent, **base)


@pytest.fixture
def web(settings):
    s = _web_settings(settings)
    seed_video(s, "vidAAAAAAA1", score=0.95)
    seed_video(s, "vidBBBBBBB2", score=0.7)
    reviewers.add_reviewer(session_factory(s), "alice", PASSWORD)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        yield client, s


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _login(client: TestClient, name: str = "alice", password: str = PASSWORD):
    token = _csrf(client.get("/login", headers=HTML).text)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/queue"},
        headers=HTML,
        follow_redirects=False,
    )


def test_unauthenticated_requests_are_refused(web):
    client, _s = web
    page = client.get("/queue", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=%2Fqueue")
    assert client.get("/videos/vidAAAAAAA1", follow_redirects=False).status_code == 401
    assert client.get("/crops/1/0").status_code == 401
    assert client.get("/plots/1.png").status_code == 401
    # A POST without a session/token is refused before anything else happens.
    post = client.post("/videos/vidAAAAAAA1/decision", data={"decision": "confirmed"})
    assert post.status_code == 403
    assert client.get("/healthz").text == "ok\n"


def test_login_failures_do_not_reveal_names(web):
    client, _s = web
    wrong = _login(client, "alice", "wrong password!!")
    unknown = _login(client, "mallory", "wrong password!!")
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731 - tokens differ
    assert strip(wrong.text) == strip(unknown.text)
    assert "Wrong name or password" in wrong.text
    # The login form itself is CSRF-protected.
    forged = client.post("/login", data={"name": "alice", "password": PASSWORD})
    assert forged.status_code == 403


def test_login_session_cookie_and_decision_flow(web):
    client, _s = web
    ok = _login(client)
    assert ok.status_code == 303 and ok.headers["location"] == "/queue"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    queue = client.get("/queue", headers=HTML)
    assert queue.status_code == 200
    assert queue.text.index("vidAAAAAAA1") < queue.text.index("vidBBBBBBB2")
    assert "content-security-policy" in queue.headers

    page = client.get("/videos/vidAAAAAAA1", headers=HTML)
    assert page.status_code == 200
    assert "https://www.youtube.com/watch?v=vidAAAAAAA1" in page.text
    crops = re.findall(r'src="(/crops/\d+/\d+)"', page.text)
    assert len(crops) == 3
    image = client.get(crops[0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    # The plot is inline SVG (it scales to any screen); the PNG stays a download.
    assert '<svg id="score-plot"' in page.text and page.text.count('<polyline class="line') == 2
    plot_url = re.search(r'href="(/plots/\d+\.png)"', page.text).group(1)
    plot = client.get(plot_url)
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")

    token = _csrf(page.text)
    forged = client.post(
        "/videos/vidAAAAAAA1/decision",
        data={"decision": "confirmed", "expected_state": "flagged"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    wrong = client.post(
        "/videos/vidAAAAAAA1/decision",
        data={"decision": "confirmed", "expected_state": "flagged", "csrf_token": token + "x"},
        follow_redirects=False,
    )
    assert wrong.status_code == 403

    done = client.post(
        "/videos/vidAAAAAAA1/decision",
        data={
            "decision": "confirmed",
            "note": "obvious swap",
            "reason": "impersonation",
            "expected_state": "flagged",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    # The next flagged video opens (issue 31 item 3); the queue no longer lists this one.
    assert done.status_code == 303 and done.headers["location"] == "/videos/vidBBBBBBB2"
    queue = client.get("/queue", headers=HTML).text
    assert "vidAAAAAAA1 confirmed by alice" in queue  # flash message
    assert 'data-video="vidAAAAAAA1"' not in queue and 'data-video="vidBBBBBBB2"' in queue
    confirmed = client.get("/queue?state=confirmed", headers=HTML).text
    assert 'data-video="vidAAAAAAA1"' in confirmed
    decided = re.search(r'<td class="decided"[^>]*>(.*?)</td>', confirmed, re.S).group(1)
    assert "alice" in decided and "UTC" in decided and "impersonation" in decided

    # The same stale form again (another tab): a conflict naming who decided.
    again = client.post(
        "/videos/vidAAAAAAA1/decision",
        data={
            "decision": "dismissed",
            "reason": "not manipulated",
            "expected_state": "flagged",
            "csrf_token": token,
        },
        headers=HTML,
    )
    assert again.status_code == 409
    assert "already confirmed by alice" in again.text


def test_media_is_served_only_by_id(web):
    client, _s = web
    _login(client)
    for url in (
        "/crops/1/99",
        "/crops/999/0",
        "/crops/1/-1",
        "/crops/..%2F..%2Fetc/passwd",
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/videos/..%2F..%2Fetc",
    ):
        response = client.get(url)
        assert response.status_code in (404, 422), url
        assert b"import" not in response.content


def test_queue_filters_and_paging(web):
    client, s = web
    for i in range(30):
        seed_video(s, f"vidP{i:07d}", score=0.5 + i / 100, crops=0)
    _login(client)
    first = client.get("/queue", headers=HTML).text
    assert first.count('data-video="') == 25 and 'rel="next"' in first
    second = client.get("/queue?page=2", headers=HTML).text
    assert second.count('data-video="') == 7 and 'rel="prev"' in second
    high = client.get("/queue?min_score=0.9", headers=HTML).text
    assert high.count('data-video="') == 1
    bad = client.get("/queue?min_score=abc", headers=HTML)
    assert bad.status_code == 400 and "not a number" in bad.text


def test_queue_shows_a_threshold_other_than_the_pages_beside_its_score(web):
    """The page's threshold is shown once (issue 31 item 3); a video analysed against another
    one still says so beside its score (issue 22)."""
    client, s = web
    seed_video(s, "vidTHRESH01", score=0.81, threshold=0.73, crops=0)
    _login(client)
    page = client.get("/queue", headers=HTML).text
    row = page[page.index('data-video="vidTHRESH01"') :].split("</tr>", 1)[0]
    assert re.search(r'class="muted small threshold"[^>]*>threshold 0\.730</div>', row)
    assert ">0.810<div" in row


def test_deactivation_or_new_password_ends_sessions(web):
    client, s = web
    sessions = session_factory(s)
    _login(client)
    assert client.get("/queue", headers=HTML).status_code == 200
    reviewers.add_reviewer(sessions, "alice", "a brand new password", reset=True)
    assert client.get("/queue", headers=HTML, follow_redirects=False).status_code == 303
    assert _login(client, password="a brand new password").status_code == 303
    assert client.get("/queue", headers=HTML).status_code == 200
    reviewers.set_active(sessions, "alice", False)
    assert client.get("/queue", headers=HTML, follow_redirects=False).status_code == 303
    assert _login(client, password="a brand new password").status_code == 401


def test_open_redirect_is_refused(web):
    client, _s = web
    token = _csrf(client.get("/login", headers=HTML).text)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = client.post(
            "/login",
            data={"name": "alice", "password": PASSWORD, "csrf_token": token, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/queue", target
        token = _csrf(client.get("/login", headers=HTML).text)


def test_secure_cookie_flag(settings):
    s = _web_settings(settings, FIND_WEB_SECURE_COOKIES="true")
    with TestClient(create_app(s), base_url="https://127.0.0.1") as client:
        response = client.get("/login", headers=HTML)
    assert "secure" in response.headers["set-cookie"].lower()


def test_auth_header_mode(settings):
    s = _web_settings(settings, FIND_WEB_AUTH_HEADER="X-Forwarded-User", FIND_WEB_SECRET_KEY="")
    seed_video(s, "vidAAAAAAA1")
    reviewers.add_reviewer(session_factory(s), "proxyuser", None)
    reviewers.add_reviewer(session_factory(s), "gone", None)
    reviewers.set_active(session_factory(s), "gone", False)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as client:
        assert client.get("/queue", headers=HTML).status_code == 401
        for name in ("stranger", "gone"):
            refused = client.get("/queue", headers={**HTML, "X-Forwarded-User": name})
            assert refused.status_code == 401, name
        user = {**HTML, "X-Forwarded-User": "proxyuser"}
        page = client.get("/videos/vidAAAAAAA1", headers=user)
        assert page.status_code == 200
        assert (
            client.post(
                "/videos/vidAAAAAAA1/decision", headers=user, data={"decision": "confirmed"}
            ).status_code
            == 403
        )
        done = client.post(
            "/videos/vidAAAAAAA1/decision",
            headers=user,
            follow_redirects=False,
            data={
                "decision": "confirmed",
                "reason": "impersonation",
                "expected_state": "flagged",
                "csrf_token": _csrf(page.text),
            },
        )
        assert done.status_code == 303
        # Password login is off in this mode.
        assert client.post("/login", data={"csrf_token": _csrf(page.text)}).status_code == 404


def test_web_refuses_to_start_without_a_secret(settings):
    from bot.commands.web import check_web_settings
    from bot.errors import SettingsError

    with pytest.raises(SettingsError, match="FIND_WEB_SECRET_KEY"):
        create_app(_web_settings(settings, FIND_WEB_SECRET_KEY=""))
    with pytest.raises(SettingsError, match="shorter"):
        check_web_settings(_web_settings(settings, FIND_WEB_SECRET_KEY="short"))


def test_deleted_crops_are_shown_as_gone(web):
    client, s = web
    _login(client)
    for path in (s.media_dir / "crops" / "vidBBBBBBB2").glob("*.jpg"):
        path.unlink()
        break
    page = client.get("/videos/vidBBBBBBB2", headers=HTML).text
    assert len(re.findall(r'src="/crops/\d+/\d+"', page)) == 2
    assert "crop deleted" in page


def test_a_partial_analysis_is_marked_on_the_review_page(web):
    client, s = web
    seed_video(s, "vidPARTIAL1", score=0.99, partial=True)
    _login(client)
    queue = client.get("/queue", headers=HTML).text
    row = queue[queue.index('data-video="vidPARTIAL1"') :].split("</tr>")[0]
    assert 'class="partial"' in row
    other = queue[queue.index('data-video="vidAAAAAAA1"') :].split("</tr>")[0]
    assert 'class="partial"' not in other
    page = client.get("/videos/vidPARTIAL1", headers=HTML).text
    assert 'id="partial-warning"' in page and "not a full verdict" in page
    assert 'id="partial-warning"' not in client.get("/videos/vidAAAAAAA1", headers=HTML).text


def _session_cookie(client: TestClient) -> str:
    value = client.cookies.get("find_session")
    assert value, "no session cookie"
    return value


def _with_cookie(app_client: TestClient, cookie: str, path: str = "/queue"):
    """A request from another machine that copied the cookie (no cookie jar of its own)."""
    return app_client.get(
        path, headers={**HTML, "cookie": f"find_session={cookie}"}, follow_redirects=False
    )


def test_logout_ends_the_session_on_the_server(web):
    client, s = web
    _login(client)
    copied = _session_cookie(client)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as thief:
        assert _with_cookie(thief, copied).status_code == 200  # a copy works while logged in
        page = client.get("/queue", headers=HTML).text
        out = client.post("/logout", data={"csrf_token": _csrf(page)}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        refused = _with_cookie(thief, copied)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
        crop = thief.get("/crops/1/0", headers={"cookie": f"find_session={copied}"})
        assert crop.status_code == 401
    from bot.store import WebSession

    with session_factory(s)() as session:
        assert session.query(WebSession).count() == 0


def test_reviewers_revoke_ends_every_session_of_one_reviewer(web, monkeypatch, capsys):
    from bot.cli import main

    client, s = web
    reviewers.add_reviewer(session_factory(s), "bob", PASSWORD)
    app = create_app(s)
    with (
        TestClient(app, base_url="http://127.0.0.1") as laptop,
        TestClient(app, base_url="http://127.0.0.1") as bob,
    ):
        _login(client)
        _login(laptop)
        _login(bob, "bob")
        cookies = [_session_cookie(c) for c in (client, laptop)]
        monkeypatch.setenv("FIND_DATA_DIR", str(s.data_dir))
        monkeypatch.setenv("FIND_DATABASE_URL", s.database_url)
        monkeypatch.setenv("FIND_LOG_LEVEL", "WARNING")
        assert main(["reviewers", "revoke", "alice"]) == 0
        assert "alice: 2 web session(s) ended" in capsys.readouterr().out
        for c, cookie in ((client, cookies[0]), (laptop, cookies[1])):
            assert _with_cookie(c, cookie).status_code == 303
        assert bob.get("/queue", headers=HTML).status_code == 200  # other reviewers stay in
        assert _login(client).status_code == 303  # alice may log in again
        assert client.get("/queue", headers=HTML).status_code == 200

        capsys.readouterr()  # (the web app's own log lines)
        assert main(["reviewers", "revoke", "mallory"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("find-bot: error: no reviewer 'mallory'") and err.count("\n") == 1


def test_queue_filters_on_the_source_and_pages_show_it(web):
    """A submitted file says so (and who sent it, and why); the queue filters on the source."""
    from sqlalchemy import update

    from bot.store import Video

    client, s = web
    seed_video(s, "sub-0123456789ab", score=0.9, title="sent-in.mp4")
    with session_factory(s).begin() as session:
        session.execute(
            update(Video)
            .where(Video.youtube_id == "sub-0123456789ab")
            .values(source="submitted_file", submitted_by="bob", submission_note="report #7")
        )
    _login(client)
    only = client.get("/queue?source=submitted_file", headers=HTML).text
    assert re.findall(r'data-video="([^"]+)"', only) == ["sub-0123456789ab"]
    assert "submitted file" in only and "local file" in only
    youtube = client.get("/queue?source=youtube_upload", headers=HTML).text
    assert re.findall(r'data-video="([^"]+)"', youtube) == ["vidAAAAAAA1", "vidBBBBBBB2"]
    page = client.get("/videos/sub-0123456789ab", headers=HTML).text
    assert "submitted by bob" in page and "report #7" in page
    assert 'id="youtube-link"' not in page  # a local file has no page to link to
    assert 'id="youtube-link"' in client.get("/videos/vidAAAAAAA1", headers=HTML).text
    bad = client.get("/queue?source=email", headers=HTML)
    assert bad.status_code == 400 and "Unknown source" in bad.text


def test_a_still_picture_in_the_scene_is_marked_static_on_the_video_page(web):
    """Issue 19 item 1: the web page lists a static track, marked, beside the live one."""
    client, s = web
    seed_video(s, "vidSTATIC02", score=0.9, tracks=2, static_tracks=(1,))
    _login(client)
    page = client.get("/videos/vidSTATIC02", headers=HTML).text
    assert page.count('class="badge static"') == 1
    assert 'id="track-0"' in page and '<span class="badge live">live</span>' in page
