"""Permissions of client records and offboarding, and the freeze guard for business permissions."""
from __future__ import annotations

import functools

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.core import audit
from portal.core.db import db, utcnow
from portal.core.security import effective_permissions, register_permissions

# Business permissions: what a leaver's freeze takes away (DESIGN.md: a freeze is a set of deny overrides).
BUSINESS_PERMISSIONS = ("clients.create", "clients.edit", "orders.create", "clients.export")
FREEZE_SOURCE = "offboarding"
UNFREEZE_SOURCE = "offboarding_unfreeze"

register_permissions(
    {
        "clients.create": _l("Create client records"),
        "clients.edit": _l("Edit own client records (contacts, receivables, contact history)"),
        "orders.create": _l("Take new orders"),
        "clients.export": _l("Export client records"),
        "clients.view_all": _l("See every client record"),
        "offboarding.resign": _l("Submit own resignation"),
        "offboarding.manage": _l("Manage offboarding: terminations, templates, waivers, completion"),
        "offboarding.view_all": _l("See every offboarding and its evidence pack"),
    },
    {
        "employee": ["clients.create", "clients.edit", "orders.create", "clients.export", "offboarding.resign"],
        "manager": ["clients.create", "clients.edit", "orders.create", "clients.export"],
        "hr": ["clients.view_all", "offboarding.manage", "offboarding.view_all"],
        "admin": ["clients.view_all", "offboarding.view_all"],
        "legal": ["offboarding.view_all"],
    },
)


def frozen_override(user, perm: str):
    """The active offboarding deny that currently removes ``perm`` from ``user`` (or None)."""
    from portal.core.models import PermissionOverride
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    now = utcnow()
    rows = db.session.scalars(select(PermissionOverride).where(
        PermissionOverride.user_id == user.id, PermissionOverride.permission == perm,
        PermissionOverride.revoked_at.is_(None))
        .order_by(PermissionOverride.created_at, PermissionOverride.id)).all()
    latest = None
    for ov in rows:
        if ov.active_at(now):
            latest = ov
    if latest is not None and latest.effect == "deny" and latest.source == FREEZE_SOURCE:
        return latest
    return None


def record_refusal(user, perm: str, target=None) -> bool:
    """Audit a refused use of a frozen permission (the caller commits). True when it was frozen."""
    ov = frozen_override(user, perm)
    if ov is None:
        return False
    audit.record("permission.frozen_refused", target if target is not None else ("users", user.id),
                 {"permission": perm, "override_id": ov.id}, actor=user)
    return True


def business(perm: str):
    """View decorator like ``@require(perm)``; a refusal because of a freeze is audited and explained."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if perm not in effective_permissions(current_user):
                refuse(perm)
            return fn(*args, **kwargs)
        wrapper._access = ("perm", (perm,))
        return wrapper
    return deco


class Refused(Exception):
    def __init__(self, perm: str, frozen: bool):
        super().__init__(perm)
        self.perm, self.frozen = perm, frozen


def refuse(perm: str, target=None):
    """Stop the request: 403, audited (and committed) when the permission is frozen."""
    frozen = record_refusal(current_user, perm, target)
    if frozen:
        db.session.commit()
    raise Refused(perm, frozen)
