"""Formal notices: compose (draft), send on every channel, read receipts, signed acknowledgements."""
from __future__ import annotations

import csv
import io
from typing import Iterable

from flask import url_for
from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import defaultload

from portal.core import audit, notify, signatures
from portal.core.audit import canonical_json
from portal.core.db import db, utcnow
from portal.core.models import User
from portal.notices.models import KINDS, Notice, NoticeRecipient


class NoticeError(ValueError):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


def notice_content(notice: Notice) -> dict:
    """What a notice says: hashed at sending, and part of every acknowledgement."""
    return {"notice_id": notice.id, "kind": notice.kind, "title": notice.title, "body": notice.body,
            "requires_ack": notice.requires_ack}


def ack_content(notice: Notice, recipient: NoticeRecipient) -> dict:
    return {**notice_content(notice), "content_hash": notice.content_hash,
            "recipient_user_id": recipient.user_id}


def resolve_recipients(tokens: Iterable[str]) -> tuple[list[User], list[str]]:
    """Employee numbers or usernames -> active accounts; returns (users, unknown tokens)."""
    from portal.org.models import Employee
    users, unknown = [], []
    for token in dict.fromkeys(t.strip() for t in tokens if t.strip()):
        user = db.session.scalar(select(User).join(Employee, User.employee_id == Employee.id)
                                 .where(Employee.emp_no == token))
        if user is None:
            user = db.session.scalar(select(User).where(User.username == token))
        if user is None or not user.is_active:
            unknown.append(token)
        else:
            users.append(user)
    return users, unknown


def save_draft(actor: User, kind: str, title: str, body: str, requires_ack: bool, recipient_tokens: list[str],
               notice: Notice | None = None) -> Notice:
    if kind not in KINDS:
        raise NoticeError("bad_kind")
    if not title.strip() or not body.strip():
        raise NoticeError("empty")
    users, unknown = resolve_recipients(recipient_tokens)
    if unknown:
        raise NoticeError("unknown_recipients", names=", ".join(unknown))
    if not users:
        raise NoticeError("no_recipients")
    if notice is None:
        notice = Notice(created_by_id=actor.id)
        db.session.add(notice)
    elif notice.status != "draft":
        raise NoticeError("already_sent")
    notice.kind, notice.title, notice.body = kind, title.strip(), body.strip()
    notice.requires_ack = requires_ack
    notice.recipients = [r for r in notice.recipients if r.user_id in {u.id for u in users}]
    have = {r.user_id for r in notice.recipients}
    for u in users:
        if u.id not in have:
            notice.recipients.append(NoticeRecipient(user_id=u.id))
    db.session.flush()
    audit.record("notice.draft_saved", notice, {"kind": kind, "title": notice.title,
                                                 "recipients": sorted(u.id for u in users)}, actor=actor)
    return notice


def send(notice: Notice, actor: User) -> None:
    """Freeze the content (hash), then write in-app + email + SMS outbox rows for every recipient."""
    if notice.status != "draft":
        raise NoticeError("already_sent")
    if not notice.recipients:
        raise NoticeError("no_recipients")
    notice.content_hash = signatures.content_hash(notice_content(notice))
    notice.status, notice.sent_at, notice.sent_by_id = "sent", utcnow(), actor.id
    link = url_for("notices.show", notice_id=notice.id)
    notify.send_many([notify.Message(r.user, "formal_notice", {"title": notice.title, "body": notice.body},
                                     related=("notice_recipients", r.id), formal=True, link=link,
                                     dedupe_key=f"notice:{notice.id}:{r.user_id}")
                      for r in notice.recipients])
    audit.record("notice.sent", notice, {"content_hash": notice.content_hash,
                                         "recipients": [r.user_id for r in notice.recipients]}, actor=actor)


def recipient_for(notice: Notice, user: User) -> NoticeRecipient | None:
    """One query, without loading every recipient of a notice sent to thousands."""
    return db.session.scalar(select(NoticeRecipient).where(NoticeRecipient.notice_id == notice.id,
                                                           NoticeRecipient.user_id == user.id))


def record_read(notice: Notice, recipient: NoticeRecipient, user: User, ip: str) -> bool:
    """The first time the recipient opens the notice in the portal: read time + audit."""
    if recipient.read_at is not None:
        return False
    recipient.read_at, recipient.read_ip = utcnow(), ip
    for n in db.session.scalars(select(notify.Notification).where(
            notify.Notification.related_type == "notice_recipients",
            notify.Notification.related_id == str(recipient.id),
            notify.Notification.channel == "inapp")):
        notify.mark_read(n, user)
    audit.record("notice.read", recipient, {"notice_id": notice.id}, actor=user)
    return True


def acknowledge(notice: Notice, recipient: NoticeRecipient, user: User, password: str) -> signatures.Signature:
    if notice.status != "sent":
        raise NoticeError("not_sent")
    if recipient.acknowledged_at is not None:
        raise NoticeError("already_acknowledged")
    sig = signatures.sign(user, password, "notice.ack", ("notice_recipients", recipient.id),
                          ack_content(notice, recipient))
    recipient.acknowledged_at, recipient.signature_id = sig.signed_at, sig.id
    if recipient.read_at is None:
        recipient.read_at = sig.signed_at
    audit.record("notice.acknowledged", recipient, {"notice_id": notice.id, "signature_id": sig.id,
                                                    "content_hash": sig.content_hash}, actor=user)
    return sig


def _rows_for(notice: Notice, recipients: list[NoticeRecipient]) -> list[dict]:
    """One row per (recipient, channel) with honest states for ``recipients``: 3 queries whatever their
    number (messages, signatures, the audit events of the signings)."""
    recips = {str(r.id): r for r in recipients}
    if not recips:
        return []
    messages = db.session.scalars(select(notify.Notification).where(
        notify.Notification.related_type == "notice_recipients",
        notify.Notification.related_id.in_(list(recips))).order_by(notify.Notification.id)).all()
    sig_ids = [r.signature_id for r in recipients if r.signature_id]
    sigs = {s.id: s for s in db.session.scalars(select(signatures.Signature).where(
        signatures.Signature.id.in_(sig_ids)))} if sig_ids else {}
    hashes = signatures.signed_hashes_in_audit(list(sigs))
    rows = []
    by_recipient: dict[str, list] = {}
    for m in messages:
        by_recipient.setdefault(m.related_id, []).append(m)
    for rid, r in recips.items():
        sig = sigs.get(r.signature_id) if r.signature_id else None
        ok = signatures.verify(sig, ack_content(notice, r), audit_hash=hashes.get(sig.id)).ok if sig else None
        for m in by_recipient.get(rid, []) or [None]:
            rows.append({
                "recipient": r, "name": r.user.display_name, "username": r.user.username,
                "channel": m.channel if m else "", "address": m.address if m else "",
                "status": m.status if m else "", "queued_at": m.created_at if m else None,
                "sent_at": m.sent_at if m else None, "attempts": m.attempts if m else 0,
                "error": m.last_error if m else "", "provider_id": m.provider_id if m else "",
                "read_at": r.read_at, "acknowledged_at": r.acknowledged_at,
                "signature_hash": sig.content_hash if sig else "",
                "signature_ok": ok,
            })
    return rows


def recipients_stmt(notice: Notice, q: str = ""):
    """The recipients of ``notice`` in sending order; ``q``: name, employee number, pinyin or username."""
    # the recipients' accounts come with the row (joined); their roles are not needed here
    stmt = (select(NoticeRecipient).where(NoticeRecipient.notice_id == notice.id)
            .options(defaultload(NoticeRecipient.user).lazyload(User.user_roles)))
    if q.strip():
        from portal.org.models import Employee
        from portal.org.services import search_condition
        stmt = (stmt.join(User, User.id == NoticeRecipient.user_id)
                .outerjoin(Employee, Employee.id == User.employee_id)
                .where(or_(search_condition(q), User.username.contains(q.strip(), autoescape=True))))
    return stmt.order_by(NoticeRecipient.id)


def delivery_page(notice: Notice, page: int, per_page: int, q: str = ""):
    """One page of recipients (with all their channels) for the record page: a fixed number of queries."""
    from portal.core.ui import paginate
    result = paginate(recipients_stmt(notice, q), page, per_page)
    return result, _rows_for(notice, list(result.items))


def delivery_summary(notice: Notice) -> dict:
    """Counts for the top of the record page, in SQL (2 queries): recipients, read, acknowledged, and per
    channel the messages handed over, still queued and failed."""
    total, read, acked = db.session.execute(
        select(func.count(NoticeRecipient.id), func.count(NoticeRecipient.read_at),
               func.count(NoticeRecipient.acknowledged_at)).where(NoticeRecipient.notice_id == notice.id)).one()
    ids = select(cast(NoticeRecipient.id, String)).where(NoticeRecipient.notice_id == notice.id)
    channels: dict[str, dict[str, int]] = {}
    for channel, status, n in db.session.execute(
            select(notify.Notification.channel, notify.Notification.status, func.count())
            .where(notify.Notification.related_type == "notice_recipients",
                   notify.Notification.related_id.in_(ids))
            .group_by(notify.Notification.channel, notify.Notification.status)):
        c = channels.setdefault(channel, {"sent": 0, "queued": 0, "failed": 0})
        c["sent" if status == "sent" else "failed" if status == "failed" else "queued"] += n
    order = {"inapp": 0, "email": 1, "sms": 2}
    return {"recipients": total or 0, "read": read or 0, "acknowledged": acked or 0,
            "channels": sorted(channels.items(), key=lambda kv: (order.get(kv[0], 9), kv[0]))}


def delivery_rows(notice: Notice, batch: int = 500) -> list[dict]:
    """Every row (evidence page, CSV): recipients in one query, the rest in batches (no query per row)."""
    recipients = list(db.session.scalars(recipients_stmt(notice)))
    rows: list[dict] = []
    for i in range(0, len(recipients), batch):
        rows.extend(_rows_for(notice, recipients[i:i + batch]))
    return rows


def delivery_csv(notice: Notice, fmt) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out)
    w.writerow(["notice_id", "title", "content_hash", "recipient", "username", "channel", "address",
                "status", "queued_at", "sent_at", "attempts", "error", "provider_id", "read_at",
                "acknowledged_at", "signature_sha256", "signature_valid"])
    for row in delivery_rows(notice):
        w.writerow([notice.id, notice.title, notice.content_hash, row["name"], row["username"],
                    row["channel"], row["address"], row["status"], fmt(row["queued_at"]),
                    fmt(row["sent_at"]), row["attempts"], row["error"], row["provider_id"],
                    fmt(row["read_at"]), fmt(row["acknowledged_at"]), row["signature_hash"],
                    "" if row["signature_ok"] is None else ("yes" if row["signature_ok"] else "NO")])
    return out.getvalue()


def content_intact(notice: Notice) -> bool:
    return notice.status != "sent" or signatures.content_hash(notice_content(notice)) == notice.content_hash


def canonical(notice: Notice) -> str:
    return canonical_json(notice_content(notice))
