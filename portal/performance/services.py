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
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.core import audit, notify, reminders
from portal.core.db import db, utcnow
from portal.core.models import Role, RolePermission, User, UserRole
from portal.core.security import N_, can, employee_scope, managed_department_ids
from portal.org.models import Department, Employee
from portal.performance import access, rollup
from portal.performance.models import (CHECKIN_FREQUENCIES, CYCLE_KINDS, KR_KINDS, LEVELS, CheckIn, Cycle,
                                       EarlyWarning, KeyResult, Milestone, MonthlyCompletion, Objective)

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


def _cycle_settings(checkin_day: Any, frequency: str, weekday: Any, response_days: Any) -> dict:
    def whole(value, field, lo, hi, code):
        try:
            n = int(str(value).strip())
        except (TypeError, ValueError):
            raise PerfError(code, field)
        if not lo <= n <= hi:
            raise PerfError(code, field)
        return n
    if frequency not in CHECKIN_FREQUENCIES:
        raise PerfError("bad_frequency", "checkin_frequency")
    return {"checkin_day": whole(checkin_day, "checkin_day", 1, 28, "bad_checkin_day"),
            "checkin_frequency": frequency,
            "checkin_weekday": whole(weekday, "checkin_weekday", 0, 6, "bad_weekday"),
            "response_days": whole(response_days, "response_days", 1, 60, "bad_response_days")}


def create_cycle(actor: User, kind: str, year: int, number: int | None, checkin_day: int = 25,
                 frequency: str = "monthly", weekday: int = 4, response_days: int = 7) -> Cycle:
    """A draft cycle. Check-ins are due monthly (on ``checkin_day``), or every week / two weeks (on
    ``weekday``, 0 = Monday); ``response_days``: how long the employee has to sign or appeal a result."""
    name, start, end = cycle_dates(kind, year, number)
    values = _cycle_settings(checkin_day, frequency, weekday, response_days)
    if db.session.scalar(select(Cycle.id).where(Cycle.name == name)):
        raise PerfError("cycle_exists", "year", name=name)
    cycle = Cycle(name=name, kind=kind, start_date=start, end_date=end, status="draft", **values)
    db.session.add(cycle)
    db.session.flush()
    audit.record("perf.cycle_created", cycle, {"name": name, "kind": kind, "start": start, "end": end,
                                               **values}, actor=actor)
    return cycle


def update_cycle_settings(actor: User, cycle: Cycle, checkin_day: Any, frequency: str, weekday: Any,
                          response_days: Any) -> None:
    """Change the check-in rhythm and the response time of a cycle that is not closed. The reminders of
    the current check-in period are rebuilt for the new rhythm."""
    if cycle.status == "closed":
        raise PerfError("cycle_closed")
    values = _cycle_settings(checkin_day, frequency, weekday, response_days)
    before = {k: getattr(cycle, k) for k in values}
    for k, v in values.items():
        setattr(cycle, k, v)
    db.session.flush()
    audit.record("perf.cycle_settings", cycle, {"before": before, "after": values}, actor=actor)
    if cycle.status == "open" and (before["checkin_frequency"], before["checkin_day"], before["checkin_weekday"]) \
            != (values["checkin_frequency"], values["checkin_day"], values["checkin_weekday"]):
        reminders.complete(("perf_cycles", cycle.id))
        schedule_checkin_reminders(cycle_ids=[cycle.id], replace=True)


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


MAX_MILESTONES = 50


def clean_milestones(titles: Any) -> list[str]:
    """Milestone titles from a list or from text with one title per line; blank lines dropped."""
    if titles is None:
        return []
    if isinstance(titles, str):
        titles = titles.splitlines()
    out: list[str] = []
    for t in titles:
        t = (t or "").strip()
        if not t:
            continue
        if len(t) > 200:
            raise PerfError("milestone_too_long", "milestones")
        if t in out:
            raise PerfError("milestone_duplicate", "milestones", title=t)
        out.append(t)
    if len(out) > MAX_MILESTONES:
        raise PerfError("too_many_milestones", "milestones", max=MAX_MILESTONES)
    return out


def validate_kr(kind: str, start: Any, target: Any, current: Any, weight: Any,
                milestones: list[str] | None = None) -> tuple[Decimal, ...]:
    """(start, target, current, weight). Milestone key results: the target is the number of named
    milestones and the current value the number done (progress = done / total)."""
    if kind not in KR_KINDS:
        raise PerfError("bad_kind", "kind")
    w = dec(weight, "weight", minimum=Decimal(0))
    if kind == "yesno":
        cur = dec(current or 0, "current_value")
        if cur not in (0, 1):
            raise PerfError("yesno_value", "current_value")
        return Decimal(0), Decimal(1), cur, w
    if kind == "milestone":
        if not milestones:
            raise PerfError("milestones_required", "milestones")
        total = Decimal(len(milestones))
        done = dec(current or 0, "current_value", minimum=Decimal(0))
        if done != done.to_integral_value() or done > total:
            raise PerfError("milestones_done", "current_value", total=total)
        return Decimal(0), total, done, w
    s = dec(start or 0, "start_value")
    if target is None or str(target).strip() == "":
        raise PerfError("required", "target_value")
    t = dec(target, "target_value")
    if t == s:
        raise PerfError("target_equals_start", "target_value")
    cur = s if current in (None, "") else dec(current, "current_value")
    return s, t, cur, w


def _sync_milestones(kr: KeyResult, titles: list[str]) -> None:
    """Make the key result's milestones the given list: a kept title keeps its done state, a new one
    starts not done, a dropped one is removed (its check-ins keep the titles done at the time)."""
    have = {m.title: m for m in kr.milestones}
    keep = []
    for i, title in enumerate(titles):
        m = have.pop(title, None) or Milestone(title=title, done=False)
        m.position = i
        keep.append(m)
    kr.milestones = keep
    kr.target_value = Decimal(len(keep))
    kr.current_value = Decimal(sum(1 for m in keep if m.done))


def add_key_result(actor: User, obj: Objective, title: str, kind: str, unit: str, start: Any, target: Any,
                   weight: Any, current: Any = None, milestones: Any = None) -> KeyResult:
    if not can(actor, "okr.edit", obj):
        raise PerfError("forbidden")
    title = (title or "").strip()
    if not title:
        raise PerfError("required", "title")
    names = clean_milestones(milestones) if kind == "milestone" else []
    s, t, cur, w = validate_kr(kind, start, target, None if kind == "milestone" else current, weight, names)
    pending = obj.level == "individual" and access.creator_needs_approval(actor, obj.owner)
    kr = KeyResult(objective_id=obj.id, objective=obj, title=title[:200], kind=kind,
                   unit=(unit or "").strip()[:20], start_value=s, target_value=t, current_value=cur,
                   weight=w, status="pending" if pending else "active", created_by_id=actor.id)
    if names:
        _sync_milestones(kr, names)
    db.session.add(kr)
    db.session.flush()
    audit.record("okr.kr_created", kr, {"objective_id": obj.id, "title": kr.title, "kind": kind,
                                        "unit": kr.unit, "start": s, "target": t, "weight": w,
                                        "milestones": names, "status": kr.status}, actor=actor)
    if pending and obj.status == "active":
        _ask_approval(actor, obj.owner, kr.title)
    return kr


def has_checkins(kr_ids: list[int]) -> bool:
    if not kr_ids:
        return False
    return db.session.scalar(select(CheckIn.id).where(CheckIn.key_result_id.in_(kr_ids)).limit(1)) is not None


def _kr_snapshot(kr: KeyResult) -> dict:
    return {"title": kr.title, "kind": kr.kind, "unit": kr.unit, "start": kr.start_value,
            "target": kr.target_value, "current": kr.current_value, "weight": kr.weight, "status": kr.status,
            "milestones": [m.title for m in kr.milestones]}


def update_key_result(actor: User, kr: KeyResult, title: str, kind: str, unit: str, start: Any, target: Any,
                      weight: Any, milestones: Any = None) -> None:
    """Edit a key result, with the rules of creating one (managers: team key results; employees: their
    own, and an employee's edit of an approved key result waits for the manager again). The type cannot
    change once check-ins exist (their values would mean something else)."""
    obj = kr.objective
    if kr.status == "archived":
        raise PerfError("archived")
    if not can(actor, "okr.edit", obj):
        raise PerfError("forbidden")
    title = (title or "").strip()
    if not title:
        raise PerfError("required", "title")
    if kind != kr.kind and has_checkins([kr.id]):
        raise PerfError("kind_locked", "kind")
    names = clean_milestones(milestones) if kind == "milestone" else []
    if kind == "milestone":
        done = sum(1 for m in kr.milestones if m.done and m.title in names) if kind == kr.kind else 0
        s, t, cur, w = validate_kr(kind, 0, None, done, weight, names)
    else:
        current = kr.current_value if kind == kr.kind else None
        s, t, cur, w = validate_kr(kind, start, target, current, weight)
    before = _kr_snapshot(kr)
    kr.title, kr.kind, kr.unit = title[:200], kind, (unit or "").strip()[:20]
    kr.start_value, kr.target_value, kr.current_value, kr.weight = s, t, cur, w
    if kind == "milestone":
        _sync_milestones(kr, names)
    elif kr.milestones:
        kr.milestones = []
    needs = obj.level == "individual" and access.creator_needs_approval(actor, obj.owner)
    if needs and kr.status in ("active", "rejected"):
        kr.status = "pending"  # an employee's change to an approved key result is approved again
    db.session.flush()
    audit.record("okr.kr_updated", kr, {"objective_id": obj.id, "before": before, "after": _kr_snapshot(kr)},
                 actor=actor)
    if needs and kr.status == "pending":
        _ask_approval(actor, obj.owner, kr.title)


def delete_key_result(actor: User, kr: KeyResult) -> str:
    """Delete a key result, or archive it when it has check-ins: an archived key result is left out of
    every roll-up and cannot be checked in, but it and its history stay visible. Returns "deleted" or
    "archived"."""
    obj = kr.objective
    if kr.status == "archived":
        raise PerfError("archived")
    if not can(actor, "okr.edit", obj):
        raise PerfError("forbidden")
    snapshot = {"objective_id": obj.id, **_kr_snapshot(kr)}
    if has_checkins([kr.id]):
        _transition(KeyResult, kr.id, (kr.status,), "archived")
        db.session.refresh(kr)
        audit.record("okr.kr_archived", kr, snapshot, actor=actor)
        return "archived"
    audit.record("okr.kr_deleted", kr, snapshot, actor=actor)
    obj.key_results.remove(kr)
    db.session.flush()
    return "deleted"


def delete_objective(actor: User, obj: Objective) -> str:
    """Delete an objective with its key results, or archive it when any of them has check-ins (left
    out of the roll-up and the completion, kept for history). Refused while objectives are aligned to
    it (realign or delete those first). Returns "deleted" or "archived"."""
    if obj.status == "archived":
        raise PerfError("archived")
    if not can(actor, "okr.edit", obj):
        raise PerfError("forbidden")
    children = db.session.scalar(select(func.count()).select_from(Objective).where(
        Objective.parent_id == obj.id, Objective.status.in_(("active", "pending"))))
    if children:
        raise PerfError("has_children", n=children)
    kr_ids = [k.id for k in obj.key_results]
    snapshot = {"level": obj.level, "title": obj.title, "owner_id": obj.owner_id,
                "department_id": obj.department_id, "parent_id": obj.parent_id, "status": obj.status,
                "key_results": [k.title for k in obj.key_results]}
    if has_checkins(kr_ids):
        _transition(Objective, obj.id, (obj.status,), "archived")
        db.session.refresh(obj)
        audit.record("okr.objective_archived", obj, snapshot, actor=actor)
        return "archived"
    audit.record("okr.objective_deleted", obj, snapshot, actor=actor)
    db.session.execute(update(Objective).where(Objective.parent_id == obj.id).values(parent_id=None)
                       .execution_options(synchronize_session=False))
    db.session.delete(obj)
    db.session.flush()
    return "deleted"


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

def check_in(actor: User, kr: KeyResult, value: Any, confidence: Any, comment: str,
             milestone_ids: Any = None) -> CheckIn:
    """Record progress. Milestone key results: ``milestone_ids`` are the milestones done after this
    check-in (ticked; an unticked one is open again) and the value is their number."""
    if not can(actor, "okr.checkin", kr):
        raise PerfError("forbidden")
    obj = kr.objective
    ticked: set[int] = set()
    if kr.kind == "milestone":
        try:
            ticked = {int(x) for x in (milestone_ids or [])}
        except (TypeError, ValueError):
            raise PerfError("bad_milestone", "milestones")
        if not ticked <= {m.id for m in kr.milestones}:
            raise PerfError("bad_milestone", "milestones")
        v = Decimal(len(ticked))
    elif value is None or str(value).strip() == "":
        raise PerfError("required", "value")
    elif kr.kind == "yesno":
        v = dec(value, "value")
        if v not in (0, 1):
            raise PerfError("yesno_value", "value")
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
    today = local_date(now)
    month = month_start(today)
    previous = kr.current_value
    done_titles: list[str] = []
    if kr.kind == "milestone":
        for m in kr.milestones:
            if (m.id in ticked) != m.done:
                m.done = m.id in ticked
                m.done_at, m.done_by_id = (now, actor.id) if m.done else (None, None)
        done_titles = [m.title for m in kr.milestones if m.done]
    kr.current_value = v
    p = rollup.kr_progress(kr.kind, kr.start_value, kr.target_value, v)
    ci = CheckIn(key_result_id=kr.id, employee_id=obj.owner_id, user_id=actor.id, month=month,
                 previous_value=previous, value=v, progress=p, confidence=conf,
                 comment=(comment or "").strip()[:4000], created_at=now,
                 milestones_done=json.dumps(done_titles, ensure_ascii=False) if kr.kind == "milestone" else "")
    db.session.add(ci)
    db.session.flush()
    data = {"key_result_id": kr.id, "previous": previous, "value": v, "confidence": conf}
    if kr.kind == "milestone":
        data["milestones_done"] = done_titles
    audit.record("okr.checkin", ci, data, actor=actor)
    if obj.level == "individual" and obj.owner_id:
        record_month(obj.owner_id, obj.cycle_id, month, now)
    reminders.complete(("perf_cycles", obj.cycle_id), checkin_period(obj.cycle, today).kind, user_id=actor.id)
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


# ---------------------------------------------------------------- check-in periods and reminders

FREQUENCY_DAYS = {"weekly": 7, "biweekly": 14}
# remind this long before a period's due time, then every ``overdue`` while still not checked in
REMIND_BEFORE = {"monthly": dt.timedelta(days=3), "biweekly": dt.timedelta(days=2),
                 "weekly": dt.timedelta(days=1)}
REMIND_OVERDUE = {"monthly": dt.timedelta(days=2), "biweekly": dt.timedelta(days=1),
                  "weekly": dt.timedelta(days=1)}


@dataclass
class Period:
    start: dt.date  # first day (company time)
    end: dt.date  # first day after the period
    due: dt.datetime  # UTC
    kind: str  # reminder kind, one per period

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)


def _local_to_utc(day: dt.date, hour: int = 0) -> dt.datetime:
    from portal.core.ui import company_tz
    return dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=company_tz()).astimezone(dt.timezone.utc)


def checkin_deadline(cycle: Cycle, month: dt.date) -> dt.datetime:
    day = min(cycle.checkin_day, calendar.monthrange(month.year, month.month)[1])
    return _local_to_utc(dt.date(month.year, month.month, day), 18)


def checkin_period(cycle: Cycle, day: dt.date) -> Period:
    """The check-in period of ``cycle`` that contains ``day``: calendar months (due on checkin_day), or
    weeks / two-week blocks counted from the Monday of the cycle's first week (due on checkin_weekday of
    the period's last week, 18:00 company time)."""
    freq = cycle.checkin_frequency or "monthly"
    if freq in FREQUENCY_DAYS:
        n = FREQUENCY_DAYS[freq]
        anchor = cycle.start_date - dt.timedelta(days=cycle.start_date.weekday())
        start = anchor + dt.timedelta(days=((day - anchor).days // n) * n)
        end = start + dt.timedelta(days=n)
        due_day = end - dt.timedelta(days=7) + dt.timedelta(days=cycle.checkin_weekday or 0)
        return Period(start, end, _local_to_utc(due_day, 18), f"okr.checkin.{start:%Y-%m-%d}")
    start = month_start(day)
    return Period(start, add_months(start, 1), checkin_deadline(cycle, start), f"okr.checkin.{start:%Y-%m}")


def checked_in_employees(cycle: Cycle, period: Period, employee_ids: list[int] | None = None) -> set[int]:
    """Owners with at least one check-in on the cycle's key results within the period (one query)."""
    stmt = (select(CheckIn.employee_id).join(KeyResult, KeyResult.id == CheckIn.key_result_id)
            .join(Objective, Objective.id == KeyResult.objective_id)
            .where(Objective.cycle_id == cycle.id, CheckIn.created_at >= _local_to_utc(period.start),
                   CheckIn.created_at < _local_to_utc(period.end)).distinct())
    if employee_ids is not None:
        stmt = stmt.where(CheckIn.employee_id.in_(employee_ids))
    return set(db.session.scalars(stmt))


def schedule_checkin_reminders(today: dt.date | None = None, cycle_ids: list[int] | None = None,
                               replace: bool = False) -> int:
    """For the current check-in period of every open cycle (monthly, biweekly or weekly, per cycle):
    remind each owner of active individual key results who has not checked in yet, before the due time
    and then repeatedly while overdue. Idempotent (one set of reminders per person and period);
    ``replace``: the cycle's open reminders were just cancelled, schedule afresh."""
    from portal.core.ui import local_today
    today = today or local_today()
    stmt = select(Cycle).where(Cycle.status == "open", Cycle.start_date <= today, Cycle.end_date >= today)
    if cycle_ids:
        stmt = stmt.where(Cycle.id.in_(cycle_ids))
    created = 0
    for cycle in db.session.scalars(stmt).all():
        period = checkin_period(cycle, today)
        owners = db.session.execute(
            select(User.id, Objective.owner_id).join(Objective, Objective.owner_id == User.employee_id)
            .join(KeyResult, KeyResult.objective_id == Objective.id)
            .where(Objective.cycle_id == cycle.id, Objective.level == "individual",
                   Objective.status == "active", KeyResult.status == "active", User.active.is_(True))
            .distinct()).all()
        done = checked_in_employees(cycle, period)
        have_stmt = select(reminders.Reminder.user_id).where(
            reminders.Reminder.subject_type == "perf_cycles",
            reminders.Reminder.subject_id == str(cycle.id), reminders.Reminder.kind == period.kind)
        if replace:
            have_stmt = have_stmt.where(reminders.Reminder.done_at.is_(None))
        have = set(db.session.scalars(have_stmt))
        users = [uid for uid, emp in owners if emp not in done and uid not in have]
        if users:
            freq = cycle.checkin_frequency or "monthly"
            reminders.before_deadline(users, ("perf_cycles", cycle.id), period.kind, period.due,
                                      before=[REMIND_BEFORE[freq]], overdue_every=REMIND_OVERDUE[freq],
                                      context={"title": f"OKR check-in {cycle.name} "
                                                        f"{period.start:%Y-%m-%d}–{period.last_day:%Y-%m-%d}"},
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
    loaded: bool = True  # krs and children are filled in; else they load on demand (tree_node)
    kr_count: int = 0  # key results shown when loaded (archived ones are not)
    child_count: int = 0  # aligned objectives the viewer sees
    more: int = 0  # aligned objectives not rendered yet ("show more")
    next_offset: int = 0


TREE_ROOTS_PER_PAGE = 50
TREE_CHILDREN = 20  # aligned objectives rendered per node; the rest behind "show more"
TREE_BUDGET = 60  # aligned objectives rendered per page at most (besides the roots), breadth first


def visible_owner_ids(user) -> Optional[set[int]]:
    """Employees whose individual objectives ``user`` sees (None = all)."""
    perms = access._perms(user)
    if "perf.view_all" in perms or "perf.manage" in perms:
        return None
    cond = employee_scope(user)
    if cond is None:
        return None
    return set(db.session.scalars(select(Employee.id).where(cond)))


@dataclass
class _Forest:
    """A cycle's objectives as tuples (no ORM objects), the viewer's shown tree and the raw links."""
    rows: dict[int, Any]  # id -> (id, parent_id, status, level, owner_id, department_id, link_weight)
    shown_children: dict[int, list[int]]
    roots: list[int]
    raw_children: dict[int, list[int]]
    visible: Optional[set[int]]
    cycle_size: Optional[int] = None  # None: only a subtree of the cycle was loaded
    snapshot: Any = None  # the whole cycle's _Snapshot (tuples + roll-up) when the whole cycle was loaded

    def shown(self, oid: int) -> bool:
        r = self.rows.get(oid)
        return r is not None and r.status != "archived" and (
            r.level != "individual" or self.visible is None or r.owner_id in self.visible)

    def subtree(self, ids) -> set[int]:
        """``ids`` and everything linked below them (whatever the status): all a roll-up of them needs."""
        seen: set[int] = set()
        stack = list(ids)
        while stack:
            oid = stack.pop()
            if oid in seen:
                continue
            seen.add(oid)
            stack.extend(self.raw_children.get(oid, ()))
        return seen


@dataclass
class _Snapshot:
    """A cycle's objectives and key results as tuples and their roll-up (whole cycle)."""
    rows: dict[int, Any]
    krs: list
    res: rollup.Result
    kr_count: dict[int, int]  # objective id -> its non-archived key results


_SNAPSHOTS: "dict[tuple[str, int], tuple[tuple, _Snapshot]]" = {}
_SNAPSHOTS_MAX = 8

_STATUS_CODE = ("active", "pending", "archived", "rejected")


def _code(col, values):
    """A small integer per known value (0 for any other), for the change stamp."""
    from sqlalchemy import case
    return case({v: i + 1 for i, v in enumerate(values)}, value=col, else_=0)


def _cycle_stamp(cycle_id: int) -> tuple:
    """What a cached snapshot of the cycle must match: counts, largest ids, latest updated_at and
    id-weighted sums over every column the tree and the roll-up read (so an edit that keeps a timestamp,
    e.g. under a frozen clock, or that swaps values between rows, still changes the stamp). Two aggregate
    queries: the database scans the cycle's rows, Python does not."""
    o = Objective
    objs = db.session.execute(select(
        func.count(o.id), func.max(o.id), func.max(o.updated_at),
        func.sum(o.id * func.coalesce(o.parent_id, 0)), func.sum(o.id * func.coalesce(o.owner_id, 0)),
        func.sum(o.id * func.coalesce(o.department_id, 0)), func.sum(o.id * o.link_weight),
        func.sum(o.id * _code(o.status, _STATUS_CODE)),
        func.sum(o.id * _code(o.level, ("company", "team", "individual")))).where(o.cycle_id == cycle_id)).one()
    k = KeyResult
    krs = db.session.execute(select(
        func.count(k.id), func.max(k.id), func.max(k.updated_at), func.sum(k.id * k.objective_id),
        func.sum(k.id * k.start_value), func.sum(k.id * k.target_value), func.sum(k.id * k.current_value),
        func.sum(k.id * k.weight), func.sum(k.id * _code(k.status, _STATUS_CODE)),
        func.sum(k.id * _code(k.kind, tuple(KR_KINDS))))
        .join(o, o.id == k.objective_id).where(o.cycle_id == cycle_id)).one()
    return tuple(objs) + tuple(krs)


def _snapshot(cycle_id: int) -> _Snapshot:
    """The whole cycle's tuples and roll-up, kept per process and reused while the cycle's stamp is
    unchanged (a check-in, an edit, a new or deleted objective or key result changes it)."""
    key = (str(db.engine.engine.url), cycle_id)  # (an Engine, or a Connection bound in tests)
    stamp = _cycle_stamp(cycle_id)
    hit = _SNAPSHOTS.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    rows = {r.id: r for r in db.session.execute(
        select(Objective.id, Objective.parent_id, Objective.status, Objective.level, Objective.owner_id,
               Objective.department_id, Objective.link_weight)
        .where(Objective.cycle_id == cycle_id, Objective.status != "rejected").order_by(Objective.id))}
    krs = db.session.execute(
        select(KeyResult.id, KeyResult.objective_id, KeyResult.kind, KeyResult.start_value,
               KeyResult.target_value, KeyResult.current_value, KeyResult.weight, KeyResult.status)
        .join(Objective, Objective.id == KeyResult.objective_id)
        .where(Objective.cycle_id == cycle_id, Objective.status != "rejected",
               KeyResult.status != "archived")).all()
    res = rollup.compute(
        [rollup.ObjIn(r.id, r.parent_id if r.status == "active" else None, r.link_weight) for r in rows.values()],
        [rollup.KRIn(k.id, k.objective_id, k.kind, k.start_value, k.target_value, k.current_value, k.weight)
         for k in krs if k.status == "active"])
    kr_count: dict[int, int] = {}
    for k in krs:
        kr_count[k.objective_id] = kr_count.get(k.objective_id, 0) + 1
    snap = _Snapshot(rows, krs, res, kr_count)
    if len(_SNAPSHOTS) >= _SNAPSHOTS_MAX:
        _SNAPSHOTS.pop(next(iter(_SNAPSHOTS)))
    _SNAPSHOTS[key] = (stamp, snap)
    return snap


def _forest(user, cycle_id: int, under: int | None = None) -> _Forest:
    """The whole cycle, or only the objective ``under`` and everything linked below it (recursive CTE)."""
    stmt = select(Objective.id, Objective.parent_id, Objective.status, Objective.level, Objective.owner_id,
                  Objective.department_id, Objective.link_weight) \
        .where(Objective.cycle_id == cycle_id, Objective.status != "rejected").order_by(Objective.id)
    snap = None
    if under is not None:
        sub = select(Objective.id).where(Objective.id == under).cte("okr_subtree", recursive=True)
        sub = sub.union(select(Objective.id).where(Objective.parent_id == sub.c.id,
                                                   Objective.status != "rejected"))
        stmt = stmt.where(Objective.id.in_(select(sub.c.id)))
        rows = {r.id: r for r in db.session.execute(stmt)}
    else:
        snap = _snapshot(cycle_id)
        rows = snap.rows
    f = _Forest(rows, {}, [], {}, visible_owner_ids(user), cycle_size=len(rows) if under is None else None)
    f.snapshot = snap
    for r in rows.values():
        if r.parent_id in rows and r.parent_id != r.id:
            f.raw_children.setdefault(r.parent_id, []).append(r.id)
        if f.shown(r.id):
            if r.parent_id and f.shown(r.parent_id):
                f.shown_children.setdefault(r.parent_id, []).append(r.id)
            else:
                f.roots.append(r.id)
    # the viewer's own objectives and those of the viewer's departments first, then by id
    emp_id = getattr(user, "employee_id", None)
    mine = set(managed_department_ids(user)) if emp_id else set()
    if emp_id and getattr(user, "employee", None) is not None and user.employee.department_id:
        mine.add(user.employee.department_id)

    def key(oid: int) -> tuple[bool, int]:
        r = rows[oid]
        return (not (r.owner_id == emp_id and emp_id is not None or r.department_id in mine), oid)
    for ids in (f.roots, *f.shown_children.values()):
        ids.sort(key=key)
    return f


def _kr_rows(cycle_id: int, objective_ids: set[int], total: int) -> list:
    """Value columns of the non-archived key results of ``objective_ids`` (``total``: the number of
    objectives of the cycle, 0 if unknown). Many ids: one scan of the cycle instead of a long IN list."""
    cols = (KeyResult.id, KeyResult.objective_id, KeyResult.kind, KeyResult.start_value,
            KeyResult.target_value, KeyResult.current_value, KeyResult.weight, KeyResult.status)
    if not objective_ids:
        return []
    if len(objective_ids) <= 500:
        return db.session.execute(select(*cols).where(KeyResult.objective_id.in_(objective_ids),
                                                      KeyResult.status != "archived")).all()
    rows = db.session.execute(select(*cols).join(Objective, Objective.id == KeyResult.objective_id)
                              .where(Objective.cycle_id == cycle_id, Objective.status != "rejected",
                                     KeyResult.status != "archived")).all()
    if total and len(objective_ids) >= total:
        return rows
    return [k for k in rows if k.objective_id in objective_ids]


def _rollup_rows(f: _Forest, ids: set[int], krs: list) -> rollup.Result:
    """The same roll-up as progress_for (active objectives and key results count), on tuples."""
    return rollup.compute(
        [rollup.ObjIn(r.id, r.parent_id if r.status == "active" else None, r.link_weight)
         for r in f.rows.values() if r.id in ids],
        [rollup.KRIn(k.id, k.objective_id, k.kind, k.start_value, k.target_value, k.current_value, k.weight)
         for k in krs if k.status == "active"])


def _build_nodes(f: _Forest, cycle_id: int, top: list[int], open_depth: int, offset: int = 0) -> list[Node]:
    """Nodes for ``top`` (at depth 0): nodes above ``open_depth`` come with their key results and their
    first TREE_CHILDREN aligned objectives (from ``offset`` for the top nodes); the others only with counts
    (their content loads on demand). A fixed number of queries; full rows only for what is rendered."""
    taken: dict[int, int] = {}
    budget = TREE_BUDGET

    def kids_of(oid: int, depth: int) -> list[int]:
        start = offset if depth == 0 else 0
        return f.shown_children.get(oid, [])[start:start + taken.get(oid, 0)]

    loaded: set[int] = set()
    levels: list[list[int]] = [list(top)]
    for depth in range(open_depth):
        nxt = []
        for oid in levels[-1]:
            loaded.add(oid)
            start = offset if depth == 0 else 0
            taken[oid] = max(0, min(TREE_CHILDREN, budget, len(f.shown_children.get(oid, [])) - start))
            budget -= taken[oid]
            nxt.extend(kids_of(oid, depth))
        levels.append(nxt)
    rendered = [oid for lv in levels for oid in lv]
    sub = f.subtree(rendered)
    if f.snapshot is not None:  # the whole cycle: its roll-up gives every subtree the same numbers
        res, kr_count = f.snapshot.res, f.snapshot.kr_count
    else:
        krs = _kr_rows(cycle_id, sub, f.cycle_size or 0)
        res = _rollup_rows(f, sub, krs)
        kr_count = {}
        for k in krs:
            if k.status != "archived":
                kr_count[k.objective_id] = kr_count.get(k.objective_id, 0) + 1
    objs = {o.id: o for o in db.session.scalars(select(Objective).where(Objective.id.in_(rendered)))} \
        if rendered else {}
    kr_objs: dict[int, list[KeyResult]] = {}
    if loaded:
        for k in db.session.scalars(select(KeyResult).where(KeyResult.objective_id.in_(loaded),
                                                            KeyResult.status != "archived")
                                    .order_by(KeyResult.id)):
            kr_objs.setdefault(k.objective_id, []).append(k)
    emp_ids = {o.owner_id for o in objs.values() if o.owner_id}
    dept_ids = {o.department_id for o in objs.values() if o.department_id}
    emps = dict(db.session.execute(select(Employee.id, Employee.name).where(Employee.id.in_(emp_ids)))
                .all()) if emp_ids else {}
    depts = dict(db.session.execute(select(Department.id, Department.name).where(Department.id.in_(dept_ids)))
                 .all()) if dept_ids else {}

    def build(oid: int, depth: int) -> Node:
        o = objs[oid]
        kids = f.shown_children.get(oid, [])
        n = Node(o, res.objective.get(oid), [], owner_label=emps.get(o.owner_id, ""),
                 dept_label=depts.get(o.department_id, ""), loaded=oid in loaded and depth < open_depth,
                 kr_count=kr_count.get(oid, 0), child_count=len(kids))
        if n.loaded:
            n.krs = [(k, res.kr.get(k.id)) for k in kr_objs.get(oid, [])]
            shown = kids_of(oid, depth)
            n.children = [build(c, depth + 1) for c in shown]
            start = offset if depth == 0 else 0
            n.more, n.next_offset = max(0, len(kids) - start - len(shown)), start + len(shown)
        return n
    return [build(oid, 0) for oid in top]


def alignment_tree(user, cycle: Cycle, department_id: int | None = None, page: int = 1,
                   per_page: int = TREE_ROOTS_PER_PAGE, open_depth: int = 2):
    """One page of the cycle's objectives as a forest (a core.ui.Page of root Nodes); individual
    objectives only within the viewer's scope. The roots and the nodes above ``open_depth`` are
    rendered with their key results and their first aligned objectives; deeper content loads on demand
    (tree_node). A fixed number of queries whatever the size of the cycle."""
    from portal.core.ui import Page
    f = _forest(user, cycle.id)
    roots = f.roots
    if department_id:
        from portal.org.services import subtree_ids
        sub = subtree_ids(department_id)
        picked: list[int] = []

        def walk(ids):
            for oid in ids:
                r = f.rows[oid]
                if r.level == "team" and r.department_id in sub:
                    picked.append(oid)
                else:
                    walk(f.shown_children.get(oid, []))
        walk(roots)
        roots = picked
    pages = max(1, -(-len(roots) // per_page))
    page = min(max(1, page), pages)
    top = roots[(page - 1) * per_page:page * per_page]
    return Page(_build_nodes(f, cycle.id, top, open_depth), page, per_page, len(roots))


def tree_node(user, objective_id: int, offset: int = 0) -> Optional[Node]:
    """The content of one node of the tree: its key results and aligned objectives from ``offset`` (at
    most TREE_CHILDREN, collapsed). None when the viewer does not see the objective in the tree."""
    cycle_id = db.session.scalar(select(Objective.cycle_id).where(Objective.id == objective_id))
    if cycle_id is None:
        return None
    f = _forest(user, cycle_id, under=objective_id)
    if not f.shown(objective_id):
        return None
    (n,) = _build_nodes(f, cycle_id, [objective_id], 1, max(0, offset))
    return n


def subtree_rollup(root_ids, cycle_id: int) -> rollup.Result:
    """The roll-up of ``root_ids`` and everything aligned below them, at any depth (recursive CTE), on
    tuples: the same numbers as ``cycle_progress`` gives for these objectives, without reading the rest of
    the cycle. A fixed number of queries."""
    root_ids = list(root_ids)
    if not root_ids:
        return rollup.Result()
    sub = select(Objective.id).where(Objective.id.in_(root_ids)).cte("okr_rollup_sub", recursive=True)
    sub = sub.union(select(Objective.id).where(Objective.parent_id == sub.c.id, Objective.cycle_id == cycle_id,
                                               Objective.status != "rejected"))
    rows = db.session.execute(
        select(Objective.id, Objective.parent_id, Objective.status, Objective.link_weight)
        .where(Objective.id.in_(select(sub.c.id)))).all()
    ids = [r.id for r in rows]
    krs = db.session.execute(
        select(KeyResult.id, KeyResult.objective_id, KeyResult.kind, KeyResult.start_value,
               KeyResult.target_value, KeyResult.current_value, KeyResult.weight)
        .where(KeyResult.objective_id.in_(ids), KeyResult.status == "active")).all() if ids else []
    return rollup.compute(
        [rollup.ObjIn(r.id, r.parent_id if r.status == "active" else None, r.link_weight) for r in rows],
        [rollup.KRIn(*k) for k in krs])


def my_objectives(user, cycle: Cycle) -> tuple[list[Node], list[Objective]]:
    """The user's own objectives (with progress) and those waiting for the user's approval. Archived
    objectives come last (with their progress when archived). Reads the user's objectives and what is
    aligned below them, not the whole cycle."""
    if not user.employee_id:
        return [], []
    objs = list(db.session.scalars(
        select(Objective).where(Objective.cycle_id == cycle.id, Objective.owner_id == user.employee_id,
                                Objective.status != "rejected")
        .options(selectinload(Objective.key_results)).order_by(Objective.id)))
    res = subtree_rollup([o.id for o in objs], cycle.id)
    mine = [Node(o, res.objective.get(o.id), [(k, res.kr.get(k.id)) for k in sorted(o.key_results, key=lambda k: k.id)
                                               if k.status != "archived"]) for o in objs]
    mine.sort(key=lambda n: n.objective.status == "archived")
    has_pending_kr = select(KeyResult.id).where(KeyResult.objective_id == Objective.id,
                                                KeyResult.status == "pending").exists()
    candidates = db.session.scalars(
        select(Objective).where(Objective.cycle_id == cycle.id, Objective.level == "individual",
                                Objective.owner_id != user.employee_id,
                                Objective.status != "rejected",
                                or_(Objective.status == "pending", has_pending_kr))
        .order_by(Objective.id)).all()
    pending = [o for o in candidates if can(user, "okr.approve", o)]
    return mine, pending


# ---------------------------------------------------------------- team report

BUCKETS = ((0, 20), (20, 40), (40, 60), (60, 80), (80, 101))


@dataclass
class ReportRow:
    employee: Employee
    completion: Optional[Decimal]
    objectives: int
    last_checkin: Optional[dt.datetime]
    checked_in: bool  # within the current check-in period of the cycle


def team_report(user, cycle: Cycle, today: dt.date | None = None) -> dict:
    """Completion per person in ``user``'s scope, its distribution, and who has not checked in during
    the cycle's current check-in period (monthly, biweekly or weekly)."""
    from portal.core.ui import local_today
    today = today or local_today()
    period = checkin_period(cycle, today)
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
    in_period = checked_in_employees(cycle, period, ids) if ids else set()
    rows = []
    for e in emps:
        lc = last.get(e.id)
        if lc is not None and lc.tzinfo is None:
            lc = lc.replace(tzinfo=dt.timezone.utc)
        rows.append(ReportRow(e, comp.get(e.id), counts.get(e.id, 0), lc, e.id in in_period))
    dist = []
    with_okrs = [r for r in rows if r.objectives]
    for lo, hi in BUCKETS:
        n = sum(1 for r in with_okrs if r.completion is not None and lo <= r.completion < hi)
        dist.append({"label": f"{lo}–{min(hi, 100)} %", "count": n})
    dist.append({"label": "—", "count": sum(1 for r in with_okrs if r.completion is None)})
    top = max([d["count"] for d in dist] + [1])
    for d in dist:
        d["width"] = int(round(d["count"] * 20 / top)) * 5
    missing = [r for r in with_okrs if not r.checked_in]
    return {"rows": rows, "distribution": dist, "missing": missing, "period": period,
            "frequency": cycle.checkin_frequency or "monthly"}


def team_report_xlsx(report: dict, cycle: Cycle, labels: dict[str, str], progress=None) -> bytes:
    """The team report as XLSX; ``progress(done, total)`` is called every 50 rows."""
    import io

    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "OKR"
    period = report["period"]
    ws.append([labels["cycle"], cycle.name])
    ws.append([labels["period"], f"{period.start:%Y-%m-%d} – {period.last_day:%Y-%m-%d}"])
    ws.append([labels["emp_no"], labels["name"], labels["department"], labels["objectives"],
               labels["completion"], labels["last_checkin"], labels["checked_in"]])
    rows = report["rows"]
    for i, r in enumerate(rows):
        ws.append([r.employee.emp_no, r.employee.name, r.employee.department.name if r.employee.department else "",
                   r.objectives, float(r.completion) if r.completion is not None else None,
                   local_date(r.last_checkin).isoformat() if r.last_checkin else "",
                   labels["yes"] if r.checked_in else labels["no"]])
        if progress is not None and i % 50 == 0:
            progress(i, len(rows))
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
