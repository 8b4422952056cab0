"""Alembic environment: DATABASE_URL comes from the app's settings; batch mode for SQLite."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from portal import config as settings
from portal.models import metadata

cfg = context.config
url = cfg.attributes.get("url") or settings.from_env()["DATABASE_URL"]


def run_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"), compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = cfg.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)


def _run(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata,
                      render_as_batch=conn.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
