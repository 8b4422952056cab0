"""Database: declarative Base, one scoped session per request/job, common column types and mixins."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (DeclarativeBase, Mapped, mapped_column, scoped_session,
                            sessionmaker)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in Python; naive UTC in SQLite, timestamptz in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow,
                                                    nullable=False)


class _DB:
    """Holds the engine and the scoped session for the running app (web request or job)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session = scoped_session(sessionmaker(expire_on_commit=False))

    def configure(self, url: str, echo: bool = False) -> Engine:
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        if self.engine is not None:
            self.session.remove()
            self.engine.dispose()
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self.session.configure(bind=self.engine)
        return self.engine

    @property
    def dialect(self) -> str:
        assert self.engine is not None
        return self.engine.dialect.name

    def count(self, stmt) -> int:
        return self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # Let SQLAlchemy, not pysqlite, control transactions: SAVEPOINTs then work as documented.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn) -> None:
    # A deferred transaction that has read cannot wait for the write lock: with another writer busy,
    # SQLite answers "database is locked" at once (two approvers, a double tap, two tabs -> a 500). A
    # state-changing request takes the write lock when it begins (waiting up to busy_timeout), like
    # PostgreSQL's row locks make concurrent writers wait; reads (GET) stay deferred and concurrent.
    from flask import has_request_context, request
    if has_request_context() and request.method not in ("GET", "HEAD", "OPTIONS"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


db = _DB()


def get_or_404(model, ident):
    from flask import abort
    if isinstance(ident, int) and not -2**31 <= ident < 2**31:  # no INTEGER id is that large: a 404, not a
        abort(404)                                             # database error (PostgreSQL: out of range)
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    return obj
