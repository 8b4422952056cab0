"""Long work (imports, large exports, evidence packs, recomputations) as a job with a progress bar.

``start(kind, owner, path, *args)`` writes a ``BackgroundTask`` row and queues the job after commit. The
job function is called as ``fn(task: TaskHandle, *args)``; it reports ``handle.progress(done, total,
message)`` (committed on a separate connection so the page sees it at once) and returns a
``StoredFile`` (the downloadable result), a short message (a lazy ``_l()`` one is shown in the owner's
language), or None. The page polls
``/tasks/<id>/status`` every 2 s; the partial answers 286 when the task is finished, which stops htmx
polling. A task still queued when Redis was down is re-queued by the periodic sweep.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Optional

from flask_babel.speaklater import LazyString
from sqlalchemy import ForeignKey, Integer, String, Text, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.core.db import Base, UTCDateTime, db, utcnow

log = logging.getLogger("portal.tasks")


class BackgroundTask(Base):
    __tablename__ = "background_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    path: Mapped[str] = mapped_column(String(200))
    args: Mapped[str] = mapped_column(Text, default="[]")
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued|running|done|failed
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    result_file_id: Mapped[Optional[int]] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return int(self.done * 100 / self.total) if self.total else 0


class TaskHandle:
    """What a task function gets: its id and a progress reporter."""

    def __init__(self, task_id: int, owner_id: int | None):
        self.id = task_id
        self.owner_id = owner_id

    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        if db.dialect == "sqlite":
            # SQLite: a read snapshot held by the task's session would make its next write fail once
            # another connection has written. End the read first; while the task has unflushed or
            # flushed-but-uncommitted writes, skip this update (the task stays all-or-nothing).
            session = db.session()
            if session.new or session.dirty or session.deleted or session.info.get("has_writes"):
                return
            session.commit()
        values: dict[str, Any] = {"done": done}
        if total is not None:
            values["total"] = total
        if message:
            values["message"] = message[:500]
        with Session(db.engine) as s:  # visible to the polling page before the task's own commit
            s.execute(update(BackgroundTask).where(BackgroundTask.id == self.id).values(**values))
            s.commit()


@event.listens_for(Session, "after_flush")
def _mark_writes(session, _ctx) -> None:
    session.info["has_writes"] = True


@event.listens_for(Session, "after_commit")
def _clear_writes(session) -> None:
    if not session.in_nested_transaction():  # a released SAVEPOINT is not the end of the transaction
        session.info.pop("has_writes", None)


@event.listens_for(Session, "after_soft_rollback")
def _clear_writes_rb(session, previous) -> None:
    if previous.parent is None:
        session.info.pop("has_writes", None)


def start(kind: str, owner, path: str, *args: Any, queue: str = "default") -> BackgroundTask:
    from portal.core import jobs
    task = BackgroundTask(kind=kind, path=path, args=json.dumps(list(args), default=str),
                          owner_id=getattr(owner, "id", None))
    db.session.add(task)
    db.session.flush()
    jobs.enqueue_after_commit("portal.core.tasks.execute", task.id, queue=queue, timeout=3600)
    return task


def execute(task_id: int) -> str:
    """The job: claim the task (queued -> running, so a second run does nothing), call it, record."""
    from portal.core import jobs
    from portal.core.uploads import StoredFile
    now = utcnow()
    claimed = db.session.execute(update(BackgroundTask)
                                 .where(BackgroundTask.id == task_id, BackgroundTask.status == "queued")
                                 .values(status="running", started_at=now)
                                 .execution_options(synchronize_session=False))
    db.session.commit()
    if claimed.rowcount == 0:
        return "skipped"
    task = db.session.get(BackgroundTask, task_id, populate_existing=True)
    handle = TaskHandle(task.id, task.owner_id)
    db.session.commit()  # start the task's work on a fresh transaction
    try:
        result = jobs.import_path(task.path)(handle, *json.loads(task.args or "[]"))
    except Exception as exc:
        db.session.rollback()
        log.exception("task %s failed", task_id)
        db.session.execute(update(BackgroundTask).where(BackgroundTask.id == task_id).values(
            status="failed", error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=utcnow()))
        db.session.commit()
        return "failed"
    values: dict[str, Any] = {"status": "done", "finished_at": utcnow()}
    if isinstance(result, StoredFile):
        values["result_file_id"] = result.id
    elif isinstance(result, (str, LazyString)):
        values["message"] = _text_for_owner(result, handle.owner_id)[:500]
    db.session.execute(update(BackgroundTask).where(BackgroundTask.id == task_id).values(**values))
    db.session.commit()
    return "done"


def _text_for_owner(text, owner_id: int | None) -> str:
    """A lazy result message (``_l(...)``) becomes text in the language of the task's owner."""
    if not isinstance(text, LazyString):
        return text
    from flask_babel import force_locale
    from portal.core.models import User
    owner = db.session.get(User, owner_id) if owner_id else None
    if owner is not None and owner.locale:
        with force_locale(owner.locale):
            return str(text)
    return str(text)


KIND_LABELS: dict[str, Any] = {}


def register_kind(kind: str, label) -> None:
    """The label (lazy_gettext) shown on the progress page for tasks of ``kind``."""
    KIND_LABELS[kind] = label


TASK_TIMEOUT = 3600  # RQ's job timeout of a task (see start)
STALE_AFTER = dt.timedelta(seconds=TASK_TIMEOUT + 300)


def sweep_queued(older_than: dt.timedelta = dt.timedelta(minutes=2), stale_after: dt.timedelta = STALE_AFTER) -> int:
    """Re-queue tasks still 'queued' a while after creation (Redis was down when they started), and tasks
    left 'running' past the job timeout (their worker died mid-run, e.g. killed): those run again from
    the start (task functions are idempotent, like every job)."""
    from portal.core import jobs
    now = utcnow()
    db.session.execute(update(BackgroundTask).where(
        BackgroundTask.status == "running", BackgroundTask.started_at < now - stale_after)
        .values(status="queued", done=0).execution_options(synchronize_session=False))
    db.session.commit()
    ids = db.session.scalars(select(BackgroundTask.id).where(
        BackgroundTask.status == "queued", BackgroundTask.created_at < now - older_than)).all()
    for tid in ids:
        jobs.enqueue("portal.core.tasks.execute", tid, queue="default", timeout=3600)
    return len(ids)
