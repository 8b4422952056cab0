"""Audit trail queries and the CSV export. No request object in here: callers pass filters, the
company time zone and the acting user."""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any, Iterator, Optional
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from portal.core import audit
from portal.core.audit import AuditEvent
from portal.core.db import db

EXPORT_CHUNK = 2000


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None

    def as_dict(self) -> dict[str, str]:
        """The filters that are set, as text (for the export's own audit event)."""
        out: dict[str, str] = {}
        for key in ("actor", "action", "target_type", "target_id"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.date_from:
            out["date_from"] = self.date_from.isoformat()
        if self.date_to:
            out["date_to"] = self.date_to.isoformat()
        return out


def _utc_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc)


def conditions(filters: AuditFilters, tz: ZoneInfo) -> list[Any]:
    """SQL conditions for ``filters``; dates are whole days in the company time zone."""
    conds: list[Any] = []
    if filters.actor:
        conds.append(func.lower(AuditEvent.actor_name) == filters.actor.lower())
    if filters.action:
        conds.append(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.target_type:
        conds.append(AuditEvent.target_type == filters.target_type)
    if filters.target_id:
        conds.append(AuditEvent.target_id == filters.target_id)
    if filters.date_from:
        conds.append(AuditEvent.created_at >= _utc_start(filters.date_from, tz))
    if filters.date_to:
        conds.append(AuditEvent.created_at < _utc_start(filters.date_to + dt.timedelta(days=1), tz))
    return conds


def list_stmt(filters: AuditFilters, tz: ZoneInfo) -> Select:
    """Events matching ``filters``, newest first (insertion order)."""
    return select(AuditEvent).where(*conditions(filters, tz)).order_by(AuditEvent.id.desc())


def start_export(filters: AuditFilters, actor: Any) -> int:
    """Record the export in the current transaction (the caller commits before streaming).

    Returns the highest event id the export covers, so the file is a fixed cut of the trail: events
    written while it streams (including this export's own event) are not in it.
    """
    up_to_id = db.session.scalar(select(func.max(AuditEvent.id))) or 0
    audit.record("audit.exported", ("audit_events", "csv"),
                 {"filters": filters.as_dict(), "up_to_id": up_to_id}, actor=actor)
    return up_to_id


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """Text for a CSV cell; a leading formula character is neutralised so spreadsheet programs
    show the value instead of evaluating it."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def export_csv(filters: AuditFilters, tz: ZoneInfo, up_to_id: int, headers: list[str],
               unsealed_label: str, chunk: int = EXPORT_CHUNK) -> Iterator[str]:
    """CSV text in chunks (UTF-8 BOM first), oldest event first, read in id order with its own
    database session so it can run after the request's session is gone."""
    buf = io.StringIO()
    writer = csv.writer(buf)

    def take() -> str:
        value = buf.getvalue()
        buf.seek(0)
        buf.truncate(0)
        return value

    writer.writerow(headers)
    yield "\ufeff" + take()
    conds = conditions(filters, tz)
    last_id = 0
    with Session(db.engine) as session:
        while True:
            rows = session.scalars(
                select(AuditEvent)
                .where(*conds, AuditEvent.id > last_id, AuditEvent.id <= up_to_id)
                .order_by(AuditEvent.id).limit(chunk)).all()
            if not rows:
                break
            for ev in rows:
                local = ev.created_at.astimezone(tz)
                writer.writerow([
                    ev.seq if ev.seq is not None else unsealed_label,
                    local.strftime("%Y-%m-%d %H:%M:%S"),
                    ev.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    _cell(ev.actor_name), "" if ev.actor_id is None else ev.actor_id,
                    _cell(ev.action), _cell(ev.target_type), _cell(ev.target_id),
                    _cell(ev.ip), _cell(ev.request_id), _cell(ev.data), ev.hash or "",
                ])
            last_id = rows[-1].id
            session.expunge_all()
            yield take()
