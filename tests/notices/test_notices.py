"""Formal notices (seed 004): compose, send on every channel, read receipt, signed acknowledgement,
delivery record (CSV + evidence page), tamper detection, permissions."""
from __future__ import annotations

import csv
import io
import re

from sqlalchemy import func, select, text

from portal.core import notify
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.signatures import Signature
from portal.notices.models import Notice, NoticeRecipient
from tests.conftest import PASSWORD, csrf_token, login
from tests.services import run_worker


def _compose(client, recipients: str, title="解除劳动关系通知", body="因连续旷工五日，公司决定解除劳动合同。"):
    token = csrf_token(client, "/notices/new")
    return client.post("/notices/new", data={"csrf_token": token, "kind": "termination", "title": title,
                                             "body": body, "recipients": recipients, "requires_ack": "y"})


def _send(client, notice_id):
    token = csrf_token(client, f"/notices/{notice_id}")
    return client.post(f"/notices/{notice_id}/send", data={"csrf_token": token})


def test_seed_004_notice_delivery_read_and_acknowledgement(app, make, redis_url, smtp_server, sms_gateway):
    hr = make.user(roles=("employee", "hr"))
    lead = make.user(name="王开发", mobile="13811112222", email="wang@example.com")
    hr_client, lead_client = app.test_client(), app.test_client()
    login(hr_client, hr)
    login(lead_client, lead)

    resp = _compose(hr_client, lead.employee.emp_no)
    assert resp.status_code == 303
    notice = db.session.scalar(select(Notice))
    assert notice.status == "draft"
    assert _send(hr_client, notice.id).status_code == 303
    db.session.expire_all()
    notice = db.session.get(Notice, notice.id)
    assert notice.status == "sent" and len(notice.content_hash) == 64

    run_worker(app)  # email + SMS go out
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["To"] == "wang@example.com"
    assert "解除劳动关系通知" in smtp_server.messages[0]["Subject"]
    assert "连续旷工五日" in smtp_server.messages[0].get_content()
    sms = sms_gateway.requests[0]["body"]
    assert sms["template_id"] == app.config["SMS_TEMPLATE_NOTICE"]
    assert "旷工" not in str(sms)  # the SMS carries the template id, not the text

    # Delivery record before the lead opens it: sent on all channels, not read
    page = hr_client.get(f"/notices/{notice.id}").get_data(as_text=True)
    assert page.count("tag ok") >= 3

    # The lead opens the notice: read time recorded once
    assert lead_client.get(f"/notices/{notice.id}").status_code == 200
    lead_client.get(f"/notices/{notice.id}")
    rec = db.session.scalar(select(NoticeRecipient).execution_options(populate_existing=True))
    assert rec.read_at is not None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "notice.read")) is not None
    inapp = db.session.scalar(select(notify.Notification).where(notify.Notification.channel == "inapp"))
    assert inapp.read_at is not None

    # Wrong password: nothing signed; right password: signed
    token = csrf_token(lead_client, f"/notices/{notice.id}")
    bad = lead_client.post(f"/notices/{notice.id}/ack", data={"csrf_token": token, "password": "nope"})
    assert bad.status_code == 422
    assert db.session.scalar(select(Signature)) is None
    ok = lead_client.post(f"/notices/{notice.id}/ack", data={"csrf_token": token, "password": PASSWORD})
    assert ok.status_code == 303
    db.session.expire_all()
    rec = db.session.get(NoticeRecipient, rec.id)
    assert rec.acknowledged_at is not None and rec.signature_id is not None

    # CSV delivery record: one row per channel with times, the hash, a valid signature
    resp = hr_client.get(f"/notices/{notice.id}/record.csv")
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert {r["channel"] for r in rows} == {"inapp", "email", "sms"}
    assert all(r["status"] == "sent" and r["sent_at"] for r in rows)
    assert all(r["read_at"] and r["acknowledged_at"] and r["signature_valid"] == "yes" for r in rows)
    assert all(r["content_hash"] == notice.content_hash for r in rows)
    sms_row = next(r for r in rows if r["channel"] == "sms")
    assert sms_row["provider_id"] == "sms-1"

    # Printable evidence page with the content hash and the audit chain result
    ev = hr_client.get(f"/notices/{notice.id}/evidence").get_data(as_text=True)
    assert notice.content_hash in ev and "王开发" in ev

    # Tampering with the notice text after sending is visible
    db.session.execute(text("UPDATE notices SET body = 'changed' WHERE id = :i"), {"i": notice.id})
    db.session.commit()
    ev = hr_client.get(f"/notices/{notice.id}/evidence").get_data(as_text=True)
    assert "签名不匹配" in ev  # the acknowledgement no longer matches the notice
    assert "当前重新计算：已变更" in ev  # the content hash recomputed now differs


def test_unknown_recipient_is_a_clear_error_and_saves_nothing(app, make):
    hr = make.user(roles=("employee", "hr"))
    c = app.test_client()
    login(c, hr)
    resp = _compose(c, "NOPE-1\nNOPE-2")
    assert resp.status_code == 422
    assert "NOPE-1" in resp.get_data(as_text=True)
    assert db.session.scalar(select(Notice)) is None


def test_sent_notice_cannot_be_edited_or_sent_twice(app, make, redis_url):
    hr = make.user(roles=("employee", "hr"))
    emp = make.user()
    c = app.test_client()
    login(c, hr)
    _compose(c, emp.username)
    nid = db.session.scalar(select(Notice.id))
    _send(c, nid)
    _send(c, nid)  # double click
    assert db.session.scalar(select(func.count()).select_from(notify.Notification)) == 3
    resp = c.get(f"/notices/{nid}/edit")
    assert resp.status_code == 303


def test_permissions(app, make, redis_url):
    hr = make.user(roles=("employee", "hr"))
    emp = make.user()
    other = make.user()
    c = app.test_client()
    login(c, hr)
    _compose(c, emp.username)
    nid = db.session.scalar(select(Notice.id))
    o = app.test_client()
    login(o, other)
    assert o.get(f"/notices/{nid}").status_code == 404  # a draft, and not theirs
    _send(c, nid)
    assert o.get(f"/notices/{nid}").status_code == 404  # not a recipient
    assert o.get("/notices/new").status_code == 403
    assert o.get(f"/notices/{nid}/record.csv").status_code == 403
    assert o.get(f"/notices/{nid}/evidence").status_code == 403
    listing = o.get("/notices").get_data(as_text=True)
    assert "解除劳动关系通知" not in listing
    e = app.test_client()
    login(e, emp)
    assert "解除劳动关系通知" in e.get("/notices").get_data(as_text=True)


def test_inbox_badge_and_open(app, make, redis_url):
    hr = make.user(roles=("employee", "hr"))
    emp = make.user()
    c = app.test_client()
    login(c, hr)
    _compose(c, emp.username)
    _send(c, db.session.scalar(select(Notice.id)))
    e = app.test_client()
    login(e, emp)
    badge = e.get("/notifications/badge", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r'class="badge">1<', badge)
    inbox = e.get("/notifications").get_data(as_text=True)
    nid = int(re.search(r"/notifications/(\d+)/read", inbox).group(1))
    token = csrf_token(e, "/notifications")
    resp = e.post(f"/notifications/{nid}/read", data={"csrf_token": token})
    assert resp.status_code == 303 and "/notices/" in resp.headers["Location"]
    badge = e.get("/notifications/badge").get_data(as_text=True)
    assert 'class="badge"' not in badge
    # someone else's message is not reachable
    assert c.post(f"/notifications/{nid}/read", data={"csrf_token": csrf_token(c, "/notifications")}).status_code == 404
