"""The reminder API: before a deadline, again when overdue, once per (person, object, kind, day)."""
from __future__ import annotations

import datetime as dt

import time_machine
from sqlalchemy import func, select

from portal.core import notify, reminders
from portal.core.db import db

UTC = dt.timezone.utc


def _sent(user_id) -> int:
    return db.session.scalar(select(func.count()).select_from(notify.Notification)
                             .where(notify.Notification.user_id == user_id,
                                    notify.Notification.channel == "inapp"))


def test_before_deadline_then_overdue_then_done(app, make):
    u = make.user()
    deadline = dt.datetime(2026, 12, 10, 10, 0, tzinfo=UTC)
    with app.app_context():
        reminders.before_deadline([u.id], ("handover_items", 7), "handover.item", deadline,
                                  before=[dt.timedelta(days=3)], channels=["inapp"],
                                  context={"title": "交接：客户资料"})
        db.session.commit()
        assert reminders.dispatch(dt.datetime(2026, 12, 6, 10, 0, tzinfo=UTC)) == 0  # 4 days before
        assert reminders.dispatch(dt.datetime(2026, 12, 7, 10, 1, tzinfo=UTC)) == 1  # 3 days before
        assert reminders.dispatch(dt.datetime(2026, 12, 7, 10, 2, tzinfo=UTC)) == 0  # scheduler again
        assert reminders.dispatch(dt.datetime(2026, 12, 10, 10, 5, tzinfo=UTC)) == 1  # overdue day 1
        assert reminders.dispatch(dt.datetime(2026, 12, 10, 18, 0, tzinfo=UTC)) == 0  # same day
        assert reminders.dispatch(dt.datetime(2026, 12, 11, 10, 5, tzinfo=UTC)) == 1  # overdue day 2
        reminders.complete(("handover_items", 7))
        db.session.commit()
        assert reminders.dispatch(dt.datetime(2026, 12, 12, 10, 5, tzinfo=UTC)) == 0
    assert _sent(u.id) == 3
    body = db.session.scalars(select(notify.Notification.body)).first()
    assert "交接：客户资料" in body


def test_same_day_duplicates_are_refused_even_from_two_rules(app, make):
    u = make.user()
    at = dt.datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with app.app_context():
        reminders.schedule(u.id, ("courses", 3), "training.due", at, {"title": "安全培训"}, ["inapp"])
        reminders.schedule(u.id, ("courses", 3), "training.due", at, {"title": "安全培训"}, ["inapp"])
        db.session.commit()
        reminders.dispatch(at + dt.timedelta(minutes=1))
    assert _sent(u.id) == 1


def test_inactive_users_get_no_reminders(app, make):
    from portal.core.models import User
    u = make.user()
    db.session.get(User, u.id).active = False
    db.session.commit()
    at = dt.datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with app.app_context():
        reminders.schedule(u.id, ("x", 1), "k", at, {"title": "t"}, ["inapp"])
        db.session.commit()
        reminders.dispatch(at)
    assert _sent(u.id) == 0
