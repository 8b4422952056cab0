"""Sign-in throttling (``LOGIN_MAX_FAILURES`` per account and per IP within ``LOGIN_WINDOW_MINUTES``).

* a known account and an unknown username give the same answers, attempt by attempt, before and after
  the limit (status and message): throttling does not reveal which usernames exist;
* after the limit even the right password is refused until the window has passed (time-machine), then
  it works again;
* every failure and every throttled attempt is on the audit trail (and in ``login_attempts``);
* the per-IP limit stops password spraying over many usernames from one address, without locking the
  same account out from another address.
"""
from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from sqlalchemy import func, select

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.models import LoginAttempt
from tests.conftest import PASSWORD

LIMIT = 3
WINDOW = 15


@pytest.fixture
def throttling(app, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", LIMIT)
    monkeypatch.setitem(app.config, "LOGIN_WINDOW_MINUTES", WINDOW)


def _attempt(app, username: str, password: str, ip: str):
    client = app.test_client()
    env = {"REMOTE_ADDR": ip}
    token = csrf_token_from(client, env)
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base=env)
    if resp.status_code == 302:
        return 302, "", client
    m = re.search(r'role="alert">([^<]+)<', resp.get_data(as_text=True))
    return resp.status_code, (m.group(1).strip() if m else None), client


def csrf_token_from(client, env) -> str:
    html = client.get("/login", environ_base=env).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def _events(action: str, username: str | None = None) -> int:
    db.session.expire_all()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
    return sum(1 for e in events if username is None or e.payload.get("username") == username)


def test_known_and_unknown_usernames_are_indistinguishable_and_locked_until_the_window_passes(
        app, make, throttling):
    make.user(username="known_user")
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=True) as traveller:
        known = [_attempt(app, "known_user", "wrong-Passw0rd", "10.1.0.1")[:2] for _ in range(LIMIT + 2)]
        unknown = [_attempt(app, "ghost_user", "wrong-Passw0rd", "10.1.0.2")[:2] for _ in range(LIMIT + 2)]
        assert known == unknown, (known, unknown)
        assert [s for s, _m in known] == [401] * LIMIT + [429, 429]
        assert len({m for _s, m in known}) == 1 and known[0][1]  # one message for every refusal

        # Locked: the right password is refused with the very same answer an unknown name gets.
        status, message, client = _attempt(app, "known_user", PASSWORD, "10.1.0.3")
        assert (status, message) == known[-1]
        assert client.get("/").status_code == 302  # not signed in

        # Audited: each failure with the name tried, each throttled attempt, for both names.
        assert _events("auth.login_failed", "known_user") == LIMIT
        assert _events("auth.login_failed", "ghost_user") == LIMIT
        assert _events("auth.login_throttled", "known_user") == 3  # 2 wrong + the right password
        assert _events("auth.login_throttled", "ghost_user") == 2
        assert db.session.scalar(select(func.count()).select_from(LoginAttempt)
                                 .where(LoginAttempt.reason == "throttled")) == 5

        # Still inside the window (counted from the last refused attempt): refused.
        traveller.shift(dt.timedelta(minutes=WINDOW - 1))
        assert _attempt(app, "known_user", PASSWORD, "10.1.0.3")[0] == 429
        # The window has passed since that attempt: the right password works again.
        traveller.shift(dt.timedelta(minutes=WINDOW + 1))
        status, _m, client = _attempt(app, "known_user", PASSWORD, "10.1.0.3")
        assert status == 302
        assert client.get("/").status_code == 200
        assert _events("auth.login") == 1


def test_per_ip_limit_stops_spraying_across_usernames(app, make, throttling):
    make.user(username="sprayed")
    # One address tries one password against many names (each name fails once only).
    results = [_attempt(app, f"guess{i}", "Summer2024", "10.2.0.9")[0] for i in range(LIMIT)]
    assert results == [401] * LIMIT
    # Now even a real account with its right password is refused from that address ...
    status, _m, client = _attempt(app, "sprayed", PASSWORD, "10.2.0.9")
    assert status == 429 and client.get("/").status_code == 302
    assert _events("auth.login_throttled", "sprayed") == 1
    # ... but not from another address: the account itself was never attacked.
    status, _m, client = _attempt(app, "sprayed", PASSWORD, "10.2.0.10")
    assert status == 302 and client.get("/").status_code == 200
