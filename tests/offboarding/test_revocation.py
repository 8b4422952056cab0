"""Account revocation: webhooks retried with a record of every attempt, a step that keeps failing alerts
IT and HR, and a worker killed mid-revocation finishes after recovery with every step done once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.core.audit import AuditEvent
from portal.core.db import db, utcnow
from portal.core.models import User
from portal.core.notify import Notification
from portal.offboarding.models import RevocationRun, RevocationStep

from tests.services import free_port, run_worker

ROOT = Path(__file__).resolve().parents[2]


class Hook:
    def __init__(self):
        self.requests: list[dict] = []
        self.fail_next = 0
        self.hold = threading.Event()  # while set, the first request hangs (a stalled VPN system)
        self.release = threading.Event()


@pytest.fixture
def hook():
    h = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            h.requests.append({"body": body, "key": self.headers.get("Idempotency-Key"),
                               "auth": self.headers.get("Authorization")})
            if h.hold.is_set() and len(h.requests) == 1:
                h.release.wait(60)
            if h.fail_next > 0:
                h.fail_next -= 1
                self._answer(503, b'{"error": "busy"}')
                return
            self._answer(200, b'{"ok": true}')

        def _answer(self, code, data):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    h.url = f"http://127.0.0.1:{server.server_address[1]}/revoke"
    yield h
    h.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def hook_config(app, hook):
    keys = ("OFFBOARDING_WEBHOOKS", "OFFBOARDING_WEBHOOK_BACKOFF", "OFFBOARDING_WEBHOOK_ATTEMPTS",
            "OFFBOARDING_REVOCATION_LEASE_SECONDS")
    old = {k: app.config.get(k) for k in keys}
    app.config.update(OFFBOARDING_WEBHOOKS=[{"name": "vpn", "url": hook.url, "token": "t0ken"}],
                      OFFBOARDING_WEBHOOK_BACKOFF=[0, 0, 0, 0], OFFBOARDING_WEBHOOK_ATTEMPTS=5)
    yield app.config
    app.config.update(old)


def _resign_and_schedule(app, cast) -> int:
    """The leaver resigns; revocation is scheduled due now (as at completion)."""
    from portal.offboarding import services
    with app.app_context():
        leaver = db.session.get(User, cast.leaver.id)
        ob = services.submit_resignation(leaver, "")
        run = services._schedule_revocation(ob, due=utcnow())
        db.session.commit()
        return run.id


def _steps(run_id) -> dict:
    db.session.rollback()
    return {s.key: s for s in db.session.scalars(select(RevocationStep).where(RevocationStep.run_id == run_id))}


def test_webhook_failing_twice_then_succeeding_is_retried_and_recorded(app, cast, private_redis, hook, hook_config):
    hook.fail_next = 2
    run_id = _resign_and_schedule(app, cast)
    run_worker(app)
    steps = _steps(run_id)
    assert steps["webhook:vpn"].status == "done" and steps["webhook:vpn"].attempts == 3
    assert all(s.status == "done" for s in steps.values())
    assert db.session.get(RevocationRun, run_id).status == "done"
    assert len(hook.requests) == 3
    assert {r["key"] for r in hook.requests} == {f"portal-offboarding-{db.session.get(RevocationRun, run_id).offboarding_id}-vpn"}
    assert hook.requests[-1]["auth"] == "Bearer t0ken" and hook.requests[-1]["body"]["username"] == "li_na"
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "offboarding.revocation_step")
                                .order_by(AuditEvent.id)).all()
    vpn = [(e.payload["status"], e.payload.get("attempt")) for e in events if e.payload["step"] == "webhook:vpn"]
    assert vpn == [("error", 1), ("error", 2), ("done", 3)]
    # each local step recorded exactly once, although the job ran three times
    local = [e.payload["step"] for e in events if not e.payload["step"].startswith("webhook")]
    assert sorted(local) == sorted(["disable", "rotate_token", "remove_roles", "revoke_permissions"])
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "account.disabled")) == 1


def test_a_webhook_that_keeps_failing_alerts_it_and_hr(app, cast, private_redis, hook, hook_config):
    hook.fail_next = 100
    app.config["OFFBOARDING_WEBHOOK_ATTEMPTS"] = 3
    run_id = _resign_and_schedule(app, cast)
    run_worker(app)
    steps = _steps(run_id)
    assert steps["webhook:vpn"].status == "failed" and steps["webhook:vpn"].attempts == 3
    assert "503" in steps["webhook:vpn"].last_error
    assert steps["disable"].status == "done"
    assert db.session.get(RevocationRun, run_id).status == "failed"
    alerted = set(db.session.scalars(select(Notification.user_id).where(
        Notification.template_key == "offboarding_alert", Notification.channel == "inapp")))
    assert alerted == {cast.it.id, cast.hr.id, cast.hr2.id}
    assert len(hook.requests) == 3
    # HR retries the failed step from the offboarding page once the remote system is back
    hook.fail_next = 0
    from tests.offboarding.conftest import as_user, post
    hr = as_user(app, cast.hr)
    ob_id = db.session.get(RevocationRun, run_id).offboarding_id
    assert post(hr, f"/offboarding/{ob_id}/revocation/retry").status_code == 303
    run_worker(app)
    assert _steps(run_id)["webhook:vpn"].status == "done"
    assert db.session.get(RevocationRun, run_id).status == "done"


def _start_worker(app, hook_url: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               SMS_BACKEND="console", SECRET_KEY="test-secret-key-not-for-production",
               OFFBOARDING_WEBHOOKS=json.dumps([{"name": "vpn", "url": hook_url}]),
               OFFBOARDING_WEBHOOK_BACKOFF="[0]", OFFBOARDING_WEBHOOK_TIMEOUT="120",
               OFFBOARDING_REVOCATION_LEASE_SECONDS="1")
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait(predicate, seconds: float = 30.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.fault
def test_worker_killed_mid_revocation_finishes_after_recovery(app, cast, private_redis, hook, hook_config):
    hook.hold.set()  # the VPN system stalls on the first call: the worker is mid-revocation
    run_id = _resign_and_schedule(app, cast)
    worker = _start_worker(app, hook.url)
    try:
        assert _wait(lambda: len(hook.requests) == 1, 90), "the worker never reached the webhook"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        steps = _steps(run_id)
        assert steps["disable"].status == "done" and steps["webhook:vpn"].status == "pending"
        assert db.session.get(RevocationRun, run_id).status == "running"

        hook.release.set()
        app.config["OFFBOARDING_REVOCATION_LEASE_SECONDS"] = 1
        time.sleep(1.2)
        worker = _start_worker(app, hook.url)
        from portal.offboarding import revocation
        with app.app_context():
            assert revocation.sweep() == 1  # the dead worker's claim expired: queued again
        assert _wait(lambda: (db.session.rollback() or db.session.get(RevocationRun, run_id).status) == "done", 90), \
            "not finished after recovery"
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(10)
    steps = _steps(run_id)
    assert all(s.status == "done" for s in steps.values())
    assert steps["disable"].attempts == 1 and steps["webhook:vpn"].attempts == 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "account.disabled")) == 1
    assert len(hook.requests) == 2  # the interrupted call and the one after recovery, same key
    assert hook.requests[0]["key"] == hook.requests[1]["key"]
    user = db.session.get(User, cast.leaver.id)
    assert not user.active

