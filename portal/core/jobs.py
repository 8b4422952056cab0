"""Background work on RQ: queues, enqueue-after-commit, the job runner, periodic jobs and the clock.

* Every job goes through ``run(path, *args)``: a fresh app context per job and a clean DB session after it,
  so job functions take ids, re-read state and never see another job's leftovers.
* ``enqueue_after_commit`` queues only once the business transaction has committed; if Redis is down the
  row that describes the work (e.g. an outbox message) stays pending and a periodic sweep re-enqueues it.
* Periodic jobs are data (``PERIODIC``) with stable ids. One clock (``python worker.py --clock``) enqueues
  each slot once: a Redis ``SET NX`` per (job, slot) makes a second clock or a restart harmless, and a
  per-job lock keeps a job from running twice at the same time with several workers.
"""
from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.core.db import db

log = logging.getLogger("portal.jobs")

QUEUES = ("notify", "default", "maintenance")  # listen order = priority

_app = None
_redis: dict[str, redis.Redis] = {}


# ---------------------------------------------------------------- app and connections

def set_app(app) -> None:
    """The app whose context jobs run in (worker.py, tests)."""
    global _app
    _app = app


def get_app():
    global _app
    if _app is None:
        from flask import current_app, has_app_context
        if has_app_context():
            return current_app._get_current_object()
        from portal import create_app
        _app = create_app()
    return _app


def redis_url() -> str:
    from flask import current_app, has_app_context
    if has_app_context():
        return current_app.config["REDIS_URL"]
    if _app is not None:
        return _app.config["REDIS_URL"]
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def get_redis(url: str | None = None) -> redis.Redis:
    url = url or redis_url()
    conn = _redis.get(url)
    if conn is None:
        conn = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        _redis[url] = conn
    return conn


def get_queue(name: str = "default", url: str | None = None):
    from rq import Queue
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name}")
    return Queue(name, connection=get_redis(url))


# ---------------------------------------------------------------- running jobs

def import_path(path: str) -> Callable:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def run(path: str, *args, **kwargs) -> Any:
    """The RQ entry point of every job: resolve ``path`` and call it inside a fresh app context."""
    app = get_app()
    with app.app_context():
        try:
            return import_path(path)(*args, **kwargs)
        finally:
            db.session.remove()


def enqueue(path: str, *args, queue: str = "default", job_id: str | None = None, retry: Any = None,
            delay: dt.timedelta | None = None, timeout: int = 300, **kwargs):
    """Queue ``path(*args)``. Returns the RQ job, or None when Redis cannot be reached (logged)."""
    try:
        q = get_queue(queue)
        options = dict(job_id=job_id, retry=retry, job_timeout=timeout, result_ttl=3600,
                       failure_ttl=7 * 86400, description=path)
        if delay:
            return q.enqueue_in(delay, run, path, *args, **kwargs, **options)
        return q.enqueue(run, path, *args, **kwargs, **options)
    except redis.RedisError as exc:
        log.warning("redis unavailable, %s not queued now (the sweep will retry): %s", path, exc)
        return None


def enqueue_after_commit(path: str, *args, **options) -> None:
    """Queue a job once the current DB transaction commits (dropped on rollback)."""
    db.session().info.setdefault("after_commit_jobs", []).append((path, args, options))


@event.listens_for(Session, "after_commit")
def _after_commit(session) -> None:
    # SQLAlchemy also fires after_commit when a SAVEPOINT is released: wait for the real commit.
    if session.in_nested_transaction():
        return
    pending = session.info.pop("after_commit_jobs", None)
    for path, args, options in pending or ():
        enqueue(path, *args, **options)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session, previous_transaction) -> None:
    if previous_transaction.parent is not None:  # a savepoint (or a failed flush) inside: the outer goes on
        return
    session.info.pop("after_commit_jobs", None)


# ---------------------------------------------------------------- periodic jobs

@dataclass(frozen=True)
class Periodic:
    name: str
    path: str
    every: int | None = None  # seconds
    at: str | None = None  # "HH:MM" daily, company time zone
    queue: str = "maintenance"
    timeout: int = 600

    def slot(self, now: dt.datetime, tz: ZoneInfo) -> str | None:
        """The slot ``now`` falls in, or None before today's run time (daily jobs)."""
        if self.every:
            start = int(now.timestamp()) // self.every * self.every
            return str(start)
        assert self.at
        hour, minute = (int(x) for x in self.at.split(":"))
        local = now.astimezone(tz)
        run_at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if local < run_at:
            return None
        return local.date().isoformat()


PERIODIC: list[Periodic] = []


def register_periodic(job: Periodic) -> None:
    if any(p.name == job.name for p in PERIODIC):
        return
    PERIODIC.append(job)


def next_daily_run(at: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The next UTC instant at which an ``at`` ("HH:MM" company time) job fires, strictly after now."""
    hour, minute = (int(x) for x in at.split(":"))
    local = now.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + dt.timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                           microsecond=0)
    return candidate.astimezone(dt.timezone.utc)


def clock_tick(now: dt.datetime | None = None, tz: ZoneInfo | None = None) -> list[str]:
    """Enqueue every periodic job whose current slot has not been enqueued yet. Returns job ids."""
    app = get_app()
    now = now or dt.datetime.now(dt.timezone.utc)
    tz = tz or ZoneInfo(app.config["TIMEZONE"])
    r = get_redis(app.config["REDIS_URL"])
    queued = []
    for job in PERIODIC:
        slot = job.slot(now, tz)
        if slot is None:
            continue
        key = f"portal:periodic:slot:{job.name}:{slot}"
        ttl = max(2 * (job.every or 86400), 3600)
        if r.set(key, now.isoformat(), nx=True, ex=ttl):
            job_id = "periodic-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{job.name}-{slot}")
            with app.app_context():
                enqueue("portal.core.jobs.run_periodic", job.name, slot, queue=job.queue, job_id=job_id,
                        timeout=job.timeout)
            queued.append(job_id)
    return queued


def run_periodic(name: str, slot: str) -> str:
    """Run one periodic job unless another run of it is in progress (any worker)."""
    job = next(p for p in PERIODIC if p.name == name)
    r = get_redis()
    lock = f"portal:periodic:running:{name}"
    if not r.set(lock, f"{socket.gethostname()}:{os.getpid()}", nx=True, ex=job.timeout):
        log.info("periodic %s already running, slot %s skipped", name, slot)
        return "skipped"
    started = time.time()
    status, error = "ok", ""
    try:
        import_path(job.path)()
    except Exception as exc:
        status, error = "error", repr(exc)[:500]
        raise
    finally:
        r.delete(lock)
        r.hset(f"portal:periodic:last:{name}", mapping={
            "slot": slot, "started": started, "seconds": round(time.time() - started, 3),
            "status": status, "error": error})
    return status


def clock_loop(interval: float = 5.0, stop: Callable[[], bool] = lambda: False) -> None:
    """The clock process: one leader (Redis lock) ticks every ``interval`` seconds."""
    app = get_app()
    r = get_redis(app.config["REDIS_URL"])
    me = f"{socket.gethostname()}:{os.getpid()}"
    log.info("clock %s started with %d periodic jobs", me, len(PERIODIC))
    while not stop():
        try:
            leader = r.set("portal:clock:leader", me, nx=True, ex=int(interval * 4)) or \
                (r.get("portal:clock:leader") or b"").decode() == me
            if leader:
                r.expire("portal:clock:leader", int(interval * 4))
                for job_id in clock_tick():
                    log.info("enqueued %s", job_id)
        except redis.RedisError as exc:
            log.warning("clock: redis unavailable: %s", exc)
        time.sleep(interval)


# ---------------------------------------------------------------- status

def status() -> dict:
    """Queue lengths, failed jobs and periodic runs (ops page and `flask jobs status`)."""
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
    r = get_redis()
    out: dict[str, Any] = {"queues": [], "failed": [], "periodic": []}
    for name in QUEUES:
        q = get_queue(name)
        out["queues"].append({
            "name": name, "queued": q.count,
            "started": StartedJobRegistry(queue=q).count,
            "scheduled": ScheduledJobRegistry(queue=q).count,
            "failed": FailedJobRegistry(queue=q).count,
        })
        registry = FailedJobRegistry(queue=q)
        for job_id in registry.get_job_ids(0, 49):
            job = q.fetch_job(job_id)
            if job is None:
                continue
            exc = job.latest_result().exc_string if job.latest_result() else ""
            out["failed"].append({"id": job_id, "queue": name, "description": job.description,
                                  "args": [str(a)[:80] for a in job.args[1:]],
                                  "ended_at": job.ended_at, "error": (exc or "").strip()[-600:]})
    for job in PERIODIC:
        last = {k.decode(): v.decode() for k, v in r.hgetall(f"portal:periodic:last:{job.name}").items()}
        out["periodic"].append({"name": job.name, "every": job.every, "at": job.at, "last": last})
    return out


def requeue_failed(job_id: str) -> bool:
    from rq.registry import FailedJobRegistry
    for name in QUEUES:
        registry = FailedJobRegistry(queue=get_queue(name))
        if job_id in registry.get_job_ids():
            registry.requeue(job_id)
            return True
    return False
