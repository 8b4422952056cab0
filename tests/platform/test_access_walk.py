"""Walks ``app.url_map``: every route any module registers is covered without being listed here.

(a) every view declares its access; public only for an explicit allowlist;
(b) anonymous requests are sent to the sign-in page (htmx: 401 + HX-Redirect), never served;
(c) every state-changing route refuses a request without a CSRF token, for an administrator too, and
    nothing changes;
(d) every GET route guarded by ``@require`` is refused (403) to a user with only the employee role;
(e) action endpoints (create, delete, approve, ...) cannot be reached with GET.
"""
from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select
from werkzeug.routing import FloatConverter, IntegerConverter, UUIDConverter

from portal.core.db import db
from portal.core.security import BUILTIN_ROLES, access_of, effective_permissions
from tests.conftest import csrf_token, login

pytestmark = pytest.mark.access

PUBLIC_ALLOWLIST = {"static", "accounts.login", "accounts.set_language", "home.health"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# A word of an endpoint's view name (split on "_") that names a state change. Whole words, so
# "assignments", "signatures" or "resignation" pages are not caught by "sign".
ACTION_WORDS = {"create", "delete", "approve", "revoke", "sign", "logout", "import", "submit", "clock"}
ACTION_SUFFIXES = ("", "in", "out", "off", "up")  # clockin, signoff, signup ...


def _value(converter):
    if isinstance(converter, IntegerConverter):
        return 1
    if isinstance(converter, FloatConverter):
        return 1.0
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=1)
    items = getattr(converter, "items", None)  # AnyConverter
    if items:
        return sorted(items)[0]
    return "x"


def _path(rule) -> str:
    values = {arg: _value(rule._converters.get(arg)) for arg in rule.arguments
              if arg not in (rule.defaults or {})}
    built = rule.build(values, append_unknown=False)
    assert built is not None, f"cannot build {rule.rule}"
    return built[1]


def _routes(app):
    """(endpoint, method, path, access) for every rule and method except HEAD/OPTIONS."""
    out = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        access = ("public", ()) if rule.endpoint == "static" else access_of(view)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, _path(rule), access))
    return out


def _snapshot() -> dict[str, list]:
    from portal.models import metadata
    with db.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in metadata.sorted_tables}


def _seed(make):
    """A little of everything, so ids filled with 1 point at real rows where the walk goes deep."""
    dept = make.department("总部")
    make.position("专员")
    boss = make.employee("周总", department=dept)
    admin = make.user(roles=tuple(BUILTIN_ROLES), employee=boss, username="root")
    staff = make.user(roles=("employee",), username="staff", department=dept, manager=boss)
    return admin, staff


def test_every_view_declares_access_and_public_is_allowlisted(app):
    problems = []
    for endpoint, view in app.view_functions.items():
        if endpoint == "static":
            continue
        access = access_of(view)
        if access is None:
            problems.append(f"{endpoint}: no access declaration")
        elif access[0] == "public" and endpoint not in PUBLIC_ALLOWLIST:
            problems.append(f"{endpoint}: public but not in the allowlist")
        elif access[0] == "perm" and not access[1]:
            problems.append(f"{endpoint}: @require() without a permission")
    assert not problems, problems
    assert len(app.view_functions) > 10


def test_anonymous_requests_go_to_the_sign_in_page(app):
    client = app.test_client()
    # A valid CSRF token, so the refusal we see comes from the login check, not from CSRF.
    token = csrf_token(client, "/login")
    problems, checked = [], 0
    for endpoint, method, path, access in _routes(app):
        if access[0] == "public":
            continue
        checked += 1
        resp = client.open(path, method=method, headers={"X-CSRFToken": token})
        ok = (resp.status_code in (302, 303) and urlpath(resp.headers.get("Location", "")) == "/login") \
            or resp.status_code == 401
        if not ok:
            problems.append(f"{method} {path} ({endpoint}): {resp.status_code}")
        resp = client.open(path, method=method, headers={"X-CSRFToken": token, "HX-Request": "true"})
        if resp.status_code != 401 or urlpath(resp.headers.get("HX-Redirect", "")) != "/login":
            problems.append(f"htmx {method} {path} ({endpoint}): {resp.status_code} "
                            f"HX-Redirect={resp.headers.get('HX-Redirect')}")
    assert not problems, problems
    assert checked > 10


def urlpath(url: str) -> str:
    from urllib.parse import urlsplit
    return urlsplit(url).path


def test_state_changes_refuse_requests_without_csrf_token(app, make):
    admin, _staff = _seed(make)
    client = app.test_client()
    login(client, admin)
    assert client.get("/").status_code == 200
    before = _snapshot()
    problems, checked = [], 0
    for endpoint, method, path, _access in _routes(app):
        if method not in UNSAFE:
            continue
        checked += 1
        for headers in ({}, {"HX-Request": "true"}):
            resp = client.open(path, method=method, data={"name": "x", "reason": "x"}, headers=headers)
            if resp.status_code != 400:
                problems.append(f"{method} {path} ({endpoint}) {headers}: {resp.status_code}")
    assert not problems, problems
    assert checked > 5
    assert _snapshot() == before
    assert client.get("/").status_code == 200  # still signed in: even logout did not happen


def test_permission_guarded_pages_refuse_a_plain_employee(app, make):
    _admin, staff = _seed(make)
    employee_perms = effective_permissions(staff)
    client = app.test_client()
    login(client, staff)
    problems, checked = [], 0
    for endpoint, method, path, access in _routes(app):
        if method != "GET" or access[0] != "perm":
            continue
        if set(access[1]) <= employee_perms:
            continue  # the employee role holds these permissions by design
        checked += 1
        for headers in ({}, {"HX-Request": "true"}):
            resp = client.get(path, headers=headers)
            if resp.status_code != 403:
                problems.append(f"GET {path} ({endpoint}) {headers}: {resp.status_code}")
    assert not problems, problems
    assert checked > 2


def _is_action(endpoint: str) -> bool:
    words = re.split(r"[_\W]+", endpoint.rsplit(".", 1)[-1].lower())
    return any(word == verb + suffix for word in words for verb in ACTION_WORDS for suffix in ACTION_SUFFIXES)


def test_action_endpoints_do_not_allow_get(app):
    assert _is_action("accounts.user_create") and _is_action("attendance.clock_in")
    assert _is_action("offboarding.signoff") and _is_action("x.bulk_delete")
    assert not _is_action("training.assignments") and not _is_action("signatures.evidence")
    assert not _is_action("offboarding.resignation")
    offenders = sorted({f"{rule.endpoint} {rule.rule}" for rule in app.url_map.iter_rules()
                        if _is_action(rule.endpoint) and "GET" in rule.methods})
    assert not offenders, offenders
