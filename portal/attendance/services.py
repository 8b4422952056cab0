"""Attendance rules and writes (no request object here): clock in/out, the daily summary, leave,
corrections, calendar, settings. The anomaly scan lives in ``scan.py``."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Optional
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import lazy_ngettext
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.orm import aliased

from portal.attendance import engine
from portal.attendance.labels import KIND_LABELS, NOTICE_TITLES, PUNCH_LABELS, REQUEST_STATUS_LABELS, label
from portal.attendance.models import (LEAVE_KINDS, AttendanceDay, AttendanceRule, CalendarDay, Correction,
                                      Exemption, LeaveRequest, LocationConsent, Punch, RuleMember, Settings,
                                      Shift, ShiftAssignment, WorkSite)
from portal.core import audit, notify
from portal.core.db import db, utcnow
from portal.core.security import N_
from portal.org.models import Employee

DEFAULT_RULE_NAME = "Standard hours"


class AttendanceError(ValueError):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


notify.register_template("attendance.leave_request", notify.Template(
    N_("Leave request from %(name)s"),
    N_("%(name)s asks for %(kind)s from %(start)s to %(end)s. Open the portal to approve or reject.")))
notify.register_template("attendance.leave_decided", notify.Template(
    N_("Your leave request: %(decision)s"),
    N_("Your %(kind)s from %(start)s to %(end)s: %(decision)s. %(note)s")))
notify.register_template("attendance.correction_request", notify.Template(
    N_("Punch correction request from %(name)s"),
    N_("%(name)s asks to correct the %(kind)s of %(date)s: %(reason)s")))
notify.register_template("attendance.correction_decided", notify.Template(
    N_("Your punch correction: %(decision)s"),
    N_("Your correction of %(date)s: %(decision)s. %(note)s")))


def tz() -> ZoneInfo:
    name = current_app.config["TIMEZONE"] if has_app_context() else "Asia/Shanghai"
    return ZoneInfo(name)


def today() -> dt.date:
    return dt.datetime.now(tz()).date()


# ---------------------------------------------------------------- settings, rules, calendar

def settings() -> Settings:
    row = db.session.get(Settings, 1)
    if row is None:
        row = Settings(id=1)
        db.session.add(row)
        db.session.flush()
    return row


def default_rule() -> AttendanceRule:
    rule = db.session.scalar(select(AttendanceRule).where(AttendanceRule.is_default.is_(True))
                             .order_by(AttendanceRule.id).limit(1))
    if rule is None:
        rule = AttendanceRule(name=DEFAULT_RULE_NAME, kind="fixed", is_default=True, start_minute=9 * 60,
                              end_minute=18 * 60, grace_minutes=5, break_start_minute=12 * 60,
                              break_minutes=60)
        db.session.add(rule)
        db.session.flush()
    return rule


def rule_for(emp: Employee) -> AttendanceRule:
    """Employee entry > department entry > the default rule."""
    em, dm = aliased(RuleMember), aliased(RuleMember)
    row = db.session.execute(
        select(em.rule_id, dm.rule_id)
        .select_from(Employee)
        .outerjoin(em, em.employee_id == Employee.id)
        .outerjoin(dm, and_(dm.department_id == Employee.department_id, Employee.department_id.is_not(None)))
        .where(Employee.id == emp.id)).first()
    rule_id = (row[0] or row[1]) if row else None
    if rule_id:
        rule = db.session.get(AttendanceRule, rule_id)
        if rule is not None:
            return rule
    return default_rule()


def is_exempt(emp_id: int) -> bool:
    return db.session.scalar(select(Exemption.id).where(Exemption.employee_id == emp_id)) is not None


def overrides(start: dt.date, end: dt.date) -> dict[dt.date, str]:
    return {d: k for d, k in db.session.execute(
        select(CalendarDay.day, CalendarDay.kind).where(CalendarDay.day.between(start, end)))}


def rule_hours(rule: AttendanceRule | Shift) -> engine.Hours:
    return engine.Hours(rule.start_minute, rule.end_minute, rule.grace_minutes, rule.early_grace_minutes,
                        rule.break_start_minute, rule.break_minutes)


@dataclass
class DayPlan:
    kind: str  # work | rest | holiday
    schedule: Optional[engine.Schedule]
    flexible: bool


def plan_day(rule: AttendanceRule, day: dt.date, cal: dict[dt.date, str],
             shifts: dict[dt.date, Optional[Shift]] | None, zone: ZoneInfo) -> DayPlan:
    kind, _name = engine.day_kind(day, cal)
    if rule.kind == "shift":
        if kind == "holiday":
            return DayPlan("holiday", None, False)
        shift = (shifts or {}).get(day)
        if shift is None:
            return DayPlan("rest", None, False)
        return DayPlan("work", engine.make_schedule(day, rule_hours(shift), zone), False)
    if rule.kind == "flexible":
        return DayPlan(kind, None, True)
    sched = engine.make_schedule(day, rule_hours(rule), zone) if kind == "work" else None
    return DayPlan(kind, sched, False)


def shifts_for(emp_id: int, start: dt.date, end: dt.date) -> dict[dt.date, Optional[Shift]]:
    rows = db.session.scalars(select(ShiftAssignment).where(
        ShiftAssignment.employee_id == emp_id, ShiftAssignment.work_date.between(start, end))).all()
    return {a.work_date: a.shift for a in rows}


def leave_on(emp_id: int, day: dt.date) -> str:
    leaves = db.session.scalars(select(LeaveRequest).where(
        LeaveRequest.employee_id == emp_id, LeaveRequest.status == "approved",
        LeaveRequest.start_date <= day, LeaveRequest.end_date >= day)).all()
    covers = {engine.leave_cover(day, lv.start_date, lv.start_half, lv.end_date, lv.end_half) for lv in leaves}
    covers.discard("")
    if "full" in covers or {"am", "pm"} <= covers:
        return "full"
    return covers.pop() if covers else ""


# ---------------------------------------------------------------- the daily summary

def _day_over(plan: DayPlan, day: dt.date, now: dt.datetime, zone: ZoneInfo) -> bool:
    if plan.schedule is not None:
        return now > plan.schedule.end
    end_of_day = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return now >= end_of_day


def _upsert_day(emp_id: int, day: dt.date, res: engine.DayResult | None) -> AttendanceDay | None:
    row = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == emp_id,
                                                        AttendanceDay.work_date == day))
    if res is None:
        if row is not None:
            db.session.delete(row)
        return None
    if row is None:
        row = AttendanceDay(employee_id=emp_id, work_date=day, status=res.status)
        db.session.add(row)
    row.status = res.status
    row.first_in, row.last_out = res.first_in, res.last_out
    row.worked_minutes, row.late_minutes, row.early_minutes = (res.worked_minutes, res.late_minutes,
                                                               res.early_minutes)
    row.leave_half, row.outside = res.leave_half, res.outside
    row.scheduled_start, row.scheduled_end = res.scheduled_start, res.scheduled_end
    row.computed_at = utcnow()
    return row


def compute_day(emp: Employee, day: dt.date, now: dt.datetime | None = None,
                rule: AttendanceRule | None = None) -> engine.DayResult | None:
    """The summary of one (employee, day), or None when the day needs no row (rest without punches, a
    working day not over yet, an exempt person without punches)."""
    now = now or utcnow()
    zone = tz()
    rule = rule or rule_for(emp)
    cal = overrides(day, day)
    shifts = shifts_for(emp.id, day, day) if rule.kind == "shift" else None
    plan = plan_day(rule, day, cal, shifts, zone)
    punches = [engine.PunchIn(p.at, p.kind, p.method == "outside") for p in db.session.scalars(
        select(Punch).where(Punch.employee_id == emp.id, Punch.work_date == day))]
    leave = leave_on(emp.id, day) if plan.kind == "work" else ""
    if not punches:
        if plan.kind != "work" or is_exempt(emp.id):
            return None
        if not leave and not _day_over(plan, day, now, zone):
            return None
    return engine.evaluate(plan.kind, punches, plan.schedule, leave, plan.flexible)


def recompute_day(emp: Employee, day: dt.date, now: dt.datetime | None = None,
                  rule: AttendanceRule | None = None) -> AttendanceDay | None:
    return _upsert_day(emp.id, day, compute_day(emp, day, now, rule))


def recompute_range(start: dt.date, end: dt.date, employee_ids: Iterable[int] | None = None,
                    progress=None) -> int:
    """Recompute the summary for every (active) employee and day in [start, end]. Idempotent.
    Returns the number of (employee, day) pairs computed."""
    stmt = select(Employee).where(Employee.status.in_(("active", "notice")))
    if employee_ids is not None:
        stmt = select(Employee).where(Employee.id.in_(list(employee_ids)))
    emps = db.session.scalars(stmt.order_by(Employee.id)).all()
    now = utcnow()
    n = 0
    for i, emp in enumerate(emps):
        rule = rule_for(emp)
        day = start
        while day <= end:
            if emp.hire_date is None or day >= emp.hire_date:
                recompute_day(emp, day, now, rule)
                n += 1
            day += dt.timedelta(days=1)
        if progress and i % 50 == 0:
            progress(i, len(emps))
        if i % 200 == 199:
            db.session.flush()
    return n


def recompute_job(start_iso: str, end_iso: str, employee_ids: list[int] | None = None) -> int:
    """RQ job: recompute a date range (re-reads everything; safe to run twice)."""
    n = recompute_range(dt.date.fromisoformat(start_iso), dt.date.fromisoformat(end_iso), employee_ids)
    db.session.commit()
    return n


# ---------------------------------------------------------------- clock in / out

@dataclass
class Place:
    method: str  # any | ip | site | outside
    site_id: Optional[int] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    accuracy_m: Optional[int] = None


def consent_of(emp_id: int) -> Optional[bool]:
    row = db.session.scalar(select(LocationConsent).where(LocationConsent.employee_id == emp_id))
    return None if row is None else row.granted


def set_consent(emp: Employee, granted: bool, actor) -> None:
    row = db.session.scalar(select(LocationConsent).where(LocationConsent.employee_id == emp.id))
    if row is None:
        row = LocationConsent(employee_id=emp.id)
        db.session.add(row)
    row.granted, row.decided_at = granted, utcnow()
    audit.record("attendance.location_consent", ("employees", emp.id), {"granted": granted}, actor=actor)


def check_place(rule: AttendanceRule, ip: str, coords: tuple[float, float, Optional[int]] | None,
                emp_id: int, note: str, outside: bool) -> Place:
    """Where the punch was made, or AttendanceError. Coordinates are used (and kept) only when the
    company enabled location and the employee consented (PIPL)."""
    cfg = settings()
    use_location = bool(coords) and cfg.geofence_enabled and consent_of(emp_id) is True
    place = Place("any")
    if use_location:
        lat, lng, acc = coords
        place.latitude, place.longitude, place.accuracy_m = lat, lng, acc
    if not rule.restrict_place:
        return place
    if engine.ip_in_ranges(ip, rule.ip_ranges):
        place.method = "ip"
        return place
    if use_location:
        for site in db.session.scalars(select(WorkSite).where(WorkSite.active.is_(True))):
            if engine.distance_m(place.latitude, place.longitude, site.latitude, site.longitude) <= site.radius_m:
                place.method, place.site_id = "site", site.id
                return place
    if outside:
        if not rule.allow_outside:
            raise AttendanceError("outside_not_allowed")
        if not note.strip():
            raise AttendanceError("outside_needs_note")
        place.method = "outside"
        return place
    raise AttendanceError("not_at_work_place", location=use_location)


def _lock_employee(emp_id: int) -> None:
    """Serialise punches of one employee (double taps arriving together)."""
    if db.dialect == "postgresql":
        db.session.execute(select(Employee.id).where(Employee.id == emp_id).with_for_update())
    else:  # SQLite: take the write lock before reading (see core/audit._begin_write)
        db.session.execute(text("UPDATE employees SET id = id WHERE id = :id"), {"id": emp_id})


def clock(user, kind: str, source: str = "web", ip: str = "", coords=None, note: str = "",
          outside: bool = False, now: dt.datetime | None = None) -> tuple[Punch, bool]:
    """Record a punch at server time. Returns (punch, created); a second punch of the same kind within
    60 s returns the first one."""
    if kind not in ("in", "out"):
        raise AttendanceError("bad_kind")
    emp = user.employee
    if emp is None or emp.status == "left":
        raise AttendanceError("no_employee")
    now = now or utcnow()
    _lock_employee(emp.id)
    recent = db.session.scalar(select(Punch).where(
        Punch.employee_id == emp.id, Punch.kind == kind,
        Punch.at >= now - dt.timedelta(seconds=engine.DEDUPE_SECONDS), Punch.at <= now)
        .order_by(Punch.at.desc()).limit(1))
    if recent is not None:
        return recent, False
    rule = rule_for(emp)
    place = check_place(rule, ip, coords, emp.id, note, outside)
    work_date = punch_work_date(emp, rule, now, kind)
    punch = Punch(employee_id=emp.id, at=now, work_date=work_date, kind=kind, source=source, ip=ip[:64],
                  method=place.method, latitude=place.latitude, longitude=place.longitude,
                  accuracy_m=place.accuracy_m, site_id=place.site_id, note=note.strip()[:300],
                  created_by_id=user.id, created_at=now)
    db.session.add(punch)
    db.session.flush()
    audit.record("attendance.punch", punch, {"kind": kind, "source": source, "method": place.method,
                                             "work_date": work_date.isoformat()}, actor=user, ip=ip)
    recompute_day(emp, work_date, now, rule)
    return punch, True


def punch_work_date(emp: Employee, rule: AttendanceRule, at: dt.datetime, kind: str) -> dt.date:
    zone = tz()
    local_day = at.astimezone(zone).date()
    days = [local_day - dt.timedelta(days=1), local_day, local_day + dt.timedelta(days=1)]
    cal = overrides(days[0], days[-1])
    shifts = shifts_for(emp.id, days[0], days[-1]) if rule.kind == "shift" else None
    candidates = [p.schedule for p in (plan_day(rule, d, cal, shifts, zone) for d in days) if p.schedule]
    return engine.assign_work_date(at, kind, candidates, zone)


def today_state(emp: Employee) -> dict[str, Any]:
    """What the today card shows: the rule, today's plan, punches and summary."""
    zone = tz()
    day = today()
    rule = rule_for(emp)
    cal = overrides(day, day)
    shifts = shifts_for(emp.id, day, day) if rule.kind == "shift" else None
    plan = plan_day(rule, day, cal, shifts, zone)
    punches = db.session.scalars(select(Punch).where(
        Punch.employee_id == emp.id,
        Punch.at >= dt.datetime.combine(day, dt.time(0), tzinfo=zone) - dt.timedelta(hours=12))
        .order_by(Punch.at)).all()
    summary = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == emp.id,
                                                            AttendanceDay.work_date == day))
    return {"day": day, "rule": rule, "plan": plan, "punches": punches, "summary": summary,
            "exempt": is_exempt(emp.id), "consent": consent_of(emp.id), "settings": settings()}


# ---------------------------------------------------------------- approvers

def approver_users(emp: Employee) -> list:
    """Accounts that approve this employee's requests: the direct manager, else the department head."""
    from portal.core.models import User
    ids = []
    if emp.manager_id:
        ids.append(emp.manager_id)
    elif emp.department is not None and emp.department.head_id and emp.department.head_id != emp.id:
        ids.append(emp.department.head_id)
    if not ids:
        return []
    return list(db.session.scalars(select(User).where(User.employee_id.in_(ids), User.active.is_(True))))


def can_decide(user, emp: Employee) -> bool:
    from portal.core.security import can, is_manager_of
    if emp.id == getattr(user, "employee_id", None):
        return False
    return is_manager_of(user, emp) or can(user, "attendance.manage")


def user_of(emp_id: int):
    from portal.core.models import User
    return db.session.scalar(select(User).where(User.employee_id == emp_id))


# ---------------------------------------------------------------- leave

def request_leave(user, kind: str, start: dt.date, start_half: str, end: dt.date, end_half: str,
                  reason: str) -> LeaveRequest:
    emp = user.employee
    if emp is None:
        raise AttendanceError("no_employee")
    if kind not in LEAVE_KINDS:
        raise AttendanceError("bad_leave_kind")
    if start_half not in ("am", "pm") or end_half not in ("am", "pm"):
        raise AttendanceError("bad_half")
    if end < start or (end == start and start_half == "pm" and end_half == "am"):
        raise AttendanceError("bad_dates")
    if (end - start).days > 366:
        raise AttendanceError("too_long")
    _lock_employee(emp.id)  # two tabs submitting together: the second sees the first and overlaps
    overlapping = db.session.scalars(select(LeaveRequest).where(
        LeaveRequest.employee_id == emp.id, LeaveRequest.status.in_(("pending", "approved")),
        LeaveRequest.start_date <= end, LeaveRequest.end_date >= start)).all()
    for other in overlapping:
        day = max(start, other.start_date)
        while day <= min(end, other.end_date):
            mine = engine.leave_cover(day, start, start_half, end, end_half)
            theirs = engine.leave_cover(day, other.start_date, other.start_half, other.end_date, other.end_half)
            if mine and theirs and (mine == "full" or theirs == "full" or mine == theirs):
                raise AttendanceError("overlap")
            day += dt.timedelta(days=1)
    leave = LeaveRequest(employee_id=emp.id, kind=kind, start_date=start, start_half=start_half, end_date=end,
                         end_half=end_half, reason=reason.strip(),
                         half_days=engine.leave_half_days(start, start_half, end, end_half))
    db.session.add(leave)
    db.session.flush()
    audit.record("attendance.leave_requested", leave, {"kind": kind, "start": start.isoformat(),
                                                       "end": end.isoformat()}, actor=user)
    for boss in approver_users(emp):
        notify.send(boss, "attendance.leave_request",
                    {"name": emp.name, "kind": label(KIND_LABELS, kind), "start": start.isoformat(),
                     "end": end.isoformat(), "title": NOTICE_TITLES["leave"]}, related=("attendance_leaves", leave.id),
                    link=_link("attendance.approvals"))
    return leave


def _link(endpoint: str, **kw) -> str:
    try:
        from flask import url_for
        return url_for(endpoint, **kw)
    except RuntimeError:
        return ""


def decide_leave(leave: LeaveRequest, actor, approve: bool, note: str = "") -> None:
    if leave.status != "pending":
        raise AttendanceError("already_decided")
    if not can_decide(actor, leave.employee):
        raise AttendanceError("not_approver")
    leave.status = "approved" if approve else "rejected"
    leave.decided_by_id, leave.decided_at, leave.decision_note = actor.id, utcnow(), note.strip()[:300]
    audit.record("attendance.leave_" + leave.status, leave, {"note": leave.decision_note}, actor=actor)
    if approve:
        last = min(leave.end_date, today())
        if leave.start_date <= last:
            rule = rule_for(leave.employee)
            day = leave.start_date
            while day <= last:
                recompute_day(leave.employee, day, rule=rule)
                day += dt.timedelta(days=1)
    owner = user_of(leave.employee_id)
    if owner is not None:
        notify.send(owner, "attendance.leave_decided",
                    {"kind": label(KIND_LABELS, leave.kind), "start": leave.start_date.isoformat(),
                     "end": leave.end_date.isoformat(), "decision": label(REQUEST_STATUS_LABELS, leave.status),
                     "note": leave.decision_note, "title": NOTICE_TITLES["leave"]},
                    related=("attendance_leaves", leave.id), link=_link("attendance.leave"))


def cancel_leave(leave: LeaveRequest, user) -> None:
    if leave.employee_id != getattr(user, "employee_id", None):
        raise AttendanceError("not_yours")
    if leave.status != "pending":
        raise AttendanceError("already_decided")
    leave.status = "cancelled"
    audit.record("attendance.leave_cancelled", leave, {}, actor=user)


# ---------------------------------------------------------------- corrections

def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def correction_deadline(rule: AttendanceRule, work_date: dt.date) -> Optional[dt.date]:
    if not rule.correction_deadline_day:
        return None
    nxt = _next_month(work_date)
    return nxt.replace(day=min(rule.correction_deadline_day, 28))


def request_correction(user, work_date: dt.date, kind: str, local_time: dt.time, reason: str,
                       file=None, now: dt.datetime | None = None) -> Correction:
    emp = user.employee
    if emp is None:
        raise AttendanceError("no_employee")
    if kind not in ("in", "out"):
        raise AttendanceError("bad_kind")
    if not reason.strip():
        raise AttendanceError("reason_required")
    now = now or utcnow()
    zone = tz()
    if work_date >= now.astimezone(zone).date() + dt.timedelta(days=1):
        raise AttendanceError("future_day")
    rule = rule_for(emp)
    deadline = correction_deadline(rule, work_date)
    if deadline and now.astimezone(zone).date() > deadline:
        raise AttendanceError("past_deadline", deadline=deadline.isoformat())
    summary = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == emp.id,
                                                            AttendanceDay.work_date == work_date))
    status = summary.status if summary else None
    if status is None:
        plan = plan_day(rule, work_date, overrides(work_date, work_date),
                        shifts_for(emp.id, work_date, work_date) if rule.kind == "shift" else None, zone)
        status = "absent" if plan.kind == "work" else plan.kind
    allowed = {s.strip() for s in rule.correctable.split(",") if s.strip()}
    if status not in allowed:
        raise AttendanceError("not_correctable", status=status)
    _lock_employee(emp.id)  # two tabs submitting together: the count and the duplicate check see both
    month = _month_start(work_date)
    used = db.session.scalar(select(func.count()).select_from(Correction).where(
        Correction.employee_id == emp.id, Correction.status.in_(("pending", "approved")),
        Correction.work_date >= month, Correction.work_date < _next_month(work_date))) or 0
    if rule.corrections_per_month and used >= rule.corrections_per_month:
        raise AttendanceError("limit_reached", limit=rule.corrections_per_month)
    if db.session.scalar(select(Correction.id).where(
            Correction.employee_id == emp.id, Correction.work_date == work_date, Correction.kind == kind,
            Correction.status == "pending")):
        raise AttendanceError("duplicate")
    at = _correction_time(emp, rule, work_date, local_time, zone)
    if at > now:
        raise AttendanceError("future_time")
    stored = None
    if file is not None and getattr(file, "filename", ""):
        from portal.core import uploads
        stored = uploads.save_upload(file, "attendance_correction", uploads.DOCUMENTS, 10 * 1024 * 1024, user)
    corr = Correction(employee_id=emp.id, work_date=work_date, kind=kind, at=at, reason=reason.strip(),
                      file_id=stored.id if stored else None)
    db.session.add(corr)
    db.session.flush()
    audit.record("attendance.correction_requested", corr, {"work_date": work_date.isoformat(), "kind": kind,
                                                           "at": at.isoformat()}, actor=user)
    for boss in approver_users(emp):
        notify.send(boss, "attendance.correction_request",
                    {"name": emp.name, "kind": label(PUNCH_LABELS, kind), "date": work_date.isoformat(),
                     "reason": corr.reason[:100], "title": NOTICE_TITLES["correction"]}, related=("attendance_corrections", corr.id),
                    link=_link("attendance.approvals"))
    return corr


def _correction_time(emp, rule, work_date, local_time, zone) -> dt.datetime:
    """The UTC instant of ``local_time`` on the attendance day: for an overnight shift a time before the
    start belongs to the next calendar date."""
    at = dt.datetime.combine(work_date, local_time, tzinfo=zone).astimezone(dt.timezone.utc)
    plan = plan_day(rule, work_date, overrides(work_date, work_date),
                    shifts_for(emp.id, work_date, work_date) if rule.kind == "shift" else None, zone)
    if plan.schedule is not None and not plan.schedule.contains(at):
        nxt = at + dt.timedelta(days=1)
        if plan.schedule.contains(nxt):
            return nxt
        raise AttendanceError("outside_window")
    return at


def decide_correction(corr: Correction, actor, approve: bool, note: str = "") -> None:
    if corr.status != "pending":
        raise AttendanceError("already_decided")
    if not can_decide(actor, corr.employee):
        raise AttendanceError("not_approver")
    corr.status = "approved" if approve else "rejected"
    corr.decided_by_id, corr.decided_at, corr.decision_note = actor.id, utcnow(), note.strip()[:300]
    if approve:
        punch = Punch(employee_id=corr.employee_id, at=corr.at, work_date=corr.work_date, kind=corr.kind,
                      source="correction", method="correction", note=corr.reason[:300], created_by_id=actor.id)
        db.session.add(punch)
        db.session.flush()
        corr.punch_id = punch.id
        recompute_day(corr.employee, corr.work_date)
    audit.record("attendance.correction_" + corr.status, corr,
                 {"work_date": corr.work_date.isoformat(), "kind": corr.kind, "note": corr.decision_note},
                 actor=actor)
    owner = user_of(corr.employee_id)
    if owner is not None:
        notify.send(owner, "attendance.correction_decided",
                    {"date": corr.work_date.isoformat(), "decision": label(REQUEST_STATUS_LABELS, corr.status),
                     "note": corr.decision_note, "title": NOTICE_TITLES["correction"]}, related=("attendance_corrections", corr.id),
                    link=_link("attendance.corrections"))


def pending_for(user) -> tuple[list[LeaveRequest], list[Correction]]:
    """Pending requests this user may decide (their team; everyone for attendance.manage)."""
    from portal.core.security import scoped
    leave_stmt = scoped(select(LeaveRequest).join(Employee, Employee.id == LeaveRequest.employee_id)
                        .where(LeaveRequest.status == "pending"), user, "attendance.manage")
    corr_stmt = scoped(select(Correction).join(Employee, Employee.id == Correction.employee_id)
                       .where(Correction.status == "pending"), user, "attendance.manage")
    me = getattr(user, "employee_id", None)
    if me:
        leave_stmt = leave_stmt.where(LeaveRequest.employee_id != me)
        corr_stmt = corr_stmt.where(Correction.employee_id != me)
    leaves = db.session.scalars(leave_stmt.order_by(LeaveRequest.start_date).limit(200)).all()
    corrs = db.session.scalars(corr_stmt.order_by(Correction.work_date).limit(200)).all()
    return list(leaves), list(corrs)


# ---------------------------------------------------------------- calendar and HR settings

def import_official_year(year: int, actor) -> int:
    """Load ``year``'s statutory holidays and make-up days from chinese_calendar (HR's manual overrides
    stay). Returns the number of dates written."""
    try:
        rows = engine.official_year(year)
    except NotImplementedError:
        raise AttendanceError("year_unknown", year=year)
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    manual = set(db.session.scalars(select(CalendarDay.day).where(
        CalendarDay.day.between(start, end), CalendarDay.source == "manual")))
    db.session.execute(delete(CalendarDay).where(CalendarDay.day.between(start, end),
                                                 CalendarDay.source == "import"))
    n = 0
    for day, kind, name in rows:
        if day in manual:
            continue
        db.session.add(CalendarDay(day=day, kind=kind, name=name[:80], source="import"))
        n += 1
    audit.record("attendance.calendar_imported", ("attendance_calendar", year), {"dates": n}, actor=actor)
    return n


def set_calendar_day(day: dt.date, kind: str, name: str, actor) -> None:
    if kind not in ("holiday", "workday", "rest"):
        raise AttendanceError("bad_day_kind")
    row = db.session.scalar(select(CalendarDay).where(CalendarDay.day == day))
    if row is None:
        row = CalendarDay(day=day)
        db.session.add(row)
    row.kind, row.name, row.source = kind, name.strip()[:80], "manual"
    audit.record("attendance.calendar_set", ("attendance_calendar", day.isoformat()),
                 {"kind": kind, "name": row.name}, actor=actor)


def delete_calendar_day(day: dt.date, actor) -> None:
    db.session.execute(delete(CalendarDay).where(CalendarDay.day == day))
    audit.record("attendance.calendar_deleted", ("attendance_calendar", day.isoformat()), {}, actor=actor)


def save_rule(rule: AttendanceRule | None, values: dict, actor) -> AttendanceRule:
    good, bad = engine.parse_ranges(values.get("ip_ranges", ""))
    if bad:
        raise AttendanceError("bad_ranges", ranges=", ".join(bad))
    if values.get("kind") not in ("fixed", "shift", "flexible"):
        raise AttendanceError("bad_rule_kind")
    name = (values.get("name") or "").strip()
    if not name:
        raise AttendanceError("name_required")
    clash = db.session.scalar(select(AttendanceRule.id).where(AttendanceRule.name == name))
    if clash and (rule is None or clash != rule.id):
        raise AttendanceError("name_taken")
    created = rule is None
    if rule is None:
        rule = AttendanceRule()
        db.session.add(rule)
    values = dict(values, ip_ranges="\n".join(good), name=name)
    for key, value in values.items():
        setattr(rule, key, value)
    if rule.is_default:
        db.session.flush()
        db.session.execute(update(AttendanceRule).where(AttendanceRule.id != rule.id)
                           .values(is_default=False))
    db.session.flush()
    audit.record("attendance.rule_" + ("created" if created else "changed"), rule,
                 {k: v for k, v in values.items()}, actor=actor)
    return rule


def set_members(rule: AttendanceRule, department_ids: list[int], employee_nos: list[str], actor) -> None:
    emps = db.session.execute(select(Employee.id, Employee.emp_no).where(Employee.emp_no.in_(employee_nos))).all()
    unknown = sorted(set(employee_nos) - {no for _id, no in emps})
    if unknown:
        raise AttendanceError("unknown_employees", names=", ".join(unknown))
    emp_ids = [i for i, _no in emps]
    # One rule per department / employee: joining this rule leaves the previous one.
    db.session.execute(delete(RuleMember).where(RuleMember.rule_id == rule.id))
    if department_ids:
        db.session.execute(delete(RuleMember).where(RuleMember.department_id.in_(department_ids)))
    if emp_ids:
        db.session.execute(delete(RuleMember).where(RuleMember.employee_id.in_(emp_ids)))
    for did in dict.fromkeys(department_ids):
        db.session.add(RuleMember(rule_id=rule.id, department_id=did))
    for eid in dict.fromkeys(emp_ids):
        db.session.add(RuleMember(rule_id=rule.id, employee_id=eid))
    audit.record("attendance.rule_members", rule, {"departments": department_ids, "employees": employee_nos},
                 actor=actor)


def set_exemptions(employee_nos: list[str], actor) -> None:
    emps = db.session.execute(select(Employee.id, Employee.emp_no).where(Employee.emp_no.in_(employee_nos))).all()
    unknown = sorted(set(employee_nos) - {no for _id, no in emps})
    if unknown:
        raise AttendanceError("unknown_employees", names=", ".join(unknown))
    db.session.execute(delete(Exemption))
    for eid, _no in emps:
        db.session.add(Exemption(employee_id=eid))
    audit.record("attendance.exemptions", ("attendance_exemptions", "all"), {"employees": employee_nos},
                 actor=actor)


def save_site(values: dict, actor, site: WorkSite | None = None) -> WorkSite:
    lat, lng, radius = values["latitude"], values["longitude"], values["radius_m"]
    if not (-90 <= lat <= 90 and -180 <= lng <= 180) or not (10 <= radius <= 5000):
        raise AttendanceError("bad_site")
    if site is None:
        site = WorkSite()
        db.session.add(site)
    for k, v in values.items():
        setattr(site, k, v)
    db.session.flush()
    audit.record("attendance.site_saved", site, values, actor=actor)
    return site


def save_settings(values: dict, actor) -> Settings:
    row = settings()
    for key, value in values.items():
        setattr(row, key, value)
    audit.record("attendance.settings_changed", ("attendance_settings", 1), values, actor=actor)
    return row


def assign_shift(employee_nos: list[str], shift_code: str, start: dt.date, end: dt.date, actor) -> int:
    """Put people on a shift (or on rest with an empty code) for each date of [start, end]."""
    if end < start or (end - start).days > 366:
        raise AttendanceError("bad_dates")
    shift = None
    if shift_code:
        shift = db.session.scalar(select(Shift).where(Shift.code == shift_code))
        if shift is None:
            raise AttendanceError("unknown_shift", code=shift_code)
    emps = db.session.execute(select(Employee.id, Employee.emp_no).where(Employee.emp_no.in_(employee_nos))).all()
    unknown = sorted(set(employee_nos) - {no for _id, no in emps})
    if unknown or not emps:
        raise AttendanceError("unknown_employees", names=", ".join(unknown) or "—")
    ids = [i for i, _ in emps]
    db.session.execute(delete(ShiftAssignment).where(ShiftAssignment.employee_id.in_(ids),
                                                     ShiftAssignment.work_date.between(start, end)))
    n = 0
    day = start
    while day <= end:
        for eid in ids:
            db.session.add(ShiftAssignment(employee_id=eid, work_date=day, shift_id=shift.id if shift else None))
            n += 1
        day += dt.timedelta(days=1)
    audit.record("attendance.shifts_assigned", ("attendance_shifts", shift.id if shift else 0),
                 {"employees": employee_nos, "start": start.isoformat(), "end": end.isoformat()}, actor=actor)
    return n


def recompute_task(handle, start_iso: str, end_iso: str) -> str:
    """Background task (progress page): recompute the summary for a date range."""
    def progress(done, total):
        handle.progress(done, total)
    n = recompute_range(dt.date.fromisoformat(start_iso), dt.date.fromisoformat(end_iso), progress=progress)
    db.session.commit()
    return lazy_ngettext("%(num)s employee-day recomputed", "%(num)s employee-days recomputed", n)
