"""CSRF tokens and HTTP methods, walking ``app.url_map`` (no route is listed by hand).

tests/platform/test_access_walk.py already proves that every state-changing route refuses a request
WITHOUT a token. Here, for an administrator holding every role:

(a) a token that is real but belongs to another user's session is refused (400);
(b) a garbled token (the session's own token with one character changed, sent as the ``X-CSRFToken``
    header htmx uses, or cut short in the form) is refused;
    nothing in any table changes and the administrator is still signed in (even ``/logout`` did not run);
(c) (on the demo company) a path that only takes POST answers GET with 405 (and the error page); a path that takes GET and
    POST changes nothing on GET, even with a valid token and the form's fields in the query string.
"""
from __future__ import annotations

import collections

import pytest
from sqlalchemy import select

from portal.core.db import db
from portal.core.models import User
from portal.core.security import BUILTIN_ROLES
from tests.conftest import csrf_token, login
from tests.platform.test_access_walk import UNSAFE, _path, _seed, _snapshot

pytestmark = pytest.mark.access

# Pages that create their module's default configuration the first time anyone opens them (a
# singleton settings row, the default rating table). Allowed only from empty to defaults, once.
LAZY_DEFAULTS = {"attendance_settings", "perf_rating_bands"}
FIELDS = {"name": "x", "reason": "x", "password": "Passw0rd!x", "username": "x", "title": "x",
          "confirm": "y", "active": "0", "roles": "admin", "lang": "en", "amount": "1", "score": "1"}


def _demo_admin(app):
    result = app.test_cli_runner().invoke(args=["portal", "demo"], env={"DEMO_PASSWORD": None})
    assert result.exit_code == 0, result.output
    db.session.remove()
    from portal.accounts.services import set_roles
    admin = db.session.scalar(select(User).where(User.username == "admin"))
    set_roles(admin, BUILTIN_ROLES, None)
    db.session.commit()
    staff = db.session.scalar(select(User).where(User.username == "employee"))
    return admin, staff


def _paths(app) -> dict[str, dict]:
    """path built with real ids -> {"methods": set, "endpoints": set}."""
    out: dict[str, dict] = collections.defaultdict(lambda: {"methods": set(), "endpoints": set()})
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _path(rule)
        out[path]["methods"] |= set(rule.methods) - {"HEAD", "OPTIONS"}
        out[path]["endpoints"].add(rule.endpoint)
    return out


def _garble(token: str) -> tuple[str, str]:
    """The session's own token with one character changed, and cut short."""
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return flipped, token[: len(token) // 2]


def test_foreign_and_garbled_tokens_are_refused_and_change_nothing(app, make):
    admin, staff = _seed(make)
    client = app.test_client()
    login(client, admin)
    own = csrf_token(client, "/")
    other = app.test_client()
    login(other, staff)
    foreign = csrf_token(other, "/")
    assert foreign != own
    # The admin's own token works (so the refusals below are about the token, not the set-up).
    assert client.post("/notifications/preferences", data={"csrf_token": own}).status_code != 400

    before = _snapshot()
    problems, checked = [], 0
    unsafe = [(p, info) for p, info in _paths(app).items() if info["methods"] & UNSAFE]
    assert len(unsafe) > 50
    for path, info in unsafe:
        for method in sorted(info["methods"] & UNSAFE):
            checked += 1
            flipped, short = _garble(own)
            tries = [("foreign form", {"csrf_token": foreign}, {}),
                     ("garbled header", {}, {"X-CSRFToken": flipped, "HX-Request": "true"}),
                     ("short form", {"csrf_token": short}, {})]
            for label, token_field, headers in tries:
                resp = client.open(path, method=method, data={**FIELDS, **token_field}, headers=headers)
                if resp.status_code != 400:
                    problems.append(f"{label}: {method} {path} {sorted(info['endpoints'])} -> {resp.status_code}")
    assert not problems, problems
    assert checked == len(unsafe)
    assert _snapshot() == before
    assert client.get("/").status_code == 200  # still signed in: /logout did not run either


def test_post_only_paths_refuse_get_and_get_on_form_paths_changes_nothing(app):
    admin, _staff = _demo_admin(app)
    client = app.test_client()
    login(client, admin)
    token = csrf_token(client, "/")
    before = _snapshot()
    problems, post_only, form_pages = [], 0, 0
    for path, info in _paths(app).items():
        if not info["methods"] & UNSAFE:
            continue
        if "GET" not in info["methods"]:
            post_only += 1
            resp = client.get(path, query_string={**FIELDS, "csrf_token": token})
            if resp.status_code != 405:
                problems.append(f"GET {path} {sorted(info['endpoints'])}: {resp.status_code}")
        else:
            form_pages += 1
            resp = client.get(path, query_string={**FIELDS, "csrf_token": token})
            if resp.status_code >= 500:
                problems.append(f"GET {path}: {resp.status_code}")
    assert not problems, problems
    assert post_only > 50 and form_pages > 10
    after = _snapshot()
    changed = sorted(t for t in before if before[t] != after[t])
    lazy = [t for t in changed if t in LAZY_DEFAULTS and not before[t]]
    unexpected = sorted(set(changed) - set(lazy))
    assert not unexpected, {t: (len(before[t]), len(after[t])) for t in unexpected}
    # The defaults are made once: a second walk over the GET pages changes nothing at all.
    for path, info in _paths(app).items():
        if info["methods"] & UNSAFE and "GET" in info["methods"]:
            client.get(path, query_string={**FIELDS, "csrf_token": token})
    assert _snapshot() == after
    assert client.get("/").status_code == 200
