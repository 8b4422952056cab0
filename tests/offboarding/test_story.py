"""Seed 002 end to end: the sales veteran resigns and would take her clients.

resignation -> freeze (a new order is refused and audited) -> a temporary unfreeze is approved by a
manager and HR, works, then expires -> the checklist cannot complete with an open item (the exact list is
shown) -> sign-off order enforced (no skipping, no self-approval, a second approval of the same step gets
409) -> final signatures -> completion -> the revocation job runs on a real RQ worker, an already-open
session of the leaver is rejected on its next htmx request, a new login is refused and audited -> the
evidence pack (page and archive) contains each step.
"""
from __future__ import annotations

import datetime as dt
import io
import zipfile

from sqlalchemy import func, select

from portal.core import audit
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.models import PermissionOverride, User
from portal.core.signatures import Signature
from portal.offboarding.models import (ChecklistItem, Client, ClientOrder, ClientTransfer, Offboarding,
                                       RevocationRun, SignoffStep, UnfreezeRequest)
from portal.org.models import Employee
from tests.conftest import PASSWORD, csrf_token
from tests.offboarding.conftest import as_user, post, strip, text, upload
from tests.services import run_worker


def _fresh():
    db.session.rollback()


def _actions(**where):
    _fresh()
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    for k, v in where.items():
        stmt = stmt.where(getattr(AuditEvent, k) == v)
    return [e.action for e in db.session.scalars(stmt)]


def _ob() -> Offboarding:
    _fresh()
    return db.session.scalar(select(Offboarding))


def _item(title) -> ChecklistItem:
    _fresh()
    return db.session.scalar(select(ChecklistItem).where(ChecklistItem.title == title))


def _step(role) -> SignoffStep:
    ob = _ob()
    return next(s for s in ob.current_steps if s.role == role)


def test_seed_002_story_end_to_end(app, cast, private_redis, smtp_server):
    leaver = as_user(app, cast.leaver)
    open_session = as_user(app, cast.leaver)  # a second, already-open session (e.g. her phone)
    assert open_session.get("/clients").status_code == 200

    # 1. Resignation: 30 days' notice, status "notice", freeze at once.
    resp = post(leaver, "/offboarding/resign", {"reason": "个人发展", "confirm": "y"}, token_path="/offboarding/resign")
    assert resp.status_code == 303
    ob = _ob()
    with app.app_context():
        from portal.core.ui import local_today
        today = local_today()
    assert ob.kind == "resignation" and ob.notice_days == 30 and ob.last_day == today + dt.timedelta(days=30)
    assert db.session.get(Employee, cast.leaver.employee_id).status == "notice"
    frozen = set(db.session.scalars(select(PermissionOverride.permission).where(
        PermissionOverride.user_id == cast.leaver.id, PermissionOverride.effect == "deny",
        PermissionOverride.source == "offboarding")))
    assert {"orders.create", "clients.create", "clients.export"} <= frozen

    # 2. A new order during notice is refused and audited; export too; reading own clients still works.
    cid = cast.client_ids[0]
    resp = post(leaver, f"/clients/{cid}/orders", {"order_no": "SO-99", "amount": "8000"})
    assert resp.status_code == 403 and "frozen" in text(resp)
    assert leaver.get("/clients/export.csv").status_code == 403
    assert leaver.get(f"/clients/{cid}").status_code == 200
    _fresh()
    assert db.session.scalar(select(func.count()).select_from(ClientOrder)) == 0
    refusals = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "permission.frozen_refused")).all()
    assert sorted(e.payload["permission"] for e in refusals) == ["clients.export", "orders.create"]
    assert all(e.actor_id == cast.leaver.id for e in refusals)

    # 3. Temporary unfreeze of orders.create: requested by the head, needs manager + HR; the leaver
    #    cannot approve; it works until it expires, then the periodic job ends it.
    head = as_user(app, cast.head)
    hr = as_user(app, cast.hr)
    hr2 = as_user(app, cast.hr2)
    until = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    resp = post(head, f"/offboarding/{ob.id}/unfreeze", {"permission": "orders.create", "until": until,
                                                         "reason": "客户续单，仅限今天"})
    assert resp.status_code == 303
    req = db.session.scalar(select(UnfreezeRequest))
    assert post(leaver, f"/offboarding/unfreeze/{req.id}/approve", {"as": "manager"}).status_code == 403
    assert post(hr, f"/offboarding/unfreeze/{req.id}/approve", {"as": "hr"}).status_code == 303
    assert post(leaver, f"/clients/{cid}/orders", {"order_no": "SO-100", "amount": "1"}).status_code == 403
    assert post(head, f"/offboarding/unfreeze/{req.id}/approve", {"as": "manager"}).status_code == 303
    _fresh()
    req = db.session.get(UnfreezeRequest, req.id)
    assert req.status == "approved" and req.override_id
    assert post(leaver, f"/clients/{cid}/orders", {"order_no": "SO-101", "amount": "2500.00"}).status_code == 303
    assert leaver.get("/clients/export.csv").status_code == 403  # only the named permission
    with app.app_context():
        from portal.offboarding import services
        assert services.expire_unfreezes(now=req.until + dt.timedelta(seconds=1)) == 1
        assert services.expire_unfreezes(now=req.until + dt.timedelta(seconds=2)) == 0  # idempotent
    _fresh()
    assert db.session.get(UnfreezeRequest, req.id).status == "expired"
    assert db.session.get(PermissionOverride, req.override_id).revoked_at is not None
    assert post(leaver, f"/clients/{cid}/orders", {"order_no": "SO-102", "amount": "1"}).status_code == 403

    # 4. HR starts the handover: checklist from the department's template, successor named.
    resp = post(hr, f"/offboarding/{ob.id}/start", {"successor": cast.successor.employee.emp_no,
                                                    "template": str(cast.template_id)})
    assert resp.status_code == 303, text(resp)
    ob = _ob()
    assert ob.stage == "handover" and [i.title for i in ob.items] == ["客户资料交接", "未结订单确认", "应收账款核对",
                                                                       "电脑设备归还"]
    assert _item("客户资料交接").due_date == ob.last_day - dt.timedelta(days=3)
    assert [s.role for s in ob.current_steps] == ["successor", "head", "finance", "hr"]

    # 5. Completion is refused while items are open, and the page names exactly what is missing.
    resp = post(hr, f"/offboarding/{ob.id}/complete")
    assert resp.status_code == 409
    body = strip(text(resp))
    for title in ("客户资料交接", "未结订单确认", "应收账款核对", "电脑设备归还"):
        assert title in body
    assert _ob().stage == "handover"

    # 6. The leaver fills her items; the required upload is enforced.
    item = _item("客户资料交接")
    resp = post(leaver, f"/offboarding/items/{item.id}/fill", {"note": "客户清单已整理"})
    assert resp.status_code == 422 and _item("客户资料交接").status == "open"
    resp = leaver.post(f"/offboarding/items/{item.id}/fill", data={
        "note": "客户清单已整理", "file": upload(), "csrf_token": csrf_token(leaver, "/")},
        content_type="multipart/form-data")
    assert resp.status_code == 303
    assert _item("客户资料交接").status == "done" and _item("客户资料交接").file_id

    # Clients move to the successor (one, then the rest in bulk), each transfer audited.
    assert post(leaver, f"/offboarding/{ob.id}/transfer", {"client_ids": str(cast.client_ids[0])}).status_code == 303
    assert post(leaver, f"/offboarding/{ob.id}/transfer", {"all": "1"}).status_code == 303
    _fresh()
    assert {c.owner_id for c in db.session.scalars(select(Client))} == {cast.successor.employee_id}
    assert db.session.scalar(select(func.count()).select_from(ClientTransfer)) == 2
    assert _actions(action="client.transferred").count("client.transferred") == 2

    # Other items: each confirmed by its responsible person, never by someone else.
    succ = as_user(app, cast.successor)
    fin = as_user(app, cast.finance)
    it = as_user(app, cast.it)
    assert post(fin, f"/offboarding/items/{_item('未结订单确认').id}/confirm").status_code == 403
    assert post(succ, f"/offboarding/items/{_item('未结订单确认').id}/confirm").status_code == 303
    assert post(fin, f"/offboarding/items/{_item('应收账款核对').id}/confirm").status_code == 303
    assert post(succ, f"/offboarding/items/{_item('电脑设备归还').id}/confirm").status_code == 403
    assert post(it, f"/offboarding/items/{_item('电脑设备归还').id}/confirm").status_code == 303
    assert _ob().stage == "signoff"

    # 7. Sign-off: in order, no self-approval, one result for two approvals of the same step.
    resp = post(head, f"/offboarding/{ob.id}/steps/{_step('head').id}/approve")
    assert resp.status_code == 409 and _step("head").status == "pending"
    assert post(leaver, f"/offboarding/{ob.id}/steps/{_step('successor').id}/approve").status_code == 403
    assert post(succ, f"/offboarding/{ob.id}/steps/{_step('successor').id}/approve").status_code == 303
    assert post(head, f"/offboarding/{ob.id}/steps/{_step('head').id}/approve").status_code == 303
    assert post(hr, f"/offboarding/{ob.id}/steps/{_step('hr').id}/approve").status_code == 409  # finance first
    assert post(fin, f"/offboarding/{ob.id}/steps/{_step('finance').id}/approve").status_code == 303
    hr_step = _step("hr").id
    first = post(hr, f"/offboarding/{ob.id}/steps/{hr_step}/approve")
    second = post(hr2, f"/offboarding/{ob.id}/steps/{hr_step}/approve")
    assert (first.status_code, second.status_code) == (303, 409)
    assert "already decided" in text(second)
    _fresh()
    assert db.session.get(SignoffStep, hr_step).decided_by_id == cast.hr.id
    assert _ob().stage == "signing"

    # 8. Final signatures (wrong password first: nothing signed, attempt recorded).
    resp = post(leaver, f"/offboarding/{ob.id}/sign", {"password": "wrong"})
    assert resp.status_code == 422 and _ob().leaver_signature_id is None
    assert "signature.reauth_failed" in _actions(actor_id=cast.leaver.id)
    assert post(leaver, f"/offboarding/{ob.id}/sign", {"password": PASSWORD}).status_code == 303
    assert post(succ, f"/offboarding/{ob.id}/sign", {"password": PASSWORD}).status_code == 303
    assert post(succ, f"/offboarding/{ob.id}/sign", {"password": PASSWORD}).status_code == 409

    # 9. Completion queues the revocation; a real RQ worker runs it.
    assert post(hr, f"/offboarding/{ob.id}/complete").status_code == 303
    ob = _ob()
    assert ob.stage == "completed" and db.session.get(Employee, cast.leaver.employee_id).status == "left"
    run_worker(app)
    _fresh()
    run = db.session.scalar(select(RevocationRun))
    assert run.status == "done" and {s.key: s.status for s in run.steps} == {
        "disable": "done", "rotate_token": "done", "remove_roles": "done", "revoke_permissions": "done"}
    user = db.session.get(User, cast.leaver.id)
    assert not user.active and user.role_codes == set()

    # The already-open session dies on its next htmx request; a new login is refused and audited.
    resp = open_session.get("/offboarding/queue", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/login")
    fresh_client = app.test_client()
    resp = fresh_client.post("/login", data={"username": "li_na", "password": PASSWORD,
                                             "csrf_token": csrf_token(fresh_client, "/login")})
    assert resp.status_code == 401
    refused = [e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login_refused"))]
    assert refused and refused[-1].target_id == str(cast.leaver.id)

    # 10. The evidence pack shows each step.
    with app.app_context():
        audit.seal()
    resp = hr.get(f"/offboarding/{ob.id}/evidence")
    assert resp.status_code == 200
    body = strip(text(resp))
    for needle in ("permission.frozen_refused", "order.created", "client.viewed", "SO-101",
                   "客户资料交接", "未结订单确认", "顺丰物流", "中远海运", "Handover (leaver)",
                   "Handover (successor)", "intact: ", "Disable the account", "Revoke business permissions",
                   "offboarding.completed", "Take new orders"):
        assert needle in body, needle
    hashes = [s.content_hash for s in db.session.scalars(select(Signature))]
    assert len(hashes) == 2 and all(h in body for h in hashes)
    assert body.count("Approved") >= 4  # the sign-off steps, labelled in the HR user's language (en)

    resp = post(hr, f"/offboarding/{ob.id}/evidence/archive", token_path=f"/offboarding/{ob.id}")
    assert resp.status_code == 303
    task_url = resp.headers["Location"]
    run_worker(app)
    from portal.core.tasks import BackgroundTask
    _fresh()
    task = db.session.scalar(select(BackgroundTask).order_by(BackgroundTask.id.desc()))
    assert task.status == "done", task.error
    archive = hr.get(f"/tasks/{task.id}/download")
    assert archive.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(archive.data))
    names = set(zf.namelist())
    assert {"evidence.html", "checklist.csv", "approvals.csv", "signatures.csv", "client_transfers.csv",
            "notice_activity.csv", "revocation.csv", "summary.json"} <= names
    activity = zf.read("notice_activity.csv").decode("utf-8-sig")
    assert "permission.frozen_refused" in activity and "order.created" in activity and "client.viewed" in activity
    assert zf.read("approvals.csv").decode("utf-8-sig").count("approved") == 4
    assert '"ok": true' in zf.read("summary.json").decode()
    assert task_url.endswith(f"/tasks/{task.id}")
