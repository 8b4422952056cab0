"""The ONE place for access rules.

* Permissions are codes registered by modules (``register_permissions``) with default role grants.
* Roles are data (tables ``roles`` / ``role_permissions``); ``sync_roles`` creates the built-in ones.
* Effective permissions = role permissions, then per-person overrides: the newest *active* override of a
  permission wins (a freeze is a deny; a temporary unfreeze is a newer grant that expires).
* Object rules are policies registered per permission: ``can(user, perm, obj)`` = has perm and policy(obj).
* Every view declares its access with ``@require(perm)``, ``@login_only`` or ``@public``; the app refuses
  to start when a view declares nothing, and a test walks ``app.url_map``.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable, Iterable

from flask import abort, g, has_request_context
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import false, or_, select

from portal.core.db import db, utcnow

def N_(text: str) -> str:
    """Mark a string for extraction; it is translated where it is shown (``_(role.name)``)."""
    return text


BUILTIN_ROLES: dict[str, str] = {
    "employee": N_("Employee"),
    "manager": N_("Manager"),
    "trainer": N_("Trainer"),
    "hr": N_("HR"),
    "finance": N_("Finance"),
    "it": N_("IT"),
    "legal": N_("Legal"),
    "admin": N_("Administrator"),
}

PERMISSIONS: dict[str, Any] = {}
DEFAULT_GRANTS: dict[str, set[str]] = {code: set() for code in BUILTIN_ROLES}
POLICIES: dict[str, Callable[[Any, Any], bool]] = {}


def register_permissions(perms: dict[str, Any], grants: dict[str, Iterable[str]]) -> None:
    """Called by modules at import: {code: label}, {role_code: [codes]}."""
    PERMISSIONS.update(perms)
    for role, codes in grants.items():
        unknown = set(codes) - set(PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permissions {unknown}")
        DEFAULT_GRANTS.setdefault(role, set()).update(codes)


def policy(perm: str):
    """Register the object rule of a permission: fn(user, obj) -> bool."""
    def deco(fn):
        POLICIES[perm] = fn
        return fn
    return deco


# Platform permissions (modules add theirs).
register_permissions(
    {
        "people.view_all": _l("See every employee"),
        "people.edit": _l("Create and edit employees"),
        "people.import": _l("Import employees"),
        "org.manage": _l("Manage departments and positions"),
        "users.manage": _l("Manage accounts, roles and overrides"),
        "audit.view": _l("Browse the audit trail"),
        "audit.export": _l("Export the audit trail"),
    },
    {
        "hr": ["people.view_all", "people.edit", "people.import", "org.manage", "audit.view",
               "audit.export"],
        "admin": ["people.view_all", "users.manage", "audit.view", "audit.export", "org.manage"],
        "legal": ["audit.view"],
    },
)


def sync_roles() -> None:
    """Create built-in roles and add their default permissions (never removes what admins added)."""
    from portal.core.models import Role, RolePermission
    existing = {r.code: r for r in db.session.scalars(select(Role))}
    for code, label in BUILTIN_ROLES.items():
        role = existing.get(code)
        if role is None:
            role = Role(code=code, name=label, builtin=True)
            db.session.add(role)
            db.session.flush()
        have = role.permission_codes
        for perm in sorted(DEFAULT_GRANTS.get(code, set()) - have):
            role.permissions.append(RolePermission(permission=perm))
    db.session.flush()


# ---------------------------------------------------------------- effective permissions

def effective_permissions(user, now: dt.datetime | None = None) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cache_key = ("perms", user.id, user.session_token)
    if has_request_context() and now is None:
        cache = g.setdefault("_perm_cache", {})
        if cache_key in cache:
            return cache[cache_key]
    from portal.core.models import PermissionOverride
    now = now or utcnow()
    perms: set[str] = set()
    for ur in user.user_roles:
        perms |= ur.role.permission_codes
    overrides = db.session.scalars(
        select(PermissionOverride)
        .where(PermissionOverride.user_id == user.id, PermissionOverride.revoked_at.is_(None))
        .order_by(PermissionOverride.created_at, PermissionOverride.id)).all()
    latest: dict[str, Any] = {}
    for ov in overrides:
        if ov.active_at(now):
            latest[ov.permission] = ov  # ordered by time: the newest wins
    for perm, ov in latest.items():
        if ov.effect == "grant":
            perms.add(perm)
        else:
            perms.discard(perm)
    result = frozenset(perms)
    if has_request_context():
        g.setdefault("_perm_cache", {})[cache_key] = result
    return result


def has_role(user, *codes: str) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and bool(user.role_codes & set(codes))


def can(user, perm: str, obj: Any = None) -> bool:
    """Has ``user`` the permission ``perm`` (on ``obj`` when given)?"""
    if perm not in PERMISSIONS and perm not in POLICIES:
        raise KeyError(f"unknown permission {perm!r}")
    if perm in PERMISSIONS and perm not in effective_permissions(user):
        return False
    if obj is not None and perm in POLICIES:
        return bool(POLICIES[perm](user, obj))
    if perm not in PERMISSIONS:  # a pure object rule (e.g. "people.view")
        return bool(getattr(user, "is_authenticated", False)) and (
            obj is None or bool(POLICIES[perm](user, obj)))
    return True


def check(perm: str, obj: Any = None) -> None:
    if not can(current_user, perm, obj):
        abort(403)


# ---------------------------------------------------------------- view declarations

def require(*perms: str):
    """View decorator: login + every listed permission (object rules are checked in the view)."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for perm in perms:
                if perm not in effective_permissions(current_user):
                    abort(403)
            return fn(*args, **kwargs)
        wrapper._access = ("perm", perms)
        return wrapper
    return deco


def login_only(fn):
    """Any signed-in user; object rules (own records) are checked in the view."""
    fn._access = ("login", ())
    return fn


def public(fn):
    """No login needed (login page, health, static, language switch)."""
    fn._access = ("public", ())
    return fn


def access_of(view) -> tuple[str, tuple] | None:
    return getattr(view, "_access", None)


# ---------------------------------------------------------------- organisational scope

def managed_department_ids(user) -> set[int]:
    """Departments in the subtrees headed by the user's employee record."""
    emp_id = getattr(user, "employee_id", None)
    if not emp_id:
        return set()
    if has_request_context():
        cache = g.setdefault("_scope_cache", {})
        if ("depts", emp_id) in cache:
            return cache[("depts", emp_id)]
    from portal.org.models import Department
    rows = db.session.execute(select(Department.id, Department.parent_id, Department.head_id)).all()
    children: dict[int | None, list[int]] = {}
    for did, parent, _head in rows:
        children.setdefault(parent, []).append(did)
    result: set[int] = set()
    stack = [did for did, _p, head in rows if head == emp_id]
    while stack:
        did = stack.pop()
        if did in result:
            continue
        result.add(did)
        stack.extend(children.get(did, []))
    if has_request_context():
        g.setdefault("_scope_cache", {})[("depts", emp_id)] = result
    return result


def is_manager_of(user, employee) -> bool:
    if employee is None or not getattr(user, "employee_id", None):
        return False
    if employee.id == user.employee_id:
        return False
    return (employee.manager_id == user.employee_id
            or employee.department_id in managed_department_ids(user))


def employee_scope(user, all_perm: str = "people.view_all"):
    """SQL condition on Employee for the rows ``user`` may see in lists, searches and exports."""
    from portal.org.models import Employee
    if all_perm in effective_permissions(user):
        return None  # no restriction
    conds = []
    if getattr(user, "employee_id", None):
        conds.append(Employee.id == user.employee_id)
        conds.append(Employee.manager_id == user.employee_id)
        depts = managed_department_ids(user)
        if depts:
            conds.append(Employee.department_id.in_(depts))
    return or_(*conds) if conds else false()


def scoped(stmt, user, all_perm: str = "people.view_all"):
    cond = employee_scope(user, all_perm)
    return stmt if cond is None else stmt.where(cond)


@policy("people.view")
def _can_view_employee(user, employee) -> bool:
    if "people.view_all" in effective_permissions(user):
        return True
    return employee.id == getattr(user, "employee_id", None) or is_manager_of(user, employee)


