"""Shared fixtures: app on a real database (SQLite file by default, PostgreSQL when DATABASE_URL says
so), migrated with Alembic once per test process, emptied after every test; clients; factories."""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.services", "tests.browser"]
PASSWORD = "Passw0rd!x"
_TMP = Path(tempfile.mkdtemp(prefix="portal-tests-"))
os.environ.setdefault("PORTAL_INSTANCE", str(_TMP / "instance"))
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")


def _worker_index() -> int:
    w = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(w[2:]) if w.startswith("gw") and w[2:].isdigit() else 0


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgresql"):
        u = make_url(url)
        name = f"{u.database or 'portal_test'}_{_worker()}"
        admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return u.set(database=name).render_as_string(hide_password=False)
    return f"sqlite:///{_TMP / f'test_{_worker()}.db'}"


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "heads")


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _database_url()
    migrate(url)
    return url


@pytest.fixture(scope="session")
def app(database_url):
    from portal import create_app
    application = create_app({
        "TESTING": True,
        "PROPAGATE_EXCEPTIONS_IN_TESTS": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SERVER_NAME": None,
        "UPLOAD_DIR": str(_TMP / "uploads"),
        "INSTANCE_DIR": str(_TMP / "instance"),
        # A Redis database index of this test process, never the portal's own (0).
        "REDIS_URL": f"redis://127.0.0.1:6379/{10 + _worker_index()}",
    })
    from portal.core import jobs
    jobs.set_app(application)
    return application


@pytest.fixture(autouse=True)
def _clean_db(request):
    """Every test starts with empty tables + the built-in roles."""
    if "app" not in request.fixturenames and "database_url" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        from portal.core.db import db
        from portal.core.security import sync_roles
        sync_roles()
        db.session.commit()
    yield
    with app.app_context():
        from portal.core.db import db
        db.session.remove()
        truncate_all(db.engine)


def truncate_all(engine) -> None:
    from portal.models import metadata
    tables = [t.name for t in metadata.sorted_tables]
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        return
    # SQLite: foreign_keys only changes outside a transaction, and the engine emits BEGIN itself
    # (core/db.py), so switch it on the raw connection before the transaction starts.
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                for t in reversed(tables):
                    conn.execute(text(f'DELETE FROM "{t}"'))
                conn.execute(text("DELETE FROM sqlite_sequence")) if conn.execute(
                    text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")).first() else None
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_app(app):
    """The app with CSRF enforced (it is on in every configuration; this names the intent)."""
    return app


_PW_HASH: dict[str, str] = {}
_seq = itertools.count(1)


def password_hash() -> str:
    if "h" not in _PW_HASH:
        from portal.core.passwords import hash_password
        _PW_HASH["h"] = hash_password(PASSWORD)
    return _PW_HASH["h"]


class Factory:
    """Builds rows directly (fast) inside an app context; commits each."""

    def __init__(self, app):
        self.app = app

    def department(self, name=None, parent=None, head=None, code=None):
        from portal.core.db import db
        from portal.org.models import Department
        n = next(_seq)
        d = Department(name=name or f"部门{n}", code=code or f"D{n:04d}",
                       parent_id=getattr(parent, "id", None), head_id=getattr(head, "id", None))
        db.session.add(d)
        db.session.commit()
        return d

    def position(self, name=None):
        from portal.core.db import db
        from portal.org.models import Position
        n = next(_seq)
        p = Position(name=name or f"岗位{n}", code=f"P{n:04d}")
        db.session.add(p)
        db.session.commit()
        return p

    def employee(self, name=None, department=None, manager=None, **kw):
        from portal.core.db import db
        from portal.org.models import Employee
        from portal.org.pinyin import pinyin_fields
        n = next(_seq)
        name = name or f"员工{n}"
        py, initials = pinyin_fields(name)
        e = Employee(emp_no=kw.pop("emp_no", f"E{n:05d}"), name=name, name_pinyin=py, name_initials=initials,
                     department_id=getattr(department, "id", None), manager_id=getattr(manager, "id", None),
                     mobile=kw.pop("mobile", f"138{n:08d}"), email=kw.pop("email", f"e{n}@example.com"),
                     hire_date=kw.pop("hire_date", dt.date(2024, 1, 1)), status=kw.pop("status", "active"),
                     **kw)
        db.session.add(e)
        db.session.commit()
        return e

    def user(self, roles=("employee",), employee=None, username=None, with_employee=True, **emp_kw):
        from sqlalchemy import select
        from portal.core.db import db
        from portal.core.models import Role, User, UserRole
        if employee is None and with_employee:
            employee = self.employee(**emp_kw)
        n = next(_seq)
        u = User(username=username or f"user{n}", password_hash=password_hash(),
                 employee_id=getattr(employee, "id", None))
        if employee is not None:
            u.employee = employee
        db.session.add(u)
        db.session.flush()
        for code in roles:
            role = db.session.scalar(select(Role).where(Role.code == code))
            u.user_roles.append(UserRole(role=role))
        db.session.commit()
        return u


@pytest.fixture
def make(app):
    """Factories. No app context is pushed: a pushed context would be shared by the test client's
    requests (Flask reuses it), sharing ``g`` between requests as production never does."""
    return Factory(app)


def login(client, user) -> None:
    """Sign ``user`` in on ``client`` by session (fast; the login form has its own tests)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = user.session_token
        sess["_fresh"] = True


@pytest.fixture
def login_as(client):
    def _login(user):
        login(client, user)
        return client
    return _login


def csrf_token(client, path="/login") -> str:
    """Fetch a page and pull the CSRF token out of it."""
    import re
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert m, f"no csrf token on {path}"
    return m.group(1)


@contextlib.contextmanager
def count_queries():
    """The SQL statements the app's engine runs inside the block (a list, filled as they run)."""
    from sqlalchemy import event
    from portal.core.db import db
    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, executemany):
        seen.append(statement)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
