"""The one e-signature mechanism: re-authentication, canonical content + SHA-256, audit event,
verification against the current content and against tampering in the database."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, text

from portal.core import signatures
from portal.core.audit import AuditEvent, canonical_json
from portal.core.db import db
from portal.core.models import User
from portal.core.signatures import Signature, SignatureError
from tests.conftest import PASSWORD

CONTENT = {"policy": "绩效管理制度", "version": "2026.1", "sections": [1, 2, 3],
           "rating": {"score": 62.5, "grade": "C"}}


def _sign(user, password=PASSWORD, content=CONTENT):
    return signatures.sign(user, password, "policy.ack", ("policies", 7), content)


def _raw(sql: str, **params) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


def _reload(sig_id: int) -> Signature:
    db.session.expire_all()
    return db.session.get(Signature, sig_id)


def test_wrong_password_raises_and_records_the_failed_attempt(app, make):
    user = make.user()
    with pytest.raises(SignatureError):
        _sign(user, "not-the-password")
    db.session.commit()  # the caller keeps the failed attempt
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signature.reauth_failed"))
    assert ev is not None
    assert ev.actor_id == user.id
    assert (ev.target_type, ev.target_id) == ("policies", "7")
    assert ev.payload == {"purpose": "policy.ack"}
    assert db.session.scalar(select(func.count()).select_from(Signature)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "signature.signed")) == 0


def test_empty_password_and_disabled_account_cannot_sign(app, make):
    user = make.user()
    with pytest.raises(SignatureError):
        _sign(user, "")
    db.session.get(User, user.id).active = False
    db.session.commit()
    with pytest.raises(SignatureError):
        _sign(db.session.get(User, user.id), PASSWORD)


def test_right_password_stores_canonical_content_hash_and_audit_event(app, make):
    user = make.user(name="李四")
    sig = _sign(user)
    db.session.commit()
    sig = _reload(sig.id)
    expected_text = ('{"policy":"绩效管理制度","rating":{"grade":"C","score":62.5},'
                     '"sections":[1,2,3],"version":"2026.1"}')
    assert sig.content == expected_text
    assert sig.content_hash == hashlib.sha256(expected_text.encode("utf-8")).hexdigest()
    assert (sig.signer_id, sig.signer_name, sig.purpose, sig.method) == (user.id, "李四", "policy.ack",
                                                                         "password")
    assert (sig.subject_type, sig.subject_id) == ("policies", "7")
    assert sig.signed_at.tzinfo is not None
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signature.signed"))
    assert ev.actor_id == user.id
    assert (ev.target_type, ev.target_id) == ("signatures", str(sig.id))
    assert ev.payload["content_hash"] == sig.content_hash
    assert ev.payload["purpose"] == "policy.ack"
    assert signatures.signatures_for("policies", 7) == [sig]


def test_signature_in_a_request_keeps_ip_and_user_agent(app, make):
    user = make.user()
    with app.test_request_context("/sign", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                                  headers={"User-Agent": "Test-Browser/1.0"}):
        sig = _sign(user)
        db.session.commit()
        sig_id = sig.id
    sig = _reload(sig_id)
    assert (sig.ip, sig.user_agent) == ("10.1.2.3", "Test-Browser/1.0")
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signature.signed"))
    assert ev.ip == "10.1.2.3"


def test_signing_text_content_keeps_it_verbatim(app, make):
    user = make.user()
    sig = _sign(user, content="我已阅读并理解《员工手册》第3版。")
    db.session.commit()
    assert _reload(sig.id).content == "我已阅读并理解《员工手册》第3版。"
    assert signatures.verify(sig, "我已阅读并理解《员工手册》第3版。").ok
    assert not signatures.verify(sig, "我已阅读并理解《员工手册》第4版。").ok


def test_verify_accepts_the_same_content_in_any_key_order(app, make):
    sig = _sign(make.user())
    db.session.commit()
    reordered = {"version": "2026.1", "rating": {"grade": "C", "score": 62.5},
                 "sections": [1, 2, 3], "policy": "绩效管理制度"}
    check = signatures.verify(_reload(sig.id), reordered)
    assert check.ok and check.stored_hash_ok and check.content_matches and check.audit_matches
    assert signatures.verify(_reload(sig.id)).ok  # without current content: the stored row only


def test_verify_detects_a_changed_record(app, make):
    sig = _sign(make.user())
    db.session.commit()
    changed = {**CONTENT, "rating": {"score": 92.5, "grade": "A"}}
    check = signatures.verify(_reload(sig.id), changed)
    assert not check.ok
    assert check.stored_hash_ok and check.content_matches is False
    assert check.reason == "the record changed after it was signed"


def test_verify_detects_changed_stored_content(app, make):
    sig = _sign(make.user())
    db.session.commit()
    forged = canonical_json({**CONTENT, "version": "2025.9"})
    _raw("UPDATE signatures SET content = :c WHERE id = :i", c=forged, i=sig.id)
    check = signatures.verify(_reload(sig.id), CONTENT)
    assert not check.ok and not check.stored_hash_ok


def test_verify_detects_changed_stored_hash(app, make):
    sig = _sign(make.user())
    db.session.commit()
    _raw("UPDATE signatures SET content_hash = :h WHERE id = :i", h="0" * 64, i=sig.id)
    check = signatures.verify(_reload(sig.id), CONTENT)
    assert not check.ok and not check.stored_hash_ok


def test_verify_detects_content_and_hash_rewritten_together(app, make):
    """A consistent rewrite of the row still differs from the hash kept in the audit chain."""
    sig = _sign(make.user())
    db.session.commit()
    forged_content = {**CONTENT, "version": "2025.9"}
    forged = canonical_json(forged_content)
    _raw("UPDATE signatures SET content = :c, content_hash = :h WHERE id = :i", c=forged,
         h=hashlib.sha256(forged.encode("utf-8")).hexdigest(), i=sig.id)
    check = signatures.verify(_reload(sig.id), forged_content)
    assert check.stored_hash_ok and check.content_matches
    assert not check.ok and check.audit_matches is False


def test_canonical_json_is_key_order_independent(app):
    a = {"b": 1, "a": {"y": [1, {"q": 1, "p": 2}], "x": "中文"}}
    b = {"a": {"x": "中文", "y": [1, {"p": 2, "q": 1}]}, "b": 1}
    assert canonical_json(a) == canonical_json(b) == '{"a":{"x":"中文","y":[1,{"p":2,"q":1}]},"b":1}'
    assert signatures.content_hash(a) == signatures.content_hash(b)
    assert signatures.content_hash(a) != signatures.content_hash({**a, "b": 2})
    assert signatures.content_hash(a) == signatures.content_hash(canonical_json(a))
