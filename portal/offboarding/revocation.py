"""Account revocation: an RQ job that disables the leaver's account, rotates the session token (every
open session dies on its next request), removes roles, revokes business permissions and calls the
configured external revocation hooks (HTTP webhooks, e.g. mail or VPN).

* Every step is a row (``RevocationStep``) committed when done: a re-run (RQ retry, the sweep after a
  killed worker) skips what is done, so each step happens once and is recorded once.
* The run is claimed with a conditional UPDATE (scheduled -> running); a run left ``running`` by a dead
  worker is claimed again after ``OFFBOARDING_REVOCATION_LEASE_SECONDS``.
* A failing webhook is retried (RQ Retry with backoff, plus the periodic sweep); after
  ``OFFBOARDING_WEBHOOK_ATTEMPTS`` attempts the step is marked failed and IT and HR are alerted.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select, update

from portal.accounts import services as accounts
from portal.core import audit, notify
from portal.core.db import db, utcnow
from portal.core.models import PermissionOverride, User
from portal.offboarding.labels import revocation_step_label
from portal.offboarding.models import Offboarding, RevocationRun, RevocationStep
from portal.offboarding.perms import BUSINESS_PERMISSIONS, FREEZE_SOURCE

log = logging.getLogger("portal.offboarding")

BASE_STEPS = ("disable", "rotate_token", "remove_roles", "revoke_permissions")


class WebhookError(Exception):
    pass


def _cfg(key: str, default):
    return current_app.config.get(f"OFFBOARDING_{key}", default)


def webhooks() -> list[dict]:
    hooks = _cfg("WEBHOOKS", []) or []
    return [h for h in hooks if h.get("name") and h.get("url")]


def _retry():
    from rq import Retry
    backoff = list(_cfg("WEBHOOK_BACKOFF", [30, 120, 600, 1800]))
    attempts = int(_cfg("WEBHOOK_ATTEMPTS", 5))
    return Retry(max=max(1, attempts - 1), interval=backoff or [0])


def enqueue(run_id: int) -> None:
    from portal.core import jobs
    jobs.enqueue_after_commit("portal.offboarding.revocation.run", run_id, queue="default", retry=_retry())


def ensure_steps(run: RevocationRun) -> None:
    have = {s.key for s in run.steps}
    keys = list(BASE_STEPS) + [f"webhook:{h['name']}" for h in webhooks()]
    for sort, key in enumerate(keys):
        if key not in have:
            run.steps.append(RevocationStep(key=key, sort=sort, status="pending"))
    db.session.flush()


def run(run_id: int) -> str:
    """The job. Idempotent: claims the run, does the steps not yet done, one commit per step."""
    now = utcnow()
    lease = dt.timedelta(seconds=int(_cfg("REVOCATION_LEASE_SECONDS", 300)))
    claimed = db.session.execute(
        update(RevocationRun).where(
            RevocationRun.id == run_id, RevocationRun.due_at <= now,
            or_(RevocationRun.status == "scheduled",
                and_(RevocationRun.status == "running", RevocationRun.claimed_at < now - lease)))
        .values(status="running", claimed_at=now, attempts=RevocationRun.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if claimed.rowcount == 0:
        return "skipped"
    rr = db.session.get(RevocationRun, run_id, populate_existing=True)
    ob = rr.offboarding
    user = db.session.get(User, ob.user_id) if ob.user_id else None
    ensure_steps(rr)
    db.session.commit()
    for step in sorted(rr.steps, key=lambda s: s.sort):
        if step.status == "done":
            continue
        if step.status == "failed":
            continue  # given up; an administrator retries it from the offboarding page
        if step.key.startswith("webhook:"):
            outcome = _webhook_step(rr, ob, user, step)
            if outcome == "retry":
                raise WebhookError(step.last_error)
            continue
        _local_step(step.key, ob, user)
        step.status, step.done_at, step.attempts = "done", utcnow(), step.attempts + 1
        audit.record("offboarding.revocation_step", ob, {"step": step.key, "status": "done", "run_id": rr.id})
        db.session.commit()
    failed = [s.key for s in rr.steps if s.status == "failed"]
    rr.status = "failed" if failed else "done"
    rr.finished_at = utcnow()
    audit.record("offboarding.revocation_finished", ob, {"run_id": rr.id, "status": rr.status, "failed": failed})
    db.session.commit()
    return rr.status


def _local_step(key: str, ob: Offboarding, user: User | None) -> None:
    if user is None:
        return
    if key == "disable":
        accounts.set_active(user, False, None, reason=f"offboarding #{ob.id}")
    elif key == "rotate_token":
        accounts.logout_everywhere(user, None, reason=f"offboarding #{ob.id}")
    elif key == "remove_roles":
        accounts.set_roles(user, [], None)
    elif key == "revoke_permissions":
        grants = db.session.scalars(select(PermissionOverride).where(
            PermissionOverride.user_id == user.id, PermissionOverride.effect == "grant",
            PermissionOverride.revoked_at.is_(None))).all()
        for ov in grants:
            accounts.revoke_override(ov, None, f"offboarding #{ob.id}: account revoked")
        for perm in BUSINESS_PERMISSIONS:
            exists = db.session.scalar(select(PermissionOverride.id).where(
                PermissionOverride.user_id == user.id, PermissionOverride.permission == perm,
                PermissionOverride.effect == "deny", PermissionOverride.expires_at.is_(None),
                PermissionOverride.revoked_at.is_(None)))
            if not exists:
                accounts.add_override(user, perm, "deny", None, f"offboarding #{ob.id}: account revoked",
                                      source=FREEZE_SOURCE)


def _webhook_step(rr: RevocationRun, ob: Offboarding, user: User | None, step: RevocationStep) -> str:
    name = step.key.split(":", 1)[1]
    hook = next((h for h in webhooks() if h["name"] == name), None)
    step.attempts += 1
    try:
        if hook is None:
            raise WebhookError("this hook is no longer configured")
        detail = call_webhook(hook, ob, user)
    except Exception as exc:  # any transport or remote problem: record, back off, retry
        step.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        attempts = int(_cfg("WEBHOOK_ATTEMPTS", 5))
        audit.record("offboarding.revocation_step", ob, {"step": step.key, "status": "error",
                                                        "attempt": step.attempts, "error": step.last_error})
        if step.attempts >= attempts:
            step.status = "failed"
            _alert(ob, step)
            db.session.commit()
            return "failed"
        backoff = list(_cfg("WEBHOOK_BACKOFF", [30, 120, 600, 1800])) or [0]
        delay = backoff[min(step.attempts, len(backoff)) - 1]
        rr.status, rr.due_at = "scheduled", utcnow() + dt.timedelta(seconds=delay)
        db.session.commit()
        return "retry"
    step.status, step.done_at, step.detail, step.last_error = "done", utcnow(), detail[:1000], ""
    audit.record("offboarding.revocation_step", ob, {"step": step.key, "status": "done",
                                                    "attempt": step.attempts, "detail": step.detail})
    db.session.commit()
    return "done"


def call_webhook(hook: dict, ob: Offboarding, user: User | None) -> str:
    payload = {"event": "account.revoked", "offboarding_id": ob.id,
               "username": user.username if user else None, "employee_no": ob.employee.emp_no,
               "email": ob.employee.email, "last_day": ob.last_day.isoformat()}
    headers = {"Content-Type": "application/json",
               "Idempotency-Key": f"portal-offboarding-{ob.id}-{hook['name']}"}
    if hook.get("token"):
        headers["Authorization"] = f"Bearer {hook['token']}"
    req = urllib.request.Request(hook["url"], data=json.dumps(payload).encode("utf-8"), method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=int(_cfg("WEBHOOK_TIMEOUT", 10))) as resp:
            return f"HTTP {resp.status}: {resp.read(300).decode('utf-8', 'replace')}"
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"HTTP {exc.code}: {exc.read(300).decode('utf-8', 'replace')}")


def _alert(ob: Offboarding, step: RevocationStep) -> None:
    from portal.offboarding.services import users_with_role
    if step.alerted_at is not None:
        return
    step.alerted_at = utcnow()
    audit.record("offboarding.revocation_alert", ob, {"step": step.key, "error": step.last_error})
    for u in users_with_role("it", "hr"):
        if u.id == ob.user_id:
            continue
        notify.send(u, "offboarding_alert",
                    {"title": _l("%(name)s: %(step)s", name=ob.employee.name, step=revocation_step_label(step.key)),
                     "body": _l("Account revocation of %(name)s: the step “%(step)s” failed %(n)s times: %(error)s",
                                name=ob.employee.name, step=revocation_step_label(step.key), n=step.attempts,
                                error=step.last_error)},
                    related=("offboardings", ob.id), dedupe_key=f"offb:{ob.id}:alert:{step.key}:{u.id}")


def retry_failed(ob: Offboarding, actor) -> RevocationRun | None:
    rr = db.session.scalar(select(RevocationRun).where(RevocationRun.offboarding_id == ob.id))
    if rr is None or rr.status not in ("failed", "done"):
        return None
    again = [s for s in rr.steps if s.status == "failed"]
    if not again:
        return None
    for s in again:
        s.status, s.attempts, s.alerted_at = "pending", 0, None
    rr.status, rr.due_at = "scheduled", utcnow()
    audit.record("offboarding.revocation_retried", ob, {"steps": [s.key for s in again]}, actor=actor)
    enqueue(rr.id)
    return rr


def sweep(now: dt.datetime | None = None) -> int:
    """Periodic: queue runs that are due (last-day timing, retries after Redis was down) and runs a dead
    worker left running past the lease."""
    from portal.core import jobs
    now = now or utcnow()
    lease = dt.timedelta(seconds=int(_cfg("REVOCATION_LEASE_SECONDS", 300)))
    ids = db.session.scalars(select(RevocationRun.id).where(
        RevocationRun.due_at <= now,
        or_(RevocationRun.status == "scheduled",
            and_(RevocationRun.status == "running", RevocationRun.claimed_at < now - lease)))).all()
    for rid in ids:
        jobs.enqueue("portal.offboarding.revocation.run", rid, queue="default", retry=_retry())
    return len(ids)
