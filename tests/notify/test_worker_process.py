"""The real worker process: `python worker.py` delivers; killed with SIGKILL mid-job, the message is
delivered once after recovery."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.core import notify
from portal.core.db import db
from portal.core.models import User

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(app, smtp_port: int) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port), SMTP_TLS="none", SMS_BACKEND="console",
               SECRET_KEY="test-secret-key-not-for-production")
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _status(nid: int) -> str:
    db.session.rollback()  # end the read transaction: a new one sees the worker's commits
    return db.session.scalar(select(notify.Notification.status).where(notify.Notification.id == nid))


def _wait(predicate, seconds: float = 30.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.fault
def test_worker_killed_mid_delivery_then_recovers_and_sends_once(app, make, redis_url, smtp_server):
    user = db.session.get(User, make.user().id)
    smtp_server.hold_mail_seconds = 60  # the relay stalls: the worker will be mid-job
    with app.app_context():
        nid = notify.send(user, "generic", {"subject": "带走客户", "body": "b"}, channels=["email"])[0].id
        db.session.commit()
    worker = _start_worker(app, smtp_server.port)
    try:
        assert _wait(lambda: _status(nid) == "sending", 120), "the worker never picked the job up"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        assert _status(nid) == "sending" and smtp_server.messages == []

        smtp_server.hold_mail_seconds = 0
        app.config["OUTBOX_LEASE_SECONDS"] = 1
        time.sleep(1.2)
        worker = _start_worker(app, smtp_server.port)
        with app.app_context():
            assert notify.sweep() == 1  # the dead worker's claim expired: queued again
        assert _wait(lambda: _status(nid) == "sent", 120), "not delivered after recovery"
        with app.app_context():
            assert notify.sweep() == 0
        time.sleep(0.5)
    finally:
        app.config["OUTBOX_LEASE_SECONDS"] = 300
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(10)
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["Subject"] == "带走客户"


@pytest.mark.fault
def test_two_clock_processes_enqueue_each_slot_once(app, redis_url):
    """`python worker.py --clock` twice at once: one leader, each (job, slot) enqueued once."""
    from portal.core import jobs
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               SECRET_KEY="test-secret-key-not-for-production")
    clocks = [subprocess.Popen([sys.executable, str(ROOT / "worker.py"), "--clock", "--interval", "0.3"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True) for _ in range(2)]
    try:
        r = jobs.get_redis()
        assert _wait(lambda: r.exists("portal:clock:leader"), 120)
        time.sleep(2.0)
    finally:
        for c in clocks:
            os.killpg(c.pid, signal.SIGTERM)
            c.wait(10)
    slot_keys = [k.decode() for k in r.scan_iter("portal:periodic:slot:*")]
    queued = [jid for name in jobs.QUEUES for jid in jobs.get_queue(name).job_ids
              if jid.startswith("periodic-")]  # (a test before may have left a delivery job)
    assert queued, "the clock enqueued nothing"
    assert len(queued) == len(set(queued)), "a job id was enqueued twice"
    assert len(queued) == len(slot_keys)
    import datetime as dt
    from zoneinfo import ZoneInfo
    now, tz = dt.datetime.now(dt.timezone.utc), ZoneInfo(app.config["TIMEZONE"])
    due = {p.name for p in jobs.PERIODIC if p.slot(now, tz) is not None}  # daily jobs: once past their hour
    assert {k.split(":")[3] for k in slot_keys} == due
