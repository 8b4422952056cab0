"""Outbox, delivery, retries, sweep, preferences — against real Redis, SMTP and HTTP endpoints."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import func, select

from portal.core import notify
from portal.core.db import db
from portal.core.models import User
from tests.conftest import count_queries
from tests.services import run_worker


def _count(**where) -> int:
    stmt = select(func.count()).select_from(notify.Notification)
    for k, v in where.items():
        stmt = stmt.where(getattr(notify.Notification, k) == v)
    return db.session.scalar(stmt)


def _user(make, **kw):
    u = make.user(**kw)
    return db.session.get(User, u.id)


def test_outbox_row_rolls_back_with_its_transaction(app, make, redis_url):
    from portal.core import jobs
    user = _user(make)
    with app.app_context():
        notify.send(user, "generic", {"subject": "s", "body": "b"})
        db.session.flush()
        assert _count() == 2  # in-app + email (the factory's mobile is valid: sms not in 'generic')
        db.session.rollback()
    assert _count() == 0
    assert jobs.get_queue("notify").count == 0  # nothing was queued for the rolled-back rows


def test_jobs_are_queued_only_after_the_outer_commit(app, make, redis_url):
    """notify.send writes each row in a SAVEPOINT; releasing it is not the commit."""
    from portal.core import jobs
    user = _user(make, mobile="13800138000")
    with app.app_context():
        notify.send(user, "reminder", {"title": "t", "due": "d"})
        db.session.flush()
        assert jobs.get_queue("notify").count == 0  # still inside the transaction
        notify.send(user, "generic", {"subject": "s", "body": "b"}, channels=["email"])
        assert jobs.get_queue("notify").count == 0
        db.session.commit()
    assert jobs.get_queue("notify").count == 3  # email + sms, then email


def test_a_rolled_back_savepoint_keeps_the_other_queued_jobs(app, make, redis_url):
    from portal.core import jobs
    user = _user(make)
    with app.app_context():
        notify.send(user, "generic", {"subject": "s", "body": "b"}, channels=["email"], dedupe_key="k")
        db.session.commit()
        notify.send(user, "generic", {"subject": "s2", "body": "b"}, channels=["email"])
        try:
            with db.session.begin_nested():
                db.session.add(notify.Notification(channel="email", template_key="generic", dedupe_key="k:email"))
        except Exception:  # the duplicate dedupe key: this savepoint rolls back
            pass
        db.session.commit()
    assert jobs.get_queue("notify").count == 2  # the first commit's job and the second's


def test_outbox_commit_queues_delivery_and_worker_delivers(app, make, redis_url, smtp_server, sms_gateway):
    from portal.core import jobs
    user = _user(make, mobile="13800138000")
    with app.app_context():
        rows = notify.send(user, "reminder", {"title": "季度 OKR", "due": "2026-12-01"})
        db.session.commit()
    assert {r.channel for r in rows} == {"inapp", "email", "sms"}
    assert jobs.get_queue("notify").count == 2  # email + sms; in-app needs no delivery
    run_worker(app)
    assert len(smtp_server.messages) == 1
    assert "季度 OKR" in smtp_server.messages[0]["Subject"]
    assert len(sms_gateway.requests) == 1
    sms = sms_gateway.requests[0]["body"]
    assert sms["to"] == "+8613800138000"
    assert sms["template_id"] == app.config["SMS_TEMPLATE_GENERIC"]
    assert "季度" in sms["params"]["title"]
    db.session.expire_all()
    assert _count(status="sent") == 3


def test_delivery_job_twice_sends_once(app, make, smtp_server):
    user = _user(make)
    with app.app_context():
        rows = notify.send(user, "generic", {"subject": "hello", "body": "x"}, channels=["email"])
        db.session.commit()
        nid = rows[0].id
        assert notify.deliver(nid) == "sent"
        assert notify.deliver(nid) == "skipped"
    assert len(smtp_server.messages) == 1


def test_smtp_failure_retries_with_backoff_then_fails_visibly(app, make, smtp_server):
    user = _user(make)
    smtp_server.fail_next = 100
    with app.app_context():
        nid = notify.send(user, "generic", {"subject": "s", "body": "b"}, channels=["email"])[0].id
        db.session.commit()
        start = dt.datetime.now(dt.timezone.utc)
        with time_machine.travel(start, tick=True) as traveller:
            for attempt in range(1, notify.MAX_ATTEMPTS):
                with pytest.raises(notify.DeliveryError):
                    notify.deliver(nid)
                n = db.session.get(notify.Notification, nid, populate_existing=True)
                assert n.status == "pending" and n.attempts == attempt
                assert "451" in n.last_error
                # not due yet: a second run now does nothing
                assert notify.deliver(nid) == "skipped"
                traveller.shift(dt.timedelta(seconds=notify.BACKOFF[attempt - 1] + 1))
            assert notify.deliver(nid) == "failed"
        n = db.session.get(notify.Notification, nid, populate_existing=True)
        assert n.status == "failed" and n.failed_at is not None and n.attempts == notify.MAX_ATTEMPTS
    assert smtp_server.messages == []


def test_sms_gateway_error_then_success(app, make, sms_gateway):
    user = _user(make, mobile="13912345678")
    sms_gateway.fail_next = 1
    with app.app_context():
        nid = notify.send(user, "reminder", {"title": "t", "due": "d"}, channels=["sms"])[0].id
        db.session.commit()
        with pytest.raises(notify.DeliveryError, match="503"):
            notify.deliver(nid)
        with time_machine.travel(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)):
            assert notify.deliver(nid) == "sent"
        n = db.session.get(notify.Notification, nid, populate_existing=True)
        assert n.provider_id == "sms-1" and n.attempts == 2 and n.last_error == ""
    assert len(sms_gateway.requests) == 1
    assert sms_gateway.requests[0]["headers"]["Idempotency-Key"] == f"portal-notification-{nid}"


def test_bad_address_is_recorded_as_failed_not_dropped(app, make):
    user = _user(make, mobile="12345", email="not-an-email")
    with app.app_context():
        rows = notify.send(user, "formal_notice", {"title": "t", "body": "b"}, formal=True)
        db.session.commit()
    by = {r.channel: r for r in rows}
    assert by["inapp"].status == "sent"
    assert by["email"].status == "failed" and "not-an-email" in by["email"].last_error
    assert by["sms"].status == "failed" and "12345" in by["sms"].last_error


@pytest.mark.parametrize("raw,ok", [("13800138000", True), ("+86 138 0013 8000", True),
                                    ("138-0013-8000", True), ("12345", False), ("02112345678", False),
                                    ("abc", False), ("", False)])
def test_cn_mobile_validation(app, raw, ok):
    with app.test_request_context():
        if ok:
            assert notify.normalise_cn_mobile(raw) == "+8613800138000"
        else:
            with pytest.raises(notify.NotifyError):
                notify.normalise_cn_mobile(raw)


def test_preferences_respected_except_for_formal(app, make):
    user = _user(make)
    with app.app_context():
        notify.set_preference(user.id, "email", False)
        notify.set_preference(user.id, "sms", False)
        db.session.commit()
        plain = notify.send(user, "reminder", {"title": "t", "due": "d"})
        formal = notify.send(user, "formal_notice", {"title": "t", "body": "b"}, formal=True)
        db.session.commit()
    assert [r.channel for r in plain] == ["inapp"]
    assert {r.channel for r in formal} == {"inapp", "email", "sms"}


def test_dedupe_key_makes_second_send_a_no_op(app, make):
    user = _user(make)
    with app.app_context():
        a = notify.send(user, "generic", {"subject": "s", "body": "b"}, dedupe_key="k1")
        db.session.commit()
        b = notify.send(user, "generic", {"subject": "s", "body": "b"}, dedupe_key="k1")
        db.session.commit()
    assert len(a) == 2 and b == []
    assert _count() == 2


def test_message_rendered_in_recipient_language(app, make):
    user = _user(make)
    db.session.get(User, user.id).locale = "en"
    db.session.commit()
    user = db.session.get(User, user.id)
    with app.app_context():
        en = notify.send(user, "reminder", {"title": "T", "due": "D"}, channels=["inapp"])[0]
    db.session.rollback()
    zh_user = _user(make)
    with app.app_context():
        zh = notify.send(zh_user, "reminder", {"title": "T", "due": "D"}, channels=["inapp"])[0]
    assert en.subject.startswith("Reminder")
    assert zh.subject.startswith("提醒")


def test_lazy_labels_rendered_in_recipient_language(app, make):
    """Labels of stored codes (lazy_gettext) become text in the recipient's language, not the sender's."""
    from portal.attendance.labels import KIND_LABELS, REQUEST_STATUS_LABELS
    en_user = _user(make)
    en_user.locale = "en"
    zh_user = _user(make)
    db.session.commit()
    ctx = {"kind": KIND_LABELS["annual"], "start": "2025-03-03", "end": "2025-03-04",
           "decision": REQUEST_STATUS_LABELS["approved"], "note": ""}
    with app.test_request_context():
        en = notify.send(en_user, "attendance.leave_decided", ctx, channels=["inapp"])[0]
        zh = notify.send(zh_user, "attendance.leave_decided", ctx, channels=["inapp"])[0]
    assert "Annual leave" in en.body and "Approved" in en.body and "annual" not in en.body
    assert "年假" in zh.body and "已批准" in zh.body


def test_redis_down_at_submit_then_up_delivers_once(app, make, private_redis, smtp_server, sms_gateway):
    user = _user(make, mobile="13700137000")
    private_redis.stop()
    with app.app_context():
        rows = notify.send(user, "formal_notice", {"title": "警告", "body": "正文"}, formal=True)
        db.session.commit()  # succeeds although Redis is down
    assert _count(status="pending") == 2
    private_redis.start()
    with app.app_context():
        assert notify.sweep() == 2
        run_worker(app)
        assert notify.sweep() == 0  # nothing left
        run_worker(app)
    assert len(smtp_server.messages) == 1
    assert len(sms_gateway.requests) == 1
    db.session.expire_all()
    assert _count(status="sent") == 3


def test_sweep_requeues_rows_left_sending_by_a_dead_worker(app, make, smtp_server, redis_url):
    user = _user(make)
    with app.app_context():
        nid = notify.send(user, "generic", {"subject": "s", "body": "b"}, channels=["email"])[0].id
        db.session.commit()
        n = db.session.get(notify.Notification, nid)
        n.status, n.claimed_at, n.attempts = "sending", dt.datetime.now(dt.timezone.utc), 1
        db.session.commit()
        assert notify.sweep() == 0  # still inside its lease
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"] + 1)
        assert notify.sweep(now=later) == 1
        run_worker(app)
    assert len(smtp_server.messages) == 1


def test_send_many_writes_what_send_would(app, make, redis_url):
    """The batch path honours preferences (formal ignores them), dedupe keys already stored and repeated
    within the batch, and queues delivery of its pending rows after commit, like send."""
    from portal.core import jobs
    quiet, plain = _user(make), _user(make)
    with app.app_context():
        notify.set_preference(quiet.id, "email", False)
        notify.send(plain, "generic", {"subject": "s", "body": "b"}, dedupe_key="old")
        db.session.commit()
        before, queued_before = _count(), jobs.get_queue("notify").count
        rows = notify.send_many([
            notify.Message(quiet, "reminder", {"title": "t", "due": "d"}),
            notify.Message(quiet, "formal_notice", {"title": "t", "body": "b"}, formal=True),
            notify.Message(plain, "generic", {"subject": "s", "body": "b"}, dedupe_key="old"),
            notify.Message(plain, "generic", {"subject": "s2", "body": "b"}, dedupe_key="new"),
            notify.Message(plain, "generic", {"subject": "s3", "body": "b"}, dedupe_key="new"),
        ])
        db.session.commit()
    by_user = {(r.user_id, r.template_key, r.channel) for r in rows}
    assert (quiet.id, "reminder", "email") not in by_user and (quiet.id, "reminder", "inapp") in by_user
    assert {c for u, t, c in by_user if u == quiet.id and t == "formal_notice"} == {"inapp", "email", "sms"}
    new = [r for r in rows if r.user_id == plain.id]
    assert sorted(r.dedupe_key for r in new) == ["new:email", "new:inapp"]
    assert {r.subject for r in new} == {"s2"}
    assert _count() == before + len(rows)
    pending = [r for r in rows if r.status == "pending"]
    queue = jobs.get_queue("notify")
    assert pending and queue.count == queued_before + 1  # one deliver_many job for the batch
    [batch] = [j for j in queue.jobs if j.args[0] == "portal.core.notify.deliver_many"]
    assert sorted(batch.args[1]) == sorted(r.id for r in pending)


def test_deliver_many_uses_one_connection_and_isolates_a_failure(app, make, smtp_server):
    users = [_user(make) for _ in range(4)]
    with app.app_context():
        rows = notify.send_many([notify.Message(u, "generic", {"subject": f"s{i}", "body": "b"}, channels=["email"])
                                 for i, u in enumerate(users)])
        db.session.commit()
        ids = [r.id for r in rows]
        smtp_server.fail_next = 1  # the relay refuses the first message only
        assert notify.deliver_many(ids) == {"retry": 1, "sent": 3}
        assert notify.deliver_many(ids) == {"skipped": 4}  # twice = once; the failed one is not due yet
        states = {n.id: (n.status, n.attempts) for n in db.session.scalars(
            select(notify.Notification).where(notify.Notification.id.in_(ids)).execution_options(
                populate_existing=True))}
    assert sorted(states.values()) == [("pending", 1), ("sent", 1), ("sent", 1), ("sent", 1)]
    assert sorted(m["Subject"] for m in smtp_server.messages) == ["s1", "s2", "s3"]
    # after the refused message the connection is reopened once, then reused for the rest
    assert len(set(smtp_server.peers)) == 1


def test_deliver_many_records_accepted_messages_in_groups(app, make, smtp_server):
    """A batch is claimed with one statement and the accepted messages are recorded SENT_MARKS_PER_COMMIT at
    a time (one executemany UPDATE): 2 or 6 messages, the same number of statements; every row is sent."""
    counts = []
    for n_users in (2, 6):
        users = [_user(make) for _ in range(n_users)]
        with app.app_context():
            rows = notify.send_many([notify.Message(u, "generic", {"subject": "s", "body": "b"}, channels=["email"])
                                     for u in users])
            db.session.commit()
            ids = [r.id for r in rows]
            db.session.remove()
            with count_queries() as seen:
                assert notify.deliver_many(ids) == {"sent": n_users}
            counts.append(len(seen))
            assert _count(status="sent") == len(ids) + (2 if n_users == 6 else 0)
    assert counts[0] == counts[1], counts
    assert len(smtp_server.messages) == 8
    with app.app_context():
        n = db.session.scalar(select(notify.Notification).where(notify.Notification.id == ids[-1]))
        assert f".n{n.id}@" in n.provider_id and n.sent_at is not None and n.attempts == 1
