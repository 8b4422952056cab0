"""While other modules are built in parallel, their models may exist before their migrations: the shared
table cleanup would then fail on a missing table. Create only such missing tables of *other* modules
(never ``perf_*``: ours come from migrations/versions/0011_performance.py). A no-op once every module
has its migration."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _other_modules_tables(database_url):
    from sqlalchemy import create_engine, inspect

    from portal.models import metadata
    engine = create_engine(database_url)
    try:
        have = set(inspect(engine).get_table_names())
        missing = [t for t in metadata.sorted_tables if t.name not in have and not t.name.startswith("perf_")]
        if missing:
            metadata.create_all(engine, tables=missing)
    finally:
        engine.dispose()
