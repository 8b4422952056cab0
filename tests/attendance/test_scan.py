"""The daily anomaly scan (seed 004), late flags, the CLI, team/HR pages, exports, trend chart and
bounded query counts."""
from __future__ import annotations

import datetime as dt
import io

from sqlalchemy import func, select

from portal.attendance.models import Anomaly, AttendanceDay, Exemption, LeaveRequest
from portal.core import notify
from portal.core.db import db
from tests.attendance.helpers import count_queries, local, punch, team
from tests.conftest import login

THU = dt.date(2025, 3, 6)  # the last day the lead came in
GONE = [dt.date(2025, 3, 7) + dt.timedelta(days=i) for i in range(5)]  # Fri, Sat, Sun, Mon, Tue


def _scan(app, day):
    from portal.attendance import scan
    with app.app_context():
        res = scan.scan(day)
        db.session.commit()
        return res


def _anomalies():
    db.session.rollback()
    return db.session.scalars(select(Anomaly).order_by(Anomaly.id)).all()


def _alerts(user_id, template):
    return db.session.scalar(select(func.count()).select_from(notify.Notification).where(
        notify.Notification.user_id == user_id, notify.Notification.template_key == template,
        notify.Notification.channel == "inapp")) or 0


def test_seed_004_absence_alert_once_then_escalation_once(app, make):
    boss, [lead, colleague, away, exempt], hr, _dept = team(make, 4)
    for day in [THU] + GONE:
        if day.weekday() < 5:
            punch(app, colleague, day, 8, 58, "in")
            punch(app, colleague, day, 18, 2, "out")
    for person in (lead, away):
        punch(app, person, THU, 9, 0, "in")
        punch(app, person, THU, 18, 0, "out")
    db.session.add(LeaveRequest(employee_id=away.employee_id, kind="annual", start_date=GONE[0], end_date=GONE[-1],
                                status="approved"))
    for person in (exempt, boss, hr):  # the boss and HR are on the exempt list here
        db.session.add(Exemption(employee_id=person.employee_id))
    db.session.commit()

    _scan(app, THU)
    assert _anomalies() == []
    fri = _scan(app, GONE[0])
    [a] = _anomalies()
    assert (a.employee_id, a.kind, a.key_date, a.days) == (lead.employee_id, "absent", GONE[0], 1)
    assert fri.absent_alerts == 1 and fri.escalations == 0
    assert _alerts(boss.id, "attendance.absent") == 1 and _alerts(hr.id, "attendance.absent") == 1
    assert _alerts(lead.id, "attendance.absent") == 0
    away_day = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == away.employee_id,
                                                             AttendanceDay.work_date == GONE[0]))
    assert away_day.status == "leave"
    assert db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == exempt.employee_id)) is None

    for day in GONE[1:4]:  # Sat, Sun, Mon
        _scan(app, day)
    assert [x.kind for x in _anomalies()] == ["absent"]
    assert db.session.scalar(select(func.count()).select_from(AttendanceDay).where(
        AttendanceDay.employee_id == lead.employee_id, AttendanceDay.work_date.in_(GONE[1:3]))) == 0  # weekend

    tue = _scan(app, GONE[4])  # third working day
    kinds = [(x.kind, x.days, x.risk) for x in _anomalies()]
    assert kinds == [("absent", 1, False), ("escalation", 3, True)]
    assert tue.escalations == 1
    assert _alerts(hr.id, "attendance.escalation") == 1 and _alerts(boss.id, "attendance.escalation") == 1

    # once each: scanning again (clock and by hand) adds nothing
    for day in GONE:
        _scan(app, day)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["attendance", "scan", "--date", GONE[4].isoformat()])
    assert out.exit_code == 0, out.output
    assert "0 absence alert(s), 0 escalation(s)" in out.output
    assert len(_anomalies()) == 2
    assert _alerts(boss.id, "attendance.absent") == 1 and _alerts(hr.id, "attendance.escalation") == 1
    # the colleague who came in and the one on leave raised nothing
    assert {x.employee_id for x in _anomalies()} == {lead.employee_id}

    # HR sees the risk in the anomaly list and closes it with a note
    c = app.test_client()
    login(c, hr)
    page = c.get("/attendance/anomalies").get_data(as_text=True)
    assert lead.employee.name in page and "tag danger" in page
    from tests.conftest import csrf_token
    esc = [x for x in _anomalies() if x.kind == "escalation"][0]
    token = csrf_token(c, "/attendance/anomalies")
    assert c.post(f"/attendance/anomalies/{esc.id}/resolve", data={"csrf_token": token, "note": "联系上了"}
                  ).status_code == 303
    db.session.rollback()
    assert db.session.get(Anomaly, esc.id).status == "resolved"


def test_cli_rejects_a_bad_date(app):
    out = app.test_cli_runner().invoke(args=["attendance", "scan", "--date", "2025-13-01"])
    assert out.exit_code != 0 and "not a date" in out.output


def test_monthly_late_count_and_rise_flags(app, make):
    with app.app_context():
        from portal.attendance import services
        cfg = services.settings()
        cfg.late_count_threshold, cfg.late_rise_threshold = 3, 3
        db.session.commit()
    boss, [staff], hr, _dept = team(make)
    days = [dt.date(2025, 3, d) for d in (3, 4, 5, 6)]
    for d in days:
        punch(app, staff, d, 9, 20, "in")
        punch(app, staff, d, 18, 0, "out")
    res = _scan(app, days[-1])
    kinds = sorted(a.kind for a in _anomalies() if a.employee_id == staff.employee_id)
    assert kinds == ["late_count", "late_rise"]
    assert res.late_flags == 2
    before = len(_anomalies())
    _scan(app, days[-1])
    assert len(_anomalies()) == before  # idempotent


def test_team_page_query_count_does_not_grow_with_team_size(app, make):
    counts = []
    for size in (2, 9):
        boss, staff, _hr, _dept = team(make, size)
        for u in staff[:2]:
            from portal.attendance import services
            with app.app_context():
                services.clock(u, "in")
                db.session.commit()
        c = app.test_client()
        login(c, boss)
        c.get("/attendance/team")
        with count_queries() as seen:
            resp = c.get("/attendance/team")
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert html.count('data-state="') == size
        assert html.count('data-state="in"') == 2
        partial = c.get("/attendance/team", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert partial.lstrip().startswith('<div id="team-today"') and "<html" not in partial
        counts.append(len(seen))
    assert counts[0] == counts[1], counts


def test_hr_filters_exports_and_trend(app, make):
    boss, [a, b], hr, dept = team(make, 2)
    punch(app, a, dt.date(2025, 3, 3), 9, 30, "in")
    punch(app, a, dt.date(2025, 3, 3), 18, 0, "out")
    punch(app, b, dt.date(2025, 3, 3), 8, 50, "in")
    punch(app, b, dt.date(2025, 3, 3), 18, 0, "out")
    c = app.test_client()
    login(c, hr)
    page = c.get("/attendance/hr?start=2025-03-01&end=2025-03-31&status=late").get_data(as_text=True)
    assert a.employee.emp_no in page and b.employee.emp_no not in page
    with count_queries() as seen:
        c.get(f"/attendance/hr?start=2025-03-01&end=2025-03-31&department={dept.id}")
    assert len(seen) <= 20
    csv_resp = c.get("/attendance/hr/export?format=csv&start=2025-03-01&end=2025-03-31")
    assert csv_resp.status_code == 200 and csv_resp.mimetype == "text/csv"
    text = csv_resp.get_data().decode("utf-8-sig")
    assert a.employee.emp_no in text and "2025-03-03" in text and "late" in text
    xlsx = c.get("/attendance/hr/export?format=xlsx&start=2025-03-01&end=2025-03-31&status=late")
    from openpyxl import load_workbook
    ws = load_workbook(io.BytesIO(xlsx.get_data())).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][0] == a.employee.emp_no and rows[1][8] == 30
    from portal.core.audit import AuditEvent
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "attendance.exported")) == 2
    trend = c.get(f"/attendance/trend/{a.employee_id}?month=2025-03").get_data(as_text=True)
    assert "<svg" in trend and "<rect" in trend and "2025-03" in trend
    # a plain employee sees own trend, not a colleague's
    e = app.test_client()
    login(e, b)
    assert e.get(f"/attendance/trend/{a.employee_id}").status_code == 404
    assert e.get(f"/attendance/trend/{b.employee_id}").status_code == 200
    assert e.get("/attendance/hr").status_code == 403


def test_month_calendar_and_own_export(app, make):
    boss, [staff], hr, _dept = team(make)
    punch(app, staff, dt.date(2025, 3, 3), 9, 30, "in")
    c = app.test_client()
    login(c, staff)
    page = c.get("/attendance/month?month=2025-03").get_data(as_text=True)
    assert 'data-date="2025-03-03"' in page and "att-cell att-missing" in page
    assert "att-cell att-rest" in page  # weekends
    out = c.get("/attendance/records.csv?start=2025-03-01&end=2025-03-31")
    assert out.status_code == 200 and "2025-03-03" in out.get_data().decode("utf-8-sig")


def test_first_scan_statements_do_not_grow_with_the_number_of_alerts(app, make):
    """The messages of a first scan are written in one batch (notify.send_many), not statement by
    statement: 2 or 8 new absences, the same number of SQL statements. (SQLite returns no ordered ids from
    a multi-row INSERT, so there SQLAlchemy inserts the new rows one by one: there the rest is compared.)"""
    _scan(app, THU - dt.timedelta(days=7))  # settings and the default rule are created on first use
    sqlite = db.engine.dialect.name == "sqlite"
    row_inserts = ("INSERT INTO notifications ", "INSERT INTO attendance_anomalies ")
    counts, messages = [], []
    for size in (2, 8):
        boss, _staff, hr, _dept = team(make, size)
        for person in (boss, hr):
            db.session.add(Exemption(employee_id=person.employee_id))
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(notify.Notification))
        db.session.rollback()
        with count_queries() as seen:
            res = _scan(app, THU)
        assert res.absent_alerts == size
        counts.append(len([s for s in seen if not (sqlite and s.startswith(row_inserts))]))
        messages.append(db.session.scalar(select(func.count()).select_from(notify.Notification)) - before)
        db.session.rollback()
    assert messages[1] > messages[0] > 0
    assert counts[0] == counts[1], counts


def test_team_page_counts_everyone_and_shows_a_page(app, make):
    """A big team: the totals count every member, the table shows 50 at a time with a pager, and the
    30-second refresh keeps the page the manager is on."""
    import re
    boss, staff, _hr, _dept = team(make, 57)
    from portal.attendance import services
    with app.app_context():
        for u in staff[:3]:
            services.clock(u, "in")
        db.session.commit()
    c = app.test_client()
    login(c, boss)
    first = c.get("/attendance/team").get_data(as_text=True)
    assert first.count('data-state="') == 50 and 'rel="next"' in first
    second = c.get("/attendance/team?page=2").get_data(as_text=True)
    assert ">已上班 3<" in first and ">已上班 3<" in second  # the totals count the whole team on every page
    assert second.count('data-state="') == 7 and 'rel="prev"' in second
    names = lambda html: set(re.findall(r'data-label="[^"]*">([^<]+) <span class="muted">', html))
    assert not names(first) & names(second) and len(names(first) | names(second)) == 57
    assert 'hx-get="/attendance/team?page=2"' in second
