"""Read side: month calendar, team today, team month grid, HR list, exports, trend chart data.
Every page reads the daily summary (never raw punches for more than one person) with a fixed number
of queries whatever the team size."""
from __future__ import annotations

import calendar as pycal
import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import and_, exists, false, or_, select

from portal.attendance import engine, services
from portal.attendance.models import AttendanceDay, LeaveRequest, Punch
from portal.core.db import db
from portal.core.security import managed_department_ids
from portal.org.models import Department, Employee

EXPORT_LIMIT = 100_000


def parse_month(value: str | None, default: dt.date) -> dt.date:
    try:
        y, m = (int(x) for x in (value or "").split("-"))
        return dt.date(y, m, 1)
    except (ValueError, TypeError):
        return default.replace(day=1)


def month_days(month: dt.date) -> list[dt.date]:
    n = pycal.monthrange(month.year, month.month)[1]
    return [month.replace(day=i) for i in range(1, n + 1)]


def shift_month(month: dt.date, delta: int) -> dt.date:
    y, m = divmod(month.year * 12 + month.month - 1 + delta, 12)
    return dt.date(y, m + 1, 1)


@dataclass
class Cell:
    day: dt.date
    status: str  # a summary status, or "", "future"
    row: Optional[AttendanceDay] = None
    weekday: int = 0


def my_month(emp: Employee, month: dt.date) -> dict[str, Any]:
    days = month_days(month)
    rows = {r.work_date: r for r in db.session.scalars(select(AttendanceDay).where(
        AttendanceDay.employee_id == emp.id, AttendanceDay.work_date.between(days[0], days[-1])))}
    cal = services.overrides(days[0], days[-1])
    today = services.today()
    cells = []
    for d in days:
        row = rows.get(d)
        if row is not None:
            status = row.status
        else:
            kind, _ = engine.day_kind(d, cal)
            status = kind if kind in ("rest", "holiday") else ("future" if d >= today else "")
        cells.append(Cell(d, status, row, d.weekday()))
    lead = [None] * days[0].weekday()
    totals = {
        "worked": sum(r.worked_minutes for r in rows.values()),
        "late": sum(1 for r in rows.values() if r.late_minutes),
        "absent": sum(1 for r in rows.values() if r.status == "absent"),
        "missing": sum(1 for r in rows.values() if r.status == "missing"),
    }
    return {"cells": lead + cells, "totals": totals}


# ---------------------------------------------------------------- team

def team_condition(user):
    me = getattr(user, "employee_id", None)
    if not me:
        return false()
    conds = [Employee.manager_id == me]
    depts = managed_department_ids(user)
    if depts:
        conds.append(Employee.department_id.in_(depts))
    return and_(or_(*conds), Employee.id != me, Employee.status.in_(("active", "notice")))


def team_today(user, day: dt.date) -> list[dict]:
    """One query: each team member, today's summary row (if any), approved leave today."""
    on_leave = exists(select(LeaveRequest.id).where(
        LeaveRequest.employee_id == Employee.id, LeaveRequest.status == "approved",
        LeaveRequest.start_date <= day, LeaveRequest.end_date >= day)).label("on_leave")
    stmt = (select(Employee, AttendanceDay, on_leave)
            .outerjoin(AttendanceDay, and_(AttendanceDay.employee_id == Employee.id,
                                           AttendanceDay.work_date == day))
            .where(team_condition(user))
            .order_by(Employee.name, Employee.id).limit(500))
    out = []
    for emp, row, leave in db.session.execute(stmt):
        if leave and (row is None or row.first_in is None):
            state = "leave"
        elif row is None:
            state = "none"
        elif row.status in ("rest", "holiday", "absent", "leave"):
            state = row.status
        elif row.last_out is not None and row.first_in is not None:
            state = "out"
        elif row.first_in is not None:
            state = "in"
        else:
            state = "none"
        out.append({"emp": emp, "row": row, "state": state, "late": bool(row and row.late_minutes)})
    return out


def team_month(user, month: dt.date, page: int, per_page: int):
    from portal.core.ui import paginate
    days = month_days(month)
    stmt = select(Employee).where(team_condition(user)).order_by(Employee.name, Employee.id)
    pg = paginate(stmt, page, per_page)
    ids = [e.id for e in pg.items]
    grid: dict[int, dict[dt.date, AttendanceDay]] = {i: {} for i in ids}
    if ids:
        for r in db.session.scalars(select(AttendanceDay).where(
                AttendanceDay.employee_id.in_(ids), AttendanceDay.work_date.between(days[0], days[-1]))):
            grid[r.employee_id][r.work_date] = r
    cal = services.overrides(days[0], days[-1])
    kinds = {d: engine.day_kind(d, cal)[0] for d in days}
    return pg, days, grid, kinds


# ---------------------------------------------------------------- HR

@dataclass
class DayFilter:
    department_id: Optional[int] = None
    status: str = ""
    start: Optional[dt.date] = None
    end: Optional[dt.date] = None
    q: str = ""
    args: dict = field(default_factory=dict)


def _date_arg(value: str | None) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_filter(args, default_day: dt.date) -> DayFilter:
    try:
        dept = int(args.get("department") or 0) or None
    except ValueError:
        dept = None
    start = _date_arg(args.get("start")) or default_day.replace(day=1)
    end = _date_arg(args.get("end")) or default_day
    if end < start:
        start, end = end, start
    status = args.get("status", "")
    return DayFilter(dept, status, start, end, (args.get("q") or "").strip()[:80])


def days_query(flt: DayFilter, user):
    from portal.core.security import scoped
    stmt = (select(AttendanceDay, Employee)
            .join(Employee, Employee.id == AttendanceDay.employee_id)
            .where(AttendanceDay.work_date.between(flt.start, flt.end)))
    if flt.department_id:
        from portal.org.services import subtree_ids
        stmt = stmt.where(Employee.department_id.in_(subtree_ids(flt.department_id)))
    if flt.status:
        stmt = stmt.where(AttendanceDay.status == flt.status)
    if flt.q:
        from portal.org.services import search_condition
        stmt = stmt.where(search_condition(flt.q))
    stmt = scoped(stmt, user, "attendance.view_all")
    return stmt.order_by(AttendanceDay.work_date.desc(), Employee.emp_no)


EXPORT_HEADER = ["工号 Employee no.", "姓名 Name", "部门 Department", "日期 Date", "状态 Status",
                 "上班 First in", "下班 Last out", "工作分钟 Worked min", "迟到分钟 Late min",
                 "早退分钟 Early min", "外勤 Outside"]


def export_rows(flt: DayFilter, user):
    from portal.core.ui import local
    stmt = days_query(flt, user).add_columns(Department.name).outerjoin(
        Department, Department.id == Employee.department_id).limit(EXPORT_LIMIT)
    for day, emp, dept_name in db.session.execute(stmt):
        yield [emp.emp_no, emp.name, dept_name or "", day.work_date.isoformat(), day.status,
               local(day.first_in).strftime("%H:%M") if day.first_in else "",
               local(day.last_out).strftime("%H:%M") if day.last_out else "",
               day.worked_minutes, day.late_minutes, day.early_minutes, "Y" if day.outside else ""]


def to_csv(rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(EXPORT_HEADER)
    n = 0
    for r in rows:
        w.writerow(r)
        n += 1
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows) -> bytes:
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("attendance")
    ws.append(EXPORT_HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def my_punch_rows(emp: Employee, start: dt.date, end: dt.date):
    from portal.core.ui import local
    for p in db.session.scalars(select(Punch).where(Punch.employee_id == emp.id,
                                                    Punch.work_date.between(start, end)).order_by(Punch.at)):
        yield [p.work_date.isoformat(), p.kind, local(p.at).strftime("%Y-%m-%d %H:%M:%S"), p.source, p.method,
               p.note]


# ---------------------------------------------------------------- trend chart

@dataclass
class TrendPoint:
    month: dt.date
    late: int
    worked_hours: float


def trend(emp_id: int, end_month: dt.date, months: int = 12) -> list[TrendPoint]:
    first = shift_month(end_month, -(months - 1))
    last = shift_month(end_month, 1) - dt.timedelta(days=1)
    points = {shift_month(first, i): TrendPoint(shift_month(first, i), 0, 0.0) for i in range(months)}
    for work_date, late, worked in db.session.execute(
            select(AttendanceDay.work_date, AttendanceDay.late_minutes, AttendanceDay.worked_minutes)
            .where(AttendanceDay.employee_id == emp_id, AttendanceDay.work_date.between(first, last))):
        p = points[work_date.replace(day=1)]
        p.late += 1 if late else 0
        p.worked_hours += worked / 60
    return list(points.values())


def chart(points: list[TrendPoint], width: int = 640, height: int = 260) -> dict[str, Any]:
    """Coordinates for the SVG template: late count as bars (left axis), hours as a line (right axis)."""
    left, right, top, bottom = 36, 44, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(points))
    step = plot_w / n
    max_late = max([p.late for p in points] + [4])
    max_hours = max([p.worked_hours for p in points] + [8.0])
    bars, line, labels = [], [], []
    for i, p in enumerate(points):
        x = left + i * step
        h = plot_h * p.late / max_late
        bars.append({"x": round(x + step * 0.2, 1), "y": round(top + plot_h - h, 1),
                     "w": round(step * 0.6, 1), "h": round(h, 1), "value": p.late})
        line.append((round(x + step / 2, 1), round(top + plot_h - plot_h * p.worked_hours / max_hours, 1)))
        labels.append({"x": round(x + step / 2, 1), "text": p.month.strftime("%m"),
                       "hours": round(p.worked_hours, 1), "late": p.late, "month": p.month.strftime("%Y-%m")})
    return {"width": width, "height": height, "left": left, "right": width - right, "top": top,
            "bottom": top + plot_h, "bars": bars, "labels": labels,
            "line": " ".join(f"{x},{y}" for x, y in line), "points": line,
            "max_late": max_late, "max_hours": round(max_hours)}
