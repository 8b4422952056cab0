"""HR administration pages: rules with members, calendar import and overrides, settings, sites, shifts."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from portal.attendance.models import (AttendanceDay, AttendanceRule, CalendarDay, Exemption, RuleMember, Settings,
                                      Shift, ShiftAssignment, WorkSite)
from portal.core.db import db
from tests.attendance.helpers import punch, team
from tests.conftest import csrf_token, login


def test_hr_manages_rules_calendar_settings_and_shifts(app, make):
    boss, [staff], hr, dept = team(make)
    c = app.test_client()
    login(c, hr)
    for path in ("/attendance/rules", "/attendance/rules/new", "/attendance/settings", "/attendance/calendar",
                 "/attendance/anomalies", "/attendance/hr", "/attendance/team/month", "/attendance/approvals"):
        assert c.get(path).status_code == 200, path
    token = csrf_token(c, "/attendance/rules/new")
    bad = c.post("/attendance/rules/new", data={"csrf_token": token, "name": "夜班组", "kind": "fixed",
                                                "start": "22:00", "end": "06:00", "grace_minutes": "10",
                                                "early_grace_minutes": "0", "break_minutes": "0",
                                                "ip_ranges": "10.0.0.0/8\nnot-a-range", "corrections_per_month": "3",
                                                "correction_deadline_day": "5"})
    assert bad.status_code == 422 and "not-a-range" in bad.get_data(as_text=True)
    ok = c.post("/attendance/rules/new", data={"csrf_token": token, "name": "夜班组", "kind": "fixed",
                                               "start": "22:00", "end": "06:00", "grace_minutes": "10",
                                               "early_grace_minutes": "0", "break_minutes": "0",
                                               "corrections_per_month": "3", "correction_deadline_day": "5",
                                               "correctable": ["missing", "absent"]})
    assert ok.status_code == 303
    rule = db.session.scalar(select(AttendanceRule).where(AttendanceRule.name == "夜班组"))
    assert (rule.start_minute, rule.end_minute, rule.correctable) == (22 * 60, 6 * 60, "missing,absent")
    r = c.post(f"/attendance/rules/{rule.id}/members", data={"csrf_token": token, "employees": "NOPE"})
    assert r.status_code == 422
    r = c.post(f"/attendance/rules/{rule.id}/members",
               data={"csrf_token": token, "employees": staff.employee.emp_no})
    assert r.status_code == 303
    assert db.session.scalar(select(RuleMember.employee_id).where(RuleMember.rule_id == rule.id)) == staff.employee_id
    # the night rule now places a 06:03 clock-out on the previous day's shift
    punch(app, staff, dt.date(2025, 3, 4), 21, 55, "in")
    p, _ = punch(app, staff, dt.date(2025, 3, 5), 6, 3, "out")
    assert p.work_date == dt.date(2025, 3, 4)
    day = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == staff.employee_id))
    assert day.status == "normal" and day.worked_minutes == 8 * 60 + 8

    r = c.post("/attendance/calendar/import", data={"csrf_token": token, "year": "2025"})
    assert r.status_code == 303
    assert db.session.scalar(select(CalendarDay).where(CalendarDay.day == dt.date(2025, 9, 28))).kind == "workday"
    r = c.post("/attendance/calendar/day", data={"csrf_token": token, "day": "2025-03-07", "kind": "holiday",
                                                 "name": "公司周年"})
    assert r.status_code == 303
    c.post("/attendance/calendar/import", data={"csrf_token": token, "year": "2025"})  # manual day kept
    db.session.rollback()
    assert db.session.scalar(select(CalendarDay).where(CalendarDay.day == dt.date(2025, 3, 7))).source == "manual"
    r = c.post("/attendance/calendar/import", data={"csrf_token": token, "year": "2099"})
    assert r.status_code == 303 and "2099" in c.get(r.headers["Location"]).get_data(as_text=True)

    r = c.post("/attendance/settings", data={"csrf_token": token, "geofence_enabled": "y",
                                             "escalate_after_days": "2", "late_count_threshold": "5",
                                             "late_rise_threshold": "3", "alert_channels": ["inapp"],
                                             "escalation_channels": ["inapp", "sms"],
                                             "exemptions": boss.employee.emp_no})
    assert r.status_code == 303
    db.session.rollback()
    cfg = db.session.get(Settings, 1)
    assert cfg.geofence_enabled and cfg.escalate_after_days == 2 and cfg.escalation_channels == "inapp,sms"
    assert db.session.scalar(select(Exemption.employee_id)) == boss.employee_id
    assert c.post("/attendance/sites", data={"csrf_token": token, "name": "总部", "latitude": "95",
                                             "longitude": "121", "radius_m": "200"}).status_code == 422
    assert c.post("/attendance/sites", data={"csrf_token": token, "name": "总部", "latitude": "31.23",
                                             "longitude": "121.47", "radius_m": "200"}).status_code == 303
    assert db.session.scalar(select(WorkSite.name)) == "总部"
    assert c.post("/attendance/shifts", data={"csrf_token": token, "code": "N", "name": "夜班", "start": "22:00",
                                              "end": "06:00", "grace_minutes": "5",
                                              "break_minutes": "0"}).status_code == 303
    r = c.post("/attendance/shifts/assign", data={"csrf_token": token, "employees": staff.employee.emp_no,
                                                  "shift": "N", "start_date": "2025-04-01", "end_date": "2025-04-03"})
    assert r.status_code == 303
    assert len(db.session.scalars(select(ShiftAssignment)).all()) == 3
