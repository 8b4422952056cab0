"""Small helpers shared by the audit tests."""
from __future__ import annotations

from sqlalchemy import select, text

from portal.core import audit
from portal.core.audit import AuditEvent
from portal.core.db import db


def add_events(n: int, action: str = "test.event", **kw) -> list[int]:
    """Record ``n`` events in one committed transaction; returns their ids."""
    events = [audit.record(action, kw.get("target"), {"i": i, **kw.get("data", {})},
                           actor=kw.get("actor")) for i in range(n)]
    db.session.commit()
    return [ev.id for ev in events]


def seqs_by_id() -> list[tuple[int, int | None]]:
    db.session.expire_all()
    return list(db.session.execute(select(AuditEvent.id, AuditEvent.seq).order_by(AuditEvent.id)).all())


def raw(sql: str, **params) -> None:
    """Change the database behind the application's back."""
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)
