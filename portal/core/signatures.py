"""The one electronic-signature mechanism (Electronic Signature Law art. 13).

A signature is made only after the signer re-authenticates (password now; an SMS one-time code can be
added as another method). We store the signer, time, IP, user agent, the canonical content that was
signed and its SHA-256, and write an audit event in the same transaction. ``verify`` recomputes the hash
from the content as it is *now* (rebuilt by the module from its current rows) and from the stored
canonical text, and compares it with the hash kept in the hash-chained audit event of the signing, so a
later change to the signed record, to the signature row, or to both the row's content and its hash is
detectable.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Optional

from flask import has_request_context, request
from sqlalchemy import ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core import audit
from portal.core.audit import canonical_json
from portal.core.db import Base, UTCDateTime, db, utcnow
from portal.core.models import User
from portal.core.security import N_


class SignatureError(Exception):
    """Re-authentication failed or the content cannot be signed."""


class Signature(Base):
    __tablename__ = "signatures"
    __table_args__ = (Index("ix_signatures_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    signer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    signer_name: Mapped[str] = mapped_column(String(120))
    purpose: Mapped[str] = mapped_column(String(60))  # e.g. performance.confirm, policy.ack
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str] = mapped_column(String(60))
    content: Mapped[str] = mapped_column(Text)  # canonical JSON of what was signed
    content_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(20), default="password")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    signer: Mapped[User] = relationship()


def content_hash(content: Any) -> str:
    text = content if isinstance(content, str) else canonical_json(content)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reauthenticate(user: User, password: str) -> bool:
    from portal.core.passwords import check_password
    return bool(password) and user.is_active and check_password(user.password_hash, password)


def sign(user: User, password: str, purpose: str, subject: tuple[str, Any], content: Any) -> Signature:
    """Re-authenticate ``user`` and record their signature over ``content`` (dict or text).

    The caller commits (the signature, its audit event and the business change in one transaction).
    On ``SignatureError`` the failed attempt ("signature.reauth_failed") has been added to the current
    transaction: call ``sign`` before changing business rows, and commit after catching the error so
    the attempt is kept.
    """
    if not reauthenticate(user, password):
        audit.record("signature.reauth_failed", (subject[0], subject[1]), {"purpose": purpose},
                     actor=user)
        raise SignatureError("re-authentication failed")
    text = content if isinstance(content, str) else canonical_json(content)
    sig = Signature(
        signer_id=user.id, signer_name=user.display_name, purpose=purpose,
        subject_type=str(subject[0]), subject_id=str(subject[1]), content=text,
        content_hash=content_hash(text), method="password", signed_at=utcnow(),
        ip=(request.remote_addr or "") if has_request_context() else "",
        user_agent=(request.user_agent.string[:300] if has_request_context() else ""),
    )
    db.session.add(sig)
    db.session.flush()
    audit.record("signature.signed", sig, {"purpose": purpose, "subject_type": sig.subject_type,
                                           "subject_id": sig.subject_id,
                                           "content_hash": sig.content_hash}, actor=user)
    return sig


@dataclass
class SignatureCheck:
    ok: bool
    stored_hash_ok: bool
    content_matches: Optional[bool]
    reason: str = ""
    audit_matches: bool = True


def signed_hashes_in_audit(sig_ids) -> dict[int, Optional[str]]:
    """The content hash recorded in the audit event written when each signature was made (the first such
    event), for many signatures in one query. A signature without an event maps to nothing (None)."""
    out: dict[int, Optional[str]] = {}
    ids = [str(i) for i in sig_ids]
    for i in range(0, len(ids), 500):
        for ev in db.session.scalars(
                select(audit.AuditEvent)
                .where(audit.AuditEvent.target_type == Signature.__tablename__,
                       audit.AuditEvent.target_id.in_(ids[i:i + 500]),
                       audit.AuditEvent.action == "signature.signed")
                .order_by(audit.AuditEvent.id)):
            out.setdefault(int(ev.target_id), ev.payload.get("content_hash"))
    return out


_LOOK_UP = object()


def verify(sig: Signature, current_content: Any = None, audit_hash: Any = _LOOK_UP) -> SignatureCheck:
    """Is the stored signature intact, and (if given) does the current content still match it?
    ``audit_hash``: the hash from ``signed_hashes_in_audit`` when checking many signatures at once."""
    if audit_hash is _LOOK_UP:
        audit_hash = signed_hashes_in_audit([sig.id]).get(sig.id)
    stored_ok = content_hash(sig.content) == sig.content_hash
    audit_ok = audit_hash == sig.content_hash
    matches = None
    if current_content is not None:
        matches = content_hash(current_content) == sig.content_hash
    ok = stored_ok and audit_ok and (matches is not False)
    reason = ""
    if not stored_ok:
        reason = N_("the stored signed content was altered")
    elif not audit_ok:
        reason = N_("the signature row differs from the audit record of the signing")
    elif matches is False:
        reason = N_("the record changed after it was signed")
    return SignatureCheck(ok, stored_ok, matches, reason, audit_ok)


def signatures_for(subject_type: str, subject_id: Any) -> list[Signature]:
    return list(db.session.scalars(
        select(Signature).where(Signature.subject_type == subject_type,
                                Signature.subject_id == str(subject_id))
        .order_by(Signature.signed_at, Signature.id)))
