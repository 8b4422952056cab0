"""Tamper evidence against an insider with database access (plain SQL behind the portal's back).

Already proven elsewhere (see docs/security.md): a changed audit row (tests/audit/test_chain.py: verify
and CLI; tests/audit/test_views.py: the verify page), deleted audit rows (CLI), a changed policy text or
rewritten policy-acknowledgement signature (tests/training/test_policy.py: evidence page), a changed
notice after its signed acknowledgement (tests/notices/test_notices.py: evidence page), a changed signed
performance result (tests/performance/test_reviews.py: review page).

Added here:
* deleted audit rows (middle and tail) named by the verify PAGE and the CLI, after both said "intact";
* the offboarding handover signatures: a changed signature row, a rewritten row (content and hash
  together), a changed handover record (checklist) after signing, each named on the evidence page;
* the complete forgery: the record, both signature rows AND the content hash in the audit events of
  the signing rewritten to agree. The signature checks alone are then fooled, but the hash chain is
  not: the CLI ``audit verify``, the audit verify page and the evidence page name the rewritten row.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import pytest
from sqlalchemy import select, text

from portal.core import audit
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.signatures import Signature
from tests.conftest import PASSWORD, login
from tests.offboarding.conftest import cast  # noqa: F401  (the seed-002 people)


def _raw(sql: str, **params) -> None:
    db.session.rollback()  # end this thread's read snapshot first
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def _cli_verify(app):
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    db.session.remove()
    return result


def _page_broken_seq(client) -> int | None:
    html = client.get("/audit/verify").get_data(as_text=True)
    m = re.search(r'class="broken-seq">(\d+)<', html)
    if m is None:
        assert "tag ok" in html
        return None
    return int(m.group(1))


@pytest.fixture
def auditor(app, make):
    client = app.test_client()
    login(client, make.user(roles=("employee", "hr"), username="auditor"))
    return client


def test_deleted_audit_rows_are_named_by_the_page_and_the_cli(app, auditor):
    for i in range(6):
        audit.record("test.event", None, {"i": i})
    db.session.commit()
    audit.seal()
    assert _page_broken_seq(auditor) is None
    assert _cli_verify(app).exit_code == 0

    _raw("DELETE FROM audit_events WHERE seq = 6")  # the newest record disappears
    assert _page_broken_seq(auditor) == 6
    result = _cli_verify(app)
    assert result.exit_code == 1 and "first broken sequence: 6 (" in result.output

    _raw("DELETE FROM audit_events WHERE seq = 3")  # and one in the middle
    assert _page_broken_seq(auditor) == 3
    result = _cli_verify(app)
    assert result.exit_code == 1 and "first broken sequence: 3 (" in result.output


def _signed_handover(app, cast):  # noqa: F811
    """Termination -> one-item checklist -> sign-off in order -> both signatures,
    all through the offboarding services; sealed."""
    from portal.core.models import User
    from portal.offboarding import services
    from portal.offboarding.models import ChecklistTemplate, Offboarding, TemplateItem
    from portal.org.models import Employee
    ids = {k: getattr(cast, k).id for k in ("leaver", "successor", "head", "hr", "finance", "it")}
    emp = {k: getattr(cast, k).employee_id for k in ("leaver", "successor")}
    with app.app_context():
        u = lambda key: db.session.get(User, ids[key])  # noqa: E731
        t = ChecklistTemplate(name="简版交接", active=True)
        t.items = [TemplateItem(sort=10, title="未结订单确认", responsible="successor", requires_upload=False,
                                due_offset_days=0)]
        db.session.add(t)
        ob = services.record_termination(u("hr"), db.session.get(Employee, emp["leaver"]),
                                         dt.date.today() + dt.timedelta(days=10), "岗位撤销")
        services.start_handover(ob, u("hr"), db.session.get(Employee, emp["successor"]), t)
        db.session.commit()
        services.confirm_item(ob.items[0], u("successor"))
        db.session.commit()
        while True:
            db.session.expire_all()
            step = services.current_step(ob)
            if step is None:
                break
            services.approve_step(ob, step.id, u(step.role))
            db.session.commit()
        ob = db.session.get(Offboarding, ob.id)
        assert ob.stage == "signing"
        services.sign_handover(ob, u("leaver"), PASSWORD)
        services.sign_handover(ob, u("successor"), PASSWORD)
        db.session.commit()
        ob_id, item_id = ob.id, ob.items[0].id
    audit.seal()
    sig_ids = list(db.session.scalars(select(Signature.id).order_by(Signature.id)))
    assert len(sig_ids) == 2
    return ob_id, item_id, sig_ids, ids


def _client(app, user_id):
    from portal.core.models import User
    client = app.test_client()
    login(client, db.session.get(User, user_id))
    return client


def _verification_cells(hr, ob_id) -> list[str]:
    html = hr.get(f"/offboarding/{ob_id}/evidence").get_data(as_text=True)
    part = html.split('id="ev-signatures"', 1)[1].split('id="ev-transfers"', 1)[0]
    return [c.strip() for c in re.findall(r'data-label="Verification">([^<]*)<', part)]


def _chain_cell(hr, ob_id) -> str:
    html = hr.get(f"/offboarding/{ob_id}/evidence").get_data(as_text=True)
    return re.search(r'<td id="chain">(.*?)</td>', html, re.S).group(1).strip()


def test_changed_handover_signatures_are_named_on_the_evidence_page(app, cast):  # noqa: F811
    ob_id, item_id, (leaver_sig, successor_sig), ids = _signed_handover(app, cast)
    hr = _client(app, ids["hr"])
    assert _verification_cells(hr, ob_id) == ["intact", "intact"]
    assert _chain_cell(hr, ob_id).startswith("intact:")

    # 1. the signed content in the signature row is edited (its hash left as it was)
    original = db.session.get(Signature, leaver_sig).content
    _raw("UPDATE signatures SET content = :c WHERE id = :i",
         c=original.replace('"岗位撤销"', '"x"').replace('"未结订单确认"', '"已删除"'), i=leaver_sig)
    assert _verification_cells(hr, ob_id) == ["the stored signed content was altered", "intact"]
    _raw("UPDATE signatures SET content = :c WHERE id = :i", c=original, i=leaver_sig)
    assert _verification_cells(hr, ob_id) == ["intact", "intact"]

    # 2. content and hash rewritten together: no longer what the audit trail says was signed
    forged = json.loads(original)
    forged["items"][0]["note"] = "客户资料已全部交接"
    forged_text = json.dumps(forged, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    _raw("UPDATE signatures SET content = :c, content_hash = :h WHERE id = :i", c=forged_text,
         h=hashlib.sha256(forged_text.encode()).hexdigest(), i=successor_sig)
    assert _verification_cells(hr, ob_id) == [
        "intact", "the signature row differs from the audit record of the signing"]

    # 3. the complete forgery: the checklist changed, both signature rows rewritten to match it, and the
    #    content hash in both audit events of the signing too. Every signature check is fooled; the
    #    hash chain is not, and the CLI, the audit verify page and the evidence page name the row.
    _raw("UPDATE checklist_items SET note = :n WHERE id = :i", n="客户资料已全部交接", i=item_id)
    seqs = []
    for sig_id in (leaver_sig, successor_sig):
        _raw("UPDATE signatures SET content = :c, content_hash = :h WHERE id = :i", c=forged_text,
             h=hashlib.sha256(forged_text.encode()).hexdigest(), i=sig_id)
        ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signature.signed",
                                                        AuditEvent.target_id == str(sig_id)))
        data = ev.payload
        data["content_hash"] = hashlib.sha256(forged_text.encode()).hexdigest()
        _raw("UPDATE audit_events SET data = :d WHERE id = :i", d=audit.canonical_json(data), i=ev.id)
        seqs.append(ev.seq)
    assert _verification_cells(hr, ob_id) == ["intact", "intact"]
    first = min(seqs)
    assert _chain_cell(hr, ob_id).startswith(f"BROKEN at sequence {first}:")
    result = _cli_verify(app)
    assert result.exit_code == 1 and f"first broken sequence: {first} (" in result.output
    assert _page_broken_seq(hr) == first


def test_a_handover_record_changed_after_signing_is_named(app, cast):  # noqa: F811
    ob_id, item_id, _sigs, ids = _signed_handover(app, cast)
    hr = _client(app, ids["hr"])
    assert _verification_cells(hr, ob_id) == ["intact", "intact"]
    # the checklist both signed is edited afterwards (e.g. a note that a client list was handed over)
    _raw("UPDATE checklist_items SET note = :n WHERE id = :i", n="客户资料已全部交接", i=item_id)
    assert _verification_cells(hr, ob_id) == ["the record changed after it was signed"] * 2
