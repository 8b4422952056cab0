"""Append-only, hash-chained audit trail.

Hot paths never wait on one lock: ``record()`` only INSERTs a row (in the caller's transaction) with
``seq`` and ``hash`` empty. ``seal()`` runs later (job / CLI), takes the single seal-state row under a
lock, and gives the unsealed rows the next gapless sequence numbers in insertion order, each row's hash
covering its content and the previous row's hash. ``verify()`` recomputes the chain and names the first
broken sequence number (changed row, deleted row, deleted tail) and reports unsealed rows.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flask import g, has_request_context, request
from sqlalchemy import ForeignKey, Index, Integer, String, Text, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base, UTCDateTime, db, utcnow

GENESIS = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_target", "target_type", "target_id"),
        Index("ix_audit_events_actor_created", "actor_id", "created_at"),
        Index("ix_audit_events_created", "created_at"),
        Index("ix_audit_events_unsealed", "seq", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[Optional[int]] = mapped_column(Integer, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(120), default="")
    action: Mapped[str] = mapped_column(String(80))
    target_type: Mapped[str] = mapped_column(String(60), default="")
    target_id: Mapped[str] = mapped_column(String(60), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[Optional[str]] = mapped_column(String(64))
    hash: Mapped[Optional[str]] = mapped_column(String(64))
    sealed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    @property
    def payload(self) -> dict:
        try:
            return json.loads(self.data or "{}")
        except ValueError:
            return {}


class AuditSeal(Base):
    """One row: the head of the sealed chain. Locked while sealing."""

    __tablename__ = "audit_seal"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)
    sealed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


def canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _ts(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(ev: AuditEvent, seq: int, prev_hash: str) -> str:
    body = canonical_json([seq, _ts(ev.created_at), ev.actor_id, ev.actor_name, ev.action,
                           ev.target_type, ev.target_id, ev.ip, ev.request_id, ev.data, prev_hash])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _target(target: Any) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        return str(target[0]), str(target[1])
    if getattr(target, "id", None) is None:
        db.session.flush()
    return target.__tablename__, str(target.id)


def record(action: str, target: Any = None, data: dict | None = None, actor: Any = None,
           ip: str | None = None) -> AuditEvent:
    """Add an audit event to the current transaction (the caller commits with its change)."""
    if actor is None and has_request_context():
        from flask_login import current_user
        actor = current_user if getattr(current_user, "is_authenticated", False) else None
    ttype, tid = _target(target)
    ev = AuditEvent(
        created_at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_name=(getattr(actor, "username", "") or "") if actor is not None else "",
        action=action, target_type=ttype, target_id=tid,
        ip=ip if ip is not None else ((request.remote_addr or "") if has_request_context() else ""),
        request_id=(g.get("request_id", "") if has_request_context() else ""),
        data=canonical_json(data or {}),
    )
    db.session.add(ev)
    if has_request_context():
        g.audit_written = True
    return ev


# ---------------------------------------------------------------- sealing

def _begin_write(session) -> None:
    """SQLite: take the database write lock before reading the head.

    A deferred SQLite transaction that reads first and writes later cannot wait for the write lock
    (WAL answers "database is locked" at once when another sealer committed meanwhile). Writing
    first makes SQLite wait (busy_timeout) for the lock and only then fix the read snapshot, the
    same as BEGIN IMMEDIATE, whichever way the connection begins its transactions. PostgreSQL
    locks the head row instead (FOR UPDATE).
    """
    if session.bind.dialect.name == "sqlite":
        session.execute(text("UPDATE audit_seal SET last_seq = last_seq WHERE id = 1"))


def _seal_row(session, lock: bool):
    dialect = session.bind.dialect.name
    stmt = select(AuditSeal).where(AuditSeal.id == 1)
    if lock and dialect == "postgresql":
        stmt = stmt.with_for_update()
    head = session.scalar(stmt)
    if head is None:
        if dialect == "postgresql":
            # Two first-ever sealers may race to create the head: let one insert win, then lock it.
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            session.execute(pg_insert(AuditSeal).values(id=1, last_seq=0, last_hash=GENESIS)
                            .on_conflict_do_nothing(index_elements=["id"]))
            head = session.scalar(stmt)
        else:
            head = AuditSeal(id=1, last_seq=0, last_hash=GENESIS)
            session.add(head)
            session.flush()
    return head


def pending_count() -> int:
    """How many events wait for a sequence number."""
    from sqlalchemy.orm import Session
    with Session(db.engine) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.seq.is_(None))) or 0


def seal(batch: int = 5000, max_batches: int | None = None,
         progress: Callable[[int], None] | None = None) -> int:
    """Seal pending events; returns how many were sealed. Safe to run concurrently and repeatedly.

    Each batch is one transaction holding the seal lock (PostgreSQL: the head row FOR UPDATE;
    SQLite: the database write lock), so concurrent sealers queue and sequence numbers stay gapless.
    ``progress(n)`` is called after each committed batch with the number of events it sealed.
    """
    from sqlalchemy.orm import Session
    total = 0
    batches = 0
    retries = 0
    while True:
        with Session(db.engine, expire_on_commit=False) as session:
            try:
                _begin_write(session)
                head = _seal_row(session, lock=True)
                rows = session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None))
                                       .order_by(AuditEvent.id).limit(batch)).all()
                if not rows:
                    session.commit()
                    return total
                seq, prev = head.last_seq, head.last_hash
                now = utcnow()
                for ev in rows:
                    seq += 1
                    ev.seq = seq
                    ev.prev_hash = prev
                    ev.hash = event_hash(ev, seq, prev)
                    ev.sealed_at = now
                    prev = ev.hash
                head.last_seq, head.last_hash, head.sealed_at = seq, prev, now
                session.commit()
                total += len(rows)
            except (OperationalError, IntegrityError):
                # SQLite: the write lock stayed busy past the timeout; PostgreSQL: a first-ever
                # head insert raced. Nothing of this batch was committed: retry a few times.
                session.rollback()
                retries += 1
                if retries > 5:
                    raise
                continue
        if progress is not None:
            progress(len(rows))
        batches += 1
        if max_batches is not None and batches >= max_batches:
            return total


# ---------------------------------------------------------------- verification

@dataclass
class VerifyResult:
    ok: bool
    checked: int = 0
    unsealed: int = 0
    first_broken_seq: Optional[int] = None
    reason: str = ""
    last_seq: int = 0
    problems: list[str] = field(default_factory=list)


def _begin_snapshot(session) -> None:
    """Read the whole chain from one consistent snapshot, so a seal committing meanwhile cannot
    look like a broken tail."""
    if session.bind.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    # SQLite: core/db.py makes every transaction start with an explicit BEGIN, so the first read
    # below already fixes the snapshot (WAL mode).


def verify(chunk: int = 5000, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Recompute the chain from seq 1. Streams in chunks; memory stays flat.

    ``progress(checked, total)`` is called after each chunk (total = the sealed head's last seq).
    """
    from sqlalchemy.orm import Session
    with Session(db.engine) as session:
        _begin_snapshot(session)
        head = session.scalar(select(AuditSeal).where(AuditSeal.id == 1))
        head_seq = head.last_seq if head else 0
        unsealed = session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.seq.is_(None))) or 0
        expected_seq, prev = 1, GENESIS
        checked = 0
        last = 0
        while True:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.seq >= expected_seq)
                                   .order_by(AuditEvent.seq).limit(chunk)).all()
            if not rows:
                break
            for ev in rows:
                if ev.seq != expected_seq:
                    return VerifyResult(False, checked, unsealed, expected_seq,
                                        f"sequence {expected_seq} is missing (row deleted)", last)
                if ev.prev_hash != prev or event_hash(ev, ev.seq, prev) != ev.hash:
                    return VerifyResult(False, checked, unsealed, ev.seq,
                                        f"sequence {ev.seq} does not match its hash (row changed)",
                                        last)
                prev = ev.hash
                last = ev.seq
                expected_seq += 1
                checked += 1
            session.expunge_all()
            if progress is not None:
                progress(checked, max(head_seq, checked))
        if head is None and last:
            return VerifyResult(False, checked, unsealed, last + 1,
                                "the seal head record is missing (chain tail cannot be checked)",
                                last)
        if head_seq > last:
            return VerifyResult(False, checked, unsealed, last + 1,
                                f"sequence {last + 1} is missing (chain tail deleted)", last)
        if head_seq < last:
            return VerifyResult(False, checked, unsealed, head_seq + 1,
                                f"sequence {head_seq + 1} lies beyond the sealed head "
                                "(row added or head changed)", last)
        if head is not None and head_seq and head.last_hash != prev:
            return VerifyResult(False, checked, unsealed, last,
                                f"chain head does not match sequence {last}", last)
        return VerifyResult(True, checked, unsealed, None, "", last)
