"""Security headers, cookies, proxy handling and error pages."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select, text

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.models import LoginAttempt
from portal.core.security import public
from portal.org.models import Department
from tests.conftest import PASSWORD, csrf_token, login


@pytest.fixture
def other_app(app):
    """Build extra apps with changed settings. create_app rebinds the module-level ``db``; the session
    app's engine is put back afterwards."""
    @contextlib.contextmanager
    def _make(**config):
        from portal import create_app
        settings = {"TESTING": True, "PROPAGATE_EXCEPTIONS_IN_TESTS": True,
                    "DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": app.config["SECRET_KEY"],
                    "INSTANCE_DIR": app.config["INSTANCE_DIR"], "UPLOAD_DIR": app.config["UPLOAD_DIR"]}
        settings.update(config)
        try:
            yield create_app(settings)
        finally:
            db.configure(app.config["DATABASE_URL"])
    return _make


def _csp(resp) -> dict[str, list[str]]:
    header = resp.headers["Content-Security-Policy"]
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _check_headers(resp, where: str) -> None:
    csp = _csp(resp)
    script = csp.get("script-src", csp.get("default-src"))
    assert script is not None, where
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, where
    assert csp["default-src"] == ["'self'"], where
    assert csp["object-src"] == ["'none'"], where
    assert csp["frame-ancestors"] == ["'none'"], where
    assert resp.headers["X-Frame-Options"] == "DENY", where
    assert resp.headers["X-Content-Type-Options"] == "nosniff", where
    assert resp.headers["Referrer-Policy"] == "same-origin", where
    assert resp.headers["X-Request-ID"], where


def test_security_headers_everywhere(client, make):
    _check_headers(client.get("/login"), "login")
    _check_headers(client.get("/static/css/app.css"), "static")
    _check_headers(client.get("/healthz"), "health")
    user = make.user()
    login(client, user)
    home = client.get("/")
    assert home.status_code == 200
    _check_headers(home, "home")
    assert home.headers["Cache-Control"] == "no-store"  # personal pages are not cached
    _check_headers(client.get("/no-such-page"), "404")
    _check_headers(client.get("/admin/users"), "403")


def test_vary_on_hx_request_for_rendered_pages(client, make):
    for resp in (client.get("/login"), client.get("/login", headers={"HX-Request": "true"})):
        assert "HX-Request" in resp.headers.get("Vary", "")
    login(client, make.user())
    for headers in ({}, {"HX-Request": "true"}):
        resp = client.get("/account/password", headers=headers)
        assert resp.status_code == 200
        assert "HX-Request" in resp.headers.get("Vary", "")
    # The partial really differs from the page, which is why caches must key on the header.
    full = client.get("/account/password").get_data(as_text=True)
    part = client.get("/account/password", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" in full and "<html" not in part


def _cookie_headers(resp, name: str) -> list[str]:
    return [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def _sign_in(client, username, remember=True):
    token = csrf_token(client, "/login")
    data = {"username": username, "password": PASSWORD, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data)


def test_cookies_are_httponly_and_samesite_lax(client, make):
    resp = client.get("/login")
    (session_cookie,) = _cookie_headers(resp, "session")
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP by default (intranet without TLS)
    user = make.user()
    resp = _sign_in(client, user.username)
    assert resp.status_code == 302
    (remember,) = _cookie_headers(resp, "remember_token")
    assert "HttpOnly" in remember and "SameSite=Lax" in remember


def test_cookies_are_secure_when_configured(other_app, make):
    user = make.user()
    with other_app(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True) as secure_app:
        client = secure_app.test_client()
        resp = client.get("/login", base_url="https://localhost")
        (session_cookie,) = _cookie_headers(resp, "session")
        assert "Secure" in session_cookie and "HttpOnly" in session_cookie
        assert "Strict-Transport-Security" in resp.headers  # served over TLS
        token = csrf_token(client, "/login")
        resp = client.post("/login", base_url="https://localhost",
                           data={"username": user.username, "password": PASSWORD, "csrf_token": token,
                                 "remember": "y"},
                           headers={"Referer": "https://localhost/login"})
        assert resp.status_code == 302
        (remember,) = _cookie_headers(resp, "remember_token")
        assert "Secure" in remember


def _login_ips(username: str) -> tuple[str, str]:
    attempt = db.session.scalar(select(LoginAttempt).where(LoginAttempt.username == username))
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.login"))
    return attempt.ip, event.ip


def test_forwarded_for_is_ignored_by_default(client, make):
    user = make.user()
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": user.username, "password": PASSWORD, "csrf_token": token},
                       headers={"X-Forwarded-For": "203.0.113.9"},
                       environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert resp.status_code == 302
    assert _login_ips(user.username.lower()) == ("10.0.0.5", "10.0.0.5")


def test_forwarded_for_is_honoured_behind_one_proxy(other_app, make):
    user = make.user()
    with other_app(PROXY_FIX_FOR=1) as proxied:
        client = proxied.test_client()
        token = csrf_token(client, "/login")
        # The client forged the first entry; only the one our proxy appended is trusted.
        resp = client.post("/login",
                           data={"username": user.username, "password": PASSWORD, "csrf_token": token},
                           headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9"},
                           environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert resp.status_code == 302
        assert _login_ips(user.username.lower()) == ("203.0.113.9", "203.0.113.9")


def test_403_and_404_pages_show_the_request_id(client, make):
    login(client, make.user(roles=("employee",)))
    for path, code in (("/admin/users", 403), ("/no-such-page", 404)):
        resp = client.get(path)
        assert resp.status_code == code
        rid = resp.headers["X-Request-ID"]
        assert len(rid) >= 8 and rid in resp.get_data(as_text=True)
        assert "<html" in resp.get_data(as_text=True)
        # htmx: a fragment retargeted to the message area, with the request id too.
        resp = client.get(path, headers={"HX-Request": "true"})
        assert resp.status_code == code
        assert resp.headers["HX-Retarget"] == "#messages"
        assert resp.headers["X-Request-ID"] in resp.get_data(as_text=True)
        assert "<html" not in resp.get_data(as_text=True)


def test_404_for_anonymous_shows_the_request_id(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    assert resp.headers["X-Request-ID"] in resp.get_data(as_text=True)


def test_500_page_and_nothing_half_saved(other_app):
    with other_app(PROPAGATE_EXCEPTIONS_IN_TESTS=False) as failing:
        @public
        def boom():
            raise RuntimeError("deliberate failure for the error page test")

        @public
        def half_save():
            db.session.add(Department(name="半途部门", code="HALF-SAVED"))
            db.session.flush()  # the row is in the open transaction ...
            db.session.connection().invalidate()  # ... when the database connection is lost
            db.session.execute(text("SELECT 1"))
            db.session.commit()
            return "saved"  # reached only if the lost connection went unnoticed

        failing.add_url_rule("/test-boom", "test_boom", boom)
        failing.add_url_rule("/test-half-save", "test_half_save", half_save, methods=["GET"])
        client = failing.test_client()

        resp = client.get("/test-boom")
        assert resp.status_code == 500
        assert resp.headers["X-Request-ID"] in resp.get_data(as_text=True)
        _check_headers(resp, "500")
        resp = client.get("/test-boom", headers={"HX-Request": "true"})
        assert resp.status_code == 500
        assert resp.headers["HX-Retarget"] == "#messages"
        assert resp.headers["X-Request-ID"] in resp.get_data(as_text=True)

        resp = client.get("/test-half-save")
        assert resp.status_code == 500
        assert resp.headers["X-Request-ID"] in resp.get_data(as_text=True)
        db.session.remove()
        assert db.session.scalar(select(Department).where(Department.code == "HALF-SAVED")) is None
        # The pool recovers: the next request gets a working connection.
        assert client.get("/healthz").status_code == 200
