"""Backups of the portal database, consistent while the portal keeps writing.

* SQLite: SQLite's online backup API (``sqlite3.Connection.backup``) copies a consistent snapshot; restore
  runs the same API the other way, into the live database file.
* PostgreSQL: ``pg_dump --format=custom`` (one repeatable-read snapshot) and
  ``pg_restore --clean --if-exists --no-owner --single-transaction`` (all or nothing).

Problems a person can fix (missing file, wrong kind of file, missing tool) raise ``click.ClickException``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy.engine import URL, make_url

from portal.core.db import db

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


@dataclass
class BackupInfo:
    path: Path
    size: int
    sha256: str
    kind: str  # sqlite | postgresql


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_kind(path: Path) -> str:
    """'sqlite', 'postgresql' or 'unknown', from the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    return "unknown"


def _backend(url: URL) -> str:
    name = url.get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise click.ClickException(f"backups are not supported for {name} databases")
    return name


def default_name(kind: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now()
    return f"portal-{now:%Y%m%d-%H%M%S}.{'sqlite3' if kind == 'sqlite' else 'dump'}"


def _target_path(path: Path, kind: str, force: bool) -> Path:
    if path.is_dir():
        path = path / default_name(kind)
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists (use --force to replace it)")
    if not path.parent.is_dir():
        raise click.ClickException(f"directory {path.parent} does not exist")
    return path


def backup(database_url: str, path: str | os.PathLike, *, force: bool = False, pg_dump: str = "pg_dump") -> BackupInfo:
    """Write a backup of ``database_url`` to ``path`` (a file, or a directory to put a dated file in)."""
    url = make_url(database_url)
    kind = _backend(url)
    target = _target_path(Path(path), kind, force)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if kind == "sqlite":
            _sqlite_backup(_sqlite_file(url), tmp)
        else:
            _pg_dump(url, tmp, pg_dump)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupInfo(target, target.stat().st_size, sha256_of(target), kind)


def check_restorable(database_url: str, path: str | os.PathLike) -> tuple[Path, str]:
    """Refuse early (before asking for confirmation) when the file cannot be restored here."""
    url = make_url(database_url)
    kind = _backend(url)
    source = Path(path)
    if not source.exists():
        raise click.ClickException(f"{source} does not exist")
    if not source.is_file():
        raise click.ClickException(f"{source} is not a file")
    found = file_kind(source)
    if found == "unknown":
        raise click.ClickException(f"{source} is neither a SQLite backup nor a PostgreSQL custom-format dump")
    if found != kind:
        label = {"sqlite": "a SQLite backup", "postgresql": "a PostgreSQL dump"}
        raise click.ClickException(f"{source} is {label[found]}, but the portal runs on {kind}")
    if kind == "sqlite":
        _check_sqlite_portal_file(source)
    return source, kind


def restore(database_url: str, path: str | os.PathLike, *, pg_restore: str = "pg_restore") -> BackupInfo:
    """Replace the content of ``database_url`` with the backup at ``path``."""
    url = make_url(database_url)
    source, kind = check_restorable(database_url, path)
    info = BackupInfo(source, source.stat().st_size, sha256_of(source), kind)
    # Our own pooled connections must not hold locks (or, for SQLite, stale pages) during the restore.
    db.session.remove()
    if db.engine is not None:
        db.engine.dispose()
    if kind == "sqlite":
        _sqlite_restore(source, _sqlite_file(url))
    else:
        _pg_restore(url, source, pg_restore)
    return info


# ---------------------------------------------------------------- SQLite

def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file::memory:"):
        raise click.ClickException("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    return sqlite3.connect(path, timeout=30)


def _sqlite_backup(source: Path, target: Path) -> None:
    if not source.exists():
        raise click.ClickException(f"the database file {source} does not exist")
    src = _connect(source)
    dst = _connect(target)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        # pages=-1: one step under one read transaction, so the copy is one consistent snapshot even
        # while other connections keep writing (WAL lets them go on).
        src.backup(dst, pages=-1)
        # A backup is one self-contained file: no -wal/-shm beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
        result = dst.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise click.ClickException(f"the backup failed its integrity check: {result}")
    except sqlite3.Error as exc:
        raise click.ClickException(f"SQLite backup failed: {exc}") from exc
    finally:
        dst.close()
        src.close()


def _check_sqlite_portal_file(source: Path) -> None:
    try:
        conn = _connect(source, readonly=True)
    except sqlite3.Error as exc:
        raise click.ClickException(f"{source} cannot be opened: {exc}") from exc
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise click.ClickException(f"{source} is damaged: {check}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{source} is not a readable SQLite database: {exc}") from exc
    finally:
        conn.close()
    if not {"alembic_version", "users", "audit_events"} <= tables:
        raise click.ClickException(f"{source} is a SQLite database but not a portal backup")


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = _connect(source, readonly=True)
    dst = _connect(target)
    try:
        dst.execute("PRAGMA busy_timeout=30000")
        src.backup(dst, pages=-1)
        result = dst.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise click.ClickException(f"the restored database failed its integrity check: {result}")
    except sqlite3.Error as exc:
        raise click.ClickException(f"SQLite restore failed: {exc}") from exc
    finally:
        dst.close()
        src.close()


# ---------------------------------------------------------------- PostgreSQL

def libpq_url(url: URL) -> tuple[str, dict[str, str]]:
    """The libpq connection URL (driver suffix such as "+psycopg" dropped) without the password, and the
    environment that carries the password (so it never shows in the process list)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                       database=url.database, query=url.query)
    return plain.render_as_string(hide_password=False), env


def _tool(binary: str, setting: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise click.ClickException(
            f"{binary} not found: install the PostgreSQL client tools or set {setting} to its path")
    return found


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except OSError as exc:
        raise click.ClickException(f"{what} could not run: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise click.ClickException(f"{what} failed (exit {proc.returncode}): {detail}")


def _pg_dump(url: URL, target: Path, binary: str) -> None:
    exe = _tool(binary, "PG_DUMP")
    conn, env = libpq_url(url)
    _run([exe, "--format=custom", "--no-password", f"--file={target}", f"--dbname={conn}"], env, "pg_dump")


def _pg_restore(url: URL, source: Path, binary: str) -> None:
    exe = _tool(binary, "PG_RESTORE")
    conn, env = libpq_url(url)
    _run([exe, "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error",
          "--no-password", f"--dbname={conn}", str(source)], env, "pg_restore")


# ---------------------------------------------------------------- schema revision

def schema_revisions() -> tuple[str | None, str | None]:
    """(revision of the connected database, newest revision the code knows)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from portal.config import ROOT

    try:
        with db.engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        current = None
    head = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()
    return current, head
