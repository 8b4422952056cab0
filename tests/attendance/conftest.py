"""Attendance test setup.

Other modules are built concurrently in this tree; a model whose migration is not written yet would make
the shared table-emptying step fail. Create such *other* tables (never ours: ours must come from the
migration) so these tests run on the migrated database either way."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _other_modules_tables(app):
    from sqlalchemy import inspect

    from portal.core.db import db
    from portal.models import metadata
    have = set(inspect(db.engine).get_table_names())
    missing = [t for t in metadata.sorted_tables if t.name not in have and not t.name.startswith("attendance_")]
    if missing:
        metadata.create_all(db.engine, tables=missing)
    yield
