"""Long work as a job with a progress row; the polling partial stops with 286; result download."""
from __future__ import annotations

from sqlalchemy import select

from portal.core import tasks, uploads
from portal.core.db import db
from tests.conftest import login
from tests.services import run_worker


def build_report(handle, rows: int):
    for i in range(rows):
        if i % 10 == 0:
            handle.progress(i, rows, f"row {i}")
    data = "\n".join(f"line {i}" for i in range(rows)).encode()
    return uploads.store_bytes(data, "report.txt", "text", "exports")


def broken_task(handle):
    raise ValueError("bad cell B7")


def test_task_runs_reports_progress_and_offers_download(app, make, redis_url):
    owner = make.user()
    with app.app_context():
        t = tasks.start("report", owner, "tests.notify.test_tasks.build_report", 50)
        db.session.commit()
        tid = t.id
    c = app.test_client()
    login(c, owner)
    page = c.get(f"/tasks/{tid}", headers={"HX-Request": "true"})
    assert page.status_code == 200 and 'hx-trigger="every 2s"' in page.get_data(as_text=True)
    run_worker(app)
    resp = c.get(f"/tasks/{tid}/status", headers={"HX-Request": "true"})
    assert resp.status_code == 286
    assert "every 2s" not in resp.get_data(as_text=True)
    dl = c.get(f"/tasks/{tid}/download")
    assert dl.status_code == 200 and dl.data.startswith(b"line 0")
    # someone else cannot see or download it
    other = app.test_client()
    login(other, make.user())
    assert other.get(f"/tasks/{tid}").status_code == 404
    assert other.get(f"/tasks/{tid}/download").status_code == 404
    # running it again does nothing
    with app.app_context():
        assert tasks.execute(tid) == "skipped"


def test_failed_task_shows_error(app, make, redis_url):
    owner = make.user()
    with app.app_context():
        tid = tasks.start("import", owner, "tests.notify.test_tasks.broken_task").id
        db.session.commit()
    run_worker(app)
    t = db.session.scalar(select(tasks.BackgroundTask).where(tasks.BackgroundTask.id == tid))
    assert t.status == "failed" and "bad cell B7" in t.error
    c = app.test_client()
    login(c, owner)
    assert "bad cell B7" in c.get(f"/tasks/{tid}").get_data(as_text=True)
