"""Leave requests and punch corrections with manager approval; both update the daily summary."""
from __future__ import annotations

import datetime as dt
import io

from sqlalchemy import select

from portal.attendance.models import AttendanceDay, Correction, LeaveRequest, Punch
from portal.core import notify
from portal.core.db import db
from tests.attendance.helpers import local, punch, team
from tests.conftest import csrf_token, login

TUE = dt.date(2025, 3, 4)


def _day(emp_id, day):
    db.session.rollback()
    return db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == emp_id,
                                                         AttendanceDay.work_date == day))


def _rule(app, **values):
    with app.app_context():
        from portal.attendance import services
        rule = services.default_rule()
        for k, v in values.items():
            setattr(rule, k, v)
        db.session.commit()


def test_correction_approval_updates_the_summary(app, make):
    _rule(app, correction_deadline_day=0)
    boss, [staff], hr, _dept = team(make)
    punch(app, staff, TUE, 8, 55, "in")
    assert _day(staff.employee_id, TUE).status == "missing"

    emp_client, boss_client = app.test_client(), app.test_client()
    login(emp_client, staff)
    login(boss_client, boss)
    token = csrf_token(emp_client, "/attendance/corrections")
    resp = emp_client.post("/attendance/corrections", data={
        "csrf_token": token, "work_date": TUE.isoformat(), "kind": "out", "time": "18:05",
        "reason": "忘记打卡 forgot", "attachment": (io.BytesIO(b"taxi receipt 18:20"), "receipt.txt")},
        content_type="multipart/form-data")
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    corr = db.session.scalar(select(Correction))
    assert corr.status == "pending" and corr.file_id is not None and corr.at == local(TUE, 18, 5)
    # the manager was told
    assert db.session.scalar(select(notify.Notification).where(
        notify.Notification.user_id == boss.id, notify.Notification.template_key == "attendance.correction_request"))
    assert corr.reason in boss_client.get("/attendance/approvals").get_data(as_text=True)
    assert boss_client.get(f"/attendance/corrections/{corr.id}/file").status_code == 200

    # the employee cannot approve their own correction
    token_e = csrf_token(emp_client, "/attendance/approvals")
    assert emp_client.post(f"/attendance/corrections/{corr.id}/decide",
                           data={"csrf_token": token_e, "decision": "approve"}).status_code == 403

    token_b = csrf_token(boss_client, "/attendance/approvals")
    ok = boss_client.post(f"/attendance/corrections/{corr.id}/decide",
                          data={"csrf_token": token_b, "decision": "approve", "note": "ok"})
    assert ok.status_code == 303
    day = _day(staff.employee_id, TUE)
    assert day.status == "normal" and day.last_out == local(TUE, 18, 5)
    assert day.worked_minutes == 9 * 60 + 10 - 60
    db.session.rollback()
    corr = db.session.get(Correction, corr.id)
    assert corr.status == "approved" and corr.punch_id is not None
    assert db.session.get(Punch, corr.punch_id).source == "correction"
    # history stays; deciding twice is refused
    again = boss_client.post(f"/attendance/corrections/{corr.id}/decide",
                             data={"csrf_token": token_b, "decision": "reject"})
    assert again.status_code == 303
    db.session.rollback()
    assert db.session.get(Correction, corr.id).status == "approved"
    assert "忘记打卡" in emp_client.get("/attendance/corrections").get_data(as_text=True)


def test_correction_limits_types_count_and_deadline(app, make):
    _rule(app, corrections_per_month=1, correction_deadline_day=0, correctable="missing")
    boss, [staff], hr, _dept = team(make)
    punch(app, staff, TUE, 8, 55, "in")
    punch(app, staff, TUE + dt.timedelta(days=1), 8, 55, "in")
    punch(app, staff, TUE + dt.timedelta(days=1), 18, 5, "out")
    from portal.attendance import services
    with app.app_context():
        from portal.core.models import User
        user = db.session.get(User, staff.id)
        # a normal day is not correctable under this rule
        try:
            services.request_correction(user, TUE + dt.timedelta(days=1), "in", dt.time(8, 50), "x")
            raise AssertionError("expected not_correctable")
        except services.AttendanceError as exc:
            assert exc.code == "not_correctable"
        services.request_correction(user, TUE, "out", dt.time(18), "forgot")
        db.session.commit()
        try:
            services.request_correction(user, TUE, "in", dt.time(8, 50), "again")
            raise AssertionError("expected limit_reached")
        except services.AttendanceError as exc:
            assert exc.code == "limit_reached"
        db.session.rollback()
    _rule(app, corrections_per_month=5, correction_deadline_day=5)
    client = app.test_client()
    login(client, staff)
    token = csrf_token(client, "/attendance/corrections")
    late = client.post("/attendance/corrections", data={"csrf_token": token, "work_date": TUE.isoformat(),
                                                        "kind": "in", "time": "08:50", "reason": "late ask"})
    assert late.status_code == 422
    assert "本月补卡的截止日期为" in late.get_data(as_text=True)  # default locale: Chinese
    assert db.session.scalar(select(Correction).where(Correction.reason == "late ask")) is None


def test_leave_request_approval_marks_days_on_leave(app, make):
    boss, [staff], hr, _dept = team(make)
    outsider = make.user(roles=("employee", "manager"))
    emp_client, boss_client, other_client = app.test_client(), app.test_client(), app.test_client()
    login(emp_client, staff)
    login(boss_client, boss)
    login(other_client, outsider)
    token = csrf_token(emp_client, "/attendance/leave")
    bad = emp_client.post("/attendance/leave", data={"csrf_token": token, "kind": "annual",
                                                     "start_date": "2025-03-11", "start_half": "am",
                                                     "end_date": "2025-03-10", "end_half": "pm"})
    assert bad.status_code == 422
    resp = emp_client.post("/attendance/leave", data={"csrf_token": token, "kind": "annual",
                                                      "start_date": "2025-03-10", "start_half": "am",
                                                      "end_date": "2025-03-11", "end_half": "am",
                                                      "reason": "家事"})
    assert resp.status_code == 303
    lv = db.session.scalar(select(LeaveRequest))
    assert lv.status == "pending" and lv.half_days == 3
    overlap = emp_client.post("/attendance/leave", data={"csrf_token": token, "kind": "sick",
                                                         "start_date": "2025-03-11", "start_half": "am",
                                                         "end_date": "2025-03-11", "end_half": "pm"})
    assert overlap.status_code == 422

    token_o = csrf_token(other_client, "/attendance/approvals")
    assert other_client.post(f"/attendance/leave/{lv.id}/decide",
                             data={"csrf_token": token_o, "decision": "approve"}).status_code == 403
    token_b = csrf_token(boss_client, "/attendance/approvals")
    assert boss_client.post(f"/attendance/leave/{lv.id}/decide",
                            data={"csrf_token": token_b, "decision": "approve"}).status_code == 303
    assert _day(staff.employee_id, dt.date(2025, 3, 10)).status == "leave"
    half = _day(staff.employee_id, dt.date(2025, 3, 11))
    assert half.status == "leave" and half.leave_half == "am"
    assert _day(staff.employee_id, dt.date(2025, 3, 9)) is None  # Sunday: no row
    assert db.session.scalar(select(notify.Notification).where(
        notify.Notification.user_id == staff.id, notify.Notification.template_key == "attendance.leave_decided"))
