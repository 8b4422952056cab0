"""Shared machinery of the bad-input tests (tests/security/test_fuzz_forms.py, test_upload_abuse.py).

- ``seed_world(app)``: the demo company + its OKRs, and one row of every kind a POST route can point at
  (override, leave, correction, anomaly, rule, shift, client, notices, notifications, offboarding with its
  checklist, steps and unfreeze request, review template + reviews, courses with lessons, questions, an
  attachment, an enrollment and an open exam attempt). The administrator ``admin`` holds every role.
- ``crawl_forms(client, app)``: GETs every parameter-free page and every page of a seeded row, parses each
  ``<form method="post">`` and maps it to its endpoint (url_map match): the real field names, types,
  default values and choices, and a concrete action URL that the UI itself offers.
- payload strategies per field type, and the checks every response must pass.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from hypothesis import strategies as st
from sqlalchemy import select, text
from werkzeug.datastructures import FileStorage
from werkzeug.routing import IntegerConverter

from portal.core.db import db
from tests.conftest import PASSWORD

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

# ---------------------------------------------------------------- the seeded world


@dataclass
class World:
    admin_id: int
    ids: dict[str, int] = field(default_factory=dict)


def _fs(data: bytes, name: str) -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name)


def seed_world(app) -> World:
    """Build the world (commits). Runs inside its own app context."""
    from tests.training.helpers import build_course
    with app.test_request_context():  # services build links with url_for
        from portal import demo
        from portal.accounts import services as accounts
        from portal.attendance import services as att
        from portal.attendance.models import Anomaly, Shift
        from portal.core import notify
        from portal.core.models import Role, User, UserRole
        from portal.core.security import BUILTIN_ROLES
        from portal.core.ui import local_today
        from portal.notices import services as notices
        from portal.offboarding import services as ob_services
        from portal.offboarding.models import Client, ClientContact
        from portal.org.models import Employee
        from portal.performance import demo as perf_demo
        from portal.performance import reviews
        from portal.performance.models import Cycle
        today = local_today()
        demo.load_demo(PASSWORD, today)
        perf_demo.load(today)

        def user(name):
            return db.session.scalar(select(User).where(User.username == name))

        admin = user("admin")
        have = {ur.role.code for ur in admin.user_roles}
        for code in BUILTIN_ROLES:
            if code not in have:
                admin.user_roles.append(UserRole(role=db.session.scalar(select(Role).where(Role.code == code))))
        admin.locale = "en"
        db.session.commit()
        employee, manager, hr = user("employee"), user("manager"), user("hr")

        accounts.add_override(user("finance"), "audit.view", "grant", admin, "seed")

        att.settings()
        att.default_rule()
        db.session.add(Shift(code="EARLY", name="早班", start_minute=6 * 60, end_minute=14 * 60))
        monday = today - dt.timedelta(days=today.weekday() + 7)
        att.request_leave(employee, "annual", monday + dt.timedelta(days=14), "am",
                          monday + dt.timedelta(days=15), "pm", "休假")
        att.request_leave(admin, "sick", monday + dt.timedelta(days=21), "am",
                          monday + dt.timedelta(days=21), "pm", "看病")  # the newest: the admin may cancel it
        db.session.commit()
        try:
            att.request_correction(employee, monday, "in", dt.time(9, 0), "忘记打卡")
        except att.AttendanceError:  # the deadline rule may refuse last week's day: yesterday will do
            db.session.rollback()
            att.request_correction(employee, today - dt.timedelta(days=1), "out", dt.time(18, 0), "忘记打卡")
        db.session.add(Anomaly(employee_id=employee.employee_id, kind="absent", key_date=monday,
                               detected_on=today, days=1))
        db.session.commit()

        clients = [Client(name="顺丰物流", owner_id=employee.employee_id, contract_no="HT-1"),
                   Client(name="中远海运", owner_id=employee.employee_id, contract_no="HT-2")]
        db.session.add_all(clients)
        db.session.flush()
        db.session.add(ClientContact(client_id=clients[0].id, name="王先生"))
        db.session.commit()

        draft = notices.save_draft(admin, "other", "草稿通知", "正文", True, ["employee", "admin"])
        sent = notices.save_draft(admin, "warning", "警告通知", "**正文**", True, ["employee", "admin"])
        db.session.flush()
        notices.send(sent, admin)
        notify.send(admin, "attendance.leave_request", {"name": "x", "link": "/", "days": 1,
                                                          "start": "x", "end": "x", "kind": "x"},
                    channels=["inapp"])
        db.session.commit()

        tpl = ob_services.save_template(admin, "通用离职清单", None, None, True)
        ob_services.add_template_item(admin, tpl, "资料交接", "", "leaver", False, -1)
        ob_services.add_template_item(admin, tpl, "设备归还", "", "it", False, 0)
        db.session.commit()
        ob = ob_services.submit_resignation(employee, "个人原因")
        db.session.commit()
        successor = db.session.scalar(select(Employee).where(Employee.emp_no == "XH0016"))
        ob_services.start_handover(ob, admin, successor, tpl)
        db.session.commit()
        frozen = ob_services.frozen_permissions(ob)
        if frozen:
            ob_services.request_unfreeze(ob, admin, frozen[0], dt.datetime.now(dt.timezone.utc)
                                         + dt.timedelta(days=2), "临时处理")
        legal_emp = db.session.scalar(select(Employee).where(Employee.emp_no == "XH0040"))
        ob_services.record_termination(admin, legal_emp, today + dt.timedelta(days=30), "严重违纪")
        db.session.commit()

        cycle = db.session.scalar(select(Cycle).order_by(Cycle.id))
        template = reviews.create_template(admin, "年度考评", "c1 * 0.6 + c2 * 0.4",
                                           [("业绩", 60), ("态度", 40)])
        reviews.launch(admin, cycle, template, [employee.employee_id, manager.employee_id,
                                                admin.employee_id])
        db.session.commit()
        admin_id = admin.id

    course_id = build_course(app, _Actor(app, admin_id), policy=True, title="信息安全制度")
    draft_course = build_course(app, _Actor(app, admin_id), publish=False, title="草稿课程")
    with app.test_request_context():
        from portal.core.models import User
        from portal.training import assign, exams, services as training
        from portal.training.models import Course, Enrollment
        admin = db.session.get(User, admin_id)
        course = db.session.get(Course, course_id)
        assign.create_assignment(course, admin, "employee", admin.employee_id, local_today()
                                 + dt.timedelta(days=30))
        db.session.flush()
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.course_id == course_id))
        exams.start_attempt(enrollment, admin)
        version = training.draft_of(db.session.get(Course, draft_course))
        training.add_attachment(version.lessons[0], _fs(PDF, "讲义.pdf"), admin)
        db.session.commit()
    return World(admin_id=admin_id)


class _Actor:
    """Hands a fresh User row to helpers that open their own app context."""

    def __init__(self, app, user_id):
        self.id = user_id

    def __getattr__(self, name):
        from portal.core.models import User
        return getattr(db.session.get(User, self.id), name)


def login_admin(client, app, world: World) -> str:
    """Sign in by session with the admin's current token (logout-everywhere rotates it); returns a valid
    CSRF token for that session (made as flask-wtf makes it, without a request)."""
    with app.app_context():
        from portal.core.models import PermissionOverride, Role, User, UserRole
        from portal.core.security import BUILTIN_ROLES
        u = db.session.get(User, world.admin_id)
        # Fuzzed routes may have changed the admin's own account: restore what the world needs.
        u.active = True
        db.session.execute(PermissionOverride.__table__.delete().where(PermissionOverride.user_id == u.id))
        have = {ur.role.code for ur in u.user_roles}
        for code in sorted(set(BUILTIN_ROLES) - have):
            u.user_roles.append(UserRole(role=db.session.scalar(select(Role).where(Role.code == code))))
        db.session.commit()
        token = u.session_token
        db.session.remove()
    import hashlib
    import os

    from itsdangerous import URLSafeTimedSerializer
    with client.session_transaction() as sess:
        sess["_user_id"] = token
        sess["_fresh"] = True
        sess["locale"] = "en"
        raw = sess.setdefault("csrf_token", hashlib.sha1(os.urandom(64)).hexdigest())
    secret = app.config.get("WTF_CSRF_SECRET_KEY") or app.config["SECRET_KEY"]
    return URLSafeTimedSerializer(secret, salt="wtf-csrf-token").dumps(raw)


# ---------------------------------------------------------------- routes and forms

# url argument -> table that a seeded row lives in (endpoint-specific ones first).
ARG_TABLES = {
    ("offboarding.template_item_delete", "item_id"): "checklist_template_items",
    ("training.answer_save", "item_id"): "training_attempt_items",
    ("offboarding.step_approve", "step_id"): "offboarding_signoffs",
    ("offboarding.step_reject", "step_id"): "offboarding_signoffs",
    "item_id": "checklist_items", "user_id": "users", "override_id": "permission_overrides",
    "anomaly_id": "attendance_anomalies", "corr_id": "attendance_corrections", "leave_id": "attendance_leaves",
    "rule_id": "attendance_rules", "client_id": "clients", "notice_id": "notices",
    "notification_id": "notifications", "offboarding_id": "offboardings", "template_id": "checklist_templates",
    "req_id": "offboarding_unfreezes", "dept_id": "departments", "emp_id": "employees", "pos_id": "positions",
    "objective_id": "perf_objectives", "review_id": "perf_reviews", "kr_id": "perf_key_results",
    "cycle_id": "perf_cycles", "enrollment_id": "training_enrollments", "attempt_id": "training_attempts",
    "course_id": "training_courses", "assignment_id": "training_assignments",
    "attachment_id": "training_attachments", "lesson_id": "training_lessons",
    "question_id": "training_questions",
}
_LEARN_LESSON = ("SELECT min(l.id) FROM training_lessons l "
                 "JOIN training_enrollments e ON e.version_id = l.version_id")
ARG_SQL = {("training.lesson_done", "lesson_id"): _LEARN_LESSON,
           ("training.lesson_ping", "lesson_id"): _LEARN_LESSON}


def post_rules(app):
    return sorted((r for r in app.url_map.iter_rules() if "POST" in r.methods), key=lambda r: r.endpoint)


def build_path(app, rule) -> str:
    """The rule's URL with each id argument pointing at the newest seeded row of its table."""
    values = {}
    with app.app_context():
        for arg in rule.arguments:
            conv = rule._converters.get(arg)
            if isinstance(conv, IntegerConverter):
                table = ARG_TABLES.get((rule.endpoint, arg)) or ARG_TABLES.get(arg)
                sql = ARG_SQL.get((rule.endpoint, arg)) or (f"SELECT max(id) FROM {table}" if table else None)
                ident = db.session.execute(text(sql)).scalar() if sql else None
                values[arg] = ident or 1
            elif getattr(conv, "items", None):
                values[arg] = sorted(conv.items)[0]
            else:
                values[arg] = "no-such-job"
        db.session.remove()
    return rule.build(values, append_unknown=False)[1]


@dataclass
class Field:
    name: str
    kind: str  # input type, "select", "textarea"
    value: str = ""
    options: list[str] = field(default_factory=list)
    multiple: bool = False


@dataclass
class Form:
    action: str
    fields: dict[str, Field] = field(default_factory=dict)
    multipart: bool = False
    page: str = ""
    introspected: bool = False


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: Field | None = None
        self._textarea: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self._form = Form(a.get("action") or "", multipart="multipart" in (a.get("enctype") or ""))
            self.forms.append(self._form)
        if self._form is None:
            return
        name = a.get("name")
        if tag == "button" and name:  # a named submit button sends its value (approve / reject ...)
            f = self._form.fields.setdefault(name, Field(name, "select"))
            f.options.append(a.get("value", ""))
            f.value = f.value or a.get("value", "")
        elif tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset"):
                return
            f = self._form.fields.get(name)
            if kind in ("checkbox", "radio"):
                if f is None:
                    f = self._form.fields[name] = Field(name, kind, multiple=kind == "checkbox")
                f.options.append(a.get("value", "y"))
                if "checked" in a:
                    f.value = a.get("value", "y")
            elif f is None:
                self._form.fields[name] = Field(name, kind, a.get("value") or "")
        elif tag == "select" and name:
            self._select = self._form.fields.setdefault(name, Field(name, "select", multiple="multiple" in a))
        elif tag == "option" and self._select is not None:
            v = a.get("value", "")
            self._select.options.append(v)
            if "selected" in a or not self._select.value:
                self._select.value = v
        elif tag == "textarea" and name:
            self._textarea = self._form.fields.setdefault(name, Field(name, "textarea"))

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(html: str) -> list[Form]:
    p = _FormParser()
    p.feed(html)
    return p.forms


SKIP_GET = ("export", "download", "evidence", ".csv", ".xlsx", ".zip", ".pdf", "/static/", "/healthz",
            "chart", "/file")


def get_pages(app) -> list[str]:
    """Every GET page: parameter-free ones, and those of seeded rows."""
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        if any(s in rule.rule for s in SKIP_GET) or any(s in rule.endpoint for s in ("export", "download")):
            continue
        try:
            out.append(build_path(app, rule))
        except Exception:
            continue
    return sorted(set(out))


def static_post_endpoints() -> list[str]:
    """The POST endpoints, known at collection time (the blueprints on a bare Flask app: no database)."""
    import importlib

    from flask import Flask

    from portal import MODULES
    from portal.offboarding import client_views
    bare = Flask("fuzz-collect")
    for name in MODULES:
        bare.register_blueprint(importlib.import_module(name).bp)
    bare.register_blueprint(client_views.bp)
    return sorted({r.endpoint for r in bare.url_map.iter_rules() if "POST" in r.methods})


def detail_pages(app) -> list[str]:
    """Pages of the first few rows of each seeded table (forms often show for one state only)."""
    out = []
    with app.app_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or len(rule.arguments) != 1:
                continue
            if any(s in rule.rule for s in SKIP_GET) or any(s in rule.endpoint for s in ("export", "download")):
                continue
            arg = next(iter(rule.arguments))
            table = ARG_TABLES.get((rule.endpoint, arg)) or ARG_TABLES.get(arg)
            if not table or not isinstance(rule._converters.get(arg), IntegerConverter):
                continue
            for (ident,) in db.session.execute(text(f"SELECT id FROM {table} ORDER BY id LIMIT 4")):
                out.append(rule.build({arg: ident}, append_unknown=False)[1])
        db.session.remove()
    return out


def crawl_forms(client, app) -> dict[str, Form]:
    """endpoint -> the richest form the UI renders for it (with a concrete action URL and the page)."""
    adapter = app.url_map.bind("localhost")
    found: dict[str, Form] = {}
    for path in sorted(set(get_pages(app)) | set(detail_pages(app))):
        resp = client.get(path)
        if resp.status_code != 200 or "html" not in resp.content_type:
            continue
        for form in parse_forms(resp.get_data(as_text=True)):
            action = urlsplit(form.action or path).path
            try:
                endpoint, _args = adapter.match(action, method="POST")
            except Exception:
                continue
            form.action, form.page = action, path
            for f in form.fields.values():
                if f.kind == "textarea":
                    f.value = f.value.removeprefix("\r\n").removeprefix("\n")
            best = found.get(endpoint)
            if best is None or len(form.fields) > len(best.fields):
                found[endpoint] = form
    return found


WTF_KINDS = {"StringField": "text", "TextAreaField": "textarea", "IntegerField": "number",
             "DecimalField": "number", "FloatField": "number", "IntegerRangeField": "number",
             "DateField": "date", "DateTimeLocalField": "datetime-local", "DateTimeField": "datetime-local",
             "TimeField": "time", "SelectField": "select", "RadioField": "radio", "SelectMultipleField": "select",
             "BooleanField": "checkbox", "PasswordField": "password", "FileField": "file",
             "MultipleFileField": "file", "HiddenField": "hidden", "EmailField": "email", "TelField": "tel"}


def introspect_form(app, endpoint: str, path: str) -> Form:
    """For a form no crawled page showed (state-dependent): the WTForms classes the view builds and the
    request.form / request.files keys it reads."""
    import inspect
    view = inspect.unwrap(app.view_functions[endpoint])
    src = inspect.getsource(view)
    form = Form(path, introspected=True)
    with app.test_request_context():
        for cls_name in dict.fromkeys(re.findall(r"\b([A-Z]\w*Form)\(", src)):
            cls = view.__globals__.get(cls_name)
            if cls is None:
                continue
            try:
                inst = cls(meta={"csrf": False})
            except Exception:
                continue
            for f in inst:
                kind = WTF_KINDS.get(type(f).__name__, "text")
                choices = [str(c[0]) if isinstance(c, (tuple, list)) else str(c)
                           for c in (getattr(f, "choices", None) or [])]
                form.fields.setdefault(f.name, Field(f.name, kind, "", choices,
                                                     multiple=type(f).__name__ == "SelectMultipleField"))
    for key in re.findall(r"request\.form(?:\.get|\.getlist)?[\[(]\s*[\"']([\w:.-]+)[\"']", src):
        form.fields.setdefault(key, Field(key, "text"))
    for key in re.findall(r"request\.files(?:\.get|\.getlist)?[\[(]\s*[\"']([\w:.-]+)[\"']", src):
        form.fields.setdefault(key, Field(key, "file"))
    if any(f.kind == "file" for f in form.fields.values()):
        form.multipart = True
    return form


# ---------------------------------------------------------------- payloads

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "javascript:alert(1)",
       "<svg onload=alert(1)>", "</textarea><script>alert(1)</script>", "[x](javascript:alert(1))",
       "<a href=\"javascript:alert(1)\">x</a>", "{{7*7}}{% raw %}"]
SQL = ["' OR 1=1 --", "'; DROP TABLE users; --", "1; SELECT * FROM users", "\" OR \"\"=\"", "%' --"]
BAD_DATES = ["2026-02-30", "0000-00-00", "99999-01-01", "昨天", "2026-13-01", "1900-01-01", "-1",
             "2026/01/01", "", "9999-12-31", "2026-01-01T25:61"]
BAD_NUMBERS = ["NaN", "inf", "-inf", "-1", "1e309", "99999999999999999999", "１２", "0x10", "1,5", "",
               "-0", "2147483648", "9" * 400, "sNaN", "1e-400", "½", "٣"]
BAD_TIMES = ["25:61", "24:00", "-1:00", "9", "九点", "23:59:60", "", "12:00 PM"]
BAD_NAMES = ["../../etc/passwd.csv", "..\\..\\x.xlsx", "/etc/passwd", "a" * 300 + ".pdf", "报告" * 100 + ".pdf",
             "x.pdf\x00.exe", "<script>alert(1)</script>.pdf", "", ".htaccess", "CON.pdf"]
# Markers whose presence, unescaped, in any response would be an injection.
# (A literal `<` only survives unescaped; javascript: URLs and handlers are found by parsing, below.)
ACTIVE = re.compile(r"<script>alert\(1\)|<img src=x onerror=alert\(1\)>|<svg onload=alert\(1\)>", re.I)

_unicode = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   max_size=40)
_special = st.sampled_from(["张三\u200b", "مرحبا\u202eabc", "👩\u200d💻🎉", "\u0000", "\x01\x1f\x7f",
                            "  ", "\ufeff", "𠜎𠜱", "ｆｕｌｌ", "a\r\nb", "Ω" * 300])
TEXTISH = st.one_of(
    st.sampled_from(XSS), st.sampled_from(SQL), _unicode, _special,
    st.just("x" * 100_000), st.just("长" * 5000),
)


def value_strategy(f: Field):
    """Bad input for one field of the given type (plus the generic text payloads)."""
    bad = {"date": BAD_DATES, "datetime-local": BAD_DATES + ["2026-01-01T10:00"], "number": BAD_NUMBERS,
           "time": BAD_TIMES, "email": ["a@", "@b", "a@b@c", "<a@b.c>"], "tel": ["1", "+86 138" + "0" * 40]}
    if f.kind == "file":
        return st.one_of(TEXTISH, st.tuples(st.binary(max_size=64), st.sampled_from(BAD_NAMES)))
    own = bad.get(f.kind, [])
    wrong_choice = ["__nope__", "-1", "0", "999999999", "2147483648", "9" * 30] + (f.options[:1] if f.options
                                                                                     else [])
    choices = [st.sampled_from(wrong_choice)] if f.kind in ("select", "radio", "checkbox") else []
    parts = [TEXTISH] + ([st.sampled_from(own)] if own else []) + choices + \
        [st.sampled_from(BAD_NUMBERS), st.sampled_from(BAD_DATES)]
    return st.one_of(*parts)


@st.composite
def form_data(draw, form: Form | None):
    """A POST body: every real field either kept (its rendered value) or fuzzed, missing or doubled;
    sometimes an unknown extra field. Lists for repeated keys."""
    body: list[tuple[str, str]] = []
    fields = list(form.fields.values()) if form else []
    fuzz_all = draw(st.booleans()) if fields else True
    for f in fields:
        if f.name == "csrf_token":
            continue
        mode = draw(st.sampled_from(["fuzz", "fuzz", "keep", "missing", "double"]) if not fuzz_all
                    else st.sampled_from(["fuzz", "fuzz", "fuzz", "missing", "double"]))
        if mode == "missing":
            continue
        if mode == "keep":
            if f.value or f.kind not in ("checkbox", "radio"):
                body.append((f.name, f.value))
            continue
        body.append((f.name, draw(value_strategy(f))))
        if mode == "double":
            body.append((f.name, draw(value_strategy(f))))
    if not fields or draw(st.integers(0, 3)) == 0:
        body.append((draw(st.sampled_from(["id", "name", "reason", "note", "q", "next", "employee_id",
                                           "title", "__proto__"])), draw(TEXTISH)))
    return body


# ---------------------------------------------------------------- checks

CLEAR_MESSAGE = re.compile(r'class="[^"]*\b(error|flash-error|flash-warning|invalid|error-text|'
                           r'error-page)\b[^"]*"')


def has_clear_message(html: str) -> bool:
    return bool(CLEAR_MESSAGE.search(html))


class _ActiveParser(HTMLParser):
    """Real tags (not escaped text, not attribute values) that would run a payload: an event-handler
    attribute, a javascript: URL, a script/iframe/object/embed carrying it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") and "alert" in value:
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name in ("href", "src", "action", "formaction", "data") and value.startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag in ("iframe", "object", "embed", "base"):
            self.found.append(f"<{tag} {attrs!r}>")

    def handle_data(self, data):
        if self.lasttag == "script" and "alert(1)" in data:
            self.found.append(f"<script>{data[:60]}")


def active_payload(html: str) -> str | None:
    m = ACTIVE.search(html)
    if m:
        return html[max(0, m.start() - 120):m.end() + 60]
    if "alert(" not in html.lower():  # every payload calls alert: skip the parse on clean pages
        return None
    p = _ActiveParser()
    p.feed(html)
    return "; ".join(p.found) or None


def upload_files(app) -> set[str]:
    from pathlib import Path
    root = Path(app.config["UPLOAD_DIR"])
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def count_rows(app, tables) -> dict[str, int]:
    with app.app_context():
        out = {t: db.session.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
        db.session.remove()
    return out


def truncate(app) -> None:
    from tests.conftest import truncate_all
    with app.app_context():
        db.session.remove()
        truncate_all(db.engine)
