"""Every response carries the security headers of ``portal/core/web.py``: all GET pages of
``app.url_map`` that answer 200 to an administrator holding every role on the demo company (plus a
client and a finished background task with a stored result file), every export and file download, the
error pages (400 CSRF, 401 htmx, 403, 404, 405, 429) and static files.

tests/platform/test_headers.py checks the same set on a handful of pages; this walks all of them, so a
view that builds its own response (``send_file``, a CSV ``Response``, a streamed export) cannot drop or
weaken a header unnoticed. Authenticated responses, downloads included, must not be stored by the
browser or a proxy (``Cache-Control: no-store``).
"""
from __future__ import annotations

from sqlalchemy import select

from portal.core.db import db, utcnow
from portal.core.models import User
from portal.core.web import CSP
from tests.conftest import csrf_token, login
from tests.platform.test_access_walk import _routes

# A served upload gets a stricter policy than the pages (nothing in it may run, even if opened inline).
DOWNLOAD_CSP = "default-src 'none'; sandbox"
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
}


def _problems(resp, where: str, signed_in: bool) -> list[str]:
    out = []
    for name, value in STATIC_HEADERS.items():
        if resp.headers.get(name) != value:
            out.append(f"{where}: {name}={resp.headers.get(name)!r}")
    csp = resp.headers.get("Content-Security-Policy")
    if csp not in (CSP, DOWNLOAD_CSP) or (csp == DOWNLOAD_CSP and resp.status_code != 200):
        out.append(f"{where}: CSP={csp!r}")
    if not resp.headers.get("X-Request-ID"):
        out.append(f"{where}: no X-Request-ID")
    if "Strict-Transport-Security" in resp.headers:  # only over TLS (tests/platform/test_headers.py)
        out.append(f"{where}: HSTS over plain HTTP")
    ctype = resp.headers.get("Content-Type", "")
    if ctype.count("charset=") > 1:  # Response(mimetype="text/csv; charset=...") appends a second one
        out.append(f"{where}: Content-Type={ctype!r}")
    if signed_in and resp.headers.get("Cache-Control") != "no-store":
        out.append(f"{where}: Cache-Control={resp.headers.get('Cache-Control')!r}")
    return out


def _seed(app):
    result = app.test_cli_runner().invoke(args=["portal", "demo"], env={"DEMO_PASSWORD": None})
    assert result.exit_code == 0, result.output
    db.session.remove()
    from portal.accounts.services import set_roles
    from portal.core.security import BUILTIN_ROLES
    from portal.core.tasks import BackgroundTask
    from portal.core.uploads import store_bytes
    from portal.offboarding.models import Client
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        set_roles(admin, BUILTIN_ROLES, None)
        stored = store_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "证明.pdf", "pdf",
                             "test_headers", admin)
        db.session.add(BackgroundTask(kind="export", path="x", owner_id=admin.id, status="done",
                                      result_file_id=stored.id, finished_at=utcnow()))
        db.session.add(Client(name="顺丰物流", owner_id=admin.employee_id, created_by_id=admin.id))
        db.session.commit()
    return db.session.scalar(select(User).where(User.username == "admin"))


def test_every_page_download_and_export_carries_the_headers(app):
    admin = _seed(app)
    client = app.test_client()
    login(client, admin)
    problems, ok, files = [], set(), set()
    for endpoint, method, path, access in _routes(app):
        if method != "GET" or endpoint == "static" or access[0] == "public":
            continue
        resp = client.get(path)
        problems += _problems(resp, f"GET {path} ({resp.status_code})", signed_in=True)
        if resp.status_code == 200:
            ok.add(endpoint)
            if "attachment" in resp.headers.get("Content-Disposition", ""):
                files.add(endpoint)
    assert not problems, problems
    assert len(ok) > 70, sorted(ok)
    # exports (CSV, XLSX) and a stored file served with send_file were among them
    assert {"org.people_export", "audit.export", "clients.export", "training.reports_xlsx",
            "notify.task_download"} <= files, sorted(files)


def test_error_pages_and_static_files_carry_the_headers(app, make, monkeypatch):
    problems = []
    anon = app.test_client()
    for path, code in (("/static/css/app.css", 200), ("/login", 200), ("/no-such-page", 404),
                       ("/static/no-such-file.css", 404)):
        resp = anon.get(path)
        assert resp.status_code == code, path
        problems += _problems(resp, f"anonymous GET {path}", signed_in=False)
    resp = anon.get("/", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/login")
    problems += _problems(resp, "htmx 401", signed_in=False)
    # 429: throttled sign-in
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 1)
    token = csrf_token(anon, "/login")
    for expected in (401, 429):
        resp = anon.post("/login", data={"username": "nobody", "password": "x", "csrf_token": token})
        assert resp.status_code == expected
        problems += _problems(resp, f"login {expected}", signed_in=False)

    user = make.user(roles=("employee",))
    client = app.test_client()
    login(client, user)
    cases = [("GET", "/admin/users", 403), ("GET", "/people/999999", 404), ("GET", "/no-such-page", 404),
             ("GET", "/logout", 405), ("POST", "/logout", 400), ("GET", "/static/css/app.css", 200)]
    for method, path, code in cases:
        for headers in ({}, {"HX-Request": "true"}):
            resp = client.open(path, method=method, headers=headers)
            assert resp.status_code == code, (method, path, headers, resp.status_code)
            if code >= 400:  # the error page names the request id the header carries
                assert resp.headers.get("X-Request-ID", "?") in resp.get_data(as_text=True), (method, path)
            # static assets are public files: the no-store rule is for personal responses
            problems += _problems(resp, f"{method} {path} {headers}", signed_in=not path.startswith("/static/"))
    assert not problems, problems
    assert client.get("/").status_code == 200
