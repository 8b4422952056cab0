"""Offboarding: resignation / termination, permission freeze and temporary unfreezes, checklists from
templates, confirmations, waivers, the ordered sign-off chain, final signatures and completion.

No request object in here: callers pass the acting user and commit. Every change writes an audit event
in the caller's transaction. Competing decisions are settled by conditional UPDATEs (one wins; the
other gets ``OffboardingError('conflict')``).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Optional

from flask import current_app, has_request_context, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text, update

from portal.accounts import services as accounts
from portal.core import audit, notify, reminders, signatures
from portal.core.db import db, utcnow
from portal.core.models import PermissionOverride, Role, User, UserRole
from portal.core.security import N_, effective_permissions, has_role
from portal.offboarding import clients as client_svc
from portal.offboarding.labels import KIND_LABELS, RESPONSIBLE_LABELS, label
from portal.offboarding.models import (RESPONSIBLE, ChecklistItem, ChecklistTemplate, Client,
                                       ClientTransfer, Offboarding, RevocationRun, SignoffStep,
                                       TemplateItem, UnfreezeRequest)
from portal.offboarding.perms import BUSINESS_PERMISSIONS, FREEZE_SOURCE, UNFREEZE_SOURCE
from portal.org.models import Employee

notify.register_template("offboarding", notify.Template(
    N_("Offboarding: %(title)s"), N_("%(body)s"), channels=("inapp", "email")))
notify.register_template("offboarding_alert", notify.Template(
    N_("Offboarding needs attention: %(title)s"), N_("%(body)s"), channels=("inapp", "email", "sms")))


class OffboardingError(ValueError):
    """A user-facing refusal; ``code`` is translated by the view; ``status`` is the HTTP status."""

    def __init__(self, code: str, status: int = 422, field: str | None = None, **params):
        super().__init__(code)
        self.code, self.status, self.field, self.params = code, status, field, params


# ---------------------------------------------------------------- settings

def setting(key: str, default: Any = None) -> Any:
    return current_app.config.get(f"OFFBOARDING_{key}", default)


def _link(endpoint: str, **kw) -> str:
    return url_for(endpoint, **kw) if has_request_context() else ""


def notice_days_for(employee: Employee, on: dt.date) -> int:
    """Labour Contract Law art. 37: 30 days' notice, 3 during probation."""
    if employee.in_probation(on):
        return int(setting("PROBATION_NOTICE_DAYS", 3))
    return int(setting("NOTICE_DAYS", 30))


def _today() -> dt.date:
    from portal.core.ui import local_today
    return local_today()


def _local_end_of(day: dt.date, hhmm: str = "23:59") -> dt.datetime:
    from portal.core.ui import company_tz
    h, m = (int(x) for x in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(h, m), company_tz()).astimezone(dt.timezone.utc)


# ---------------------------------------------------------------- people

def user_of(employee_id: int | None) -> Optional[User]:
    if not employee_id:
        return None
    return db.session.scalar(select(User).where(User.employee_id == employee_id))


def users_with_role(*codes: str) -> list[User]:
    return list(db.session.scalars(
        select(User).join(UserRole, UserRole.user_id == User.id).join(Role, Role.id == UserRole.role_id)
        .where(Role.code.in_(codes), User.active.is_(True)).distinct().order_by(User.id)))


def head_of(employee: Employee) -> Optional[Employee]:
    """The leaver's department head (climbing up when the leaver heads the department), else manager."""
    dept = employee.department
    seen = set()
    while dept is not None and dept.id not in seen:
        seen.add(dept.id)
        if dept.head_id and dept.head_id != employee.id:
            return dept.head
        dept = dept.parent
    if employee.manager_id and employee.manager_id != employee.id:
        return employee.manager
    return None


def responsible_users(ob: Offboarding, role: str) -> list[User]:
    if role == "leaver":
        return [ob.user] if ob.user else []
    if role == "successor":
        u = user_of(ob.successor_id)
        return [u] if u else []
    if role == "head":
        head = head_of(ob.employee)
        u = user_of(head.id) if head else None
        return [u] if u else []
    code = {"finance": "finance", "it": "it", "hr": "hr"}[role]
    return [u for u in users_with_role(code) if u.id != ob.user_id]


def is_responsible(user, ob: Offboarding, role: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if role == "leaver":
        return user.id == ob.user_id
    if user.id == ob.user_id:
        return False  # never the leaver for anyone else's step
    if role == "successor":
        return bool(ob.successor_id) and user.employee_id == ob.successor_id
    if role == "head":
        head = head_of(ob.employee)
        return head is not None and user.employee_id == head.id
    if role == "hr":
        return "offboarding.manage" in effective_permissions(user)
    return has_role(user, role)


def open_offboarding_of(employee_id: int) -> Optional[Offboarding]:
    return db.session.scalar(select(Offboarding).where(Offboarding.employee_id == employee_id,
                                                       Offboarding.stage != "completed"))


def involved(user, ob: Offboarding) -> bool:
    """May ``user`` see this offboarding? (policy offboarding.view)"""
    if "offboarding.view_all" in effective_permissions(user):
        return True
    if user.id == ob.user_id or (ob.successor_id and user.employee_id == ob.successor_id):
        return True
    from portal.core.security import is_manager_of
    if is_manager_of(user, ob.employee):
        return True
    roles = {i.responsible for i in ob.items} | {s.role for s in ob.current_steps}
    return any(is_responsible(user, ob, r) for r in roles if r in ("finance", "it", "head"))


# ---------------------------------------------------------------- resignation / termination

def submit_resignation(user: User, reason: str, now: dt.datetime | None = None) -> Offboarding:
    if not user.employee_id:
        raise OffboardingError("no_employee")
    emp = user.employee
    today = _today()
    days = notice_days_for(emp, today)
    return _begin(emp, user, "resignation", today + dt.timedelta(days=days), days, reason, now=now)


def record_termination(actor: User, employee: Employee, last_day: dt.date, reason: str) -> Offboarding:
    if not (reason or "").strip():
        raise OffboardingError("reason_required", field="reason")
    if last_day is None:
        raise OffboardingError("last_day_required", field="last_day")
    days = max(0, (last_day - _today()).days)
    return _begin(employee, actor, "termination", last_day, days, reason)


def _begin(emp: Employee, actor: User, kind: str, last_day: dt.date, days: int, reason: str,
           now: dt.datetime | None = None) -> Offboarding:
    _lock_employee(emp.id)  # two tabs / a double click submitting together: the second sees the first
    if emp.status == "left":
        raise OffboardingError("already_left")
    if open_offboarding_of(emp.id) is not None:
        raise OffboardingError("already_open", status=409)
    leaver = user_of(emp.id)
    now = now or utcnow()
    revoke_on = setting("REVOKE_ON", "completion")
    ob = Offboarding(employee_id=emp.id, user_id=leaver.id if leaver else None, kind=kind,
                     reason=(reason or "").strip(), submitted_at=now, notice_days=days, last_day=last_day,
                     stage="notice", revoke_on=revoke_on if revoke_on in ("completion", "last_day") else "completion",
                     created_by_id=actor.id)
    db.session.add(ob)
    emp.status = "notice"
    db.session.flush()
    audit.record("offboarding.resignation_submitted" if kind == "resignation" else "offboarding.termination_recorded",
                 ob, {"employee_id": emp.id, "last_day": last_day.isoformat(), "notice_days": days,
                      "reason": ob.reason}, actor=actor)
    audit.record("employee.status_changed", emp, {"status": "notice", "offboarding_id": ob.id}, actor=actor)
    if leaver is not None:
        freeze(ob, actor)
    _schedule_revocation(ob)
    link = _link("offboarding.show", offboarding_id=ob.id)
    targets = users_with_role("hr")
    head = head_of(emp)
    if head is not None and user_of(head.id):
        targets.append(user_of(head.id))
    for u in {u.id: u for u in targets if u.id != ob.user_id}.values():
        notify.send(u, "offboarding", {"title": emp.name, "body": _body_started(ob)}, related=("offboardings", ob.id),
                    link=link, dedupe_key=f"offb:{ob.id}:started:{u.id}")
    return ob


def _lock_employee(emp_id: int) -> None:
    """Serialise the start of offboardings of one employee. PostgreSQL: a row lock, then the check reads
    what a concurrent request committed. SQLite: write first, so the transaction waits for the write lock
    (busy_timeout) before it reads; the caller ends its read transaction before calling (see views)."""
    if db.dialect == "postgresql":
        db.session.execute(select(Employee.id).where(Employee.id == emp_id).with_for_update())
    else:
        db.session.execute(text("UPDATE employees SET id = id WHERE id = :id"), {"id": emp_id})
    db.session.refresh(db.session.get(Employee, emp_id), ["status"])


def _body_started(ob: Offboarding):
    return _l("%(name)s (%(emp_no)s): %(kind)s, last working day %(day)s", name=ob.employee.name,
              emp_no=ob.employee.emp_no, kind=label(KIND_LABELS, ob.kind), day=ob.last_day.isoformat())


def freeze_permissions_for(user: User) -> list[str]:
    """Configured per role (OFFBOARDING_FREEZE = {role: [perms]}, "*" for everyone)."""
    conf = setting("FREEZE", None) or {"*": list(BUSINESS_PERMISSIONS)}
    perms: list[str] = list(conf.get("*", []))
    for code in sorted(user.role_codes):
        perms.extend(conf.get(code, []))
    return list(dict.fromkeys(perms))


def freeze(ob: Offboarding, actor: User, perms: Iterable[str] | None = None) -> list[PermissionOverride]:
    """Deny overrides for the leaver's business permissions, at once (idempotent per permission)."""
    user = ob.user
    if user is None:
        return []
    added = []
    for perm in (perms if perms is not None else freeze_permissions_for(user)):
        exists = db.session.scalar(select(PermissionOverride.id).where(
            PermissionOverride.user_id == user.id, PermissionOverride.permission == perm,
            PermissionOverride.effect == "deny", PermissionOverride.source == FREEZE_SOURCE,
            PermissionOverride.revoked_at.is_(None)))
        if exists:
            continue
        added.append(accounts.add_override(user, perm, "deny", actor, f"offboarding #{ob.id}: frozen",
                                           source=FREEZE_SOURCE))
    if added:
        audit.record("offboarding.frozen", ob, {"permissions": [o.permission for o in added]}, actor=actor)
    return added


def frozen_permissions(ob: Offboarding) -> list[str]:
    if not ob.user_id:
        return []
    return sorted(set(db.session.scalars(select(PermissionOverride.permission).where(
        PermissionOverride.user_id == ob.user_id, PermissionOverride.source == FREEZE_SOURCE,
        PermissionOverride.effect == "deny", PermissionOverride.revoked_at.is_(None)))))


def update_dates(ob: Offboarding, actor: User, last_day: dt.date, revoke_on: str) -> None:
    if ob.stage == "completed":
        raise OffboardingError("completed", status=409)
    if last_day is None:
        raise OffboardingError("last_day_required", field="last_day")
    if revoke_on not in ("completion", "last_day"):
        raise OffboardingError("bad_revoke_on", field="revoke_on")
    before = {"last_day": ob.last_day.isoformat(), "revoke_on": ob.revoke_on}
    shift = (last_day - ob.last_day).days
    ob.last_day, ob.revoke_on = last_day, revoke_on
    for item in ob.items:  # due dates follow the last day
        if not item.closed and shift:
            item.due_date = item.due_date + dt.timedelta(days=shift)
            _remind_item(ob, item, reset=True)
    _schedule_revocation(ob)
    audit.record("offboarding.dates_changed", ob, {"before": before, "last_day": last_day.isoformat(),
                                                   "revoke_on": revoke_on}, actor=actor)


# ---------------------------------------------------------------- templates

def pick_template(employee: Employee) -> Optional[ChecklistTemplate]:
    """Most specific active template: department + position > position > department > general."""
    rows = db.session.scalars(select(ChecklistTemplate).where(ChecklistTemplate.active.is_(True))
                              .order_by(ChecklistTemplate.id)).all()

    def score(t: ChecklistTemplate) -> int:
        if t.department_id and t.department_id != employee.department_id:
            return -1
        if t.position_id and t.position_id != employee.position_id:
            return -1
        return (2 if t.position_id else 0) + (1 if t.department_id else 0)

    ranked = sorted((t for t in rows if score(t) >= 0), key=lambda t: (-score(t), t.id))
    return ranked[0] if ranked else None


def save_template(actor: User, name: str, department_id: int | None, position_id: int | None, active: bool,
                  template: ChecklistTemplate | None = None) -> ChecklistTemplate:
    name = (name or "").strip()
    if not name:
        raise OffboardingError("name_required", field="name")
    if template is None:
        template = ChecklistTemplate()
        db.session.add(template)
    template.name, template.department_id, template.position_id = name[:120], department_id, position_id
    template.active = active
    db.session.flush()
    audit.record("offboarding.template_saved", template, {"name": template.name, "department_id": department_id,
                                                          "position_id": position_id, "active": active},
                 actor=actor)
    return template


def add_template_item(actor: User, template: ChecklistTemplate, title: str, description: str, responsible: str,
                      requires_upload: bool, due_offset_days: int) -> TemplateItem:
    title = (title or "").strip()
    if not title:
        raise OffboardingError("title_required", field="title")
    if responsible not in RESPONSIBLE:
        raise OffboardingError("bad_responsible", field="responsible")
    if due_offset_days is None or not -365 <= due_offset_days <= 365:
        raise OffboardingError("bad_offset", field="due_offset_days")
    sort = (max((i.sort for i in template.items), default=0) or 0) + 10
    item = TemplateItem(template_id=template.id, sort=sort, title=title[:200], description=(description or "").strip(),
                        responsible=responsible, requires_upload=bool(requires_upload),
                        due_offset_days=int(due_offset_days))
    db.session.add(item)
    template.items.append(item)
    db.session.flush()
    audit.record("offboarding.template_item_added", template,
                 {"item_id": item.id, "title": item.title, "responsible": responsible,
                  "requires_upload": item.requires_upload, "due_offset_days": item.due_offset_days}, actor=actor)
    return item


def delete_template_item(actor: User, item: TemplateItem) -> None:
    template = item.template
    audit.record("offboarding.template_item_deleted", template, {"item_id": item.id, "title": item.title},
                 actor=actor)
    template.items.remove(item)
    db.session.delete(item)


# ---------------------------------------------------------------- handover

def start_handover(ob: Offboarding, actor: User, successor: Employee | None,
                   template: ChecklistTemplate | None) -> None:
    if ob.stage != "notice":
        raise OffboardingError("already_started", status=409)
    if successor is None:
        raise OffboardingError("successor_required", field="successor")
    if successor.id == ob.employee_id:
        raise OffboardingError("successor_is_leaver", field="successor")
    if successor.status != "active":
        raise OffboardingError("successor_inactive", field="successor")
    template = template or pick_template(ob.employee)
    if template is None or not template.items:
        raise OffboardingError("no_template", field="template")
    ob.successor_id, ob.template_id = successor.id, template.id
    ob.successor = successor
    ob.stage, ob.started_at = "handover", utcnow()
    for t in template.items:
        item = ChecklistItem(offboarding_id=ob.id, sort=t.sort, title=t.title, description=t.description,
                             responsible=t.responsible, requires_upload=t.requires_upload,
                             due_date=ob.last_day + dt.timedelta(days=t.due_offset_days), status="open")
        ob.items.append(item)
    db.session.flush()
    _create_steps(ob)
    for item in ob.items:
        _remind_item(ob, item)
    audit.record("offboarding.handover_started", ob, {"successor_id": successor.id, "template_id": template.id,
                                                      "items": [{"id": i.id, "title": i.title,
                                                                 "responsible": i.responsible,
                                                                 "due": i.due_date.isoformat()} for i in ob.items]},
                 actor=actor)


def _create_steps(ob: Offboarding) -> None:
    roles = ["successor", "head"]
    if any(i.responsible == "finance" for i in ob.items) or setting("FINANCE_SIGNOFF", False):
        roles.append("finance")
    roles.append("hr")
    for seq, role in enumerate(roles, start=1):
        ob.steps.append(SignoffStep(offboarding_id=ob.id, round=ob.signoff_round, seq=seq, role=role,
                                    status="pending"))
    db.session.flush()


def _remind_item(ob: Offboarding, item: ChecklistItem, reset: bool = False) -> None:
    subject = ("checklist_items", item.id)
    if reset:
        reminders.complete(subject)
    people = {u.id for u in responsible_users(ob, item.responsible)}
    if item.responsible != "leaver" and ob.user_id and ob.user and ob.user.is_active:
        people.add(ob.user_id)  # the leaver fills the item; the responsible person confirms it
    if not people:
        return
    reminders.before_deadline(sorted(people), subject, "offboarding.item", _local_end_of(item.due_date, "18:00"),
                              before=[dt.timedelta(days=3)], overdue_every=dt.timedelta(days=1),
                              channels=("inapp", "email", "sms"),
                              context={"title": f"{ob.employee.name}: {item.title}"},
                              link=_link("offboarding.show", offboarding_id=ob.id))


def _lock(ob: Offboarding) -> None:
    """Serialise decisions on one offboarding (row lock on PostgreSQL; SQLite has one writer anyway)."""
    db.session.execute(select(Offboarding.id).where(Offboarding.id == ob.id).with_for_update())


def can_fill(user, item: ChecklistItem) -> bool:
    ob = item.offboarding
    return (ob.stage == "handover" and not item.closed
            and (user.id == ob.user_id or is_responsible(user, ob, item.responsible)))


def can_confirm(user, item: ChecklistItem) -> bool:
    ob = item.offboarding
    return ob.stage == "handover" and not item.closed and is_responsible(user, ob, item.responsible)


def submit_item(item: ChecklistItem, user: User, note: str, stored_file=None) -> None:
    """The leaver (or the responsible person) fills an item: a note and/or the uploaded document."""
    if not can_fill(user, item):
        raise OffboardingError("not_yours", status=403)
    if stored_file is None and item.file_id is None and item.requires_upload:
        raise OffboardingError("upload_required", field="file")
    if not (note or "").strip() and stored_file is None and item.file_id is None:
        raise OffboardingError("note_required", field="note")
    _lock(item.offboarding)
    item.note = (note or "").strip() or item.note
    if stored_file is not None:
        item.file_id = stored_file.id
    item.status, item.submitted_by_id, item.submitted_at = "submitted", user.id, utcnow()
    audit.record("offboarding.item_submitted", item, {
        "offboarding_id": item.offboarding_id, "title": item.title, "note": item.note,
        "file_id": item.file_id, "file_sha256": stored_file.sha256 if stored_file is not None else None},
        actor=user)
    if is_responsible(user, item.offboarding, item.responsible):
        confirm_item(item, user)
    else:
        for u in responsible_users(item.offboarding, item.responsible):
            notify.send(u, "offboarding", {"title": item.title, "body": _l(
                "%(name)s filled in “%(item)s”: please check and confirm it.",
                name=item.offboarding.employee.name, item=item.title)},
                        related=("checklist_items", item.id), link=_link("offboarding.show",
                                                                         offboarding_id=item.offboarding_id))


def confirm_item(item: ChecklistItem, user: User) -> None:
    if not can_confirm(user, item):
        raise OffboardingError("not_responsible", status=403)
    if item.requires_upload and item.file_id is None:
        raise OffboardingError("upload_required", field="file")
    now = utcnow()
    res = db.session.execute(update(ChecklistItem).where(
        ChecklistItem.id == item.id, ChecklistItem.status.in_(("open", "submitted")))
        .values(status="done", confirmed_by_id=user.id, confirmed_at=now)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("conflict", status=409)
    item.status, item.confirmed_by_id, item.confirmed_at = "done", user.id, now
    reminders.complete(("checklist_items", item.id))
    audit.record("offboarding.item_confirmed", item, {"offboarding_id": item.offboarding_id, "title": item.title},
                 actor=user)
    _after_item_closed(item.offboarding, user)


def waive_item(item: ChecklistItem, actor: User, reason: str, evidence=None) -> None:
    """HR closes an item with a recorded waiver (e.g. the leaver absconded): reason + evidence."""
    ob = item.offboarding
    if "offboarding.manage" not in effective_permissions(actor) or actor.id == ob.user_id:
        raise OffboardingError("hr_only", status=403)
    if ob.stage not in ("notice", "handover"):
        raise OffboardingError("not_in_handover", status=409)
    if not (reason or "").strip():
        raise OffboardingError("reason_required", field="reason")
    if evidence is None:
        raise OffboardingError("evidence_required", field="evidence")
    now = utcnow()
    res = db.session.execute(update(ChecklistItem).where(
        ChecklistItem.id == item.id, ChecklistItem.status.in_(("open", "submitted")))
        .values(status="waived", waiver_reason=reason.strip(), waiver_file_id=evidence.id, waived_by_id=actor.id,
                waived_at=now).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("conflict", status=409)
    item.status, item.waiver_reason, item.waiver_file_id = "waived", reason.strip(), evidence.id
    item.waived_by_id, item.waived_at = actor.id, now
    reminders.complete(("checklist_items", item.id))
    audit.record("offboarding.item_waived", item, {"offboarding_id": ob.id, "title": item.title,
                                                   "reason": item.waiver_reason, "evidence_file_id": evidence.id,
                                                   "evidence_sha256": evidence.sha256}, actor=actor)
    _after_item_closed(ob, actor)


def _after_item_closed(ob: Offboarding, actor: User) -> None:
    db.session.flush()
    if ob.stage == "handover" and not any(not i.closed for i in ob.items):
        ob.stage = "signoff"
        audit.record("offboarding.stage_changed", ob, {"stage": "signoff"}, actor=actor)
        _notify_step(ob)


def transfer_clients(ob: Offboarding, actor: User, client_ids: Iterable[int] | None) -> list[ClientTransfer]:
    """Move the leaver's clients (chosen ids, or all with None) to the successor; audited one by one."""
    if ob.successor_id is None:
        raise OffboardingError("successor_required", field="successor")
    if ob.stage == "completed":
        raise OffboardingError("completed", status=409)
    if not (actor.id == ob.user_id or "offboarding.manage" in effective_permissions(actor)
            or is_responsible(actor, ob, "head")):
        raise OffboardingError("not_allowed", status=403)
    owned = client_svc.owned_by(ob.employee_id)
    if client_ids is not None:
        wanted = set(int(i) for i in client_ids)
        chosen = [c for c in owned if c.id in wanted]
        if not chosen:
            raise OffboardingError("no_clients_chosen", field="client_ids")
    else:
        chosen = owned
    return client_svc.transfer(actor, chosen, ob.successor, offboarding_id=ob.id)


def transfers_of(ob: Offboarding) -> list[ClientTransfer]:
    return list(db.session.scalars(select(ClientTransfer).where(ClientTransfer.offboarding_id == ob.id)
                                   .order_by(ClientTransfer.at, ClientTransfer.id)))


# ---------------------------------------------------------------- sign-off chain

def current_step(ob: Offboarding) -> Optional[SignoffStep]:
    return next((s for s in ob.current_steps if s.status == "pending"), None)


def _notify_step(ob: Offboarding) -> None:
    step = current_step(ob)
    if step is None or ob.stage != "signoff":
        return
    for u in responsible_users(ob, step.role):
        notify.send(u, "offboarding", {"title": ob.employee.name,
                                       "body": _l("The offboarding of %(name)s waits for your sign-off (as %(role)s).",
                                                  name=ob.employee.name,
                                                  role=label(RESPONSIBLE_LABELS, step.role))},
                    related=("offboarding_signoffs", step.id), link=_link("offboarding.show", offboarding_id=ob.id),
                    dedupe_key=f"offb:{ob.id}:step:{step.id}:{u.id}")


def approve_step(ob: Offboarding, step_id: int, actor: User, comment: str = "") -> SignoffStep:
    """Approve the step ``step_id``. The first statement is the conditional claim, so of two concurrent
    approvals exactly one changes the row; the checks after it roll the claim back when they fail."""
    now = utcnow()
    res = db.session.execute(update(SignoffStep).where(
        SignoffStep.id == step_id, SignoffStep.offboarding_id == ob.id, SignoffStep.status == "pending")
        .values(status="approved", decided_by_id=actor.id, decided_at=now, comment=(comment or "").strip())
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("already_decided", status=409)
    db.session.refresh(ob)
    step = db.session.get(SignoffStep, step_id, populate_existing=True)
    if step.round != ob.signoff_round:
        raise OffboardingError("already_decided", status=409)
    _check_decider(ob, step, actor)
    audit.record("offboarding.signoff_approved", step, {"offboarding_id": ob.id, "round": step.round,
                                                        "seq": step.seq, "role": step.role}, actor=actor)
    if all(s.status == "approved" for s in ob.current_steps):
        ob.stage = "signing"
        audit.record("offboarding.stage_changed", ob, {"stage": "signing"}, actor=actor)
        for u in filter(None, [ob.user, user_of(ob.successor_id)]):
            notify.send(u, "offboarding", {"title": ob.employee.name, "body": _l(
                "The handover of %(name)s is approved and ready for your signature.", name=ob.employee.name)},
                        related=("offboardings", ob.id), link=_link("offboarding.show", offboarding_id=ob.id),
                        dedupe_key=f"offb:{ob.id}:sign:{ob.signoff_round}:{u.id}")
    else:
        _notify_step(ob)
    return step


def _check_decider(ob: Offboarding, step: SignoffStep, actor: User) -> None:
    if ob.stage != "signoff":
        raise OffboardingError("items_open" if ob.stage == "handover" else "not_in_signoff", status=409)
    if actor.id == ob.user_id:
        raise OffboardingError("self_approval", status=403)
    earlier = [s for s in ob.current_steps if s.seq < step.seq and s.status != "approved"]
    if earlier:
        raise OffboardingError("out_of_order", status=409, role=earlier[0].role)
    if not is_responsible(actor, ob, step.role):
        raise OffboardingError("not_your_step", status=403)
    others = [s for s in ob.current_steps if s.id != step.id and s.decided_by_id == actor.id
              and s.status == "approved"]
    if others:
        raise OffboardingError("one_step_per_person", status=403)


def reject_step(ob: Offboarding, step_id: int, actor: User, item_id: int, reason: str) -> None:
    """Send an item back with a reason: the item reopens and the sign-off chain starts a new round."""
    if not (reason or "").strip():
        raise OffboardingError("reason_required", field="reason")
    item = next((i for i in ob.items if i.id == item_id), None)
    if item is None:
        raise OffboardingError("item_required", field="item_id")
    now = utcnow()
    res = db.session.execute(update(SignoffStep).where(
        SignoffStep.id == step_id, SignoffStep.offboarding_id == ob.id, SignoffStep.status == "pending")
        .values(status="rejected", decided_by_id=actor.id, decided_at=now, comment=reason.strip())
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("already_decided", status=409)
    db.session.refresh(ob)
    step = db.session.get(SignoffStep, step_id, populate_existing=True)
    if step.round != ob.signoff_round:
        raise OffboardingError("already_decided", status=409)
    _check_decider(ob, step, actor)
    item.status, item.rejection_reason, item.rejected_by_id, item.rejected_at = "open", reason.strip(), actor.id, now
    item.confirmed_by_id = item.confirmed_at = None
    item.waived_by_id = item.waived_at = None
    ob.signoff_round += 1
    ob.stage = "handover"
    db.session.flush()
    _create_steps(ob)
    _remind_item(ob, item, reset=True)
    audit.record("offboarding.signoff_rejected", step, {"offboarding_id": ob.id, "round": step.round,
                                                        "role": step.role, "item_id": item.id,
                                                        "item": item.title, "reason": reason.strip()}, actor=actor)
    for u in filter(None, [ob.user] + responsible_users(ob, item.responsible)):
        notify.send(u, "offboarding", {"title": item.title, "body": _l(
                    "“%(item)s” was sent back: %(reason)s", item=item.title, reason=reason.strip())},
                    related=("checklist_items", item.id), link=_link("offboarding.show", offboarding_id=ob.id))


# ---------------------------------------------------------------- final signatures and completion

def handover_content(ob: Offboarding) -> dict:
    """What leaver and successor sign: the checklist, the transfers and the approvals of this round."""
    return {
        "offboarding_id": ob.id, "employee": ob.employee.emp_no, "successor": ob.successor.emp_no if ob.successor else None,
        "last_day": ob.last_day.isoformat(),
        "items": [{"id": i.id, "title": i.title, "status": i.status, "note": i.note, "file_id": i.file_id,
                   "waiver": i.waiver_reason} for i in ob.items],
        "transfers": [{"client_id": t.client_id, "from": t.from_employee_id, "to": t.to_employee_id}
                      for t in transfers_of(ob)],
        "approvals": [{"seq": s.seq, "role": s.role, "by": s.decided_by_id,
                       "at": s.decided_at.isoformat() if s.decided_at else None} for s in ob.current_steps],
    }


def sign_handover(ob: Offboarding, user: User, password: str) -> signatures.Signature:
    if ob.stage != "signing":
        raise OffboardingError("not_ready_to_sign", status=409)
    if user.id == ob.user_id:
        attr, who = "leaver_signature_id", "leaver"
    elif ob.successor_id and user.employee_id == ob.successor_id:
        attr, who = "successor_signature_id", "successor"
    else:
        raise OffboardingError("not_a_signer", status=403)
    if getattr(ob, attr) is not None:
        raise OffboardingError("already_signed", status=409)
    sig = signatures.sign(user, password, f"offboarding.handover.{who}", ("offboardings", ob.id),
                          handover_content(ob))
    res = db.session.execute(update(Offboarding).where(Offboarding.id == ob.id, getattr(Offboarding, attr).is_(None))
                             .values(**{attr: sig.id}).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("already_signed", status=409)
    setattr(ob, attr, sig.id)
    audit.record("offboarding.handover_signed", ob, {"as": who, "signature_id": sig.id,
                                                     "content_hash": sig.content_hash}, actor=user)
    return sig


def waive_leaver_signature(ob: Offboarding, actor: User, reason: str) -> None:
    """The leaver cannot be reached (absconded): HR records why the leaver's signature is missing."""
    if "offboarding.manage" not in effective_permissions(actor) or actor.id == ob.user_id:
        raise OffboardingError("hr_only", status=403)
    if ob.stage != "signing" or ob.leaver_signature_id:
        raise OffboardingError("not_ready_to_sign", status=409)
    if not (reason or "").strip():
        raise OffboardingError("reason_required", field="reason")
    ob.leaver_signature_waiver = reason.strip()
    audit.record("offboarding.leaver_signature_waived", ob, {"reason": ob.leaver_signature_waiver}, actor=actor)


def missing(ob: Offboarding) -> list[dict]:
    """Everything that keeps the offboarding from completion, in order, for the UI and the refusal."""
    out: list[dict] = []
    if ob.stage == "notice":
        out.append({"code": "not_started"})
    for i in ob.items:
        if not i.closed:
            out.append({"code": "item_open", "item": i})
    for s in ob.current_steps:
        if s.status != "approved":
            out.append({"code": "step_pending", "step": s})
    if not ob.leaver_signature_id and not ob.leaver_signature_waiver:
        out.append({"code": "leaver_signature"})
    if not ob.successor_signature_id:
        out.append({"code": "successor_signature"})
    return out


def complete(ob: Offboarding, actor: User) -> None:
    if "offboarding.manage" not in effective_permissions(actor) or actor.id == ob.user_id:
        raise OffboardingError("hr_only", status=403)
    _lock(ob)
    if ob.stage == "completed":
        raise OffboardingError("completed", status=409)
    gaps = missing(ob)
    if gaps:
        raise OffboardingError("incomplete", status=409, gaps=gaps)
    res = db.session.execute(update(Offboarding).where(Offboarding.id == ob.id, Offboarding.stage == "signing")
                             .values(stage="completed", completed_at=utcnow())
                             .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("conflict", status=409)
    db.session.refresh(ob)
    ob.employee.status = "left"
    reminders.complete(("offboardings", ob.id))
    for i in ob.items:
        reminders.complete(("checklist_items", i.id))
    audit.record("offboarding.completed", ob, {"items": [{"id": i.id, "status": i.status} for i in ob.items],
                                               "waived": [i.id for i in ob.items if i.status == "waived"]},
                 actor=actor)
    audit.record("employee.status_changed", ob.employee, {"status": "left", "offboarding_id": ob.id}, actor=actor)
    for u in users_with_role("hr", "it"):
        if u.id != ob.user_id:
            notify.send(u, "offboarding", {"title": ob.employee.name,
                                           "body": _l("The offboarding of %(name)s is completed.",
                                                      name=ob.employee.name)},
                        related=("offboardings", ob.id), link=_link("offboarding.show", offboarding_id=ob.id),
                        dedupe_key=f"offb:{ob.id}:completed:{u.id}")
    if ob.revoke_on == "completion":
        _schedule_revocation(ob, due=utcnow())


# ---------------------------------------------------------------- revocation scheduling

def revocation_due(ob: Offboarding) -> Optional[dt.datetime]:
    if ob.revoke_on == "last_day":
        days_before = int(setting("REVOKE_DAYS_BEFORE", 0))
        return _local_end_of(ob.last_day - dt.timedelta(days=days_before), setting("REVOKE_TIME", "18:00"))
    return None


def _schedule_revocation(ob: Offboarding, due: dt.datetime | None = None) -> Optional[RevocationRun]:
    if ob.user_id is None:
        return None
    due = due or revocation_due(ob)
    run = db.session.scalar(select(RevocationRun).where(RevocationRun.offboarding_id == ob.id))
    if due is None:
        if run is not None and run.status == "scheduled":
            db.session.delete(run)  # timing changed to "at completion": nothing is due yet
        return None
    from portal.offboarding import revocation
    if run is None:
        run = RevocationRun(offboarding_id=ob.id, status="scheduled", due_at=due)
        db.session.add(run)
        db.session.flush()
        audit.record("offboarding.revocation_scheduled", ob, {"due_at": due.isoformat()})
    elif run.status == "scheduled":
        run.due_at = due
    if due <= utcnow():
        revocation.enqueue(run.id)
    return run


# ---------------------------------------------------------------- temporary unfreeze

def request_unfreeze(ob: Offboarding, actor: User, perm: str, until: dt.datetime, reason: str) -> UnfreezeRequest:
    if ob.stage == "completed":
        raise OffboardingError("completed", status=409)
    if perm not in frozen_permissions(ob):
        raise OffboardingError("not_frozen", field="permission")
    if until is None or until <= utcnow():
        raise OffboardingError("until_in_past", field="until")
    if not (reason or "").strip():
        raise OffboardingError("reason_required", field="reason")
    req = UnfreezeRequest(offboarding_id=ob.id, permission=perm, until=until, reason=reason.strip(),
                          requested_by_id=actor.id, requested_at=utcnow(), status="pending")
    db.session.add(req)
    db.session.flush()
    audit.record("offboarding.unfreeze_requested", req, {"offboarding_id": ob.id, "permission": perm,
                                                         "until": until.isoformat(), "reason": req.reason},
                 actor=actor)
    return req


def unfreeze_roles_for(user, req: UnfreezeRequest) -> list[str]:
    """Which approvals ``user`` can give on ``req`` ("manager", "hr"), never to the leaver."""
    ob = req.offboarding
    if req.status != "pending" or user.id == ob.user_id:
        return []
    roles = []
    from portal.core.security import is_manager_of
    if req.manager_by_id is None and is_manager_of(user, ob.employee) and req.hr_by_id != user.id:
        roles.append("manager")
    if req.hr_by_id is None and "offboarding.manage" in effective_permissions(user) and req.manager_by_id != user.id:
        roles.append("hr")
    return roles


def approve_unfreeze(req: UnfreezeRequest, actor: User, as_role: str) -> None:
    if req.status != "pending" or (as_role == "manager" and req.manager_by_id) or (as_role == "hr" and req.hr_by_id):
        raise OffboardingError("already_decided", status=409)  # another approver was first: a conflict
    if as_role not in unfreeze_roles_for(actor, req):
        raise OffboardingError("not_allowed", status=403)
    col_by, col_at = (UnfreezeRequest.manager_by_id, "manager_at") if as_role == "manager" else \
        (UnfreezeRequest.hr_by_id, "hr_at")
    now = utcnow()
    res = db.session.execute(update(UnfreezeRequest).where(
        UnfreezeRequest.id == req.id, UnfreezeRequest.status == "pending", col_by.is_(None))
        .values(**{col_by.key: actor.id, col_at: now}).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("already_decided", status=409)
    db.session.refresh(req)
    audit.record("offboarding.unfreeze_approved", req, {"as": as_role, "permission": req.permission}, actor=actor)
    if req.manager_by_id and req.hr_by_id:
        if req.until <= now:
            req.status = "expired"
            return
        ov = accounts.add_override(req.offboarding.user, req.permission, "grant", actor,
                                   f"offboarding #{req.offboarding_id}: temporary unfreeze #{req.id}",
                                   expires_at=req.until, source=UNFREEZE_SOURCE)
        req.status, req.override_id = "approved", ov.id
        audit.record("offboarding.unfreeze_granted", req, {"permission": req.permission,
                                                           "until": req.until.isoformat(), "override_id": ov.id},
                     actor=actor)


def reject_unfreeze(req: UnfreezeRequest, actor: User, reason: str) -> None:
    if req.status != "pending":
        raise OffboardingError("already_decided", status=409)
    if not unfreeze_roles_for(actor, req):
        raise OffboardingError("not_allowed", status=403)
    res = db.session.execute(update(UnfreezeRequest).where(UnfreezeRequest.id == req.id,
                                                           UnfreezeRequest.status == "pending")
                             .values(status="rejected", ended_at=utcnow())
                             .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise OffboardingError("already_decided", status=409)
    db.session.refresh(req)
    audit.record("offboarding.unfreeze_rejected", req, {"reason": (reason or "").strip()}, actor=actor)


def expire_unfreezes(now: dt.datetime | None = None) -> int:
    """Periodic: end approved unfreezes whose time is up (the security core already ignores expired
    overrides; this revokes the grant explicitly and records the end)."""
    now = now or utcnow()
    rows = db.session.scalars(select(UnfreezeRequest).where(UnfreezeRequest.status == "approved",
                                                            UnfreezeRequest.until <= now)).all()
    n = 0
    for req in rows:
        res = db.session.execute(update(UnfreezeRequest).where(UnfreezeRequest.id == req.id,
                                                               UnfreezeRequest.status == "approved")
                                 .values(status="expired", ended_at=now)
                                 .execution_options(synchronize_session=False))
        if res.rowcount != 1:
            continue
        if req.override_id:
            ov = db.session.get(PermissionOverride, req.override_id)
            if ov is not None:
                accounts.revoke_override(ov, None, "temporary unfreeze expired")
        audit.record("offboarding.unfreeze_expired", req, {"permission": req.permission,
                                                           "until": req.until.isoformat()})
        db.session.commit()
        n += 1
    return n


def apply_early_denies(today: dt.date | None = None) -> int:
    """Periodic: OFFBOARDING_EARLY_DENY = {perm: days} revokes a permission N days before the last day."""
    conf = setting("EARLY_DENY", {}) or {}
    if not conf:
        return 0
    today = today or _today()
    n = 0
    obs = db.session.scalars(select(Offboarding).where(Offboarding.stage != "completed",
                                                       Offboarding.user_id.is_not(None))).all()
    for ob in obs:
        due = [p for p, days in conf.items() if ob.last_day - dt.timedelta(days=int(days)) <= today]
        if due:
            n += len(freeze(ob, None, due))
            db.session.commit()
    return n


def tick() -> dict:
    """The offboarding periodic job: unfreezes that expired, early denies, due revocations."""
    from portal.offboarding import revocation
    return {"expired": expire_unfreezes(), "early": apply_early_denies(), "revocations": revocation.sweep()}


# ---------------------------------------------------------------- queues and board

def queue_for(user) -> dict:
    """What waits for ``user``: items to fill/confirm, sign-off steps, unfreeze approvals, own checklist."""
    obs = db.session.scalars(select(Offboarding).where(Offboarding.stage != "completed")
                             .order_by(Offboarding.last_day, Offboarding.id)).all()
    items, steps, mine, sign = [], [], [], []
    for ob in obs:
        if ob.user_id == user.id:
            mine.append(ob)
        if ob.stage == "handover":
            for i in ob.items:
                if not i.closed and i.responsible != "leaver" and is_responsible(user, ob, i.responsible):
                    items.append(i)
        step = current_step(ob)
        if ob.stage == "signoff" and step is not None and user.id != ob.user_id and is_responsible(user, ob, step.role):
            steps.append(step)
        if ob.stage == "signing" and ob.successor_id and user.employee_id == ob.successor_id \
                and not ob.successor_signature_id:
            sign.append(ob)
    unfreezes = [r for r in db.session.scalars(select(UnfreezeRequest).where(UnfreezeRequest.status == "pending")
                                               .order_by(UnfreezeRequest.requested_at))
                 if unfreeze_roles_for(user, r)]
    return {"to_confirm": items, "steps": steps, "mine": mine, "sign": sign, "unfreezes": unfreezes}


def board(today: dt.date | None = None) -> list[dict]:
    """HR board: open offboardings by stage, overdue first (earliest overdue item), then by last day."""
    today = today or _today()
    from sqlalchemy.orm import joinedload, selectinload
    # the rows' employees, checklist items and sign-off steps in three queries, whatever the count
    obs = db.session.scalars(select(Offboarding).where(Offboarding.stage != "completed")
                             .options(joinedload(Offboarding.employee), selectinload(Offboarding.items),
                                      selectinload(Offboarding.steps))).all()
    rows = []
    for ob in obs:
        overdue = [i for i in ob.items if not i.closed and i.due_date < today]
        closed = sum(1 for i in ob.items if i.closed)
        rows.append({"ob": ob, "overdue": len(overdue), "closed": closed, "total": len(ob.items),
                     "percent": int(closed * 100 / len(ob.items)) if ob.items else 0,
                     "oldest": min((i.due_date for i in overdue), default=None),
                     "step": current_step(ob) if ob.stage == "signoff" else None})
    rows.sort(key=lambda r: (0 if r["overdue"] else 1, r["oldest"] or dt.date.max, r["ob"].last_day, r["ob"].id))
    by_stage: dict[str, list] = {}
    for r in rows:
        by_stage.setdefault(r["ob"].stage, []).append(r)
    return [{"stage": s, "rows": by_stage.get(s, [])} for s in ("notice", "handover", "signoff", "signing")]
