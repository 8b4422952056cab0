"""Reports per course / department / employee, scoped like every list; XLSX export; bounded query counts."""
from __future__ import annotations

import contextlib
import datetime as dt
import io

from openpyxl import load_workbook
from sqlalchemy import event, select

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.training import reports
from portal.training.models import Enrollment
from tests.conftest import login
from tests.training.helpers import build_course, en_user, enroll, finish_lessons


@contextlib.contextmanager
def count_queries():
    counter = {"n": 0}

    def before(*_args, **_kw):
        counter["n"] += 1

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _setup(app, make):
    trainer = en_user(make, roles=("trainer",))
    boss = make.employee("部门经理")
    manager = en_user(make, roles=("employee", "manager"), employee=boss)
    team = make.department("研发部", head=boss)
    other = make.department("财务部")
    mine = [en_user(make, department=team, manager=boss) for _ in range(2)]
    theirs = en_user(make, department=other)
    cid = build_course(app, trainer, lessons=1, bank={}, rules={})
    eids = [enroll(app, cid, u.employee) for u in mine]
    late_eid = enroll(app, cid, theirs.employee, due=dt.date.today() + dt.timedelta(days=1))
    with db.engine.begin() as conn:  # make one enrollment overdue
        from sqlalchemy import update
        conn.execute(update(Enrollment).where(Enrollment.id == late_eid)
                     .values(due_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)))
    c = app.test_client()
    login(c, mine[0])
    finish_lessons(c, eids[0])
    return trainer, manager, mine, theirs, cid


def test_course_and_department_stats_and_scope(app, make):
    trainer, manager, mine, theirs, cid = _setup(app, make)
    tc = app.test_client()
    login(tc, trainer)
    page = tc.get("/training/reports").get_data(as_text=True)
    assert "研发部" in page and "财务部" in page
    assert theirs.employee.name in page  # overdue list
    with app.app_context():
        from portal.core.models import User
        t = db.session.get(User, trainer.id)
        (course, s), = reports.course_stats(t)
        assert (s.assigned, s.started, s.completed, s.overdue, s.completion_rate) == (3, 1, 1, 1, 33)
        m = db.session.get(User, manager.id)
        (course, s), = reports.course_stats(m)  # the manager sees the team only
        assert (s.assigned, s.completed, s.overdue) == (2, 1, 0)
    mc = app.test_client()
    login(mc, manager)
    page = mc.get(f"/training/reports/courses/{cid}").get_data(as_text=True)
    assert mine[0].employee.name in page and theirs.employee.name not in page
    # history: own team yes, others no
    assert mc.get(f"/training/people/{mine[0].employee_id}").status_code == 200
    assert mc.get(f"/training/people/{theirs.employee_id}").status_code == 404
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "training.history_viewed"))
    # a plain employee: own history only, no reports
    ec = app.test_client()
    login(ec, mine[1])
    assert ec.get(f"/training/people/{mine[1].employee_id}").status_code == 200
    assert ec.get(f"/training/people/{mine[0].employee_id}").status_code == 404
    assert ec.get("/training/reports").status_code == 403
    assert ec.get("/training/studio").status_code == 403


def test_xlsx_export_is_scoped_and_audited(app, make):
    trainer, manager, mine, theirs, cid = _setup(app, make)
    mc = app.test_client()
    login(mc, manager)
    r = mc.get(f"/training/reports/courses/{cid}.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    wb = load_workbook(io.BytesIO(r.data))
    people = list(wb["people"].iter_rows(values_only=True))
    assert people[0][:3] == ("emp no", "name", "department")
    names = {row[1] for row in people[1:]}
    assert names == {u.employee.name for u in mine}
    tc = app.test_client()
    login(tc, trainer)
    wb = load_workbook(io.BytesIO(tc.get("/training/reports.xlsx").data))
    assert wb["courses"]["B2"].value == 3 and wb["courses"]["D2"].value == 1
    assert len(list(wb["people"].iter_rows())) == 4
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "training.report_exported"))


def test_training_summary_for_performance(app, make):
    trainer, manager, mine, theirs, cid = _setup(app, make)
    with app.app_context():
        s = reports.training_summary(mine[0].employee_id)
        assert s["assigned"] == 1 and s["completed"] == 1 and s["completion_rate"] == 1.0
        assert reports.training_summary(theirs.employee_id)["overdue"] == 1
        rows = reports.employee_history(mine[0].employee_id)
        assert rows[0].completions and rows[0].completions[0].version.number == 1


def test_page_query_counts_do_not_grow_with_rows(app, make):
    trainer = en_user(make, roles=("trainer", "hr"))
    learner = en_user(make)
    courses = [build_course(app, trainer, lessons=1, bank={}, rules={}, policy=True, title=f"课程{i}")
               for i in range(6)]
    client = app.test_client()
    login(client, learner)
    tc = app.test_client()
    login(tc, trainer)

    def counts():
        out = {}
        for name, c, path in (("my", client, "/training"), ("reports", tc, "/training/reports"),
                              ("studio", tc, "/training/studio"), ("compliance", tc, "/training/compliance"),
                              ("course", tc, f"/training/reports/courses/{courses[0]}")):
            with count_queries() as q:
                assert c.get(path).status_code == 200
            out[name] = q["n"]
        return out

    enroll(app, courses[0], learner.employee)
    for _ in range(3):
        enroll(app, courses[0], make.employee())
    few = counts()
    for cid in courses[1:]:
        enroll(app, cid, learner.employee)
    for _ in range(10):
        enroll(app, courses[0], make.employee())
    many = counts()
    assert many["my"] == few["my"]
    assert many["reports"] == few["reports"]
    assert many["studio"] == few["studio"]
    assert many["course"] == few["course"]
    # compliance: a fixed number of queries per policy course, not per person (6 courses both times)
    assert many["compliance"] == few["compliance"]
    assert all(n < 40 for n in many.values()), many
