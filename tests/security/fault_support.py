"""Helpers for the fault-injection tests (tests/security/test_faults.py): signed-in clients, a barrier
race between real threads, outbox counting, table snapshots, a database connection killer."""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Callable

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.pool import NullPool

from portal.core.db import db


def client_for(app, user):
    from tests.conftest import login
    c = app.test_client()
    login(c, user)
    return c


def post(client, path: str, data: dict | None = None, token_path: str = "/", **kw):
    from tests.conftest import csrf_token
    data = dict(data or {})
    data["csrf_token"] = csrf_token(client, token_path)
    return client.post(path, data=data, **kw)


def body(resp) -> str:
    return re.sub(r"\s+", " ", resp.get_data(as_text=True))


def race(*calls: Callable[[], object], timeout: float = 60.0) -> list:
    """Run the calls in real threads that start together (threading.Barrier); results in call order.
    An exception in a call is returned in its place."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, fn):
        try:
            barrier.wait(timeout)
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            db.session.remove()  # this thread's scoped session

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racing request hung"
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def count(model, *where) -> int:
    db.session.rollback()  # a fresh snapshot: see what other threads/processes committed
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def snapshot(engine) -> dict[str, int]:
    """Row count of every table: proves that a failed request left nothing behind."""
    from portal.models import metadata
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


class ConnectionKiller:
    """Kill the database connection a request uses, just before its ``nth`` matching statement runs.

    PostgreSQL: ``pg_terminate_backend(pid)`` from a second connection (the server ends the session, as
    a restart or a network cut would). SQLite: the underlying DBAPI connection is closed. Either way the
    statement that follows really fails and the open transaction is lost on the server side.
    """

    def __init__(self, engine, nth: int, match: str = ""):
        self.engine, self.nth, self.match = engine, nth, match.lower()
        self.seen = 0
        self.killed_statement: str | None = None
        self.armed = True

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._before)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._before)
        return False

    def _before(self, conn, cursor, statement, params, context, executemany):
        if not self.armed or (self.match and self.match not in statement.lower()):
            return
        self.seen += 1
        if self.seen < self.nth:
            return
        self.armed = False
        self.killed_statement = statement
        raw = conn.connection.dbapi_connection
        if self.engine.dialect.name == "postgresql":
            pid = raw.info.backend_pid
            admin = create_engine(self.engine.url, poolclass=NullPool)
            try:
                with admin.connect() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    other.commit()
                    # wait until the server really ended it
                    for _ in range(100):
                        alive = other.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                              {"pid": pid}).scalar_one()
                        if not alive:
                            break
                        other.execute(text("SELECT pg_sleep(0.02)"))
            finally:
                admin.dispose()
        else:
            raw.close()


def gated_recompute(handle, gate_dir: str, start_iso: str, end_iso: str) -> str:
    """A background-task body for the worker-kill test (runs in a real `python worker.py`): it reports
    progress, then waits while ``gate_dir/hold`` exists (an external system that stalls), then does the
    real work of the attendance recompute task. ``entered``/``finished`` count the runs."""
    import time
    from portal.attendance.services import recompute_task
    gate = Path(gate_dir)
    with open(gate / "entered", "a") as f:
        f.write("x")
    handle.progress(0, 1, "waiting")
    deadline = time.time() + 120
    while (gate / "hold").exists() and time.time() < deadline:
        time.sleep(0.05)
    result = recompute_task(handle, start_iso, end_iso)
    with open(gate / "finished", "a") as f:
        f.write("x")
    return result
