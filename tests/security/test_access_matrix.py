"""Checks the declared access matrix (tests/security/access_matrix.py) against the running app.

One seeded company (``build_world``): every object kind exists once, owned by the plain employee, so a
detail route answers 200 to whoever may see it. Each request runs inside a transaction that is rolled
back afterwards (the app's commits become SAVEPOINT releases), so a POST that is allowed changes nothing
for the next request and every cell of the matrix is checked against the same world. (On PostgreSQL the
few side sessions the app opens on ``db.engine`` — audit sealing, task progress — commit for real, as in
production; nothing they write changes who may do what.)

Also: a route missing from the matrix fails; the left employee's pre-exit session is refused.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.core.db import db, utcnow
from tests.conftest import PASSWORD
from tests.security import access_matrix as M

pytestmark = pytest.mark.access

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
POLICY_TEXT = "第一条 员工应按时完成月度目标。"


# ---------------------------------------------------------------- the seeded company

@dataclass
class World:
    users: dict = field(default_factory=dict)      # role key -> User (the matrix's signed-in roles)
    extra: dict = field(default_factory=dict)      # other users: peer, other_mgr, other_emp, leaver_n
    ids: dict = field(default_factory=dict)        # url argument -> id of a seeded object
    left_old_token: str = ""                       # the left employee's session token before exit
    left_current_token: str = ""                   # ... and after (rotated by the revocation job)


def _u(make, role, name, **kw):
    return make.user(roles=(role,), name=name, **kw)


def build_world(app, make) -> World:
    """The company: 总部 > 销售部 (head 王经理: the manager) and 研发部 (head 孙经理: another manager).

    员工甲 (the matrix's employee) is in 销售部 reporting to 王经理 and owns one of everything; 同事乙 is a
    peer in the same team; 研发员丙 reports to 孙经理; 离职中丁 (销售部) is serving notice with a handover
    under way (successor 同事乙); 已离职戊 has left: terminated by HR, case closed, then the revocation job
    (portal.offboarding.revocation.run) disabled the account, rotated its token and removed its roles.
    Every user has exactly one role.
    """
    from portal.org.models import Department
    w = World()
    hq = make.department("总部")
    sales = make.department("销售部", parent=hq)
    rd = make.department("研发部", parent=hq)
    make.position("专员")
    w.users["manager"] = _u(make, "manager", "王经理", department=sales)
    w.extra["other_mgr"] = _u(make, "manager", "孙经理", department=rd)
    for dep, mgr in ((sales, w.users["manager"]), (rd, w.extra["other_mgr"])):
        d = db.session.get(Department, dep.id)
        d.head_id = mgr.employee_id
    db.session.commit()
    mgr_emp, other_emp_mgr = w.users["manager"].employee, w.extra["other_mgr"].employee
    w.users["employee"] = _u(make, "employee", "员工甲", department=sales, manager=mgr_emp)
    w.extra["peer"] = _u(make, "employee", "同事乙", department=sales, manager=mgr_emp)
    w.extra["other_emp"] = _u(make, "employee", "研发员丙", department=rd, manager=other_emp_mgr)
    w.extra["leaver_n"] = _u(make, "employee", "离职中丁", department=sales, manager=mgr_emp)
    w.users["trainer"] = _u(make, "trainer", "培训师", department=hq)
    w.users["hr"] = _u(make, "hr", "人事", department=hq)
    w.users["admin"] = _u(make, "admin", "管理员", department=hq)
    w.users["left"] = _u(make, "employee", "已离职戊", department=sales, manager=mgr_emp)
    with app.test_request_context("/"):  # services build links with url_for
        _seed_objects(app, w)
    from portal.core.models import User
    # the matrix signs the left employee in with the account's CURRENT token (only "disabled" refuses
    # it); test_a_session_opened_before_the_exit_is_refused uses the token from before the exit
    w.left_current_token = db.session.scalar(select(User.session_token).where(User.id == w.users["left"].id))
    assert w.left_current_token != w.left_old_token
    return w


def _get(model, ident):
    return db.session.get(model, ident)


def _seed_objects(app, w: World) -> None:
    from portal.attendance import services as att
    from portal.core import notify, uploads
    from portal.core.models import User
    from portal.core.tasks import BackgroundTask
    from portal.accounts import services as accounts
    from portal.notices import services as notices
    from portal.offboarding import clients, revocation
    from portal.offboarding import services as offb
    from portal.offboarding.models import ChecklistTemplate, TemplateItem
    from portal.org.models import Department, Position
    from portal.performance import reviews, services as perf
    from portal.training import assign, exams, learning, services as training
    from portal.training.models import Enrollment
    from werkzeug.datastructures import FileStorage

    U = {k: _get(User, u.id) for k, u in {**w.users, **w.extra}.items()}
    emp, hr, mgr, trainer, admin = U["employee"], U["hr"], U["manager"], U["trainer"], U["admin"]
    ids = w.ids
    ids["emp_id"] = emp.employee_id
    ids["employee_id"] = emp.employee_id
    ids["user_id"] = emp.id
    ids["dept_id"] = db.session.scalar(select(Department.id).where(Department.name == "销售部"))
    ids["pos_id"] = db.session.scalar(select(Position.id))
    ov = accounts.add_override(emp, "clients.view_all", "deny", admin, "matrix")
    db.session.flush()
    ids["override_id"] = ov.id

    # attendance: a pending leave and a pending correction with a document, both the employee's
    today = att.today()
    lv = att.request_leave(emp, "annual", today + dt.timedelta(days=7), "am", today + dt.timedelta(days=7),
                           "pm", "探亲")
    corr = att.request_correction(emp, today - dt.timedelta(days=1), "in", dt.time(9, 0), "忘记打卡",
                                  file=FileStorage(stream=io.BytesIO(PDF), filename="proof.pdf"))
    from portal.attendance.models import Punch
    db.session.add(Punch(employee_id=emp.employee_id, at=utcnow() - dt.timedelta(days=1),
                         work_date=today - dt.timedelta(days=1), kind="in", method="outside",
                         note="甲外勤拜访客户"))
    db.session.flush()
    ids["leave_id"], ids["corr_id"] = lv.id, corr.id
    ids["rule_id"] = att.default_rule().id
    db.session.commit()

    # performance: an open cycle, objectives down to the employee's, a KR with a check-in, a review
    cycle = perf.create_cycle(hr, "year", today.year, None, 25)
    perf.open_cycle(cycle, hr)
    comp = perf.create_objective(hr, cycle, "company", "营收增长")
    team = perf.create_objective(mgr, cycle, "team", "销售目标", department=_get(Department, ids["dept_id"]),
                                 parent=comp)
    ind = perf.create_objective(mgr, cycle, "individual", "员工甲的目标", owner=emp.employee, parent=team)
    kr = perf.add_key_result(mgr, ind, "签约客户数", "number", "个", "0", "10", "1")
    db.session.flush()
    perf.check_in(emp, kr, "3", 7, "进展")
    tpl = reviews.create_template(hr, "销售考核", "0.6 * okr + 0.4 * manager", [("业绩", 3), ("协作", 1)])
    db.session.flush()
    reviews.launch(hr, cycle, tpl, [emp.employee_id])
    db.session.commit()
    from portal.performance.models import Review
    ids.update(cycle_id=cycle.id, objective_id=ind.id, kr_id=kr.id, template_id_perf=tpl.id,
               review_id=db.session.scalar(select(Review.id).where(Review.employee_id == emp.employee_id)))

    # training: a published policy course with a lesson, a file and a bank; the employee enrolled,
    # lessons done, policy acknowledged, an exam attempt open
    course = training.create_course(trainer, "制度培训", "说明")
    version = training.draft_of(course)
    training.update_settings(version, trainer, title="制度培训", description="说明", policy_name="绩效制度",
                             policy_version="2024版", policy_text=POLICY_TEXT, pass_mark=60,
                             time_limit_minutes=0, max_attempts=0, cooloff_hours=0, show_answers="when_done")
    lesson = training.add_lesson(version, trainer, "第一课", "# 第一课\n\n内容")
    db.session.flush()
    att_file = training.add_attachment(lesson, FileStorage(stream=io.BytesIO(PDF), filename="lesson.pdf"),
                                       trainer)
    q = None
    for j in range(3):
        q = training.save_question(course, trainer, "single", "制度", f"问题{j}", ["正确", "错误", "错", "否"], [0])
    training.set_rules(version, trainer, {"制度": 2})
    training.publish(version, trainer)
    db.session.flush()
    assignment, _n = assign.create_assignment(course, trainer, "employee", emp.employee_id,
                                              today + dt.timedelta(days=30))
    db.session.flush()
    enr = db.session.scalar(select(Enrollment).where(Enrollment.course_id == course.id,
                                                     Enrollment.employee_id == emp.employee_id))
    learning.complete_lesson(enr, lesson)
    attempt = exams.start_attempt(enr, emp)
    exams.submit(attempt, {i.id: [str(i.correct[0])] for i in attempt.items}, emp)
    ack = learning.acknowledge(enr, emp, PASSWORD)
    db.session.commit()
    ids.update(course_id=course.id, lesson_id=lesson.id, attachment_id=att_file.id, question_id=q.id,
               assignment_id=assignment.id, enrollment_id=enr.id, ack_id=ack.id, attempt_id=attempt.id,
               item_id_attempt=attempt.items[0].id)

    # a formal notice to the employee, sent; a notification in the employee's inbox
    notice = notices.save_draft(hr, "warning", "警告通知", "请按时到岗。", True, [emp.username])
    notices.send(notice, hr)
    n = notify.send(emp, "offboarding", {"title": "通知", "body": "员工甲的通知"}, channels=["inapp"])[0]
    db.session.commit()
    ids.update(notice_id=notice.id, notification_id=n.id)

    # a finished background task of the manager with a result file
    f = uploads.store_bytes(b"a,b\n", "export.csv", "text", "task_result", mgr)
    task = BackgroundTask(kind="perf.okr_export", path="x.y", owner_id=mgr.id, status="done",
                          result_file_id=f.id)
    db.session.add(task)
    db.session.commit()
    ids["task_id"] = task.id

    # a client owned by the employee
    cl = clients.create_client(emp, "甲的客户", contract_no="HT-1")
    db.session.commit()
    ids["client_id"] = cl.id

    # offboarding: a template; 离职中丁 resigned, handover started (successor 同事乙), an item with a
    # document; 已离职戊 terminated, completed and revoked by the revocation job
    t = ChecklistTemplate(name="销售交接", department_id=ids["dept_id"], active=True)
    t.items = [TemplateItem(sort=10, title="客户资料", responsible="leaver", requires_upload=True,
                            due_offset_days=-1),
               TemplateItem(sort=20, title="设备归还", responsible="hr", requires_upload=False,
                            due_offset_days=0)]
    db.session.add(t)
    db.session.flush()
    ids["template_id"], ids["template_item_id"] = t.id, t.items[0].id
    leaver = U["leaver_n"]
    ob = offb.submit_resignation(leaver, "个人原因")
    offb.start_handover(ob, hr, U["peer"].employee, t)
    db.session.flush()
    item = ob.items[0]
    stored = uploads.store_bytes(PDF, "handover.pdf", "pdf", "offboarding_item", leaver)
    offb.submit_item(item, leaver, "已交接", stored)
    ureq = offb.request_unfreeze(ob, leaver, "clients.export", utcnow() + dt.timedelta(days=2), "导出订单")
    db.session.commit()
    ids.update(offboarding_id=ob.id, item_id_offb=item.id, step_id=ob.steps[0].id if ob.steps else 0,
               req_id=ureq.id)

    left = U["left"]
    w.left_old_token = left.session_token
    lob = offb.record_termination(hr, left.employee, today, "旷工")
    lob.stage, lob.completed_at = "completed", utcnow()   # the checklist itself is not under test here
    left.employee.status = "left"
    run = offb._schedule_revocation(lob, due=utcnow())
    db.session.commit()
    assert revocation.run(run.id) == "done"
    db.session.commit()
    ids["left_offboarding_id"] = lob.id
    from portal.attendance.models import Anomaly
    an = Anomaly(employee_id=emp.employee_id, kind="absent", key_date=today, detected_on=today, days=1)
    db.session.add(an)
    for u in U.values():  # English pages: error texts are compared below
        u.locale = "en"
    db.session.commit()
    ids["anomaly_id"] = an.id


# ---------------------------------------------------------------- requests inside a rolled-back transaction

@contextlib.contextmanager
def rolled_back():
    """Everything the app writes through its scoped session during the block is undone: it runs on one
    connection inside an outer transaction, and the app's commits only release SAVEPOINTs."""
    engine = db.engine
    db.session.remove()
    saved = dict(db.session.session_factory.kw)
    conn = engine.connect()
    outer = conn.begin()
    db.session.configure(bind=conn, join_transaction_mode="create_savepoint")
    if engine.dialect.name == "sqlite":
        # SQLite has one writer: a Session(db.engine) the app opens (audit seal, task progress) would
        # wait for our open transaction, so it joins it. PostgreSQL: it runs beside it, as in production.
        db.engine = conn
    try:
        yield conn
    finally:
        db.session.remove()
        db.engine = engine
        db.session.session_factory.kw.clear()
        db.session.session_factory.kw.update(saved)
        if outer.is_active:
            outer.rollback()
        conn.close()


def sign_in(app, client, user) -> str:
    """Put ``user`` (or nobody) in the client's session with a known CSRF secret; returns the CSRF token."""
    from itsdangerous import URLSafeTimedSerializer
    with client.session_transaction() as sess:
        sess.clear()
        sess["csrf_token"] = "matrix-csrf-secret"
        if user is not None:
            sess["_user_id"] = user if isinstance(user, str) else user.session_token
            sess["_fresh"] = True
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps("matrix-csrf-secret")


CSRF_TEXT = "Your session form expired"


def classify(resp) -> str:
    code = resp.status_code
    location = urlsplit(resp.headers.get("Location", "") or resp.headers.get("HX-Redirect", "")).path
    if code == 401 or (code in (301, 302, 303, 307, 308) and location == "/login"):
        return M.LOGIN
    if code in (403, 404):
        return str(code)
    if code == 400 and CSRF_TEXT in resp.get_data(as_text=True):
        return "csrf"  # never expected: the harness sends a valid token
    if code < 400 or code in M.ALLOWED_INVALID:
        return M.OK
    return str(code)


def matches(expected: str, got: str) -> bool:
    if expected == M.HIDDEN:
        return got in ("403", "404")
    return expected == got


def url_values(app, w: World, endpoint: str, rule) -> dict:
    values = {}
    for arg in rule.arguments:
        key = M.ARGS.get((endpoint, arg), arg)
        if key in M.LITERAL_ARGS:
            values[arg] = M.LITERAL_ARGS[key]
        else:
            values[arg] = w.ids[key]
    return values


def routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint, r.rule)):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def principal(w: World, role: str):
    if role == "anonymous":
        return None
    if role == "left":
        return w.left_current_token
    return w.users[role]


def run_cell(app, client, w: World, role: str, rule, method: str) -> tuple[str, int]:
    values = url_values(app, w, rule.endpoint, rule)
    path = rule.build(values, append_unknown=False)[1]
    token = sign_in(app, client, principal(w, role))
    data = None
    if method != "GET":
        data = {"csrf_token": token}
        spec = M.FORM.get(rule.endpoint, {})
        for k, v in spec.get(role, spec.get("*", {})).items():
            data[k] = str(w.ids[v.lower()]) if v.lower() in w.ids else v
    with rolled_back():
        try:
            resp = client.open(path, method=method, headers={"X-CSRFToken": token}, data=data)
        except Exception as exc:  # noqa: BLE001 - reported as a problem of this cell
            return f"error {type(exc).__name__}: {exc}"[:200], 500
    return classify(resp), resp.status_code


# ---------------------------------------------------------------- the tests

def test_every_route_is_declared_in_the_matrix(app):
    declared = set(M.MATRIX)
    present = {f"{rule.endpoint} {method}" for rule, method in routes(app)}
    assert not present - declared, f"routes missing from tests/security/access_matrix.py: {sorted(present - declared)}"
    assert not declared - present, f"matrix rows for routes that no longer exist: {sorted(declared - present)}"
    for key, row in M.MATRIX.items():
        assert len(M.parse(row)) == len(M.ROLES), key


def test_access_matrix(app, make, redis_url):
    w = build_world(app, make)
    client = app.test_client()
    # the harness would see a CSRF refusal (so a 400 counted as "ok" is never one)
    sign_in(app, client, w.users["employee"])
    assert classify(client.post("/attendance/leave", data={})) == "csrf"
    problems, checked = [], 0
    for rule, method in routes(app):
        expected = dict(zip(M.ROLES, M.parse(M.MATRIX[f"{rule.endpoint} {method}"])))
        for role in M.ROLES:
            got, status = run_cell(app, client, w, role, rule, method)
            checked += 1
            if not matches(expected[role], got):
                problems.append(f"{method} {rule.rule} ({rule.endpoint}) as {role}: expected {expected[role]}, "
                                f"got {got} [{status}]")
    assert not problems, f"{len(problems)} of {checked} cells differ:\n" + "\n".join(problems)
    assert checked > 1000


def test_a_session_opened_before_the_exit_is_refused(app, make):
    """The left employee's browser still holds the cookie of a session opened before the exit."""
    w = build_world(app, make)
    client = app.test_client()
    problems = []
    for rule, method in routes(app):
        row = dict(zip(M.ROLES, M.parse(M.MATRIX[f"{rule.endpoint} {method}"])))
        if method != "GET" or row["left"] != M.LOGIN or row["employee"] != M.OK:
            continue  # the pages the employee used while employed
        sign_in(app, client, w.left_old_token)
        resp = client.get(rule.build(url_values(app, w, rule.endpoint, rule), append_unknown=False)[1])
        if classify(resp) != M.LOGIN:
            problems.append(f"GET {rule.rule}: {resp.status_code}")
    assert not problems, problems
    assert client.get("/healthz").status_code == 200
