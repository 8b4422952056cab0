"""Helpers for attendance tests: punches at local times, a query counter, a small team."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from portal.core.db import db

SH = ZoneInfo("Asia/Shanghai")


def local(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=SH).astimezone(dt.timezone.utc)


def punch(app, user, day: dt.date, hh: int, mm: int, kind: str, **kw):
    from portal.attendance import services
    with app.app_context():
        p, created = services.clock(user, kind, now=local(day, hh, mm), **kw)
        db.session.commit()
        return p, created


from tests.conftest import count_queries  # noqa: F401 (re-exported)


def team(make, n_reports: int = 1):
    """A department headed by a manager, ``n_reports`` employees, an HR user."""
    boss = make.user(roles=("employee", "manager"), name="李经理")
    dept = make.department("研发部", head=boss.employee)
    from portal.org.models import Employee
    emp = db.session.get(Employee, boss.employee_id)
    emp.department_id = dept.id
    db.session.commit()
    staff = [make.user(roles=("employee",), department=dept, manager=boss.employee) for _ in range(n_reports)]
    hr = make.user(roles=("employee", "hr"), name="人事")
    return boss, staff, hr, dept
