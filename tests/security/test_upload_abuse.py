"""Abusive uploads on every route that takes a file (issue 9): oversize, content that does not match the
extension, path-traversal, control-character and very long names, zip bombs, empty files. Each is refused
with a visible message, leaves no row and no file under UPLOAD_DIR behind; and a valid file is still
accepted on the same route (so the refusals are not a broken form). tests/platform/test_uploads.py covers
the core helper itself; this covers the routes.

The routes are found by reading the views (FileField / request.files); ``test_every_file_route_is_covered``
fails when a new one appears that is not listed here.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from portal.core.db import db
from tests.security import fuzz_support as fs

ROOT = Path(__file__).resolve().parents[2]
PDF = fs.PDF
PNG = fs.PNG
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x90" * 64
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


@lru_cache(maxsize=None)
def zip_bomb() -> bytes:
    """A real workbook (the people-import header and one valid row, so a route that skipped the check
    would accept it) whose worksheet is padded to inflate from ~40 KB to 40 MB (ratio ~1000)."""
    from openpyxl import Workbook
    wb = Workbook()
    for line in people_csv().decode().splitlines():
        wb.active.append(line.split(","))
    plain = io.BytesIO()
    wb.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</worksheet>", b" " * (40 * 1024 * 1024) + b"</worksheet>")
            dst.writestr(info.filename, data)
    return out.getvalue()


@lru_cache(maxsize=None)
def questions_xlsx() -> bytes:
    from portal.training.services import import_template
    return import_template()


def people_csv() -> bytes:
    from portal.org.importer import COLUMNS, TEMPLATE_FIELDS
    head = ",".join(COLUMNS[f][0] for f in TEMPLATE_FIELDS)
    row = {"emp_no": "UP0001", "name": "上传测试", "department": "人力资源部", "hire_date": "2025-03-01",
           "status": "在职"}
    return (head + "\n" + ",".join(row.get(f, "") for f in TEMPLATE_FIELDS) + "\n").encode("utf-8")


# ---------------------------------------------------------------- the routes


@dataclass
class Route:
    endpoint: str
    field: str
    ext: str  # the extension of a valid file on this route
    valid: Callable[[], bytes]
    tables: tuple[str, ...]  # where an accepted upload leaves rows
    stores_file: bool
    user: str = "admin"  # who posts
    limit: int | None = None  # the route's own size limit, when below MAX_CONTENT_LENGTH

    def target(self, app) -> tuple[str, dict]:
        """(path, the other fields of a valid submission)."""
        yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        with app.app_context():
            one = lambda sql: db.session.execute(text(sql)).scalar()  # noqa: E731
            if self.endpoint == "attendance.correction_submit":
                path, data = "/attendance/corrections", {"work_date": yesterday, "kind": "in", "time": "08:55",
                                                         "reason": "忘记打卡"}
            elif self.endpoint == "training.file_upload":
                path, data = f"/training/studio/lessons/{one(_DRAFT_LESSON)}/files", {}
            elif self.endpoint == "training.questions_import":
                path, data = f"/training/studio/{one('SELECT max(id) FROM training_courses')}/questions/upload", {}
            elif self.endpoint == "org.people_import":
                path, data = "/people/import", {}
            elif self.endpoint == "offboarding.item_submit":
                path = f"/offboarding/items/{one(_ITEM % '资料交接')}/fill"
                data = {"note": "已交接"}
            else:
                path, data = f"/offboarding/items/{one(_ITEM % '设备归还')}/waive", {"reason": "员工已失联"}
            db.session.remove()
        return path, data


_DRAFT_LESSON = ("SELECT min(l.id) FROM training_lessons l JOIN training_course_versions v "
                 "ON v.id = l.version_id WHERE v.status = 'draft'")
_ITEM = "SELECT max(id) FROM checklist_items WHERE title = '%s'"

ROUTES = [
    Route("attendance.correction_submit", "attachment", "pdf", lambda: PDF,
          ("attendance_corrections", "stored_files"), True, limit=10 * 1024 * 1024),
    Route("training.file_upload", "file", "pdf", lambda: PDF, ("training_attachments", "stored_files"), True),
    Route("training.questions_import", "file", "xlsx", questions_xlsx, ("training_questions",), False,
          limit=5 * 1024 * 1024),
    Route("org.people_import", "file", "csv", people_csv, ("employees",), False, limit=5 * 1024 * 1024),
    Route("offboarding.item_submit", "file", "pdf", lambda: PDF, ("stored_files",), True, user="employee"),
    Route("offboarding.item_waive", "evidence", "pdf", lambda: PDF, ("stored_files",), True),
]

# name -> (file name for a route whose valid extension is ``ext``, content for it)
BAD: dict[str, Callable[[Route], tuple[str, bytes]]] = {
    "empty": lambda r: (f"空文件.{r.ext}", b""),
    "png_named_as_route_type": lambda r: (f"photo.{r.ext}", PNG),
    "elf_named_as_route_type": lambda r: (f"tool.{r.ext}", ELF),
    "html_named_png": lambda r: ("page.png", HTML),
    "html_named_as_route_type": lambda r: (f"page.{r.ext}", HTML) if r.ext != "csv" else ("page.pdf", HTML),
    "executable_extension": lambda r: ("run.exe", r.valid()),
    "dot_dot_slash": lambda r: (f"../../etc/passwd.{r.ext}", r.valid()),
    "dot_dot_backslash": lambda r: (f"..\\..\\x.{r.ext}", r.valid()),
    "absolute_path": lambda r: (f"/etc/cron.d/x.{r.ext}", r.valid()),
    # (CR, LF and NUL cannot travel in a multipart header: the part would arrive without a file at all.)
    "control_characters": lambda r: (f"a\x01b\x1f\u202egpj.{r.ext}", r.valid()),
    "very_long_ascii": lambda r: ("a" * 300 + f".{r.ext}", r.valid()),
    "very_long_cjk": lambda r: ("员工花名册" * 60 + f".{r.ext}", r.valid()),
    "zip_bomb_xlsx": lambda r: ("bomb.xlsx", zip_bomb()),
}

CASES = [(r.endpoint, case) for r in ROUTES for case in [*BAD, "oversize", "valid"]]


@pytest.fixture
def _clean_db():
    """Overrides tests/conftest.py's per-test truncation: the module shares one seeded world."""
    yield


@pytest.fixture(scope="module")
def world(app):
    fs.truncate(app)
    w = fs.seed_world(app)
    yield w
    fs.truncate(app)


def _client(app, world, username: str):
    client = app.test_client()
    token = fs.login_admin(client, app, world)
    if username != "admin":
        with app.app_context():
            from sqlalchemy import select

            from portal.core.models import User
            u = db.session.scalar(select(User).where(User.username == username))
            session_token = u.session_token
            db.session.remove()
        with client.session_transaction() as sess:
            sess["_user_id"] = session_token
    return client, token


def _snapshot(app, route: Route):
    return fs.count_rows(app, route.tables), fs.upload_files(app)


def _post(app, world, route: Route, name: str, content: bytes, htmx: bool = False):
    client, token = _client(app, world, route.user)
    path, data = route.target(app)
    data = {**data, "csrf_token": token, route.field: (io.BytesIO(content), name)}
    return client.post(path, data=data, content_type="multipart/form-data",
                       headers={"HX-Request": "true"} if htmx else {})


def test_every_file_route_is_covered(app):
    """Every view that reads an upload (FileField in its form, request.files, a core.uploads call) is
    listed in ROUTES."""
    import inspect
    found = set()
    for endpoint, view in app.view_functions.items():
        try:
            src = inspect.getsource(inspect.unwrap(view))
        except (OSError, TypeError):
            continue
        if re.search(r"request\.files|save_upload|check_upload|add_attachment|import_questions|"
                     r"form\.(file|evidence|attachment)\.data", src):
            rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
            if "POST" in rule.methods:
                found.add(endpoint)
    assert found == {r.endpoint for r in ROUTES}
    # and every file field of every form is read by one of them
    fields = set()
    for path in (ROOT / "portal").rglob("forms.py"):
        fields |= set(re.findall(r"^\s+(\w+) = (?:Multiple)?FileField\(", path.read_text(), re.M))
    assert fields <= {r.field for r in ROUTES}


@pytest.mark.parametrize("endpoint,case", CASES)
def test_upload_abuse_is_refused(app, world, endpoint, case):
    route = next(r for r in ROUTES if r.endpoint == endpoint)
    rows, files = _snapshot(app, route)
    if case == "valid":
        resp = _post(app, world, route, f"合法文件.{route.ext}", route.valid())
        body = resp.get_data(as_text=True)
        assert resp.status_code == 303, f"{endpoint}: a valid file was refused: {resp.status_code}\n" \
                                        f"{body[body.find('<main'):][:2000]}"
        after_rows, after_files = _snapshot(app, route)
        assert any(after_rows[t] > rows[t] for t in route.tables), (rows, after_rows)
        assert (len(after_files) > len(files)) == route.stores_file
        return
    if case == "oversize":
        limit = route.limit or app.config["MAX_CONTENT_LENGTH"]
        name, content = f"big.{route.ext}", route.valid() + b" " * (limit + 1 - len(route.valid()))
    else:
        name, content = BAD[case](route)
    resp = _post(app, world, route, name, content)
    body = resp.get_data(as_text=True)
    what = f"{endpoint} {case} ({name[:40]!r}, {len(content)} bytes)"
    assert 400 <= resp.status_code < 500, f"{what}: {resp.status_code} (accepted?)\n" \
                                          f"{body[body.find('<main'):][:1500]}"
    assert fs.has_clear_message(body), f"{what}: {resp.status_code} without a visible message\n" \
                                       f"{body[body.find('<main'):][:1500]}"
    assert fs.active_payload(body) is None
    assert _snapshot(app, route) == (rows, files), f"{what}: something was stored"


@pytest.mark.parametrize("endpoint", [r.endpoint for r in ROUTES])
def test_random_file_names_and_bytes(app, world, endpoint):
    """Random names (unicode, separators, control characters) and random bytes: never a 500, never an
    active payload; a refusal says why and stores nothing; an accepted file lands inside UPLOAD_DIR."""
    route = next(r for r in ROUTES if r.endpoint == endpoint)
    upload_dir = Path(app.config["UPLOAD_DIR"]).resolve()

    @settings(max_examples=5, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(name=st.one_of(st.text(max_size=150), st.sampled_from(fs.BAD_NAMES),
                          st.text(alphabet="./\\:~ 报告", max_size=20).map(lambda s: s + "." + route.ext)),
           content=st.one_of(st.binary(max_size=256), st.just(route.valid())), htmx=st.booleans())
    def run(name, content, htmx):
        rows, files = _snapshot(app, route)
        resp = _post(app, world, route, name, content, htmx)
        body = resp.get_data(as_text=True)
        assert resp.status_code < 500
        assert fs.active_payload(body) is None
        if 400 <= resp.status_code < 500:
            assert fs.has_clear_message(body), f"{endpoint} {name!r}: {resp.status_code} without a message"
            assert _snapshot(app, route) == (rows, files)
        for f in fs.upload_files(app) - files:
            assert (upload_dir / f).resolve().is_relative_to(upload_dir)

    run()
