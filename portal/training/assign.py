"""Assignments: a course for people, a department (subtree) or a position, with a due date; new hires
and people who move into the group get it automatically (``sync``, a periodic job, idempotent: the
(course, employee) pair is unique); reminders before the due date and when overdue go through
core/reminders; a notification tells the learner.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError

from portal.core import audit, notify, reminders
from portal.core.db import db, utcnow
from portal.core.models import User
from portal.core.security import N_
from portal.org.models import Department, Employee, Position
from portal.training.models import TARGET_TYPES, Assignment, Course, CourseVersion, Enrollment
from portal.training.services import TrainingError

LEARN_PATH = "/training/learn/{id}"  # url_for needs a request; jobs build the link from this (tested)
REMIND_BEFORE = (dt.timedelta(days=3), dt.timedelta(days=1))
OVERDUE_EVERY = dt.timedelta(days=3)
REMINDER_KIND = "training.due"

notify.register_template("training.assigned", notify.Template(
    N_("New training: %(title)s"),
    N_("You have been assigned the course \"%(title)s\". Please complete it by %(due)s."),
    channels=("inapp", "email")))
notify.register_template("training.new_policy", notify.Template(
    N_("New policy version to acknowledge: %(title)s"),
    N_("A new version of \"%(title)s\" was published. Please read it and sign the acknowledgement by "
       "%(due)s."),
    channels=("inapp", "email")))


def _tz():
    from portal.core.ui import company_tz
    return company_tz()


def due_at_for(day: dt.date) -> dt.datetime:
    """The end of ``day`` in company time, as UTC."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), _tz()).astimezone(dt.timezone.utc)


def _today() -> dt.date:
    return utcnow().astimezone(_tz()).date()


def members_stmt(a: Assignment):
    """Active employees in the assignment's group (one SELECT of employee ids)."""
    stmt = select(Employee.id).where(Employee.status != "left")
    if a.target_type == "employee":
        return stmt.where(Employee.id == a.target_id)
    if a.target_type == "position":
        return stmt.where(Employee.position_id == a.target_id)
    if a.include_subdepartments:
        from portal.org.services import subtree_ids
        return stmt.where(Employee.department_id.in_(subtree_ids(a.target_id)))
    return stmt.where(Employee.department_id == a.target_id)


def target_label(a: Assignment) -> str:
    model = {"employee": Employee, "department": Department, "position": Position}[a.target_type]
    obj = db.session.get(model, a.target_id)
    return obj.name if obj is not None else f"#{a.target_id}"


def _user_for(employee_id: int) -> Optional[User]:
    return db.session.scalar(select(User).where(User.employee_id == employee_id, User.active.is_(True)))


def _schedule(e: Enrollment, course: Course, template: str = "training.assigned") -> None:
    """Tell the learner and schedule due-date reminders (none for people without an account)."""
    user = _user_for(e.employee_id)
    if user is None or e.due_at is None:
        return
    link = LEARN_PATH.format(id=e.id)
    due_text = e.due_at.astimezone(_tz()).strftime("%Y-%m-%d")
    notify.send(user, template, {"title": course.title, "due": due_text},
                related=("training_enrollments", e.id), link=link,
                dedupe_key=f"training:{template}:{e.id}:{e.version_id}")
    reminders.before_deadline([user.id], ("training_enrollments", e.id), REMINDER_KIND, e.due_at,
                              before=REMIND_BEFORE, overdue_every=OVERDUE_EVERY, channels=("inapp", "email"),
                              context={"title": course.title}, link=link)


def enroll(course: Course, employee_id: int, due_at: dt.datetime, assignment: Assignment | None,
           actor=None) -> Optional[Enrollment]:
    """Create the employee's enrollment unless one exists (returns None then). Savepoint-protected, so a
    concurrent run of ``sync`` cannot make a duplicate nor fail the caller's transaction."""
    if course.current_version_id is None:
        raise TrainingError("not_published")
    if db.session.scalar(select(Enrollment.id).where(Enrollment.course_id == course.id,
                                                     Enrollment.employee_id == employee_id)):
        return None
    e = Enrollment(course_id=course.id, employee_id=employee_id, version_id=course.current_version_id,
                   assignment_id=assignment.id if assignment else None, due_at=due_at, assigned_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(e)
            db.session.flush()
    except IntegrityError:
        return None
    audit.record("training.enrolled", e, {"course_id": course.id, "employee_id": employee_id,
                                          "version_id": e.version_id,
                                          "assignment_id": assignment.id if assignment else None,
                                          "due_at": due_at.isoformat()}, actor=actor)
    _schedule(e, course)
    return e


def create_assignment(course: Course, actor, target_type: str, target_id: int, due_date: dt.date,
                      new_hire_days: int = 30, include_subdepartments: bool = True) -> tuple[Assignment, int]:
    if course.current_version_id is None:
        raise TrainingError("not_published")
    if target_type not in TARGET_TYPES:
        raise TrainingError("bad_target", "target")
    model = {"employee": Employee, "department": Department, "position": Position}[target_type]
    if db.session.get(model, target_id) is None:
        raise TrainingError("bad_target", "target")
    if due_date < _today():
        raise TrainingError("due_in_past", "due_date")
    if not 1 <= new_hire_days <= 365:
        raise TrainingError("bad_number", "new_hire_days")
    a = Assignment(course_id=course.id, target_type=target_type, target_id=target_id, due_date=due_date,
                   new_hire_days=new_hire_days, include_subdepartments=include_subdepartments,
                   created_by_id=getattr(actor, "id", None))
    db.session.add(a)
    db.session.flush()
    audit.record("training.assigned", a, {"course_id": course.id, "target_type": target_type,
                                          "target_id": target_id, "due_date": due_date.isoformat(),
                                          "new_hire_days": new_hire_days}, actor=actor)
    n = sync_assignment(a, actor=actor, initial=True)
    return a, n


def sync_assignment(a: Assignment, actor=None, initial: bool = False) -> int:
    """Enroll the group's members who have no enrollment for the course yet."""
    course = db.session.get(Course, a.course_id)
    if course is None or course.current_version_id is None or course.archived:
        return 0
    members = members_stmt(a).where(~exists().where(and_(Enrollment.course_id == a.course_id,
                                                         Enrollment.employee_id == Employee.id)))
    ids = list(db.session.scalars(members))
    if initial:
        due = due_at_for(a.due_date)
    else:  # joined the group later: their own time to complete
        due = due_at_for(max(a.due_date, _today() + dt.timedelta(days=a.new_hire_days)))
    n = 0
    for emp_id in ids:
        if enroll(course, emp_id, due, a, actor) is not None:
            n += 1
    return n


def sync() -> int:
    """Periodic job: give every active assignment's new members their enrollment. Idempotent."""
    total = 0
    for a in db.session.scalars(select(Assignment).where(Assignment.active.is_(True)).order_by(Assignment.id)):
        n = sync_assignment(a)
        total += n
        db.session.commit()
    return total


def revoke_assignment(a: Assignment, actor) -> int:
    """Stop the assignment; enrollments it created that were never started are withdrawn."""
    if not a.active:
        return 0
    a.active, a.revoked_at = False, utcnow()
    withdrawn = list(db.session.scalars(select(Enrollment).where(Enrollment.assignment_id == a.id,
                                                                 Enrollment.status == "assigned")))
    for e in withdrawn:
        reminders.complete(("training_enrollments", e.id))
        db.session.delete(e)
    audit.record("training.assignment_revoked", a, {"withdrawn": [e.employee_id for e in withdrawn]},
                 actor=actor)
    db.session.flush()
    return len(withdrawn)


def on_publish(course: Course, version: CourseVersion, previous: CourseVersion | None, policy_changed: bool,
               actor) -> tuple[int, int]:
    """After a new version is published: learners who have not started move to it; when the policy text
    changed, completed enrollments re-open on the new version (a new acknowledgement is due)."""
    if previous is None:
        return 0, 0
    moved = reopened = 0
    for e in db.session.scalars(select(Enrollment).where(Enrollment.course_id == course.id,
                                                         Enrollment.version_id != version.id)):
        if e.status == "assigned":
            e.version_id = version.id
            moved += 1
        elif e.status == "completed" and policy_changed:
            e.version_id, e.status = version.id, "assigned"
            e.started_at = e.completed_at = None
            e.best_score, e.passed, e.learning_seconds = None, False, 0
            days = 30
            if e.assignment_id:
                a = db.session.get(Assignment, e.assignment_id)
                days = a.new_hire_days if a else days
            e.due_at = due_at_for(_today() + dt.timedelta(days=days))
            reopened += 1
            _schedule(e, course, "training.new_policy")
    db.session.flush()
    return moved, reopened


def assignments_of(course: Course) -> list[Assignment]:
    return list(db.session.scalars(select(Assignment).where(Assignment.course_id == course.id)
                                   .order_by(Assignment.active.desc(), Assignment.created_at.desc())))


def for_employees(ids: Iterable[int]) -> dict[int, Employee]:
    ids = list(ids)
    return {e.id: e for e in db.session.scalars(select(Employee).where(Employee.id.in_(ids)))} if ids else {}
