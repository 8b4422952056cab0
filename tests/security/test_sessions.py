"""Old cookies replayed after an account event are refused.

For each event that must end a user's sessions (sign-out, password change, role change by an
administrator, exit through offboarding), the victim signs in through the real form with "keep me
signed in", and both cookies (the Flask session and flask-login's remember cookie) are captured BEFORE
the event. After the event each old cookie is replayed on its own in a fresh client (an attacker who
copied it): a page request is sent to the sign-in page, an htmx request gets 401 + ``HX-Redirect``.

A bystander signed in the same way keeps both working cookies, so the test also fails when an event
revokes too much (e.g. everybody's sessions).
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.core.db import db
from portal.core.models import User
from tests.conftest import PASSWORD, csrf_token, login

EVENTS = ["logout", "password_change", "role_change", "exit"]


def _sign_in(app, username: str):
    """Sign in through the form with "remember me"; returns the client and the two cookie values."""
    client = app.test_client()
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                       "remember": "y"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert client.get("/").status_code == 200
    session_cookie = client.get_cookie("session")
    remember_cookie = client.get_cookie("remember_token")
    assert session_cookie is not None and remember_cookie is not None
    return client, {"session": session_cookie.value, "remember_token": remember_cookie.value}


def _replay(app, name: str, value: str):
    """A fresh client carrying one captured cookie: (page response, htmx response)."""
    client = app.test_client()
    client.set_cookie(name, value)
    page = client.get("/")
    client = app.test_client()
    client.set_cookie(name, value)
    hx = client.get("/", headers={"HX-Request": "true"})
    return page, hx


def _refused(page, hx) -> bool:
    return (page.status_code == 302 and urlsplit(page.headers["Location"]).path == "/login"
            and hx.status_code == 401 and urlsplit(hx.headers.get("HX-Redirect", "")).path == "/login")


def _accepted(page, hx) -> bool:
    return page.status_code == 200 and hx.status_code == 200


def _do_event(event: str, app, make, victim, victim_client, redis_url_factory):
    if event == "logout":
        token = csrf_token(victim_client, "/")
        resp = victim_client.post("/logout", data={"csrf_token": token})
        assert resp.status_code == 303
    elif event == "password_change":
        token = csrf_token(victim_client, "/account/password")
        resp = victim_client.post("/account/password", data={
            "csrf_token": token, "current": PASSWORD, "new": "AnotherPassw0rd", "confirm": "AnotherPassw0rd"})
        assert resp.status_code == 303
        # the device that changed the password stays signed in with its new session
        assert victim_client.get("/").status_code == 200
    elif event == "role_change":
        admin = make.user(roles=("admin",), username="sec_admin")
        ac = app.test_client()
        login(ac, admin)
        token = csrf_token(ac, f"/admin/users/{victim.id}")
        resp = ac.post(f"/admin/users/{victim.id}/roles",
                       data={"csrf_token": token, "roles": ["employee", "manager"]})
        assert resp.status_code == 303
        db.session.expire_all()
        assert db.session.get(User, victim.id).role_codes == {"employee", "manager"}
    elif event == "exit":
        redis_url_factory()
        from tests.services import run_worker
        hr = make.user(roles=("employee", "hr"), username="sec_hr")
        hc = app.test_client()
        login(hc, hr)
        with app.app_context():
            from portal.core.ui import local_today
            yesterday = local_today() - dt.timedelta(days=1)
        token = csrf_token(hc, "/offboarding/terminate")
        resp = hc.post("/offboarding/terminate", data={
            "csrf_token": token, "employee": victim.employee.emp_no, "last_day": yesterday.isoformat(),
            "reason": "合同到期不续签"})
        assert resp.status_code == 303, resp.get_data(as_text=True)
        from portal.offboarding.models import Offboarding
        ob_id = db.session.scalar(select(Offboarding.id))
        # access ends at the end of the (past) last day: the revocation job is due now
        resp = hc.post(f"/offboarding/{ob_id}/dates", data={
            "csrf_token": token, "last_day": yesterday.isoformat(), "revoke_on": "last_day"})
        assert resp.status_code in (200, 303), resp.status_code
        run_worker(app)  # the real RQ job: disable, rotate token, remove roles, revoke permissions
        db.session.expire_all()
        assert not db.session.get(User, victim.id).active
    else:  # pragma: no cover
        raise AssertionError(event)


@pytest.mark.parametrize("event", EVENTS)
def test_old_cookies_are_refused_after_the_event_and_bystanders_keep_theirs(app, make, event, request):
    victim = make.user(roles=("employee",), username="victim")
    make.user(roles=("employee",), username="bystander")
    victim_client, victim_cookies = _sign_in(app, "victim")
    _bystander_client, bystander_cookies = _sign_in(app, "bystander")
    # Before the event both captured cookies work on their own (so a refusal later means something).
    for name, value in victim_cookies.items():
        assert _accepted(*_replay(app, name, value)), f"{name} did not work before {event}"

    _do_event(event, app, make, victim, victim_client, lambda: request.getfixturevalue("redis_url"))

    for name, value in victim_cookies.items():
        page, hx = _replay(app, name, value)
        assert _refused(page, hx), (f"old {name} cookie still accepted after {event}: "
                                    f"{page.status_code} / htmx {hx.status_code} {dict(hx.headers)}")
    for name, value in bystander_cookies.items():
        assert _accepted(*_replay(app, name, value)), f"{event} of another user ended the bystander's {name}"
