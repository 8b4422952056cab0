"""The delivery record of a formal notice sent to many people: one page of recipients (50 by default, with
all their channels) and the portal's pager, a search, summary counts from aggregate SQL, the CSV and the
evidence page with every row, and a number of SQL statements that does not depend on the recipients."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

from sqlalchemy import insert

from portal.core.db import db, utcnow
from tests.conftest import login, password_hash
from tests.training.test_reports import count_queries

RECIPIENT = re.compile(r'<td data-label="Recipient">[^<]* <span class="muted">([^<]+)</span>')


def _ids(model, rows: list[dict]) -> list[int]:
    return list(db.session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def _notice(app, hr) -> int:
    from portal.core import signatures
    from portal.notices.models import Notice
    from portal.notices.services import notice_content
    with app.app_context():
        n = Notice(kind="warning", title="规模通知", body="请按时到岗。", requires_ack=True, status="draft",
                   created_by_id=hr.id)
        db.session.add(n)
        db.session.flush()
        n.content_hash = signatures.content_hash(notice_content(n))
        n.status, n.sent_at, n.sent_by_id = "sent", utcnow(), hr.id
        db.session.commit()
        return n.id


def _grow(app, notice_id: int, start: int, n: int) -> dict:
    """``n`` more recipients, each with a portal, email and SMS message: email failed for every 7th,
    SMS still queued for every 2nd; every 2nd read it; every 4th signed (one of those signatures does not
    match the audit record of its signing)."""
    from portal.core.audit import AuditEvent, canonical_json
    from portal.core import notify, signatures
    from portal.core.models import User
    from portal.notices.models import Notice, NoticeRecipient
    from portal.notices.services import ack_content
    from portal.org.models import Employee
    with app.app_context():
        notice = db.session.get(Notice, notice_id)
        now = utcnow()
        emps = _ids(Employee, [{"emp_no": f"N{start + i:05d}", "name": f"收件{start + i}", "name_pinyin": "",
                                "name_initials": "", "status": "active", "hire_date": dt.date(2024, 1, 1)}
                               for i in range(n)])
        users = _ids(User, [{"username": f"rcpt{start + i:05d}", "password_hash": password_hash(),
                             "employee_id": e} for i, e in enumerate(emps)])
        recips = _ids(NoticeRecipient, [{"notice_id": notice_id, "user_id": u,
                                         "read_at": now if i % 2 == 0 else None} for i, u in enumerate(users)])
        msgs, exp = [], {"users": [], "read": 0, "acked": 0, "email_failed": 0, "sms_queued": 0, "bad_sig": set(),
                         "good_sig": set()}
        for i, (u, r) in enumerate(zip(users, recips)):
            exp["users"].append(f"rcpt{start + i:05d}")
            exp["read"] += i % 2 == 0
            email_failed, sms_queued = i % 7 == 0, i % 2 == 0
            exp["email_failed"] += email_failed
            exp["sms_queued"] += sms_queued
            for channel, status in (("inapp", "sent"), ("email", "failed" if email_failed else "sent"),
                                    ("sms", "pending" if sms_queued else "sent")):
                msgs.append({"user_id": u, "channel": channel, "address": "", "template_key": "formal_notice",
                             "formal": True, "status": status, "related_type": "notice_recipients",
                             "related_id": str(r), "created_at": now,
                             "sent_at": now if status == "sent" else None,
                             "last_error": "boom" if status == "failed" else "", "attempts": 1})
        db.session.execute(insert(notify.Notification), msgs)
        for i, (u, r) in enumerate(zip(users, recips)):
            if i % 4:
                continue
            rec = db.session.get(NoticeRecipient, r)
            text = canonical_json(ack_content(notice, rec))
            h = signatures.content_hash(text)
            sig = signatures.Signature(signer_id=u, signer_name="x", purpose="notice.ack",
                                       subject_type="notice_recipients", subject_id=str(r), content=text,
                                       content_hash=h, signed_at=now)
            db.session.add(sig)
            db.session.flush()
            bad = i == 4
            db.session.add(AuditEvent(action="signature.signed", target_type="signatures", target_id=str(sig.id),
                                      data=canonical_json({"content_hash": "0" * 64 if bad else h})))
            rec.acknowledged_at, rec.signature_id = now, sig.id
            exp["acked"] += 1
            exp["bad_sig" if bad else "good_sig"].add(f"rcpt{start + i:05d}")
        db.session.commit()
        return exp


def _setup(app, make, n: int):
    hr = make.user(roles=("employee", "hr"))
    hr.locale = "en"
    db.session.commit()
    c = app.test_client()
    login(c, hr)
    nid = _notice(app, hr)
    return c, nid, _grow(app, nid, 0, n)


def _recipients(html: str) -> list[str]:
    return list(dict.fromkeys(RECIPIENT.findall(html)))


def test_record_page_shows_one_page_with_a_pager_and_right_summary(app, make):
    c, nid, exp = _setup(app, make, 120)
    html = c.get(f"/notices/{nid}").get_data(as_text=True)
    assert _recipients(html) == exp["users"][:50]
    assert len(RECIPIENT.findall(html)) == 150  # every channel of the 50 people
    assert 'class="pager"' in html and "Page 1 of 3" in html and "120 in total" in html
    html2 = c.get(f"/notices/{nid}?page=2").get_data(as_text=True)
    assert _recipients(html2) == exp["users"][50:100]
    assert 'rel="prev"' in html2 and 'rel="next"' in html2
    assert _recipients(c.get(f"/notices/{nid}?page=3").get_data(as_text=True)) == exp["users"][100:]

    # the summary counts everyone, not the page
    summary = html[html.index('id="delivery-summary"'):html.index('id="delivery-rows"')]
    cells = re.findall(r"<td[^>]*>\s*(?:<span[^>]*>)?([^<]+?)\s*(?:</span>)?\s*</td>", summary)
    assert cells[:3] == ["120", f"{exp['read']} / 120", f"{exp['acked']} / 120"]
    # per channel: handed over, queued, failed
    assert cells[3:] == ["Portal", "120", "0", "0",
                         "Email", str(120 - exp["email_failed"]), "0", str(exp["email_failed"]),
                         "SMS", str(120 - exp["sms_queued"]), str(exp["sms_queued"]), "0"]
    # signatures are checked on the page too: the one that differs from its audit record is flagged
    assert "signature does not match" in html and "signature valid" in html


def test_record_search_and_htmx_partial(app, make):
    c, nid, exp = _setup(app, make, 80)
    target = exp["users"][-1]
    assert _recipients(c.get(f"/notices/{nid}?q={target}").get_data(as_text=True)) == [target]
    assert _recipients(c.get(f"/notices/{nid}?q=N00079").get_data(as_text=True)) == [target]  # emp no
    part = c.get(f"/notices/{nid}?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in part and _recipients(part) == exp["users"][50:]


def test_record_csv_and_evidence_have_every_row(app, make):
    c, nid, exp = _setup(app, make, 120)
    r = c.get(f"/notices/{nid}/record.csv")
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    head, body = rows[0], rows[1:]
    assert len(body) == 3 * 120
    assert list(dict.fromkeys(row[head.index("username")] for row in body)) == exp["users"]
    valid = {row[head.index("username")]: row[head.index("signature_valid")] for row in body}
    assert {u for u, v in valid.items() if v == "yes"} == exp["good_sig"]
    assert {u for u, v in valid.items() if v == "NO"} == exp["bad_sig"]
    failed = [row for row in body if row[head.index("channel")] == "email" and row[head.index("status")] == "failed"]
    assert len(failed) == exp["email_failed"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body[0][head.index("queued_at")])
    evidence = c.get(f"/notices/{nid}/evidence").get_data(as_text=True)
    assert _recipients(evidence) == exp["users"]


def test_record_statement_count_does_not_grow_with_recipients(app, make):
    c, nid, exp = _setup(app, make, 20)

    def counts():
        out = {}
        for path in (f"/notices/{nid}", f"/notices/{nid}?page=2", f"/notices/{nid}?q=rcpt0",
                     f"/notices/{nid}/record.csv", f"/notices/{nid}/evidence"):
            c.get(path)  # warm-up
            with count_queries() as q:
                assert c.get(path).status_code == 200
            out[path] = q["n"]
        return out

    few = counts()
    _grow(app, nid, 20, 280)
    many = counts()
    assert many == few
