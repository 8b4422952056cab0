"""Periodic jobs: slots in the company time zone, one enqueue per slot across clocks, one run at a time."""
from __future__ import annotations

import datetime as dt
import os
import time
from zoneinfo import ZoneInfo

import pytest

from portal.core import jobs

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc


@pytest.fixture
def process_in_utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_nine_oclock_shanghai_with_process_in_utc(process_in_utc):
    job = jobs.Periodic("t.daily", "x.y", at="09:00")
    # 00:59 UTC is 08:59 in Shanghai: not yet
    assert job.slot(dt.datetime(2026, 3, 2, 0, 59, tzinfo=UTC), SH) is None
    # 01:00 UTC is 09:00 in Shanghai: today's slot
    assert job.slot(dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC), SH) == "2026-03-02"
    # 23:30 UTC on the 1st is already 07:30 on the 2nd in Shanghai: before the 2nd's run
    assert job.slot(dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC), SH) is None
    # 16:30 UTC on the 1st is 00:30 on the 2nd: still before; 15:59 UTC is 23:59 on the 1st: the 1st
    assert job.slot(dt.datetime(2026, 3, 1, 16, 30, tzinfo=UTC), SH) is None
    assert job.slot(dt.datetime(2026, 3, 1, 15, 59, tzinfo=UTC), SH) == "2026-03-01"
    assert jobs.next_daily_run("09:00", dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC), SH) == \
        dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    assert jobs.next_daily_run("09:00", dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC), SH) == \
        dt.datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    # the host's local time zone plays no part
    assert time.localtime().tm_gmtoff == 0


def test_interval_slots_are_stable():
    job = jobs.Periodic("t.every", "x.y", every=60)
    a = job.slot(dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC), SH)
    b = job.slot(dt.datetime(2026, 1, 1, 0, 0, 59, tzinfo=UTC), SH)
    c = job.slot(dt.datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC), SH)
    assert a == b != c


COUNTER_KEY = "portal:test:periodic-counter"


def count_run():
    """A periodic job for the tests: counts its runs in Redis and takes a little time."""
    r = jobs.get_redis()
    r.incr(COUNTER_KEY)
    time.sleep(0.2)


@pytest.fixture
def test_job():
    job = jobs.Periodic("test.count", "tests.notify.test_periodic.count_run", at="09:00", queue="default")
    saved = list(jobs.PERIODIC)
    jobs.PERIODIC[:] = [job]
    yield job
    jobs.PERIODIC[:] = saved


def test_two_clocks_and_a_restart_enqueue_a_slot_once(app, redis_url, test_job):
    from tests.services import run_worker
    at = dt.datetime(2026, 3, 2, 1, 0, 30, tzinfo=UTC)
    first = jobs.clock_tick(at)
    second = jobs.clock_tick(at + dt.timedelta(seconds=5))  # the other clock, same slot
    third = jobs.clock_tick(at + dt.timedelta(hours=3))  # a restarted clock later that day
    assert first == ["periodic-test_count-2026-03-02"]
    assert second == [] and third == []
    run_worker(app)
    assert int(jobs.get_redis().get(COUNTER_KEY)) == 1
    assert jobs.clock_tick(at + dt.timedelta(days=1)) == ["periodic-test_count-2026-03-03"]


def test_a_periodic_job_runs_once_at_a_time(app, redis_url, test_job):
    import threading
    results = []

    def run():
        with app.app_context():
            results.append(jobs.run_periodic("test.count", "s1"))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "skipped", "skipped"]
    assert int(jobs.get_redis().get(COUNTER_KEY)) == 1
    last = jobs.status()["periodic"][0]["last"]
    assert last["status"] == "ok" and last["slot"] == "s1"


def test_registered_periodic_jobs_exist(app):
    names = {p.name for p in jobs.PERIODIC}
    assert {"notify.sweep", "reminders.dispatch"} <= names
    for p in jobs.PERIODIC:
        assert callable(jobs.import_path(p.path))
