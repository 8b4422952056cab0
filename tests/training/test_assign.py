"""Assignments to people, departments (with sub-departments) and positions; new hires get the course
automatically (idempotent job); reminders before the due date and when overdue; learning time per lesson."""
from __future__ import annotations

import datetime as dt

import time_machine
from flask import url_for
from sqlalchemy import func, select

from portal.core import notify, reminders
from portal.core.db import db
from portal.training import assign
from portal.training.models import Assignment, Enrollment, LessonProgress
from tests.conftest import login
from tests.training.helpers import build_course, en_user, enroll, fresh, token

UTC = dt.timezone.utc


def _enrolled(course_id) -> set[int]:
    db.session.rollback()
    return set(db.session.scalars(select(Enrollment.employee_id).where(Enrollment.course_id == course_id)))


def test_assign_to_department_subtree_position_and_people(app, make):
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer)
    sales = make.department("销售部")
    east = make.department("华东销售", parent=sales)
    other = make.department("研发部")
    pos = make.position("司机")
    a1 = make.employee("甲", department=sales)
    a2 = make.employee("乙", department=east)
    gone = make.employee("丙", department=east, status="left")
    b1 = make.employee("丁", department=other)
    d1 = make.employee("戊", department=other, position_id=pos.id)
    e1 = make.employee("己", department=other, emp_no="X100")
    learner_user = en_user(make, employee=a2)
    client = app.test_client()
    login(client, trainer)
    url = f"/training/studio/{cid}/assignments"
    t = token(client, url)
    due = (dt.date.today() + dt.timedelta(days=14)).isoformat()
    r = client.post(url, data={"csrf_token": t, "target_type": "department", "department_id": str(sales.id),
                               "include_subdepartments": "y", "due_date": due, "new_hire_days": "20"})
    assert r.status_code == 303
    assert _enrolled(cid) == {a1.id, a2.id}  # the leaver is not enrolled; sub-department included
    r = client.post(url, data={"csrf_token": t, "target_type": "position", "position_id": str(pos.id),
                               "due_date": due, "new_hire_days": "20"})
    assert r.status_code == 303 and _enrolled(cid) == {a1.id, a2.id, d1.id}
    bad = client.post(url, data={"csrf_token": t, "target_type": "employee", "people": "X100, NOPE",
                                 "due_date": due, "new_hire_days": "20"})
    assert bad.status_code == 422 and "NOPE" in bad.get_data(as_text=True)
    assert _enrolled(cid) == {a1.id, a2.id, d1.id}  # nothing half-saved
    past = client.post(url, data={"csrf_token": t, "target_type": "employee", "people": "X100",
                                  "due_date": "2020-01-01", "new_hire_days": "20"})
    assert past.status_code == 422
    r = client.post(url, data={"csrf_token": t, "target_type": "employee", "people": "X100",
                               "due_date": due, "new_hire_days": "20"})
    assert r.status_code == 303 and _enrolled(cid) == {a1.id, a2.id, d1.id, e1.id}
    assert b1.id not in _enrolled(cid) and gone.id not in _enrolled(cid)
    # the learner with an account is told and gets reminders; the due date is the end of that day
    assert db.session.scalar(select(notify.Notification).where(
        notify.Notification.user_id == learner_user.id, notify.Notification.template_key == "training.assigned"))
    e = db.session.scalar(select(Enrollment).where(Enrollment.employee_id == a2.id))
    local_due = e.due_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert local_due.date().isoformat() == due and local_due.hour == 23
    kinds = set(db.session.scalars(select(reminders.Reminder.kind).where(
        reminders.Reminder.user_id == learner_user.id)))
    assert kinds == {"training.due", "training.due.overdue"}
    # an employee sees it in "my learning"
    lc = app.test_client()
    login(lc, learner_user)
    assert "绩效管理制度培训" in lc.get("/training").get_data(as_text=True)


def test_new_hires_get_the_course_automatically_and_the_job_is_idempotent(app, make):
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer)
    dept = make.department("客服部")
    make.employee("老员工", department=dept)
    with app.app_context():
        from portal.training.models import Course
        course = db.session.get(Course, cid)
        assign.create_assignment(course, trainer, "department", dept.id, dt.date.today() + dt.timedelta(days=7),
                                 new_hire_days=30)
        db.session.commit()
    assert len(_enrolled(cid)) == 1
    newbie = make.employee("新员工", department=dept)
    with app.app_context():
        assert assign.sync() == 1
        assert assign.sync() == 0  # twice: nothing more
    assert newbie.id in _enrolled(cid)
    e = db.session.scalar(select(Enrollment).where(Enrollment.employee_id == newbie.id))
    # a new hire gets their own time: today + 30 days
    expected = dt.date.today() + dt.timedelta(days=30)
    assert abs((e.due_at.astimezone(UTC).date() - expected).days) <= 1
    # someone moving into the department is picked up too; a stopped assignment adds nobody
    mover = make.employee("调岗员工")
    from portal.org.models import Employee
    db.session.get(Employee, mover.id).department_id = dept.id
    db.session.commit()
    a = db.session.scalar(select(Assignment))
    a_id = a.id
    with app.app_context():
        assign.revoke_assignment(db.session.get(Assignment, a_id), trainer)
        db.session.commit()
        assert assign.sync() == 0
    assert mover.id not in _enrolled(cid)


def test_reminders_before_due_and_when_overdue_stop_on_completion(app, make):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, lessons=1, bank={}, rules={})
    due = dt.date(2030, 6, 30)
    eid = enroll(app, cid, learner.employee, due=due)

    def inapp_reminders():
        db.session.rollback()
        return db.session.scalar(select(func.count()).select_from(notify.Notification).where(
            notify.Notification.user_id == learner.id, notify.Notification.template_key == "reminder",
            notify.Notification.channel == "inapp"))

    with app.app_context():
        reminders.dispatch(dt.datetime(2030, 6, 20, 2, tzinfo=UTC))
    assert inapp_reminders() == 0
    with app.app_context():
        reminders.dispatch(dt.datetime(2030, 6, 28, 2, tzinfo=UTC))  # 3 days before
    assert inapp_reminders() == 1
    with app.app_context():
        reminders.dispatch(dt.datetime(2030, 6, 30, 2, tzinfo=UTC))  # the day before (company time)
    assert inapp_reminders() == 2
    with app.app_context():
        reminders.dispatch(dt.datetime(2030, 7, 1, 2, tzinfo=UTC))  # overdue
    assert inapp_reminders() == 3
    body = db.session.scalar(select(notify.Notification.body).where(notify.Notification.template_key == "reminder"))
    assert "绩效管理制度培训" in body
    # completing the course stops further reminders
    client = app.test_client()
    login(client, learner)
    from tests.training.helpers import finish_lessons
    finish_lessons(client, eid)
    assert fresh(Enrollment, eid).status == "completed"
    with app.app_context():
        reminders.dispatch(dt.datetime(2030, 7, 10, 2, tzinfo=UTC))
    assert inapp_reminders() == 3


def test_learning_time_per_lesson_is_measured_by_the_server(app, make):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, lessons=2, bank={}, rules={})
    eid = enroll(app, cid, learner.employee)
    client = app.test_client()
    login(client, learner)
    e = fresh(Enrollment, eid)
    first, second = [l.id for l in e.version.lessons]
    t = token(client, "/training")
    start = dt.datetime.now(UTC)
    with time_machine.travel(start, tick=False) as traveller:
        assert client.get(f"/training/learn/{eid}/lessons/{first}").status_code == 200
        assert fresh(Enrollment, eid).status == "in_progress"
        traveller.move_to(start + dt.timedelta(seconds=60))
        assert client.post(f"/training/learn/{eid}/lessons/{first}/ping", data={"csrf_token": t}).status_code == 204
        traveller.move_to(start + dt.timedelta(seconds=110))
        client.post(f"/training/learn/{eid}/lessons/{first}/ping", data={"csrf_token": t})
        # the tab was left open for an hour: that hour does not count
        traveller.move_to(start + dt.timedelta(hours=1, seconds=110))
        client.post(f"/training/learn/{eid}/lessons/{first}/ping", data={"csrf_token": t})
        traveller.move_to(start + dt.timedelta(hours=1, seconds=140))
        r = client.post(f"/training/learn/{eid}/lessons/{first}/done", data={"csrf_token": t})
        assert r.headers["Location"].endswith(f"/lessons/{second}")
    p = db.session.scalar(select(LessonProgress).where(LessonProgress.lesson_id == first))
    assert p.seconds == 140 and p.completed_at is not None
    assert fresh(Enrollment, eid).learning_seconds == 140
    page = client.get(f"/training/learn/{eid}").get_data(as_text=True)
    assert "1/2" in page and "2 min" in page


def test_reminder_link_matches_the_route(app):
    with app.test_request_context():
        assert url_for("training.course_view", enrollment_id=42) == assign.LEARN_PATH.format(id=42)


def test_cli_sync_enrolls_new_members(app, make):
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer)
    pos = make.position("仓管")
    with app.app_context():
        from portal.training.models import Course
        assign.create_assignment(db.session.get(Course, cid), trainer, "position", pos.id,
                                 dt.date.today() + dt.timedelta(days=7))
        db.session.commit()
    hire = make.employee("新仓管", position_id=pos.id)
    result = app.test_cli_runner().invoke(args=["training", "sync"])
    assert result.exit_code == 0 and "1 enrollment(s) created" in result.output
    assert hire.id in _enrolled(cid)
