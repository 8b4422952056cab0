"""The evidence pack of one offboarding: checklist, approvals with times, signatures with hashes (and
their verification now), client transfers, the leaver's activity during notice (orders, client views,
exports, refused attempts), unfreezes, the revocation record and the audit-chain verification.
Shown as a printable page and packed as a zip archive (HTML + CSV) by a background task."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import zipfile

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as translate  # a stored msgid (N_), so not a literal to extract
from sqlalchemy import select

from portal.core import audit, signatures
from portal.core.audit import AuditEvent
from portal.core.db import db, utcnow
from portal.core.security import N_
from portal.offboarding import labels as L
from portal.offboarding import services
from portal.offboarding.models import ClientOrder, Offboarding, RevocationRun, UnfreezeRequest

ACTIVITY_PREFIXES = ("client.", "order.", "permission.frozen_refused", "auth.", "signature.")


def collect(ob: Offboarding, chain: bool = True) -> dict:
    end = ob.completed_at or utcnow()
    activity = []
    if ob.user_id:
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.actor_id == ob.user_id, AuditEvent.created_at >= ob.submitted_at,
            AuditEvent.created_at <= end).order_by(AuditEvent.created_at, AuditEvent.id)).all()
        activity = [e for e in events if e.action.startswith(ACTIVITY_PREFIXES)]
        refused_logins = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "auth.login_refused", AuditEvent.target_type == "users",
            AuditEvent.target_id == str(ob.user_id)).order_by(AuditEvent.id)).all()
    else:
        refused_logins = []
    orders = []
    if ob.user_id:
        orders = db.session.scalars(select(ClientOrder).where(
            ClientOrder.created_by_id == ob.user_id, ClientOrder.created_at >= ob.submitted_at,
            ClientOrder.created_at <= end).order_by(ClientOrder.created_at)).all()
    sigs = []
    handover = services.handover_content(ob)
    for s in signatures.signatures_for("offboardings", ob.id):
        # a handover signature also covers the records as they are now (checklist, transfers, approvals)
        check = signatures.verify(s, handover if s.purpose.startswith("offboarding.handover.") else None)
        sigs.append({"sig": s, "check": check})
    trail = db.session.scalars(select(AuditEvent).where(
        AuditEvent.target_type == "offboardings", AuditEvent.target_id == str(ob.id))
        .order_by(AuditEvent.created_at, AuditEvent.id)).all()
    return {
        "ob": ob,
        "items": ob.items,
        "steps": ob.steps,
        "signatures": sigs,
        "transfers": services.transfers_of(ob),
        "activity": activity,
        "orders": orders,
        "refused_logins": refused_logins,
        "unfreezes": db.session.scalars(select(UnfreezeRequest).where(UnfreezeRequest.offboarding_id == ob.id)
                                        .order_by(UnfreezeRequest.id)).all(),
        "revocation": db.session.scalar(select(RevocationRun).where(RevocationRun.offboarding_id == ob.id)),
        "frozen": services.frozen_permissions(ob),
        "trail": trail,
        "missing": services.missing(ob) if ob.stage != "completed" else [],
        "chain": audit.verify() if chain else None,
        "generated_at": utcnow(),
    }


def _csv(header: list[str], rows) -> str:
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue()


def _t(value) -> str:
    return value.isoformat() if value else ""


def _l(labels: dict, code) -> str:
    """The translated label of a stored code (next to the code itself, which stays for machines)."""
    return str(L.label(labels, code))


def csv_files(data: dict) -> dict[str, str]:
    ob = data["ob"]
    return {
        "checklist.csv": _csv(
            ["id", "title", "responsible", "responsible_label", "due_date", "status", "status_label", "note",
             "file_id", "submitted_at", "confirmed_by", "confirmed_at", "waiver_reason", "waiver_file_id",
             "waived_by", "waived_at", "rejection_reason"],
            [[i.id, i.title, i.responsible, _l(L.RESPONSIBLE_LABELS, i.responsible), i.due_date.isoformat(),
              i.status, _l(L.ITEM_STATUS_LABELS, i.status), i.note, i.file_id, _t(i.submitted_at),
              i.confirmed_by.username if i.confirmed_by else "", _t(i.confirmed_at), i.waiver_reason,
              i.waiver_file_id, i.waived_by.username if i.waived_by else "", _t(i.waived_at), i.rejection_reason]
             for i in data["items"]]),
        "approvals.csv": _csv(["round", "seq", "role", "role_label", "status", "status_label", "decided_by",
                               "decided_at", "comment"],
                              [[s.round, s.seq, s.role, _l(L.RESPONSIBLE_LABELS, s.role), s.status,
                                _l(L.STEP_STATUS_LABELS, s.status), s.decided_by.username if s.decided_by else "",
                                _t(s.decided_at), s.comment] for s in data["steps"]]),
        "signatures.csv": _csv(["id", "purpose", "purpose_label", "signer", "signed_at", "ip", "content_sha256",
                                "verified"],
                               [[x["sig"].id, x["sig"].purpose, _l(L.SIGNATURE_PURPOSE_LABELS, x["sig"].purpose),
                                 x["sig"].signer_name, _t(x["sig"].signed_at), x["sig"].ip, x["sig"].content_hash,
                                 "ok" if x["check"].ok else translate(x["check"].reason)]
                                for x in data["signatures"]]),
        "client_transfers.csv": _csv(["client_id", "client", "from", "to", "by", "at"],
                                     [[t.client_id, t.client.name, t.from_employee.name if t.from_employee else "",
                                       t.to_employee.name if t.to_employee else "", t.by.username if t.by else "",
                                       _t(t.at)] for t in data["transfers"]]),
        "notice_activity.csv": _csv(["at", "action", "target_type", "target_id", "ip", "data", "seq", "hash"],
                                    [[_t(e.created_at), e.action, e.target_type, e.target_id, e.ip, e.data, e.seq,
                                      e.hash] for e in data["activity"]]),
        "orders_during_notice.csv": _csv(["order_no", "client_id", "amount_fen", "status", "created_at"],
                                         [[o.order_no, o.client_id, o.amount_fen, o.status, _t(o.created_at)]
                                          for o in data["orders"]]),
        "audit_trail.csv": _csv(["seq", "at", "actor", "action", "data", "hash"],
                                [[e.seq, _t(e.created_at), e.actor_name, e.action, e.data, e.hash]
                                 for e in data["trail"]]),
        "revocation.csv": _csv(["step", "step_label", "status", "status_label", "attempts", "done_at", "last_error",
                                "detail"],
                               [[s.key, str(L.revocation_step_label(s.key)), s.status,
                                 _l(L.REVOCATION_STEP_STATUS_LABELS, s.status), s.attempts, _t(s.done_at),
                                 s.last_error, s.detail]
                                for s in (data["revocation"].steps if data["revocation"] else [])]),
        "summary.json": json.dumps({
            "offboarding_id": ob.id, "employee": ob.employee.emp_no, "kind": ob.kind,
            "kind_label": _l(L.KIND_LABELS, ob.kind), "stage": ob.stage, "stage_label": _l(L.STAGE_LABELS, ob.stage),
            "submitted_at": _t(ob.submitted_at), "last_day": ob.last_day.isoformat(),
            "completed_at": _t(ob.completed_at),
            "audit_chain": {"ok": data["chain"].ok, "checked": data["chain"].checked,
                            "unsealed": data["chain"].unsealed,
                            "first_broken_seq": data["chain"].first_broken_seq,
                            "reason": data["chain"].reason} if data["chain"] else None,
        }, ensure_ascii=False, indent=2),
    }


def build_archive(handle, offboarding_id: int, actor_id: int):
    """Background task: the evidence pack as a zip (evidence.html + CSV files), stored as a file."""
    from portal.core.uploads import store_bytes
    handle.progress(0, 3, N_("collecting"))
    ob = db.session.get(Offboarding, offboarding_id)
    audit.seal()
    data = collect(ob)
    handle.progress(1, 3, N_("rendering"))
    from portal.core.models import User
    actor = db.session.get(User, actor_id)
    # a background job has no request: labels and headings in the language of who asked for the pack
    # (without a stored preference: the current locale, i.e. the default one in the worker)
    with force_locale(actor.locale) if actor is not None and actor.locale else contextlib.nullcontext():
        html = render_template("offboarding/evidence_archive.html", archive=True, **data, **L.template_labels())
        files = csv_files(data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("evidence.html", html)
        for name, text in files.items():
            zf.writestr(name, text)
    stored = store_bytes(buf.getvalue(), f"offboarding-{ob.id}-evidence.zip", "zip", "offboarding_evidence",
                         db.session.get(User, actor_id))
    audit.record("offboarding.evidence_archived", ob, {"file_id": stored.id, "sha256": stored.sha256},
                 actor=db.session.get(User, actor_id))
    db.session.commit()
    handle.progress(3, 3, N_("done"))
    return stored
