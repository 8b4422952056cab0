"""A backup taken while the portal is writing restores to a consistent database.

tests/platform/test_backup.py already takes a backup while a thread records audit events and restores
it over the same database. Here the writes go through the web application (HR creates departments with
real POST requests: the department and its audit event are one transaction) while a sealer seals the
chain; the backup is taken with the portal's own ``backup()`` in the middle of it and restored into a
FRESH database (a new SQLite file; on PostgreSQL the database ``portal_h3_restore``, created and dropped
here). On the restored copy:

* the schema is at the Alembic head the code knows;
* the audit chain verifies (``flask audit verify``) as it is, and again after sealing what was pending;
* it is one moment of the portal: every department has its ``department.created`` event and every such
  event its department (no transaction cut in half), and it holds more than at the start of the backup
  and less than the writers made in the end.
"""
from __future__ import annotations

import os
import re
import threading

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal.core import audit, backup
from portal.core.db import db
from tests.conftest import ROOT, csrf_token, login

RESTORE_DB = "portal_h3_restore"


@pytest.fixture
def fresh_url(app, tmp_path):
    """An empty database of the portal's kind, dropped afterwards."""
    url = make_url(app.config["DATABASE_URL"])
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{RESTORE_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{RESTORE_DB}"'))
    try:
        yield url.set(database=RESTORE_DB).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{RESTORE_DB}" WITH (FORCE)'))
        admin.dispose()


def _counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        depts = conn.execute(text("SELECT COUNT(*) FROM departments WHERE code LIKE 'LIVE%'")).scalar()
        events = conn.execute(text("SELECT COUNT(*) FROM audit_events WHERE action = 'department.created'")
                              ).scalar()
    return depts, events


def test_backup_during_web_writes_restores_consistently_into_a_fresh_database(app, make, tmp_path, fresh_url):
    hr = make.user(roles=("employee", "hr"), username="live_hr")
    for i in range(3):  # a sealed start, so any snapshot holds sealed rows and the seal head
        audit.record("test.before", None, {"i": i})
    db.session.commit()
    audit.seal()
    stop = threading.Event()
    made = {"n": 0}
    cond = threading.Condition()
    errors: list[BaseException] = []

    def writer(worker: int):
        try:
            client = app.test_client()
            login(client, hr)
            token = csrf_token(client, "/org/departments")
            i = 0
            while not stop.is_set():
                i += 1
                resp = client.post("/org/departments", data={
                    "csrf_token": token, "name": f"直播部{worker}-{i}", "code": f"LIVE{worker}-{i}",
                    "parent_id": ""})
                assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
                with cond:
                    made["n"] += 1
                    cond.notify_all()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            with cond:
                cond.notify_all()
        finally:
            db.session.remove()

    def sealer():
        from sqlalchemy.exc import OperationalError
        try:
            while not stop.is_set():
                try:
                    audit.seal(batch=20)
                except OperationalError:  # SQLite: the write lock stayed busy; the next round seals
                    pass
                stop.wait(0.02)
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.session.remove()

    def wait_for(n: int) -> None:
        with cond:
            assert cond.wait_for(lambda: made["n"] >= n or errors, timeout=60), "writers stalled"
        assert not errors, errors

    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)] + [threading.Thread(target=sealer)]
    for t in threads:
        t.start()
    try:
        wait_for(20)
        at_start = made["n"]
        info = backup.backup(app.config["DATABASE_URL"], tmp_path / "live.bak", pg_dump=app.config["PG_DUMP"])
        at_end = made["n"]
        wait_for(at_end + 10)  # the portal went on writing after the snapshot
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    final = made["n"]
    audit.seal()
    assert audit.verify().ok  # the live database itself is intact

    backup.restore(fresh_url, info.path, pg_restore=app.config["PG_RESTORE"])
    restored = create_engine(fresh_url)
    try:
        with restored.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            orphans = conn.execute(text(
                "SELECT COUNT(*) FROM audit_events e WHERE e.action = 'department.created' AND NOT EXISTS "
                "(SELECT 1 FROM departments d WHERE CAST(d.id AS VARCHAR(60)) = e.target_id)")).scalar()
            unaudited = conn.execute(text(
                "SELECT COUNT(*) FROM departments d WHERE d.code LIKE 'LIVE%' AND NOT EXISTS (SELECT 1 FROM "
                "audit_events e WHERE e.action = 'department.created' AND e.target_id = "
                "CAST(d.id AS VARCHAR(60)))")).scalar()
        head = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
        assert revision == head
        assert orphans == 0 and unaudited == 0
        depts, events = _counts(restored)
        assert depts == events
        assert at_start <= depts <= at_end < final, (at_start, depts, at_end, final)
    finally:
        restored.dispose()

    # The chain of the restored copy verifies, with the command operators use.
    db.configure(fresh_url)
    try:
        runner = app.test_cli_runner()
        result = runner.invoke(args=["audit", "verify"])
        assert result.exit_code == 0, result.output
        checked = int(re.search(r"checked: (\d+)", result.output).group(1))
        assert checked >= 3 and "chain intact" in result.output  # sealed rows and head from one moment
        result = runner.invoke(args=["audit", "verify", "--seal"])
        assert result.exit_code == 0 and "chain intact" in result.output, result.output
        assert re.search(r"unsealed: 0", result.output)
    finally:
        db.session.remove()
        db.configure(app.config["DATABASE_URL"])
    assert os.path.getsize(info.path) == info.size
