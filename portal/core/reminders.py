"""Reusable reminders: "remind these people about this object N days/hours before its deadline, on
these channels, and again if still not done".

Modules call ``before_deadline(...)`` when something with a deadline is assigned and ``complete(...)``
when it is done. The periodic ``dispatch`` job sends what is due through the outbox. At most one reminder
per (person, object, kind, local day) is ever written, even if the scheduler runs twice, because each
message carries that as its outbox dedupe key (a unique column).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterable, Optional

from sqlalchemy import ForeignKey, Index, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base, UTCDateTime, db, utcnow


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_due", "done_at", "next_at"),
                      Index("ix_reminders_subject", "subject_type", "subject_id", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(60))
    next_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    repeat_seconds: Mapped[int] = mapped_column(Integer, default=0)  # 0 = once
    template_key: Mapped[str] = mapped_column(String(60), default="reminder")
    context: Mapped[str] = mapped_column(Text, default="{}")
    channels: Mapped[str] = mapped_column(String(60), default="inapp,email")
    link: Mapped[str] = mapped_column(String(300), default="")
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


def schedule(user_id: int, subject: tuple[str, Any], kind: str, at: dt.datetime, context: dict,
             channels: Iterable[str] = ("inapp", "email"), repeat: dt.timedelta | None = None,
             deadline: dt.datetime | None = None, template_key: str = "reminder", link: str = "") -> Reminder:
    r = Reminder(user_id=user_id, subject_type=str(subject[0]), subject_id=str(subject[1]), kind=kind,
                 next_at=at, deadline=deadline, repeat_seconds=int(repeat.total_seconds()) if repeat else 0,
                 template_key=template_key, context=json.dumps(context, ensure_ascii=False, default=str),
                 channels=",".join(channels), link=link)
    db.session.add(r)
    return r


def before_deadline(user_ids: Iterable[int], subject: tuple[str, Any], kind: str, deadline: dt.datetime,
                    before: Iterable[dt.timedelta] = (dt.timedelta(days=3),),
                    overdue_every: dt.timedelta | None = dt.timedelta(days=1),
                    channels: Iterable[str] = ("inapp", "email"), context: dict | None = None,
                    link: str = "", template_key: str = "reminder") -> list[Reminder]:
    """One reminder per offset before ``deadline`` and, if still not done, one every ``overdue_every``
    after it."""
    rows = []
    context = dict(context or {})
    for uid in user_ids:
        for offset in before:
            rows.append(schedule(uid, subject, f"{kind}", deadline - offset, context, channels,
                                 deadline=deadline, link=link, template_key=template_key))
        if overdue_every:
            rows.append(schedule(uid, subject, f"{kind}.overdue", deadline, context, channels,
                                 repeat=overdue_every, deadline=deadline, link=link, template_key=template_key))
    return rows


def complete(subject: tuple[str, Any], kind: str | None = None, user_id: int | None = None) -> int:
    """Stop reminders about ``subject`` (all kinds, or one kind and its overdue repeats)."""
    stmt = update(Reminder).where(Reminder.subject_type == str(subject[0]),
                                  Reminder.subject_id == str(subject[1]), Reminder.done_at.is_(None))
    if kind:
        stmt = stmt.where(Reminder.kind.in_([kind, f"{kind}.overdue"]))
    if user_id is not None:
        stmt = stmt.where(Reminder.user_id == user_id)
    res = db.session.execute(stmt.values(done_at=utcnow()).execution_options(synchronize_session=False))
    return res.rowcount or 0


def dispatch(now: dt.datetime | None = None, batch: int = 1000) -> int:
    """Send due reminders (periodic job). Safe to run twice: dedupe per (person, object, kind, day)."""
    from portal.core import notify
    from portal.core.models import User
    from portal.core.ui import company_tz
    now = now or utcnow()
    tz = company_tz()
    rows = db.session.scalars(select(Reminder).where(Reminder.done_at.is_(None), Reminder.next_at <= now)
                              .order_by(Reminder.next_at).limit(batch)).all()
    sent = 0
    for r in rows:
        user = db.session.get(User, r.user_id)
        day = now.astimezone(tz).date().isoformat()
        if user is not None and user.is_active:
            ctx = json.loads(r.context or "{}")
            if r.deadline:
                ctx.setdefault("due", r.deadline.astimezone(tz).strftime("%Y-%m-%d %H:%M"))
            ctx.setdefault("title", r.kind)
            base_kind = r.kind.removesuffix(".overdue")
            out = notify.send(user, r.template_key, ctx, channels=r.channels.split(","),
                              related=(r.subject_type, r.subject_id), link=r.link,
                              dedupe_key=f"rem:{r.user_id}:{r.subject_type}:{r.subject_id}:{base_kind}:{day}")
            sent += 1 if out else 0
        r.sent_count += 1
        if r.repeat_seconds:
            step = dt.timedelta(seconds=r.repeat_seconds)
            while r.next_at <= now:
                r.next_at += step
        else:
            r.done_at = now
        db.session.commit()
    return sent
