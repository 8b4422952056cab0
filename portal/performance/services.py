"""OKRs: cycles, objectives, key results, check-ins, monthly completion, alignment tree, team report,
early warnings. All writes and rules; no request object. Callers commit."""
from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.core import audit, notify, reminders
from portal.core.db import db, utcnow
from portal.core.models import Role, RolePermission, User, UserRole
from portal.core.security import N_, can, employee_scope, managed_department_ids
from portal.org.models import Department, Employee
from portal.performance import access, rollup
from portal.performance.models import (CYCLE_KINDS, KR_KINDS, LEVELS, CheckIn, Cycle, EarlyWarning,
                                       KeyResult, MonthlyCompletion, Objective)

notify.register_template("perf.warning", notify.Template(
    N_("Performance early warning: %(name)s"),
    N_("%(name)s: monthly OKR completion %(numbers)s. The rule: %(months)s consecutive months below "
       "%(threshold)s%% or a drop of more than %(drop)s points."),
    channels=("inapp", "email")))
notify.register_template("perf.objective_pending", notify.Template(
    N_("Objective to approve: %(title)s"),
    N_("%(name)s proposed the objective or key result \"%(title)s\". Please approve it in the portal."),
    channels=("inapp",)))


class PerfError(ValueError):
    """A user-facing problem; ``field`` names the form field it belongs to."""

    def __init__(self, code: str, field: str | None = None, **params):
        super().__init__(code)
        self.code, self.field, self.params = code, field, params


class Conflict(PerfError):
    """Someone else changed the record first (409)."""


def setting(name: str, default):
    return current_app.config.get(name, default)


def month_start(d: dt.date) -> dt.date:
    return d.replace(day=1)


def add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return dt.date(y, m + 1, 1)


def local_date(value: dt.datetime) -> dt.date:
    from portal.core.ui import company_tz
    return value.astimezone(company_tz()).date()


def dec(value: Any, field: str, *, minimum: Decimal | None = None) -> Decimal:
    try:
        d = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        raise PerfError("not_a_number", field)
    if not d.is_finite() or abs(d) >= Decimal("1e13"):
        raise PerfError("not_a_number", field)
    if minimum is not None and d < minimum:
        raise PerfError("too_small", field, minimum=minimum)
    return d


# ---------------------------------------------------------------- cycles

def cycle_dates(kind: str, year: int, number: int | None) -> tuple[str, dt.date, dt.date]:
    if kind not in CYCLE_KINDS:
        raise PerfError("bad_kind", "kind")
    if not 2000 <= year <= 2100:
        raise PerfError("bad_year", "year")
    if kind == "year":
        return str(year), dt.date(year, 1, 1), dt.date(year, 12, 31)
    if kind == "quarter":
        if number not in (1, 2, 3, 4):
            raise PerfError("bad_quarter", "number")
        start = dt.date(year, 3 * number - 2, 1)
        return f"{year} Q{number}", start, add_months(start, 3) - dt.timedelta(days=1)
    if number is None or not 1 <= number <= 12:
        raise PerfError("bad_month", "number")
    start = dt.date(year, number, 1)
    return f"{year}-{number:02d}", start, add_months(start, 1) - dt.timedelta(days=1)


def create_cycle(actor: User, kind: str, year: int, number: int | None, checkin_day: int = 25) -> Cycle:
    name, start, end = cycle_dates(kind, year, number)
    if not 1 <= checkin_day <= 28:
        raise PerfError("bad_checkin_day", "checkin_day")
    if db.session.scalar(select(Cycle.id).where(Cycle.name == name)):
        raise PerfError("cycle_exists", "year", name=name)
    cycle = Cycle(name=name, kind=kind, start_date=start, end_date=end, checkin_day=checkin_day,
                  status="draft")
    db.session.add(cycle)
    db.session.flush()
    audit.record("perf.cycle_created", cycle, {"name": name, "kind": kind, "start": start, "end": end},
                 actor=actor)
    return cycle


def _transition(model, obj_id: int, expected: tuple[str, ...], new: str, **values) -> None:
    """Conditional UPDATE: one concurrent state change wins, the other gets Conflict."""
    res = db.session.execute(update(model).where(model.id == obj_id, model.status.in_(expected))
                             .values(status=new, **values).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict("conflict")


def open_cycle(cycle: Cycle, actor: User) -> None:
    _transition(Cycle, cycle.id, ("draft",), "open", opened_at=utcnow())
    db.session.refresh(cycle)
    audit.record("perf.cycle_opened", cycle, {"name": cycle.name}, actor=actor)
    schedule_checkin_reminders(cycle_ids=[cycle.id])


def close_cycle(cycle: Cycle, actor: User) -> None:
    _transition(Cycle, cycle.id, ("open",), "closed", closed_at=utcnow())
    db.session.refresh(cycle)
    reminders.complete(("perf_cycles", cycle.id))
    audit.record("perf.cycle_closed", cycle, {"name": cycle.name}, actor=actor)


def cycles(status: tuple[str, ...] | None = None) -> list[Cycle]:
    stmt = select(Cycle).order_by(Cycle.start_date.desc(), Cycle.kind)
    if status:
        stmt = stmt.where(Cycle.status.in_(status))
    return list(db.session.scalars(stmt))


def default_cycle() -> Optional[Cycle]:
    """The open cycle that started last (the shortest one on ties), else the newest cycle."""
    rows = cycles(("open",)) or cycles()
    return rows[0] if rows else None


# ---------------------------------------------------------------- objectives and key results

def _ancestors(parent: Objective) -> set[int]:
    seen: set[int] = set()
    cur: Optional[Objective] = parent
    while cur is not None and cur.id not in seen:
        seen.add(cur.id)
        cur = db.session.get(Objective, cur.parent_id) if cur.parent_id else None
    return seen


ALLOWED_PARENTS = {"company": (), "team": ("company", "team"), "individual": ("company", "team")}


def _check_parent(obj_level: str, cycle: Cycle, parent: Optional[Objective], self_id: int | None) -> None:
    if parent is None:
        return
    if parent.cycle_id != cycle.id:
        raise PerfError("parent_other_cycle", "parent_id")
    if parent.level not in ALLOWED_PARENTS[obj_level]:
        raise PerfError("parent_level", "parent_id")
    if self_id is not None and self_id in _ancestors(parent):
        raise PerfError("parent_cycle", "parent_id")


def create_objective(actor: User, cycle: Cycle, level: str, title: str, *, description: str = "",
                     owner: Optional[Employee] = None, department: Optional[Department] = None,
                     parent: Optional[Objective] = None, link_weight: Any = 1) -> Objective:
    """Company: HR. Team: HR or the head of the department (okr.team). Individual: the employee
    (waits for the manager's approval), the manager or HR (active at once)."""
    if cycle.status != "open":
        raise PerfError("cycle_not_open")
    if level not in LEVELS:
        raise PerfError("bad_level", "level")
    title = (title or "").strip()
    if not title:
        raise PerfError("required", "title")
    weight = dec(link_weight, "link_weight", minimum=Decimal(0))
    perms = access._perms(actor)
    if level == "company":
        if "perf.manage" not in perms:
            raise PerfError("forbidden")
        owner = None
        department = None
    elif level == "team":
        if department is None:
            raise PerfError("required", "department_id")
        if "perf.manage" not in perms and not ("okr.team" in perms
                                               and department.id in managed_department_ids(actor)):
            raise PerfError("forbidden")
        owner = owner or department.head
    else:
        owner = owner or actor.employee
        if owner is None:
            raise PerfError("required", "owner_id")
        if not ("perf.manage" in perms or owner.id == actor.employee_id
                or access.manages_employee_id(actor, owner)):
            raise PerfError("forbidden")
        department = owner.department
    _check_parent(level, cycle, parent, None)
    pending = level == "individual" and access.creator_needs_approval(actor, owner)
    obj = Objective(cycle_id=cycle.id, cycle=cycle, level=level, title=title[:200],
                    description=(description or "").strip(), owner_id=getattr(owner, "id", None),
                    owner=owner, department_id=getattr(department, "id", None),
                    parent_id=getattr(parent, "id", None), link_weight=weight,
                    status="pending" if pending else "active", created_by_id=actor.id)
    if not pending:
        obj.approved_by_id, obj.approved_at = actor.id, utcnow()
    db.session.add(obj)
    db.session.flush()
    audit.record("okr.objective_created", obj, {"level": level, "title": obj.title, "status": obj.status,
                                                "owner_id": obj.owner_id, "parent_id": obj.parent_id,
                                                "link_weight": weight}, actor=actor)
    if pending:
        _ask_approval(actor, owner, obj.title)
    return obj


def _manager_user(emp: Employee) -> Optional[User]:
    mgr_id = emp.manager_id or (emp.department.head_id if emp.department else None)
    if not mgr_id or mgr_id == emp.id:
        return None
    return db.session.scalar(select(User).where(User.employee_id == mgr_id, User.active.is_(True)))


def _ask_approval(actor: User, owner: Employee, title: str) -> None:
    mgr = _manager_user(owner)
    if mgr is not None:
        notify.send(mgr, "perf.objective_pending", {"name": owner.name, "title": title}, link="/okr")


def update_objective(actor: User, obj: Objective, title: str, description: str,
                     parent: Optional[Objective], link_weight: Any) -> None:
    if not can(actor, "okr.edit", obj):
        raise PerfError("forbidden")
    title = (title or "").strip()
    if not title:
        raise PerfError("required", "title")
    weight = dec(link_weight, "link_weight", minimum=Decimal(0))
    _check_parent(obj.level, obj.cycle, parent, obj.id)
    before = {"title": obj.title, "parent_id": obj.parent_id, "link_weight": obj.link_weight}
    obj.title, obj.description = title[:200], (description or "").strip()
    obj.parent_id, obj.link_weight = getattr(parent, "id", None), weight
    if obj.level == "individual" and obj.status == "active" and access.creator_needs_approval(actor, obj.owner):
        obj.status = "pending"  # an employee's change to an approved objective is approved again
        _ask_approval(actor, obj.owner, obj.title)
    audit.record("okr.objective_updated", obj, {"before": before, "title": obj.title,
                                                "parent_id": obj.parent_id, "link_weight": weight,
                                                "status": obj.status}, actor=actor)


def validate_kr(kind: str, start: Any, target: Any, current: Any, weight: Any) -> tuple[Decimal, ...]:
    if kind not in KR_KINDS:
        raise PerfError("bad_kind", "kind")
    w = dec(weight, "weight", minimum=Decimal(0))
    if kind == "yesno":
        cur = dec(current or 0, "current_value")
        if cur not in (0, 1):
            raise PerfError("yesno_value", "current_value")
        return Decimal(0), Decimal(1), cur, w
    if kind == "milestone":
        total = dec(target, "target_value", minimum=Decimal(1))
        if total != total.to_integral_value():
            raise PerfError("whole_number", "target_value")
        done = dec(current or 0, "current_value", minimum=Decimal(0))
        if done != done.to_integral_value() or done > total:
            raise PerfError("milestones_done", "current_value", total=total)
        return Decimal(0), total, done, w
    s = dec(start or 0, "start_value")
    t = dec(target, "target_value")
    if t == s:
        raise PerfError("target_equals_start", "target_value")
    cur = s if current in (None, "") else dec(current, "current_value")
    return s, t, cur, w


def add_key_result(actor: User, obj: Objective, title: str, kind: str, unit: str, start: Any, target: Any,
                   weight: Any, current: Any = None) -> KeyResult:
    if not can(actor, "okr.edit", obj):
        raise PerfError("forbidden")
    title = (title or "").strip()
    if not title:
        raise PerfError("required", "title")
    s, t, cur, w = validate_kr(kind, start, target, current, weight)
    pending = obj.level == "individual" and access.creator_needs_approval(actor, obj.owner)
    kr = KeyResult(objective_id=obj.id, objective=obj, title=title[:200], kind=kind,
                   unit=(unit or "").strip()[:20], start_value=s, target_value=t, current_value=cur,
                   weight=w, status="pending" if pending else "active", created_by_id=actor.id)
    db.session.add(kr)
    db.session.flush()
    audit.record("okr.kr_created", kr, {"objective_id": obj.id, "title": kr.title, "kind": kind,
                                        "unit": kr.unit, "start": s, "target": t, "weight": w,
                                        "status": kr.status}, actor=actor)
    if pending and obj.status == "active":
        _ask_approval(actor, obj.owner, kr.title)
    return kr


def approve_objective(actor: User, obj: Objective, approve: bool = True) -> int:
    """Approve (or reject) a pending objective and its pending key results. Returns how many rows."""
    if not can(actor, "okr.approve", obj):
        raise PerfError("forbidden")
    new = "active" if approve else "rejected"
    changed = db.session.execute(
        update(Objective).where(Objective.id == obj.id, Objective.status == "pending")
        .values(status=new, approved_by_id=actor.id, approved_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    krs = db.session.execute(
        update(KeyResult).where(KeyResult.objective_id == obj.id, KeyResult.status == "pending")
        .values(status=new).execution_options(synchronize_session=False)).rowcount
    if not changed and not krs:
        raise Conflict("nothing_pending")
    db.session.refresh(obj)
    for kr in obj.key_results:
        db.session.refresh(kr)
    audit.record("okr.objective_approved" if approve else "okr.objective_rejected", obj,
                 {"objective": bool(changed), "key_results": krs}, actor=actor)
    return changed + krs


# ---------------------------------------------------------------- progress

def progress_for(objectives: list[Objective], krs: list[KeyResult]) -> rollup.Result:
    """Roll-up over active objectives and active key results (pending ones are shown, not counted)."""
    return rollup.compute(
        [rollup.ObjIn(o.id, o.parent_id if o.status == "active" else None, o.link_weight)
         for o in objectives],
        [rollup.KRIn(k.id, k.objective_id, k.kind, k.start_value, k.target_value, k.current_value,
                     k.weight) for k in krs if k.status == "active"])


def cycle_progress(cycle_id: int) -> tuple[list[Objective], list[KeyResult], rollup.Result]:
    """Every objective and key result of a cycle and their progress: two queries."""
    objs = list(db.session.scalars(
        select(Objective).where(Objective.cycle_id == cycle_id, Objective.status != "rejected")
        .order_by(Objective.id)))
    ids = [o.id for o in objs]
    krs = list(db.session.scalars(select(KeyResult).where(KeyResult.objective_id.in_(ids))
                                  .order_by(KeyResult.id))) if ids else []
    return objs, krs, progress_for(objs, krs)  # a pending child does not count in its parent


def employee_completion(employee_id: int, cycle_id: int) -> Optional[Decimal]:
    """The employee's objectives' progress in the cycle, percent: the link-weighted mean of their active
    individual objectives (None when nothing has a defined progress)."""
    objs = list(db.session.scalars(select(Objective).where(
        Objective.cycle_id == cycle_id, Objective.owner_id == employee_id,
        Objective.level == "individual", Objective.status == "active")))
    if not objs:
        return None
    krs = list(db.session.scalars(select(KeyResult).where(KeyResult.objective_id.in_([o.id for o in objs]))))
    res = progress_for(objs, krs)
    return rollup.percent(rollup.weighted((o.link_weight, res.objective.get(o.id)) for o in objs))


def completions(cycle_id: int, employee_ids: list[int] | None = None) -> dict[int, Optional[Decimal]]:
    """employee_completion for many employees at once (two queries)."""
    stmt = select(Objective).where(Objective.cycle_id == cycle_id, Objective.level == "individual",
                                   Objective.status == "active")
    if employee_ids is not None:
        stmt = stmt.where(Objective.owner_id.in_(employee_ids))
    objs = list(db.session.scalars(stmt))
    krs = list(db.session.scalars(select(KeyResult).where(
        KeyResult.objective_id.in_([o.id for o in objs])))) if objs else []
    res = progress_for(objs, krs)
    by_emp: dict[int, list[Objective]] = {}
    for o in objs:
        by_emp.setdefault(o.owner_id, []).append(o)
    return {eid: rollup.percent(rollup.weighted((o.link_weight, res.objective.get(o.id)) for o in os_))
            for eid, os_ in by_emp.items()}


# ---------------------------------------------------------------- check-ins

def check_in(actor: User, kr: KeyResult, value: Any, confidence: Any, comment: str) -> CheckIn:
    if not can(actor, "okr.checkin", kr):
        raise PerfError("forbidden")
    obj = kr.objective
    if kr.kind == "yesno":
        v = dec(value, "value")
        if v not in (0, 1):
            raise PerfError("yesno_value", "value")
    elif kr.kind == "milestone":
        v = dec(value, "value", minimum=Decimal(0))
        if v != v.to_integral_value() or v > kr.target_value:
            raise PerfError("milestones_done", "value", total=kr.target_value)
    else:
        v = dec(value, "value")
    try:
        conf = int(str(confidence).strip())
    except (TypeError, ValueError):
        raise PerfError("confidence", "confidence")
    if not 1 <= conf <= 10:
        raise PerfError("confidence", "confidence")
    # lock the key result: two check-ins at once are applied one after the other
    db.session.execute(select(KeyResult.id).where(KeyResult.id == kr.id).with_for_update())
    db.session.refresh(kr)
    now = utcnow()
    month = month_start(local_date(now))
    previous = kr.current_value
    kr.current_value = v
    p = rollup.kr_progress(kr.kind, kr.start_value, kr.target_value, v)
    ci = CheckIn(key_result_id=kr.id, employee_id=obj.owner_id, user_id=actor.id, month=month,
                 previous_value=previous, value=v, progress=p, confidence=conf,
                 comment=(comment or "").strip()[:4000], created_at=now)
    db.session.add(ci)
    db.session.flush()
    audit.record("okr.checkin", ci, {"key_result_id": kr.id, "previous": previous, "value": v,
                                     "confidence": conf}, actor=actor)
    if obj.level == "individual" and obj.owner_id:
        record_month(obj.owner_id, obj.cycle_id, month, now)
    reminders.complete(("perf_cycles", obj.cycle_id), f"okr.checkin.{month:%Y-%m}", user_id=actor.id)
    return ci


def record_month(employee_id: int, cycle_id: int, month: dt.date, at: dt.datetime) -> MonthlyCompletion:
    """The month's completion = the employee's objectives' progress at the month's last check-in."""
    completion = employee_completion(employee_id, cycle_id)
    row = db.session.scalar(select(MonthlyCompletion).where(
        MonthlyCompletion.employee_id == employee_id, MonthlyCompletion.month == month).with_for_update())
    if row is None:
        try:
            with db.session.begin_nested():
                row = MonthlyCompletion(employee_id=employee_id, month=month, completion=completion,
                                        last_checkin_at=at)
                db.session.add(row)
            return row
        except IntegrityError:  # a concurrent first check-in of the month
            row = db.session.scalar(select(MonthlyCompletion).where(
                MonthlyCompletion.employee_id == employee_id, MonthlyCompletion.month == month)
                .with_for_update())
    if row.last_checkin_at <= at:
        row.completion, row.last_checkin_at = completion, at
    return row


def kr_history(kr: KeyResult) -> list[CheckIn]:
    return list(db.session.scalars(select(CheckIn).options(selectinload(CheckIn.user))
                                   .where(CheckIn.key_result_id == kr.id)
                                   .order_by(CheckIn.created_at, CheckIn.id)))


def chart_points(kr: KeyResult, history: list[CheckIn], width: int = 320, height: int = 120,
                 pad: int = 20) -> dict:
    """Server-side SVG geometry of progress over time (0..100 %), one point per check-in."""
    pts = [(c.created_at, c.progress) for c in history if c.progress is not None]
    if not pts:
        return {"points": "", "dots": [], "width": width, "height": height}
    t0 = pts[0][0].timestamp()
    span = max(pts[-1][0].timestamp() - t0, 1)
    dots = []
    for i, (t, p) in enumerate(pts):
        x = pad + ((t.timestamp() - t0) / span * (width - 2 * pad) if len(pts) > 1 else (width - 2 * pad) / 2)
        y = height - pad - float(p) * (height - 2 * pad)
        dots.append({"x": round(x, 1), "y": round(y, 1), "label": f"{local_date(t):%m-%d} {float(p) * 100:.0f}%"})
    return {"points": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots, "width": width,
            "height": height, "pad": pad, "top": pad, "bottom": height - pad}


# ---------------------------------------------------------------- reminders

def checkin_deadline(cycle: Cycle, month: dt.date) -> dt.datetime:
    from portal.core.ui import company_tz
    day = min(cycle.checkin_day, calendar.monthrange(month.year, month.month)[1])
    local = dt.datetime(month.year, month.month, day, 18, 0, tzinfo=company_tz())
    return local.astimezone(dt.timezone.utc)


def schedule_checkin_reminders(today: dt.date | None = None, cycle_ids: list[int] | None = None) -> int:
    """For the current month of every open cycle: remind each owner of active individual key results who
    has not checked in yet, 3 days before the due day and then every 2 days. Idempotent."""
    from portal.core.ui import local_today
    today = today or local_today()
    month = month_start(today)
    stmt = select(Cycle).where(Cycle.status == "open", Cycle.start_date <= today, Cycle.end_date >= today)
    if cycle_ids:
        stmt = stmt.where(Cycle.id.in_(cycle_ids))
    created = 0
    for cycle in db.session.scalars(stmt).all():
        kind = f"okr.checkin.{month:%Y-%m}"
        owners = db.session.execute(
            select(User.id, Objective.owner_id).join(Objective, Objective.owner_id == User.employee_id)
            .join(KeyResult, KeyResult.objective_id == Objective.id)
            .where(Objective.cycle_id == cycle.id, Objective.level == "individual",
                   Objective.status == "active", KeyResult.status == "active", User.active.is_(True))
            .distinct()).all()
        done = set(db.session.scalars(
            select(CheckIn.employee_id).join(KeyResult).join(Objective)
            .where(Objective.cycle_id == cycle.id, CheckIn.month == month)))
        have = set(db.session.scalars(select(reminders.Reminder.user_id).where(
            reminders.Reminder.subject_type == "perf_cycles",
            reminders.Reminder.subject_id == str(cycle.id), reminders.Reminder.kind == kind)))
        deadline = checkin_deadline(cycle, month)
        users = [uid for uid, emp in owners if emp not in done and uid not in have]
        if users:
            reminders.before_deadline(users, ("perf_cycles", cycle.id), kind, deadline,
                                      before=[dt.timedelta(days=3)], overdue_every=dt.timedelta(days=2),
                                      context={"title": f"OKR check-in {cycle.name} {month:%Y-%m}"},
                                      link="/okr")
            created += len(users)
    return created


# ---------------------------------------------------------------- alignment tree

@dataclass
class Node:
    objective: Objective
    progress: Optional[Decimal]
    krs: list[tuple[KeyResult, Optional[Decimal]]]
    children: list["Node"] = field(default_factory=list)
    owner_label: str = ""
    dept_label: str = ""


def visible_owner_ids(user) -> Optional[set[int]]:
    """Employees whose individual objectives ``user`` sees (None = all)."""
    perms = access._perms(user)
    if "perf.view_all" in perms or "perf.manage" in perms:
        return None
    cond = employee_scope(user)
    if cond is None:
        return None
    return set(db.session.scalars(select(Employee.id).where(cond)))


def alignment_tree(user, cycle: Cycle, department_id: int | None = None) -> list[Node]:
    """The cycle's objectives as a forest; individual objectives only within the viewer's scope.
    A fixed number of queries whatever the size of the tree."""
    objs, krs, res = cycle_progress(cycle.id)
    visible = visible_owner_ids(user)
    by_obj: dict[int, list[tuple[KeyResult, Optional[Decimal]]]] = {}
    for k in krs:
        by_obj.setdefault(k.objective_id, []).append((k, res.kr.get(k.id)))
    # owners and departments for the labels, in two queries
    emp_ids = {o.owner_id for o in objs if o.owner_id}
    dept_ids = {o.department_id for o in objs if o.department_id}
    emps = {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_(emp_ids)))} if emp_ids else {}
    depts = {d.id: d for d in db.session.scalars(select(Department).where(Department.id.in_(dept_ids)))} if dept_ids else {}
    shown = [o for o in objs if o.level != "individual" or visible is None or o.owner_id in visible]
    nodes = {o.id: Node(o, res.objective.get(o.id), by_obj.get(o.id, []),
                        owner_label=emps[o.owner_id].name if o.owner_id in emps else "",
                        dept_label=depts[o.department_id].name if o.department_id in depts else "")
             for o in shown}
    roots = []
    for o in shown:
        parent = nodes.get(o.parent_id) if o.parent_id else None
        (parent.children if parent else roots).append(nodes[o.id])
    if department_id:
        from portal.org.services import subtree_ids
        sub = subtree_ids(department_id)
        picked: list[Node] = []

        def walk(ns):
            for n in ns:
                if n.objective.level == "team" and n.objective.department_id in sub:
                    picked.append(n)
                else:
                    walk(n.children)
        walk(roots)
        roots = picked
    return roots


def my_objectives(user, cycle: Cycle) -> tuple[list[Node], list[Objective]]:
    """The user's own objectives (with progress) and those waiting for the user's approval."""
    if not user.employee_id:
        return [], []
    objs, krs, res = cycle_progress(cycle.id)
    by_obj: dict[int, list] = {}
    for k in krs:
        by_obj.setdefault(k.objective_id, []).append((k, res.kr.get(k.id)))
    mine = [Node(o, res.objective.get(o.id), by_obj.get(o.id, [])) for o in objs
            if o.owner_id == user.employee_id]
    pending = [o for o in objs if o.level == "individual" and o.owner_id != user.employee_id
               and (o.status == "pending" or any(k.status == "pending" for k, _ in by_obj.get(o.id, [])))
               and can(user, "okr.approve", o)]
    return mine, pending


# ---------------------------------------------------------------- team report

BUCKETS = ((0, 20), (20, 40), (40, 60), (60, 80), (80, 101))


@dataclass
class ReportRow:
    employee: Employee
    completion: Optional[Decimal]
    objectives: int
    last_checkin: Optional[dt.datetime]
    checked_in_this_month: bool


def team_report(user, cycle: Cycle, today: dt.date | None = None) -> dict:
    from portal.core.ui import local_today
    today = today or local_today()
    month = month_start(today)
    stmt = select(Employee).options(selectinload(Employee.department)).where(Employee.status != "left")
    perms = access._perms(user)
    if "perf.view_all" not in perms:
        cond = employee_scope(user)
        if cond is not None:
            stmt = stmt.where(cond)
    emps = list(db.session.scalars(stmt.order_by(Employee.department_id, Employee.name)))
    ids = [e.id for e in emps]
    comp = completions(cycle.id, ids)
    counts = dict(db.session.execute(
        select(Objective.owner_id, func.count()).where(Objective.cycle_id == cycle.id,
                                                       Objective.level == "individual",
                                                       Objective.status == "active",
                                                       Objective.owner_id.in_(ids))
        .group_by(Objective.owner_id)).all()) if ids else {}
    last = dict(db.session.execute(
        select(CheckIn.employee_id, func.max(CheckIn.created_at)).join(KeyResult).join(Objective)
        .where(Objective.cycle_id == cycle.id, CheckIn.employee_id.in_(ids))
        .group_by(CheckIn.employee_id)).all()) if ids else {}
    this_month = set(db.session.scalars(
        select(CheckIn.employee_id).join(KeyResult).join(Objective)
        .where(Objective.cycle_id == cycle.id, CheckIn.month == month, CheckIn.employee_id.in_(ids))
        .distinct())) if ids else set()
    rows = []
    for e in emps:
        lc = last.get(e.id)
        if lc is not None and lc.tzinfo is None:
            lc = lc.replace(tzinfo=dt.timezone.utc)
        rows.append(ReportRow(e, comp.get(e.id), counts.get(e.id, 0), lc, e.id in this_month))
    dist = []
    with_okrs = [r for r in rows if r.objectives]
    for lo, hi in BUCKETS:
        n = sum(1 for r in with_okrs if r.completion is not None and lo <= r.completion < hi)
        dist.append({"label": f"{lo}–{min(hi, 100)} %", "count": n})
    dist.append({"label": "—", "count": sum(1 for r in with_okrs if r.completion is None)})
    top = max([d["count"] for d in dist] + [1])
    for d in dist:
        d["width"] = int(round(d["count"] * 20 / top)) * 5
    missing = [r for r in with_okrs if not r.checked_in_this_month]
    return {"rows": rows, "distribution": dist, "missing": missing, "month": month}


def team_report_xlsx(report: dict, cycle: Cycle, labels: dict[str, str]) -> bytes:
    import io

    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "OKR"
    ws.append([labels["cycle"], cycle.name])
    ws.append([])
    ws.append([labels["emp_no"], labels["name"], labels["department"], labels["objectives"],
               labels["completion"], labels["last_checkin"], labels["this_month"]])
    for r in report["rows"]:
        ws.append([r.employee.emp_no, r.employee.name, r.employee.department.name if r.employee.department else "",
                   r.objectives, float(r.completion) if r.completion is not None else None,
                   local_date(r.last_checkin).isoformat() if r.last_checkin else "",
                   labels["yes"] if r.checked_in_this_month else labels["no"]])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---------------------------------------------------------------- early warning

def _users_with_permission(perm: str) -> list[User]:
    return list(db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id).join(Role, Role.id == UserRole.role_id)
        .join(RolePermission, RolePermission.role_id == Role.id)
        .where(RolePermission.permission == perm, User.active.is_(True)).distinct().order_by(User.id)))


def scan_warnings(month: dt.date | None = None) -> list[EarlyWarning]:
    """Flag employees whose monthly completion was below the threshold for N consecutive months (setting
    PERF_WARN_MONTHS, default 2; PERF_WARN_THRESHOLD 70) or dropped by more than PERF_WARN_DROP (20)
    points from the month before. ``month`` defaults to the last finished month (its last check-in is
    final). One warning per (employee, month), whatever how often this runs. Set-based: a fixed number of
    queries for all employees."""
    from portal.core.ui import local_today
    month = month_start(month or add_months(month_start(local_today()), -1))
    n = max(1, int(setting("PERF_WARN_MONTHS", 2)))
    threshold = Decimal(str(setting("PERF_WARN_THRESHOLD", 70)))
    drop = Decimal(str(setting("PERF_WARN_DROP", 20)))
    first = add_months(month, -max(n - 1, 1))
    rows = db.session.execute(select(MonthlyCompletion.employee_id, MonthlyCompletion.month,
                                     MonthlyCompletion.completion)
                              .where(MonthlyCompletion.month >= first, MonthlyCompletion.month <= month)).all()
    by_emp: dict[int, dict[dt.date, Optional[Decimal]]] = {}
    for eid, m, c in rows:
        by_emp.setdefault(eid, {})[m] = c
    done = set(db.session.scalars(select(EarlyWarning.employee_id).where(EarlyWarning.month == month)))
    flagged: list[tuple[int, list[str], dict]] = []
    for eid, months in by_emp.items():
        if eid in done or months.get(month) is None:
            continue
        reasons = []
        run = [months.get(add_months(month, -i)) for i in range(n)]
        if all(c is not None and c < threshold for c in run):
            reasons.append("low")
        prev = months.get(add_months(month, -1))
        if prev is not None and prev - months[month] > drop:
            reasons.append("drop")
        if reasons:
            data = {"months": {f"{m:%Y-%m}": f"{c:.2f}" if c is not None else None
                               for m, c in sorted(months.items())},
                    "threshold": str(threshold), "consecutive": n, "drop": str(drop)}
            flagged.append((eid, reasons, data))
    if not flagged:
        return []
    emps = {e.id: e for e in db.session.scalars(select(Employee).options(selectinload(Employee.department))
                                                .where(Employee.id.in_([f[0] for f in flagged])))}
    hr_users = _users_with_permission("perf.view_all")
    out = []
    for eid, reasons, data in flagged:
        try:
            with db.session.begin_nested():
                w = EarlyWarning(employee_id=eid, month=month, reasons=",".join(reasons),
                                 data=json.dumps(data, ensure_ascii=False))
                db.session.add(w)
        except IntegrityError:  # another run took this one
            continue
        emp = emps[eid]
        audit.record("perf.warning_raised", w, {"employee_id": eid, "month": f"{month:%Y-%m}",
                                                "reasons": reasons, **data})
        numbers = ", ".join(f"{k}: {v if v is not None else '—'}%" for k, v in data["months"].items())
        recipients = {u.id: u for u in hr_users}
        mgr = _manager_user(emp)
        if mgr is not None:
            recipients[mgr.id] = mgr
        for u in recipients.values():
            if u.employee_id == eid:
                continue
            notify.send(u, "perf.warning", {"name": emp.name, "numbers": numbers, "months": n,
                                            "threshold": threshold, "drop": drop},
                        related=("perf_warnings", w.id), link="/performance/warnings",
                        dedupe_key=f"perfwarn:{eid}:{month:%Y-%m}:{u.id}")
        out.append(w)
    return out


def warnings_for(user, limit: int = 200) -> list[EarlyWarning]:
    stmt = (select(EarlyWarning).options(selectinload(EarlyWarning.employee))
            .join(Employee, Employee.id == EarlyWarning.employee_id)
            .order_by(EarlyWarning.month.desc(), EarlyWarning.id.desc()).limit(limit))
    if "perf.view_all" not in access._perms(user):
        cond = employee_scope(user)
        if cond is not None:
            stmt = stmt.where(cond, Employee.id != user.employee_id)
    return list(db.session.scalars(stmt))
