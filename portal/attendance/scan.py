"""The daily anomaly scan: set-based SQL over all employees (no loop per employee), idempotent.

1. close the day: every active, non-exempt employee for whom ``day`` is a working day (calendar for
   fixed/flexible rules, a shift assignment for shift rules) and who has no summary row gets one:
   "leave" when approved leave covers the day, else "absent" (one INSERT ... SELECT);
2. absence streaks: consecutive "absent" working-day rows ending at ``day`` (one query); a new streak
   alerts the manager and HR, a streak of N working days (setting) escalates to HR with a risk flag;
   one anomaly row per (employee, kind, streak start) -> once each, however often the scan runs;
3. monthly late count above a threshold, and a rise over the previous month (one query each);
4. messages for anomalies not yet notified (a loop over the *new* anomalies only).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask_babel.speaklater import LazyString
from sqlalchemy import and_, case, exists, false, func, insert, literal, or_, select, true, update
from sqlalchemy.orm import aliased, selectinload

from portal.attendance import engine, services
from portal.attendance.labels import ANOMALY_LABELS, PUNCH_LABELS, label
from portal.attendance.models import (Anomaly, AttendanceDay, AttendanceRule, Exemption, LeaveRequest,
                                      RuleMember, ShiftAssignment)
from portal.core import audit, notify
from portal.core.db import db, utcnow
from portal.core.security import N_
from portal.org.models import Employee

LOOKBACK_DAYS = 62

notify.register_template("attendance.absent", notify.Template(
    N_("Attendance alert: %(name)s has not clocked in (%(date)s)"),
    N_("%(name)s (%(emp_no)s) has no clock-in on the working day %(date)s and no approved leave. "
       "Please get in touch and record what happened."), channels=("inapp", "email")))
notify.register_template("attendance.escalation", notify.Template(
    N_("Attendance risk: %(name)s absent %(days)s working days in a row"),
    N_("%(name)s (%(emp_no)s) has had no clock-in for %(days)s consecutive working days since %(start)s. "
       "This is flagged as a risk for HR follow-up."), channels=("inapp", "email", "sms")))
notify.register_template("attendance.late", notify.Template(
    N_("Attendance: frequent late arrivals of %(name)s in %(month)s"),
    N_("%(name)s (%(emp_no)s) was late %(days)s times in %(month)s (%(detail)s).")))
notify.register_template("attendance.outside_digest", notify.Template(
    N_("Out-of-office clock-ins of your team on %(date)s"),
    N_("Out-of-office clock-ins on %(date)s: %(lines)s")))


@dataclass
class ScanResult:
    day: dt.date
    closed: int = 0
    absent_alerts: int = 0
    escalations: int = 0
    late_flags: int = 0
    notified: int = 0
    new_ids: list[int] = field(default_factory=list)


def close_day(day: dt.date) -> int:
    """Insert the summary rows of people who did not punch on their working day ``day``."""
    default_id = services.default_rule().id
    kind, _name = engine.day_kind(day, services.overrides(day, day))
    em, dm = aliased(RuleMember), aliased(RuleMember)
    rule_id = func.coalesce(em.rule_id, dm.rule_id, default_id)
    has_shift = exists(select(ShiftAssignment.id).where(
        ShiftAssignment.employee_id == Employee.id, ShiftAssignment.work_date == day,
        ShiftAssignment.shift_id.is_not(None)))
    if kind == "work":
        working = or_(AttendanceRule.kind != "shift", has_shift)
    elif kind == "rest":
        working = and_(AttendanceRule.kind == "shift", has_shift)
    else:
        working = false()
    on_leave = exists(select(LeaveRequest.id).where(
        LeaveRequest.employee_id == Employee.id, LeaveRequest.status == "approved",
        LeaveRequest.start_date <= day, LeaveRequest.end_date >= day))
    now = utcnow()
    src = (select(Employee.id, literal(day), case((on_leave, "leave"), else_="absent"),
                  literal(0), literal(0), literal(0), case((on_leave, "full"), else_=""), false(),
                  literal(now, type_=AttendanceDay.computed_at.type))
           .select_from(Employee)
           .outerjoin(em, em.employee_id == Employee.id)
           .outerjoin(dm, dm.department_id == Employee.department_id)
           .join(AttendanceRule, AttendanceRule.id == rule_id)
           .where(Employee.status.in_(("active", "notice")),
                  or_(Employee.hire_date.is_(None), Employee.hire_date <= day),
                  ~exists(select(Exemption.id).where(Exemption.employee_id == Employee.id)),
                  ~exists(select(AttendanceDay.id).where(AttendanceDay.employee_id == Employee.id,
                                                         AttendanceDay.work_date == day)),
                  working))
    cols = ["employee_id", "work_date", "status", "worked_minutes", "late_minutes", "early_minutes",
            "leave_half", "outside", "computed_at"]
    result = db.session.execute(insert(AttendanceDay).from_select(cols, src),
                                execution_options={"preserve_rowcount": True})
    return max(result.rowcount or 0, 0)


def absence_streaks(day: dt.date):
    """(employee_id, streak days, streak start) of everyone absent on ``day``: consecutive absent
    working-day rows since the last row that was not an absence (leave ends a streak)."""
    floor = day - dt.timedelta(days=LOOKBACK_DAYS)
    absent_today = (select(AttendanceDay.employee_id)
                    .where(AttendanceDay.work_date == day, AttendanceDay.status == "absent")).subquery()
    d = aliased(AttendanceDay)
    last_ok = (select(d.employee_id, func.max(d.work_date).label("last_ok"))
               .join(absent_today, absent_today.c.employee_id == d.employee_id)
               .where(d.work_date <= day, d.work_date >= floor,
                      d.status.not_in(("absent", "rest", "holiday")))
               .group_by(d.employee_id)).subquery()
    a = aliased(AttendanceDay)
    return db.session.execute(
        select(a.employee_id, func.count().label("days"), func.min(a.work_date).label("start"))
        .join(absent_today, absent_today.c.employee_id == a.employee_id)
        .outerjoin(last_ok, last_ok.c.employee_id == a.employee_id)
        .where(a.status == "absent", a.work_date <= day, a.work_date >= floor,
               or_(last_ok.c.last_ok.is_(None), a.work_date > last_ok.c.last_ok))
        .group_by(a.employee_id)).all()


def _insert_new(rows: list[dict]) -> list[int]:
    """Insert anomalies that do not exist yet (unique employee/kind/key_date); returns the new ids."""
    if not rows:
        return []
    keys = {(r["employee_id"], r["kind"], r["key_date"]) for r in rows}
    emp_ids = {k[0] for k in keys}
    have = set()
    for chunk in _chunks(sorted(emp_ids), 900):
        have |= set(db.session.execute(select(Anomaly.employee_id, Anomaly.kind, Anomaly.key_date).where(
            Anomaly.employee_id.in_(chunk), Anomaly.kind.in_({k[1] for k in keys}),
            Anomaly.key_date.in_({k[2] for k in keys}))).all())
    fresh = [r for r in rows if (r["employee_id"], r["kind"], r["key_date"]) not in have]
    if not fresh:
        return []
    new = [Anomaly(**r) for r in fresh]
    db.session.add_all(new)
    db.session.flush()  # one batched INSERT ... RETURNING (insertmanyvalues), not one per row
    return [a.id for a in new]


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def late_flags(day: dt.date, cfg) -> list[dict]:
    month = day.replace(day=1)
    prev = (month - dt.timedelta(days=1)).replace(day=1)
    cur = (select(AttendanceDay.employee_id, func.count().label("n"))
           .where(AttendanceDay.work_date >= month, AttendanceDay.work_date <= day,
                  AttendanceDay.late_minutes > 0)
           .group_by(AttendanceDay.employee_id)).subquery()
    before = (select(AttendanceDay.employee_id, func.count().label("n"))
              .where(AttendanceDay.work_date >= prev, AttendanceDay.work_date < month,
                     AttendanceDay.late_minutes > 0)
              .group_by(AttendanceDay.employee_id)).subquery()
    prev_n = func.coalesce(before.c.n, 0)
    rows = db.session.execute(
        select(cur.c.employee_id, cur.c.n, prev_n)
        .outerjoin(before, before.c.employee_id == cur.c.employee_id)
        .where(or_(cur.c.n > cfg.late_count_threshold, cur.c.n - prev_n >= cfg.late_rise_threshold))).all()
    out = []
    for emp_id, n, p in rows:
        if n > cfg.late_count_threshold:
            out.append(dict(employee_id=emp_id, kind="late_count", key_date=month, detected_on=day, days=n,
                            note=f"{p}"))
        if n - p >= cfg.late_rise_threshold:
            out.append(dict(employee_id=emp_id, kind="late_rise", key_date=month, detected_on=day, days=n,
                            note=f"{p}"))
    return out


def scan(day: dt.date, actor=None) -> ScanResult:
    """Close ``day``, detect anomalies, queue the messages. Safe to run again (nothing doubles)."""
    cfg = services.settings()
    res = ScanResult(day)
    res.closed = close_day(day)
    rows = []
    for emp_id, days, start in absence_streaks(day):
        rows.append(dict(employee_id=emp_id, kind="absent", key_date=start, detected_on=day, days=days))
        if days >= cfg.escalate_after_days:
            rows.append(dict(employee_id=emp_id, kind="escalation", key_date=start, detected_on=day, days=days,
                             risk=True))
    rows += late_flags(day, cfg)
    res.new_ids = _insert_new(rows)
    kinds = db.session.execute(select(Anomaly.kind).where(Anomaly.id.in_(res.new_ids))).scalars().all() \
        if res.new_ids else []
    res.absent_alerts = kinds.count("absent")
    res.escalations = kinds.count("escalation")
    res.late_flags = kinds.count("late_count") + kinds.count("late_rise")
    res.notified = notify_pending(cfg)
    audit.record("attendance.scan", ("attendance_days", day.isoformat()),
                 {"closed": res.closed, "absent": res.absent_alerts, "escalations": res.escalations,
                  "late": res.late_flags}, actor=actor)
    return res


def hr_users():
    """Active accounts whose roles hold attendance.alerts (HR by default)."""
    from portal.core.models import RolePermission, User, UserRole
    return list(db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id)
        .join(RolePermission, RolePermission.role_id == UserRole.role_id)
        .where(RolePermission.permission == "attendance.alerts", User.active.is_(True))
        .distinct().order_by(User.id)))


def notify_pending(cfg=None) -> int:
    """Send the messages of anomalies not yet notified; mark them. Dedupe keys make a rerun harmless.

    The rows are written with ``notify.send_many`` (a few statements for the whole batch) and the
    approvers are looked up once per manager / department head, so a first scan with hundreds of new
    anomalies costs a handful of queries, not several per message."""
    cfg = cfg or services.settings()
    pending = db.session.scalars(select(Anomaly).where(Anomaly.notified_at.is_(None))
                                 .options(selectinload(Anomaly.employee).joinedload(Employee.department))
                                 .order_by(Anomaly.id).limit(5000)).all()
    if not pending:
        return 0
    hr = hr_users()
    alert_channels = [c for c in cfg.alert_channels.split(",") if c]
    escalation_channels = [c for c in cfg.escalation_channels.split(",") if c]
    link = services._link("attendance.anomalies")
    approvers = _approvers_by_employee([a.employee for a in pending])
    messages: list[notify.Message] = []
    now = utcnow()
    for a in pending:
        emp = a.employee
        ctx = {"name": emp.name, "emp_no": emp.emp_no, "date": a.detected_on.isoformat(),
               "start": a.key_date.isoformat(), "days": a.days, "month": a.key_date.strftime("%Y-%m"),
               "detail": label(ANOMALY_LABELS, a.kind), "title": emp.name}
        if a.kind == "absent":
            template, channels = "attendance.absent", alert_channels
            recipients = approvers[emp.id] + hr
            ctx["date"] = a.key_date.isoformat()
        elif a.kind == "escalation":
            template, channels = "attendance.escalation", escalation_channels
            recipients = hr + approvers[emp.id]
        else:
            template, channels = "attendance.late", alert_channels
            recipients = approvers[emp.id] + hr
        seen = set()
        for user in recipients:
            if user.id in seen or user.employee_id == emp.id:
                continue
            seen.add(user.id)
            messages.append(notify.Message(user, template, ctx, channels=channels,
                                           related=("attendance_anomalies", a.id),
                                           dedupe_key=f"att:{a.id}:{user.id}", link=link))
        a.notified_at = now
    notify.send_many(messages)
    return len(messages)


def _approvers_by_employee(employees) -> dict[int, list]:
    """``services.approver_users`` for many employees with one query: employee id -> active accounts of
    the direct manager, else of the department head."""
    from portal.core.models import User
    target: dict[int, int | None] = {}
    for emp in employees:
        if emp.manager_id:
            target[emp.id] = emp.manager_id
        elif emp.department is not None and emp.department.head_id and emp.department.head_id != emp.id:
            target[emp.id] = emp.department.head_id
        else:
            target[emp.id] = None
    wanted = sorted({t for t in target.values() if t})
    users: dict[int, list] = {}
    for i in range(0, len(wanted), 500):
        for u in db.session.scalars(select(User).where(User.employee_id.in_(wanted[i:i + 500]),
                                                       User.active.is_(True)).order_by(User.id)):
            users.setdefault(u.employee_id, []).append(u)
    return {emp_id: list(users.get(t, [])) if t else [] for emp_id, t in target.items()}


def resolve(anomaly: Anomaly, actor, note: str) -> None:
    if anomaly.status == "resolved":
        return
    anomaly.status, anomaly.resolved_by_id, anomaly.resolved_at = "resolved", actor.id, utcnow()
    anomaly.note = note.strip()[:300]
    audit.record("attendance.anomaly_resolved", anomaly, {"note": anomaly.note}, actor=actor)


# ---------------------------------------------------------------- periodic jobs

def daily_job() -> str:
    """Clock job (early morning): scan the two previous days (catches a missed run), then commit."""
    today = services.today()
    out = []
    for back in (2, 1):
        res = scan(today - dt.timedelta(days=back))
        db.session.commit()
        out.append(f"{res.day}: closed {res.closed}, new {len(res.new_ids)}")
    return "; ".join(out)


def outside_digest_job(day_iso: str | None = None) -> int:
    """Evening job: each manager gets one summary of the team's out-of-office punches of the day."""
    from portal.attendance.models import Punch
    day = dt.date.fromisoformat(day_iso) if day_iso else services.today()
    rows = db.session.execute(
        select(Employee.manager_id, Employee.name, Punch.kind, Punch.at, Punch.note)
        .join(Punch, Punch.employee_id == Employee.id)
        .where(Punch.work_date == day, Punch.method == "outside", Employee.manager_id.is_not(None))
        .order_by(Employee.manager_id, Punch.at)).all()
    by_manager: dict[int, list[tuple]] = {}
    for manager_id, name, kind, at, note in rows:
        local = at.astimezone(services.tz()).strftime("%H:%M")
        by_manager.setdefault(manager_id, []).append((name, kind, local, note))
    n = 0
    for manager_id, lines in by_manager.items():
        user = services.user_of(manager_id)
        if user is None:
            continue
        # lazy: notify.send renders it in the manager's language (clock-in / clock-out labels)
        digest = LazyString(_digest_lines, lines)
        notify.send(user, "attendance.outside_digest", {"date": day.isoformat(), "lines": digest,
                                                        "title": day.isoformat()},
                    dedupe_key=f"att-outside:{day}:{manager_id}")
        n += 1
    db.session.commit()
    return n


def _digest_lines(lines: list[tuple]) -> str:
    return "; ".join(" ".join(str(x) for x in (name, label(PUNCH_LABELS, kind), local, note) if x)
                     for name, kind, local, note in lines)
