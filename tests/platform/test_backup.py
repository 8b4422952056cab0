"""`flask portal backup` / `restore`: round trips on SQLite (always) and PostgreSQL (when the tests run on
it), a backup taken while another thread keeps writing, and the errors a person can make."""
from __future__ import annotations

import os
import sqlite3
import threading

import click
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from portal.core import audit, backup
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.org.models import Employee
from tests.conftest import Factory, migrate

PG_URL = os.environ.get("DATABASE_URL", "")
ON_PG = PG_URL.startswith("postgresql")
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not ON_PG, reason="PostgreSQL round trip runs when DATABASE_URL is PostgreSQL")]),
]


def _pg_scratch_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = f"{make_url(PG_URL).database}_bk"
    return base if worker == "main" else f"{base}_{worker}"


@pytest.fixture
def scratch(app, tmp_path, request):
    """A second app on its own migrated database. ``db`` is a module-level singleton that create_app
    rebinds, so the session app's engine is put back afterwards."""
    backend = request.param
    admin = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'scratch.db'}"
    else:
        name = _pg_scratch_name()
        admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        from portal import create_app
        other = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS_IN_TESTS": True, "DATABASE_URL": url,
                            "SECRET_KEY": app.config["SECRET_KEY"]})
        from portal.core.security import sync_roles
        sync_roles()
        db.session.commit()
        yield other
    finally:
        db.configure(app.config["DATABASE_URL"])
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{_pg_scratch_name()}" WITH (FORCE)'))
            admin.dispose()


def _cli(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=["portal", *args], input=input)
    db.session.remove()
    return result


def _rows(table: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY id'))]


def _snapshot() -> dict[str, list]:
    from portal.models import metadata
    return {t.name: _rows(t.name) for t in metadata.sorted_tables if "id" in t.c}


@pytest.mark.parametrize("scratch", BACKENDS, indirect=True)
def test_round_trip(scratch, tmp_path):
    make = Factory(scratch)
    dept = make.department("物流部")
    boss = make.employee("周总", department=dept)
    make.employee("李四", department=dept, manager=boss)
    make.user(roles=("hr",), employee=boss, username="hr1")
    for i in range(5):
        audit.record("test.event", ("employees", boss.id), {"i": i})
    db.session.commit()
    audit.seal()
    before = _snapshot()
    target = tmp_path / ("backup.sqlite3" if scratch.config["DATABASE_URL"].startswith("sqlite") else "b.dump")

    result = _cli(scratch, "backup", str(target))
    assert result.exit_code == 0, result.output
    assert target.exists() and "sha256" in result.output
    assert backup.file_kind(target) == ("sqlite" if "sqlite" in str(target) else "postgresql")
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "backup.created")) == 1
    # An existing file is not replaced without --force.
    again = _cli(scratch, "backup", str(target))
    assert again.exit_code == 1 and "--force" in again.output

    # Life goes on after the backup.
    make.employee("王五", department=dept)
    db.session.get(Employee, boss.id).name = "周总经理"
    audit.record("test.event", None, {"after": True})
    db.session.commit()
    audit.seal()
    changed = _snapshot()

    # Not from a terminal and no --yes: refused, nothing touched.
    refused = _cli(scratch, "restore", str(target))
    assert refused.exit_code == 1 and "--yes" in refused.output
    assert _snapshot() == changed

    restored = _cli(scratch, "restore", str(target), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "audit chain ok" in restored.output
    after = _snapshot()
    for table, rows in before.items():
        if table == "audit_events":
            continue
        assert after[table] == rows, table
    # The restored trail is the backed-up one plus the record of the restore itself.
    assert after["audit_events"][:-1] == before["audit_events"]
    assert db.session.get(AuditEvent, after["audit_events"][-1][0]).action == "backup.restored"
    assert db.session.scalar(select(Employee.name).where(Employee.id == boss.id)) == "周总"
    assert audit.verify().ok
    # The portal works on the restored database.
    client = scratch.test_client()
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("scratch", BACKENDS, indirect=True)
def test_backup_while_another_thread_writes_is_consistent(scratch, tmp_path):
    stop = threading.Event()
    written = {"n": 0}
    wrote = threading.Condition()
    errors: list[BaseException] = []
    sealer_conflicts = {"n": 0}
    sealed = {"n": 0}

    def writer():
        try:
            while not stop.is_set():
                audit.record("test.tick", None, {"n": written["n"]}, actor=None, ip="")
                db.session.commit()
                with wrote:
                    written["n"] += 1
                    wrote.notify_all()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            db.session.remove()

    def sealer():
        from sqlalchemy.exc import OperationalError
        try:
            while not stop.is_set():
                try:
                    n = audit.seal(batch=50)
                    with wrote:
                        sealed["n"] += n
                        wrote.notify_all()
                except OperationalError:  # SQLite: the write lock stayed busy; the next round seals
                    sealer_conflicts["n"] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.session.remove()

    def wait_for(n: int, counter=written) -> None:
        with wrote:
            assert wrote.wait_for(lambda: counter["n"] >= n or errors, timeout=60), "threads stalled"

    threads = [threading.Thread(target=writer), threading.Thread(target=sealer)]
    for t in threads:
        t.start()
    try:
        wait_for(100)
        wait_for(1, sealed)  # the snapshot holds sealed rows, the seal head and unsealed rows
        at_start = written["n"]
        target = tmp_path / "live.bak"
        info = backup.backup(scratch.config["DATABASE_URL"], target, pg_dump=scratch.config["PG_DUMP"])
        at_end = written["n"]
        wait_for(at_end + 50)  # the writer went on after the snapshot
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    final = written["n"]

    result = _cli(scratch, "restore", str(info.path), "--yes")
    assert result.exit_code == 0, result.output
    ticks = db.session.scalar(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "test.tick"))
    assert at_start <= ticks <= at_end < final
    restored = audit.verify()
    assert restored.ok and restored.checked > 0  # sealed rows and the seal head from one snapshot
    audit.seal()
    check = audit.verify()
    assert check.ok and check.unsealed == 0 and check.checked == ticks + 1  # + backup.restored


def test_errors_are_clear(app, tmp_path):
    url = app.config["DATABASE_URL"]
    missing = tmp_path / "missing.bak"
    with pytest.raises(click.ClickException, match="does not exist"):
        backup.check_restorable(url, missing)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a backup")
    with pytest.raises(click.ClickException, match="neither a SQLite backup nor a PostgreSQL"):
        backup.check_restorable(url, text_file)
    with pytest.raises(click.ClickException, match="is not a file"):
        backup.check_restorable(url, tmp_path)

    pg_dump_file = tmp_path / "pg.dump"
    pg_dump_file.write_bytes(backup.PGDUMP_MAGIC + b"\x01\x0e\x00" + b"\x00" * 64)
    sqlite_file = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(sqlite_file)
    conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    sqlite_url = "sqlite:///" + str(tmp_path / "portal.db")
    pg_url = "postgresql+psycopg://postgres@127.0.0.1/nowhere"
    with pytest.raises(click.ClickException, match="is a PostgreSQL dump, but the portal runs on sqlite"):
        backup.check_restorable(sqlite_url, pg_dump_file)
    with pytest.raises(click.ClickException, match="is a SQLite backup, but the portal runs on postgresql"):
        backup.check_restorable(pg_url, sqlite_file)
    with pytest.raises(click.ClickException, match="not a portal backup"):
        backup.check_restorable(sqlite_url, sqlite_file)

    # Missing client tools are named, with the setting that points to them.
    with pytest.raises(click.ClickException, match="no-such-pg_dump not found.*PG_DUMP"):
        backup.backup(pg_url, tmp_path / "x.dump", pg_dump="no-such-pg_dump")
    assert list(tmp_path.glob("*.part")) == []  # no half-written file left behind
    with pytest.raises(click.ClickException, match="no-such-pg_restore not found.*PG_RESTORE"):
        backup.restore(pg_url, pg_dump_file, pg_restore="no-such-pg_restore")
    with pytest.raises(click.ClickException, match="in-memory"):
        backup.backup("sqlite://", tmp_path / "mem.bak")
    with pytest.raises(click.ClickException, match="directory .* does not exist"):
        backup.backup(sqlite_url, tmp_path / "no" / "such" / "dir.bak")


def test_restore_cli_refuses_bad_files_before_asking(app, tmp_path):
    bad = tmp_path / "bad.bak"
    bad.write_text("hello")
    result = _cli(app, "restore", str(bad), "--yes")
    assert result.exit_code == 1 and "neither a SQLite backup" in result.output
    result = _cli(app, "restore", str(tmp_path / "absent.bak"), "--yes")
    assert result.exit_code == 1 and "does not exist" in result.output


def test_backup_into_a_directory_gets_a_dated_name(app, tmp_path):
    result = _cli(app, "backup", str(tmp_path))
    assert result.exit_code == 0, result.output
    files = [p for p in tmp_path.iterdir() if p.name.startswith("portal-")]
    assert len(files) == 1
    kind = "sqlite" if app.config["DATABASE_URL"].startswith("sqlite") else "postgresql"
    assert backup.file_kind(files[0]) == kind


def test_libpq_url_drops_the_driver_and_keeps_the_password_out_of_argv():
    url = make_url("postgresql+psycopg://hr:s3cret@db.internal:5433/portal?sslmode=require")
    conn, env = backup.libpq_url(url)
    assert conn == "postgresql://hr@db.internal:5433/portal?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret"


@pytest.mark.parametrize("scratch", ["sqlite"], indirect=True)
def test_restore_names_an_older_schema_revision(scratch, tmp_path):
    target = tmp_path / "old.sqlite3"
    assert _cli(scratch, "backup", str(target)).exit_code == 0
    conn = sqlite3.connect(target)
    conn.execute("UPDATE alembic_version SET version_num = '0000_older'")
    conn.commit()
    conn.close()
    result = _cli(scratch, "restore", str(target), "--yes")
    assert result.exit_code == 0, result.output
    assert "schema revision 0000_older" in result.output and "alembic upgrade head" in result.output
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "backup.restored"))
    assert event.payload["schema_revision"] == "0000_older"
