"""Real local services for tests: an SMTP server (aiosmtpd), an HTTP SMS gateway, Redis (the machine's,
on a database index of our own, or a private redis-server we can stop and start), and an RQ worker."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- SMTP

class SMTPSink:
    def __init__(self):
        self.messages: list = []
        self.peers: list = []  # (host, port) of the connection each accepted message came over
        self.fail_next = 0  # answer 451 to the next N messages
        self.hold_mail_seconds = 0.0  # stall at MAIL FROM (a slow relay)
        self.lock = threading.Lock()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.hold_mail_seconds:
            import asyncio
            await asyncio.sleep(self.hold_mail_seconds)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "451 Temporary failure, try later"
            msg = message_from_bytes(envelope.content, policy=email_policy)
            self.messages.append(msg)
            self.peers.append(session.peer)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(app):
    from aiosmtpd.controller import Controller
    sink = SMTPSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    old = {k: app.config[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_TLS", "SMTP_USER")}
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TLS="none", SMTP_USER="")
    sink.port = port
    yield sink
    app.config.update(old)
    controller.stop()


# ---------------------------------------------------------------- SMS gateway

class SMSGateway:
    def __init__(self):
        self.requests: list[dict] = []
        self.fail_next = 0
        self.token = "test-sms-token"


@pytest.fixture
def sms_gateway(app):
    gw = SMSGateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.headers.get("Authorization") != f"Bearer {gw.token}":
                self._answer(401, {"error": "bad token"})
                return
            if gw.fail_next > 0:
                gw.fail_next -= 1
                self._answer(503, {"error": "gateway busy"})
                return
            gw.requests.append({"body": body, "headers": dict(self.headers)})
            self._answer(200, {"id": f"sms-{len(gw.requests)}", "status": "accepted"})

        def _answer(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gw.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    old = {k: app.config[k] for k in ("SMS_BACKEND", "SMS_URL", "SMS_TOKEN")}
    app.config.update(SMS_BACKEND="http", SMS_URL=gw.url, SMS_TOKEN=gw.token)
    yield gw
    app.config.update(old)
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- Redis

def _worker_index() -> int:
    w = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(w[2:]) if w.startswith("gw") and w[2:].isdigit() else 0


@pytest.fixture
def redis_url(app):
    """The machine's Redis, on a database index reserved for this test process, emptied first."""
    import redis
    from portal.core import jobs
    url = f"redis://127.0.0.1:6379/{10 + _worker_index()}"
    conn = redis.Redis.from_url(url)
    try:
        conn.ping()
    except redis.RedisError:
        pytest.fail("Redis is not running on 127.0.0.1:6379 (the test command starts it)")
    conn.flushdb()
    old = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = url
    jobs.set_app(app)
    yield url
    conn.flushdb()
    app.config["REDIS_URL"] = old


class PrivateRedis:
    """A redis-server of our own that a test can stop and start on the same port."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(app, tmp_path):
    from portal.core import jobs
    r = PrivateRedis(tmp_path)
    r.start()
    old = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = r.url
    jobs.set_app(app)
    yield r
    r.stop()
    app.config["REDIS_URL"] = old


def run_worker(app, burst: bool = True) -> None:
    """Process what is queued with a real RQ worker (in this process), jobs in the app context."""
    from rq import SimpleWorker
    from portal.core import jobs
    jobs.set_app(app)
    conn = jobs.get_redis(app.config["REDIS_URL"])
    worker = SimpleWorker([jobs.get_queue(n, app.config["REDIS_URL"]) for n in jobs.QUEUES], connection=conn)
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
