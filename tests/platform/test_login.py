"""Login, throttling, session-token revocation, CSRF."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.core.audit import AuditEvent
from portal.core.db import db
from tests.conftest import PASSWORD, csrf_token, login


def _login_post(client, username, password, remember=False):
    token = csrf_token(client, "/login")
    data = {"username": username, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "y"
    return client.post("/login", data=data)


def test_login_page_is_public_and_chinese_by_default(client):
    resp = client.get("/login")
    assert resp.status_code == 200
    assert "登录" in resp.get_data(as_text=True)


def test_anonymous_is_sent_to_login(client):
    resp = client.get("/")
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"]


def test_htmx_anonymous_gets_hx_redirect(client):
    resp = client.get("/", headers={"HX-Request": "true"})
    assert resp.status_code == 401
    assert "/login" in resp.headers["HX-Redirect"]


def test_login_success_and_audit(client, make):
    user = make.user(roles=("employee",))
    resp = _login_post(client, user.username, PASSWORD)
    assert resp.status_code == 302
    assert client.get("/").status_code == 200
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "auth.login" in actions


def test_same_message_for_unknown_user_and_bad_password(client, make):
    user = make.user()
    r1 = _login_post(client, user.username, "wrong-password1")
    r2 = _login_post(client, "nobody-here", "wrong-password1")
    assert r1.status_code == r2.status_code == 401
    msg = lambda r: re.search(r'role="alert">([^<]+)<', r.get_data(as_text=True)).group(1)
    assert msg(r1) == msg(r2)


def test_throttling_per_account(app, client, make):
    user = make.user()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert _login_post(client, user.username, "bad-password9").status_code == 401
    # even the right password is refused while throttled
    resp = _login_post(client, user.username, PASSWORD)
    assert resp.status_code == 429
    assert client.get("/").status_code == 302
    n = db.session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "auth.login_throttled"))
    assert n == 1


def test_disabled_account_cannot_sign_in_and_attempt_is_recorded(client, make):
    from portal.core.models import User
    user = make.user()
    db.session.get(User, user.id).active = False
    db.session.commit()
    assert _login_post(client, user.username, PASSWORD).status_code == 401
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.login_refused"))
    assert ev is not None and ev.target_id == str(user.id)


def test_rotated_token_kills_old_cookie_and_remember_cookie(app, make):
    user = make.user()
    c = app.test_client()
    assert _login_post(c, user.username, PASSWORD, remember=True).status_code == 302
    assert c.get("/").status_code == 200
    remember = c.get_cookie("remember_token")
    assert remember is not None
    # Admin ends all sessions (token rotates).
    from portal.accounts.services import logout_everywhere
    from portal.core.models import User
    logout_everywhere(db.session.get(User, user.id), None, "test")
    db.session.commit()
    assert c.get("/").status_code == 302  # old session cookie dead
    r = c.get("/", headers={"HX-Request": "true"})
    assert r.status_code == 401 and "HX-Redirect" in r.headers
    # A fresh client carrying only the old remember cookie is also refused.
    c2 = app.test_client()
    c2.set_cookie("remember_token", remember.value)
    assert c2.get("/").status_code == 302


def test_password_change_rotates_token(app, make):
    user = make.user()
    other = app.test_client()
    login(other, user)
    me = app.test_client()
    login(me, user)
    token = csrf_token(me, "/account/password")
    resp = me.post("/account/password", data={"csrf_token": token, "current": PASSWORD,
                                               "new": "NewPassw0rd", "confirm": "NewPassw0rd"})
    assert resp.status_code == 303
    assert me.get("/").status_code == 200  # this session re-keyed
    assert other.get("/").status_code == 302  # the other device is out


def test_password_change_errors_are_422_and_keep_password(app, make):
    user = make.user()
    c = app.test_client()
    login(c, user)
    token = csrf_token(c, "/account/password")
    resp = c.post("/account/password", data={"csrf_token": token, "current": PASSWORD,
                                              "new": "short", "confirm": "short"},
                  headers={"HX-Request": "true"})
    assert resp.status_code == 422
    assert "8" in resp.get_data(as_text=True)
    from portal.core.models import User
    from portal.core.passwords import check_password
    db.session.expire_all()
    assert check_password(db.session.get(User, user.id).password_hash, PASSWORD)


def test_csrf_rejected_without_token(client, make):
    user = make.user()
    login(client, user)
    resp = client.post("/logout-everywhere")
    assert resp.status_code == 400
    assert client.get("/").status_code == 200  # nothing happened


def test_open_redirect_refused(client, make):
    user = make.user()
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=//evil.example/x", data={"username": user.username,
                                                             "password": PASSWORD, "csrf_token": token})
    assert resp.headers["Location"] == "/"


def test_language_switch(client, make):
    token = csrf_token(client, "/login")
    resp = client.post("/lang", data={"lang": "en", "csrf_token": token, "next": "/login"})
    assert resp.status_code == 303
    assert "Sign in" in client.get("/login").get_data(as_text=True)
