"""Permissions and object rules of OKRs and performance reviews (called through core.security.can)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.core.security import (effective_permissions, is_manager_of, managed_department_ids, policy,
                                  register_permissions)

register_permissions(
    {
        "perf.manage": _l("Run performance cycles, company objectives, review templates, calibration and "
                          "approval"),
        "perf.view_all": _l("See every OKR, performance result and early warning"),
        "okr.team": _l("Create team objectives and approve the objectives of one's team"),
        "perf.export": _l("Export OKR and performance reports (within one's scope)"),
    },
    {
        "hr": ["perf.manage", "perf.view_all", "perf.export"],
        "manager": ["okr.team", "perf.export"],
        "admin": ["perf.view_all"],
    },
)


def _perms(user) -> frozenset[str]:
    return effective_permissions(user)


def _emp_id(user):
    return getattr(user, "employee_id", None)


def manages_employee_id(user, employee) -> bool:
    return employee is not None and is_manager_of(user, employee)


@policy("okr.view")
def can_view_objective(user, obj) -> bool:
    if obj.level in ("company", "team"):
        return True
    perms = _perms(user)
    if "perf.view_all" in perms or "perf.manage" in perms:
        return True
    return obj.owner_id == _emp_id(user) or manages_employee_id(user, obj.owner)


@policy("okr.edit")
def can_edit_objective(user, obj) -> bool:
    """Change the objective or add key results to it."""
    perms = _perms(user)
    if obj.status == "archived" or (obj.cycle is not None and obj.cycle.status != "open"):
        return False
    if "perf.manage" in perms:
        return True
    if obj.level == "company":
        return False
    if obj.level == "team":
        return "okr.team" in perms and obj.department_id in managed_department_ids(user)
    return obj.owner_id == _emp_id(user) or manages_employee_id(user, obj.owner)


@policy("okr.approve")
def can_approve_objective(user, obj) -> bool:
    if obj.level != "individual" or obj.status == "archived":
        return False
    if "perf.manage" in _perms(user):
        return True
    return manages_employee_id(user, obj.owner)


@policy("okr.checkin")
def can_checkin(user, kr) -> bool:
    obj = kr.objective
    if kr.status != "active" or obj.status != "active" or obj.cycle.status != "open":
        return False
    perms = _perms(user)
    if obj.level == "individual":
        return obj.owner_id == _emp_id(user)
    if obj.owner_id is not None and obj.owner_id == _emp_id(user):
        return True
    if "perf.manage" in perms:
        return True
    return obj.level == "team" and "okr.team" in perms and obj.department_id in managed_department_ids(user)


def creator_needs_approval(user, owner) -> bool:
    """An employee's own objectives and key results wait for the manager; managers and HR don't."""
    if "perf.manage" in _perms(user):
        return False
    return owner is not None and owner.id == _emp_id(user)


@policy("perf.review_view")
def can_view_review(user, review) -> bool:
    perms = _perms(user)
    if "perf.view_all" in perms or "perf.manage" in perms:
        return True
    return review.employee_id == _emp_id(user) or is_manager_of(user, review.employee)


@policy("perf.review_score")
def can_score_review(user, review) -> bool:
    if review.employee_id == _emp_id(user):
        return False
    return is_manager_of(user, review.employee) or "perf.manage" in _perms(user)
