"""Policy acknowledgement (seed 004: "trained on and signed the performance policy"): signed with
core/signatures over the exact policy text, printable evidence, tamper detection, a new policy version
needs a new acknowledgement, HR compliance view and export."""
from __future__ import annotations

import io
import re

from openpyxl import load_workbook
from sqlalchemy import func, select, text

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.signatures import Signature
from portal.training import learning, services
from portal.training.models import Acknowledgement, Completion, Course, Enrollment
from tests.conftest import PASSWORD, login
from tests.training.helpers import (POLICY_TEXT, build_course, en_user, enroll, finish_lessons, fresh, start_exam,
                                    token)


def _pass_exam(client, eid):
    aid = int(re.search(r"/attempts/(\d+)", start_exam(client, eid).headers["Location"]).group(1))
    from portal.training.models import Attempt
    a = fresh(Attempt, aid)
    t = token(client, f"/training/attempts/{aid}")
    data = {"csrf_token": t, **{f"q{i.id}": str(i.correct[0]) for i in a.items}}
    assert client.post(f"/training/attempts/{aid}/submit", data=data).status_code == 303
    assert fresh(Attempt, aid).passed


def _signed(app, make):
    trainer = en_user(make, roles=("trainer",))
    lead = en_user(make, name="王开发")
    cid = build_course(app, trainer, lessons=1, policy=True)
    eid = enroll(app, cid, lead.employee)
    client = app.test_client()
    login(client, lead)
    return trainer, lead, cid, eid, client


def test_acknowledgement_is_signed_over_the_exact_policy_text(app, make):
    trainer, lead, cid, eid, client = _signed(app, make)
    # not before the lessons and the exam
    t = token(client, f"/training/learn/{eid}")
    early = client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": PASSWORD})
    assert early.status_code == 422 and db.session.scalar(select(Signature)) is None
    finish_lessons(client, eid)
    _pass_exam(client, eid)
    page = client.get(f"/training/learn/{eid}/acknowledge").get_data(as_text=True)
    assert "I have read and understood 绩效管理制度, version 2024版." in page
    assert "绩效系数减半" in page
    # wrong password: nothing signed, the failed attempt is audited
    bad = client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": "wrong"})
    assert bad.status_code == 422 and db.session.scalar(select(Signature)) is None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signature.reauth_failed"))
    ok = client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": PASSWORD})
    assert ok.status_code == 303
    ack = db.session.scalar(select(Acknowledgement))
    sig = db.session.get(Signature, ack.signature_id)
    sig_hash, ack_id = sig.content_hash, ack.id
    assert sig.purpose == "training.policy_ack" and sig.signer_id == lead.id
    import json
    content = json.loads(sig.content)
    assert content["policy_text"] == POLICY_TEXT and content["policy_version"] == "2024版"
    assert content["statement"] == "I have read and understood 绩效管理制度, version 2024版."
    # signing completed the course, pinned to the version, with the score and the acknowledgement
    e = fresh(Enrollment, eid)
    assert e.status == "completed"
    c = db.session.scalar(select(Completion))
    assert c.acknowledgement_id == ack_id and c.score == 100 and c.version_id == e.version_id
    # signing twice is refused
    again = client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": PASSWORD})
    assert again.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Signature)) == 1
    # the printable evidence page
    ev = client.get(ok.headers["Location"])
    html = ev.get_data(as_text=True)
    assert ev.status_code == 200 and sig_hash in html and "valid: the policy text" in html
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "training.evidence_viewed"))


def test_tampering_with_the_policy_text_or_the_signature_is_detected(app, make):
    trainer, lead, cid, eid, client = _signed(app, make)
    finish_lessons(client, eid)
    _pass_exam(client, eid)
    t = token(client, f"/training/learn/{eid}")
    client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": PASSWORD})
    ack = db.session.scalar(select(Acknowledgement))
    ack_id, version_id, sig_id = ack.id, ack.version_id, ack.signature_id
    with app.app_context():
        assert learning.verify_acknowledgement(db.session.get(Acknowledgement, ack_id)).ok
    hr = en_user(make, roles=("hr",))
    hc = app.test_client()
    login(hc, hr)

    # 1. someone edits the published policy text in the database
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE training_course_versions SET policy_text = :t WHERE id = :i"),
                     {"t": POLICY_TEXT.replace("减半", "减为三成"), "i": version_id})
    with app.app_context():
        check = learning.verify_acknowledgement(db.session.get(Acknowledgement, ack_id))
        assert not check.ok and check.content_matches is False
    html = hc.get(f"/training/acknowledgements/{ack_id}").get_data(as_text=True)
    assert "NOT VALID" in html and "changed after it was signed" in html
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE training_course_versions SET policy_text = :t WHERE id = :i"),
                     {"t": POLICY_TEXT, "i": version_id})
    with app.app_context():
        assert learning.verify_acknowledgement(db.session.get(Acknowledgement, ack_id)).ok

    # 2. someone rewrites the signature row (content and its hash together)
    import hashlib
    import json
    sig = fresh(Signature, sig_id)
    forged = json.loads(sig.content)
    forged["policy_text"] = "伪造"
    forged_text = json.dumps(forged, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    db.session.rollback()  # end this thread's read snapshot before the direct UPDATE
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE signatures SET content = :c, content_hash = :h WHERE id = :i"),
                     {"c": forged_text, "h": hashlib.sha256(forged_text.encode()).hexdigest(), "i": sig_id})
    with app.app_context():
        check = learning.verify_acknowledgement(db.session.get(Acknowledgement, ack_id))
        assert not check.ok and not check.audit_matches
    assert "NOT VALID" in hc.get(f"/training/acknowledgements/{ack_id}").get_data(as_text=True)

    # nobody else can read someone's evidence
    other = en_user(make)
    oc = app.test_client()
    login(oc, other)
    assert oc.get(f"/training/acknowledgements/{ack_id}").status_code == 404


def test_a_new_policy_version_requires_a_new_acknowledgement(app, make):
    trainer, lead, cid, eid, client = _signed(app, make)
    finish_lessons(client, eid)
    _pass_exam(client, eid)
    t = token(client, f"/training/learn/{eid}")
    client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": PASSWORD})
    hr = en_user(make, roles=("hr",))
    hc = app.test_client()
    login(hc, hr)
    page = hc.get("/training/compliance").get_data(as_text=True)
    assert "1 / 1" in page and 'id="gaps"' not in page

    # a new course version with the same policy text: the acknowledgement still covers it
    with app.app_context():
        course = db.session.get(Course, cid)
        v2 = services.new_version(course, trainer)
        services.update_lesson(v2.lessons[0], trainer, "第1课", "改了错别字")
        services.publish(v2, trainer)
        db.session.commit()
    assert fresh(Enrollment, eid).status == "completed"
    assert 'id="gaps"' not in hc.get("/training/compliance").get_data(as_text=True)

    # a new policy text: everyone must acknowledge again
    with app.app_context():
        course = db.session.get(Course, cid)
        v3 = services.new_version(course, trainer)
        services.update_settings(v3, trainer, title=v3.title, description="", policy_name="绩效管理制度",
                                 policy_version="2025版", policy_text=POLICY_TEXT + "\n第三条 新增条款。",
                                 pass_mark=60, time_limit_minutes=0, max_attempts=0, cooloff_hours=0,
                                 show_answers="when_done")
        services.publish(v3, trainer)
        db.session.commit()
        v3_id = v3.id
    e = fresh(Enrollment, eid)
    assert e.status == "assigned" and e.version_id == v3_id and e.due_at is not None
    # the old completion and acknowledgement stay in the history
    assert db.session.scalar(select(func.count()).select_from(Completion)) == 1
    page = hc.get("/training/compliance").get_data(as_text=True)
    assert 'id="gaps"' in page and "王开发" in page and "2025版" in page and "0 / 1" in page
    assert ">2024版<" in page  # what they signed before, linked to its evidence
    # the learner was told
    from portal.core import notify
    assert db.session.scalar(select(notify.Notification).where(
        notify.Notification.template_key == "training.new_policy", notify.Notification.user_id == lead.id))
    # HR exports the list
    r = hc.get("/training/compliance.xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    rows = list(wb["not acknowledged"].iter_rows(values_only=True))
    assert rows[1][0] == "绩效管理制度" and rows[1][1] == "2025版" and rows[1][3] == "王开发"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "training.compliance_exported"))
    # sign again on the new version
    finish_lessons(client, eid)
    _pass_exam(client, eid)
    r = client.post(f"/training/learn/{eid}/acknowledge", data={"csrf_token": t, "password": PASSWORD})
    assert r.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Acknowledgement)) == 2
    assert 'id="gaps"' not in hc.get("/training/compliance").get_data(as_text=True)


def test_compliance_view_needs_its_permission(app, make):
    staff = en_user(make)
    c = app.test_client()
    login(c, staff)
    assert c.get("/training/compliance").status_code == 403
    assert c.get("/training/compliance.xlsx").status_code == 403


def test_legal_sees_everyone_in_the_compliance_view(app, make):
    trainer = en_user(make, roles=("trainer",))
    legal = en_user(make, roles=("legal",))
    someone = en_user(make, name="赵某")
    cid = build_course(app, trainer, lessons=1, policy=True)
    enroll(app, cid, someone.employee)
    c = app.test_client()
    login(c, legal)
    page = c.get("/training/compliance").get_data(as_text=True)
    assert "赵某" in page and "0 / 1" in page
    assert c.get(f"/training/people/{someone.employee_id}").status_code == 200
