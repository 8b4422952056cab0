"""Ops page and `flask jobs status`: queue lengths and failed jobs with their error; requeue."""
from __future__ import annotations

import json

from portal.core import jobs
from tests.conftest import csrf_token, login
from tests.services import run_worker


def explode(reason: str):
    raise RuntimeError(f"boom: {reason}")


def test_failed_job_visible_in_cli_and_ops_page_and_requeued(app, make, redis_url):
    with app.app_context():
        job = jobs.enqueue("tests.notify.test_ops.explode", "disk full", queue="default")
    run_worker(app)
    runner = app.test_cli_runner()
    out = runner.invoke(args=["jobs", "status", "--json"])
    assert out.exit_code == 0, out.output
    st = json.loads(out.output)
    assert next(q for q in st["queues"] if q["name"] == "default")["failed"] == 1
    assert "boom: disk full" in st["failed"][0]["error"]
    text_out = runner.invoke(args=["jobs", "status"])
    assert "FAILED" in text_out.output and "boom: disk full" in text_out.output

    admin = make.user(roles=("employee", "admin"))
    c = app.test_client()
    login(c, admin)
    page = c.get("/ops/jobs").get_data(as_text=True)
    assert "boom: disk full" in page
    token = csrf_token(c, "/ops/jobs")
    resp = c.post(f"/ops/jobs/{job.id}/requeue", data={"csrf_token": token})
    assert resp.status_code == 303
    assert jobs.get_queue("default").count == 1


def test_ops_page_needs_permission(app, make, redis_url):
    c = app.test_client()
    login(c, make.user())
    assert c.get("/ops/jobs").status_code == 403


def test_ops_page_says_when_redis_is_down(app, make, private_redis):
    private_redis.stop()
    admin = make.user(roles=("employee", "admin"))
    c = app.test_client()
    login(c, admin)
    resp = c.get("/ops/jobs")
    assert resp.status_code == 200
    assert "Redis" in resp.get_data(as_text=True)
