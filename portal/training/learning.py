"""The learner's side: lesson progress and learning time, the signed policy acknowledgement, completion.

Learning time is measured by the server: opening a lesson and the page's heartbeat (every 60 s while it
is open) add the time since the previous contact, at most ``MAX_STEP`` each, so an abandoned tab does not
count hours.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from portal.core import audit, reminders, signatures
from portal.core.db import db, utcnow
from portal.training.models import (Acknowledgement, Completion, CourseVersion, Enrollment, Lesson,
                                    LessonProgress)
from portal.training.services import TrainingError, policy_content, policy_hash

MAX_STEP = dt.timedelta(seconds=120)
ACK_STATEMENT = "I have read and understood {name}, version {version}."


def my_enrollments(employee_id: int | None) -> list[Enrollment]:
    if not employee_id:
        return []
    from sqlalchemy.orm import joinedload
    return list(db.session.scalars(
        select(Enrollment).where(Enrollment.employee_id == employee_id)
        .options(joinedload(Enrollment.version), joinedload(Enrollment.course))
        .order_by(Enrollment.status == "completed", Enrollment.due_at, Enrollment.id)))


def progress_map(enrollment: Enrollment) -> dict[int, LessonProgress]:
    return {p.lesson_id: p for p in db.session.scalars(
        select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id))}


def progress_for(enrollment_ids: list[int]) -> dict[int, int]:
    """Completed lessons per enrollment (one query)."""
    from sqlalchemy import func
    if not enrollment_ids:
        return {}
    return dict(db.session.execute(
        select(LessonProgress.enrollment_id, func.count()).where(
            LessonProgress.enrollment_id.in_(enrollment_ids), LessonProgress.completed_at.is_not(None))
        .group_by(LessonProgress.enrollment_id)).all())


def _check_lesson(enrollment: Enrollment, lesson: Lesson) -> None:
    if lesson.version_id != enrollment.version_id:
        raise TrainingError("not_found")


def _add_time(enrollment: Enrollment, p: LessonProgress, now: dt.datetime) -> int:
    delta = now - p.last_seen_at
    added = int(delta.total_seconds()) if dt.timedelta(0) < delta <= MAX_STEP else 0
    p.seconds += added
    p.last_seen_at = now
    enrollment.learning_seconds += added
    return added


def open_lesson(enrollment: Enrollment, lesson: Lesson, now: dt.datetime | None = None) -> LessonProgress:
    now = now or utcnow()
    _check_lesson(enrollment, lesson)
    p = db.session.scalar(select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id,
                                                       LessonProgress.lesson_id == lesson.id))
    if p is None:
        p = LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, first_opened_at=now,
                           last_seen_at=now, seconds=0)
        db.session.add(p)
    else:
        _add_time(enrollment, p, now)
    if enrollment.status == "assigned":
        enrollment.status, enrollment.started_at = "in_progress", now
        audit.record("training.started", enrollment, {"version_id": enrollment.version_id})
    db.session.flush()
    return p


def heartbeat(enrollment: Enrollment, lesson: Lesson, now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    _check_lesson(enrollment, lesson)
    p = db.session.scalar(select(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id,
                                                       LessonProgress.lesson_id == lesson.id))
    if p is None:
        open_lesson(enrollment, lesson, now)
        return 0
    return _add_time(enrollment, p, now)


def complete_lesson(enrollment: Enrollment, lesson: Lesson, now: dt.datetime | None = None) -> LessonProgress:
    now = now or utcnow()
    p = open_lesson(enrollment, lesson, now)
    if p.completed_at is None:
        p.completed_at = now
        audit.record("training.lesson_completed", enrollment, {"lesson_id": lesson.id, "seconds": p.seconds})
    db.session.flush()
    maybe_complete(enrollment, now)
    return p


# ---------------------------------------------------------------- requirements and completion

@dataclass
class Requirements:
    lessons_total: int
    lessons_done: int
    needs_exam: bool
    exam_passed: bool
    needs_ack: bool
    acknowledgement: Optional[Acknowledgement]

    @property
    def lessons_complete(self) -> bool:
        return self.lessons_done >= self.lessons_total

    @property
    def met(self) -> bool:
        return (self.lessons_complete and (not self.needs_exam or self.exam_passed)
                and (not self.needs_ack or self.acknowledgement is not None))

    @property
    def can_acknowledge(self) -> bool:
        return (self.needs_ack and self.acknowledgement is None and self.lessons_complete
                and (not self.needs_exam or self.exam_passed))


def acknowledgement_for(enrollment: Enrollment, version: CourseVersion) -> Optional[Acknowledgement]:
    """An acknowledgement of this exact policy text (same hash) by the employee, on any version."""
    h = policy_hash(version)
    if not h:
        return None
    return db.session.scalar(select(Acknowledgement).where(Acknowledgement.employee_id == enrollment.employee_id,
                                                           Acknowledgement.course_id == enrollment.course_id,
                                                           Acknowledgement.policy_hash == h)
                             .order_by(Acknowledgement.signed_at.desc()).limit(1))


def requirements(enrollment: Enrollment) -> Requirements:
    version = db.session.get(CourseVersion, enrollment.version_id)
    lesson_ids = [l.id for l in version.lessons]
    done = len([p for p in progress_map(enrollment).values() if p.completed_at and p.lesson_id in lesson_ids])
    passed = False
    if version.has_exam:
        from portal.training.models import Attempt
        passed = db.session.scalar(select(Attempt.id).where(Attempt.enrollment_id == enrollment.id,
                                                            Attempt.version_id == version.id,
                                                            Attempt.passed.is_(True)).limit(1)) is not None
    return Requirements(len(lesson_ids), done, version.has_exam, passed, version.has_policy,
                        acknowledgement_for(enrollment, version) if version.has_policy else None)


def maybe_complete(enrollment: Enrollment, now: dt.datetime | None = None) -> Optional[Completion]:
    """Record the completion (pinned to the version taken) once every requirement is met."""
    if enrollment.status == "completed":
        return None
    req = requirements(enrollment)
    if not req.met:
        return None
    now = now or utcnow()
    from portal.training.models import Attempt
    best = None
    if req.needs_exam:
        best = db.session.scalar(select(Attempt).where(Attempt.enrollment_id == enrollment.id,
                                                       Attempt.version_id == enrollment.version_id,
                                                       Attempt.passed.is_(True))
                                 .order_by(Attempt.score.desc(), Attempt.id).limit(1))
    enrollment.status, enrollment.completed_at = "completed", now
    if enrollment.started_at is None:
        enrollment.started_at = now
    c = Completion(enrollment_id=enrollment.id, employee_id=enrollment.employee_id,
                   course_id=enrollment.course_id, version_id=enrollment.version_id, completed_at=now,
                   score=best.score if best else None, attempt_id=best.id if best else None,
                   acknowledgement_id=req.acknowledgement.id if req.acknowledgement else None,
                   learning_seconds=enrollment.learning_seconds)
    db.session.add(c)
    db.session.flush()
    reminders.complete(("training_enrollments", enrollment.id))
    audit.record("training.completed", enrollment, {"version_id": enrollment.version_id, "score": c.score,
                                                    "completion_id": c.id,
                                                    "acknowledgement_id": c.acknowledgement_id})
    return c


# ---------------------------------------------------------------- policy acknowledgement

def statement(version: CourseVersion) -> str:
    return ACK_STATEMENT.format(name=version.policy_name, version=version.policy_version)


def ack_content(ack_or_enrollment, version: CourseVersion, employee_id: int, user_id: int) -> dict:
    """Exactly what is signed: the statement, the full policy text, who signs, which course version."""
    return {"purpose": "training.policy_ack", "statement": statement(version), **policy_content(version),
            "policy_hash": policy_hash(version), "course_id": version.course_id, "version_id": version.id,
            "version_number": version.number, "employee_id": employee_id, "user_id": user_id}


def acknowledge(enrollment: Enrollment, user, password: str) -> Acknowledgement:
    version = db.session.get(CourseVersion, enrollment.version_id)
    if not version.has_policy:
        raise TrainingError("no_policy")
    if user.employee_id != enrollment.employee_id:
        raise TrainingError("not_found")
    req = requirements(enrollment)
    if req.acknowledgement is not None:
        raise TrainingError("already_acknowledged")
    if not req.can_acknowledge:
        raise TrainingError("finish_first")
    content = ack_content(None, version, enrollment.employee_id, user.id)
    sig = signatures.sign(user, password, "training.policy_ack", ("training_enrollments", enrollment.id), content)
    ack = Acknowledgement(enrollment_id=enrollment.id, employee_id=enrollment.employee_id, user_id=user.id,
                          course_id=enrollment.course_id, version_id=version.id, policy_name=version.policy_name,
                          policy_version=version.policy_version, policy_hash=policy_hash(version),
                          signature_id=sig.id, signed_at=sig.signed_at)
    db.session.add(ack)
    db.session.flush()
    audit.record("training.policy_acknowledged", ack, {"enrollment_id": enrollment.id, "version_id": version.id,
                                                       "policy_hash": ack.policy_hash, "signature_id": sig.id,
                                                       "content_hash": sig.content_hash}, actor=user)
    maybe_complete(enrollment, sig.signed_at)
    return ack


def verify_acknowledgement(ack: Acknowledgement) -> signatures.SignatureCheck:
    """Rebuild the signed content from the current rows (policy text of the version, who signed) and
    check it against the signature and the audit record of the signing."""
    sig = db.session.get(signatures.Signature, ack.signature_id)
    version = db.session.get(CourseVersion, ack.version_id)
    return signatures.verify(sig, ack_content(ack, version, ack.employee_id, ack.user_id))
