"""Accounts: authentication with throttling, password changes, roles, overrides, session revocation.

No request object in here: callers pass the IP and the acting user.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import func, select

from portal.core import audit
from portal.core.db import db, utcnow
from portal.core.models import LoginAttempt, PermissionOverride, Role, User, UserRole
from portal.core.passwords import check_password, dummy_check, hash_password, policy_errors
from portal.core.security import PERMISSIONS


class AccountError(ValueError):
    """A user-facing problem; ``code`` is translated by the view."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass
class LoginResult:
    user: Optional[User]
    throttled: bool = False


def _recent_failures(column, value: str, since: dt.datetime) -> int:
    return db.session.scalar(
        select(func.count()).select_from(LoginAttempt)
        .where(column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since)) or 0


def authenticate(username: str, password: str, ip: str, max_failures: int = 10,
                 window_minutes: int = 15) -> LoginResult:
    """Check a login. Same outcome shape whether or not the user exists. Commits the attempt."""
    username = (username or "").strip()[:80]
    now = utcnow()
    since = now - dt.timedelta(minutes=window_minutes)
    if (_recent_failures(LoginAttempt.username, username.lower(), since) >= max_failures
            or _recent_failures(LoginAttempt.ip, ip, since) >= max_failures):
        dummy_check(password)
        db.session.add(LoginAttempt(username=username.lower(), ip=ip, success=False, at=now,
                                    reason="throttled"))
        audit.record("auth.login_throttled", None, {"username": username}, ip=ip)
        db.session.commit()
        return LoginResult(None, throttled=True)
    user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        dummy_check(password)
        reason = "unknown"
    elif not check_password(user.password_hash, password):
        reason = "bad_password"
    elif not user.is_active:
        reason = "disabled"
    else:
        reason = ""
    ok = reason == ""
    db.session.add(LoginAttempt(username=username.lower(), ip=ip, success=ok, at=now, reason=reason))
    if ok:
        user.last_login_at = now
        audit.record("auth.login", user, {}, actor=user, ip=ip)
    else:
        # A disabled account's attempt names the account: leavers' attempts must be on record.
        audit.record("auth.login_refused" if reason == "disabled" else "auth.login_failed",
                     user if reason == "disabled" else None,
                     {"username": username, "reason": reason}, actor=None, ip=ip)
    db.session.commit()
    return LoginResult(user if ok else None)


def check_new_password(password: str, confirm: str) -> None:
    if password != confirm:
        raise AccountError("mismatch")
    problems = policy_errors(password)
    if problems:
        raise AccountError(problems[0])


def change_password(user: User, current: str, new: str, confirm: str) -> None:
    if not check_password(user.password_hash, current):
        raise AccountError("wrong_current")
    check_new_password(new, confirm)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    user.rotate_session_token()
    audit.record("account.password_changed", user, {}, actor=user)


def logout_everywhere(user: User, actor: User, reason: str = "") -> None:
    user.rotate_session_token()
    audit.record("account.sessions_revoked", user, {"reason": reason}, actor=actor)


def create_user(username: str, password: str | None, actor: Optional[User], roles: Iterable[str] = (),
                employee_id: int | None = None, locale: str | None = None) -> tuple[User, str]:
    """Create an account; returns it and the initial password (generated when not given)."""
    username = username.strip()
    if not username or len(username) > 80:
        raise AccountError("username_required")
    if db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise AccountError("username_taken")
    if employee_id is not None and db.session.scalar(select(User.id).where(User.employee_id == employee_id)):
        raise AccountError("employee_has_account")
    generated = password is None
    if generated:
        password = secrets.token_urlsafe(9)
    else:
        problems = policy_errors(password)
        if problems:
            raise AccountError(problems[0])
    user = User(username=username, password_hash=hash_password(password), employee_id=employee_id,
                locale=locale, must_change_password=generated)
    db.session.add(user)
    db.session.flush()
    set_roles(user, roles, actor, audit_it=False)
    audit.record("account.created", user, {"username": username, "roles": sorted(roles),
                                           "employee_id": employee_id}, actor=actor)
    return user, password


def set_roles(user: User, codes: Iterable[str], actor: Optional[User], audit_it: bool = True) -> None:
    codes = set(codes)
    roles = {r.code: r for r in db.session.scalars(select(Role).where(Role.code.in_(codes)))}
    unknown = codes - set(roles)
    if unknown:
        raise AccountError("unknown_role", roles=", ".join(sorted(unknown)))
    before = user.role_codes
    if before == codes:
        return
    user.user_roles = [ur for ur in user.user_roles if ur.role.code in codes]
    for code in sorted(codes - before):
        user.user_roles.append(UserRole(role=roles[code]))
    user.rotate_session_token()  # a role change ends every open session
    if audit_it:
        audit.record("account.roles_changed", user, {"before": sorted(before), "after": sorted(codes)},
                     actor=actor)


def set_active(user: User, active: bool, actor: Optional[User], reason: str = "") -> None:
    if user.active == active:
        return
    user.active = active
    user.rotate_session_token()
    audit.record("account.enabled" if active else "account.disabled", user, {"reason": reason},
                 actor=actor)


def add_override(user: User, permission: str, effect: str, actor: Optional[User], reason: str,
                 expires_at: dt.datetime | None = None, source: str = "manual") -> PermissionOverride:
    if permission not in PERMISSIONS:
        raise AccountError("unknown_permission")
    if effect not in ("grant", "deny"):
        raise AccountError("bad_effect")
    if not reason.strip():
        raise AccountError("reason_required")
    if expires_at is not None and expires_at <= utcnow():
        raise AccountError("expiry_in_past")
    ov = PermissionOverride(user_id=user.id, permission=permission, effect=effect, reason=reason.strip(),
                            expires_at=expires_at, source=source,
                            created_by_id=getattr(actor, "id", None), created_at=utcnow())
    db.session.add(ov)
    db.session.flush()
    audit.record("permission.override_added", user,
                 {"override_id": ov.id, "permission": permission, "effect": effect, "reason": reason,
                  "expires_at": expires_at.isoformat() if expires_at else None, "source": source},
                 actor=actor)
    return ov


def revoke_override(ov: PermissionOverride, actor: Optional[User], reason: str = "") -> None:
    if ov.revoked_at is not None:
        return
    ov.revoked_at = utcnow()
    audit.record("permission.override_revoked", ("users", ov.user_id),
                 {"override_id": ov.id, "permission": ov.permission, "reason": reason}, actor=actor)


def set_locale(user: User, locale: str) -> None:
    user.locale = locale
