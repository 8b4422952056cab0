"""Reports: per course and per department (assigned, started, completed, passed, average score, overdue),
per employee (training history with scores, also used by performance), HR policy compliance, XLSX export.

Every query is scoped to the employees the viewer may see (``training.view_all`` sees everyone; a manager
sees the team) and aggregated in SQL: a handful of queries whatever the number of people.
"""
from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import joinedload

from portal.core.db import db, utcnow
from portal.core.security import employee_scope
from portal.org.models import Department, Employee
from portal.training.models import Acknowledgement, Completion, Course, CourseVersion, Enrollment
from portal.training.services import policy_hash

ALL_PERM = "training.view_all"
COMPLIANCE_PERM = "training.compliance"  # the compliance view covers everyone for those who hold it


def _scope(user, all_perm: str = ALL_PERM):
    return employee_scope(user, all_perm)


@dataclass
class Stats:
    assigned: int = 0
    started: int = 0
    completed: int = 0
    passed: int = 0
    overdue: int = 0
    avg_score: Optional[float] = None

    @property
    def completion_rate(self) -> Optional[int]:
        return round(100 * self.completed / self.assigned) if self.assigned else None


def _stat_columns(now: dt.datetime):
    return (func.count(Enrollment.id),
            func.sum(case((Enrollment.status != "assigned", 1), else_=0)),
            func.sum(case((Enrollment.status == "completed", 1), else_=0)),
            func.sum(case((Enrollment.passed.is_(True), 1), else_=0)),
            func.sum(case((and_(Enrollment.status != "completed", Enrollment.due_at < now), 1), else_=0)),
            func.avg(Enrollment.best_score))


def _stats(row) -> Stats:
    n, started, completed, passed, overdue, avg = row
    return Stats(n or 0, int(started or 0), int(completed or 0), int(passed or 0), int(overdue or 0),
                 round(float(avg), 1) if avg is not None else None)


def _base(user, stmt, all_perm: str = ALL_PERM):
    cond = _scope(user, all_perm)
    stmt = stmt.join(Employee, Employee.id == Enrollment.employee_id)
    return stmt if cond is None else stmt.where(cond)


def course_stats(user, now: dt.datetime | None = None) -> list[tuple[Course, Stats]]:
    now = now or utcnow()
    rows = db.session.execute(_base(user, select(Enrollment.course_id, *_stat_columns(now)))
                              .group_by(Enrollment.course_id)).all()
    by_course = {r[0]: _stats(r[1:]) for r in rows}
    courses = db.session.scalars(select(Course).where(Course.id.in_(list(by_course)))
                                 .order_by(Course.title, Course.id)).all() if by_course else []
    return [(c, by_course[c.id]) for c in courses]


def department_stats(user, course_id: int | None = None, now: dt.datetime | None = None
                     ) -> list[tuple[Optional[Department], Stats]]:
    now = now or utcnow()
    stmt = _base(user, select(Employee.department_id, *_stat_columns(now)))
    if course_id:
        stmt = stmt.where(Enrollment.course_id == course_id)
    rows = db.session.execute(stmt.group_by(Employee.department_id)).all()
    depts = {d.id: d for d in db.session.scalars(select(Department).where(
        Department.id.in_([r[0] for r in rows if r[0]])))}
    out = [(depts.get(r[0]), _stats(r[1:])) for r in rows]
    out.sort(key=lambda x: (x[0] is None, x[0].name if x[0] else ""))
    return out


def course_summary(user, course: Course, now: dt.datetime | None = None) -> Stats:
    now = now or utcnow()
    row = db.session.execute(_base(user, select(*_stat_columns(now)))
                             .where(Enrollment.course_id == course.id)).one()
    return _stats(row)


def enrollments_stmt(user, course_id: int | None = None, only_overdue: bool = False,
                     now: dt.datetime | None = None):
    now = now or utcnow()
    stmt = _base(user, select(Enrollment)).options(joinedload(Enrollment.employee).joinedload(Employee.department),
                                                   joinedload(Enrollment.version), joinedload(Enrollment.course))
    if course_id:
        stmt = stmt.where(Enrollment.course_id == course_id)
    if only_overdue:
        stmt = stmt.where(Enrollment.status != "completed", Enrollment.due_at < now)
    return stmt.order_by(Enrollment.due_at, Employee.emp_no, Enrollment.id)


# ---------------------------------------------------------------- per employee

@dataclass
class HistoryRow:
    course: Course
    enrollment: Optional[Enrollment]
    completions: list[Completion] = field(default_factory=list)


def employee_history(employee_id: int) -> list[HistoryRow]:
    """Everything the employee was assigned or completed, newest completion first (3 queries)."""
    enrollments = {e.course_id: e for e in db.session.scalars(
        select(Enrollment).where(Enrollment.employee_id == employee_id)
        .options(joinedload(Enrollment.course), joinedload(Enrollment.version)))}
    completions = list(db.session.scalars(
        select(Completion).where(Completion.employee_id == employee_id)
        .options(joinedload(Completion.course), joinedload(Completion.version))
        .order_by(Completion.completed_at.desc())))
    rows: dict[int, HistoryRow] = {}
    for c in completions:
        rows.setdefault(c.course_id, HistoryRow(c.course, enrollments.get(c.course_id))).completions.append(c)
    for cid, e in enrollments.items():
        rows.setdefault(cid, HistoryRow(e.course, e))
    return sorted(rows.values(), key=lambda r: (r.enrollment is not None and r.enrollment.status == "completed",
                                                r.course.title))


def training_summary(employee_id: int, start: dt.datetime | None = None, end: dt.datetime | None = None) -> dict:
    """For performance: assigned / completed counts, completion rate, average completion score and learning
    time, over completions in [start, end) when given."""
    now = utcnow()
    e = db.session.execute(select(func.count(Enrollment.id),
                                  func.sum(case((Enrollment.status == "completed", 1), else_=0)),
                                  func.sum(case((and_(Enrollment.status != "completed", Enrollment.due_at < now),
                                                 1), else_=0)))
                           .where(Enrollment.employee_id == employee_id)).one()
    cstmt = select(func.count(Completion.id), func.avg(Completion.score), func.sum(Completion.learning_seconds)
                   ).where(Completion.employee_id == employee_id)
    if start is not None:
        cstmt = cstmt.where(Completion.completed_at >= start)
    if end is not None:
        cstmt = cstmt.where(Completion.completed_at < end)
    c = db.session.execute(cstmt).one()
    assigned, completed, overdue = e[0] or 0, int(e[1] or 0), int(e[2] or 0)
    return {"assigned": assigned, "completed": completed, "overdue": overdue,
            "completion_rate": (completed / assigned) if assigned else None,
            "completions_in_period": c[0] or 0,
            "average_score": round(float(c[1]), 1) if c[1] is not None else None,
            "learning_seconds": int(c[2] or 0)}


# ---------------------------------------------------------------- policy compliance (HR)

@dataclass
class PolicyGap:
    course: Course
    version: CourseVersion
    enrollment: Enrollment
    employee: Employee


def policy_courses() -> list[tuple[Course, CourseVersion]]:
    rows = db.session.execute(select(Course, CourseVersion).join(
        CourseVersion, CourseVersion.id == Course.current_version_id).where(CourseVersion.policy_name != "")
        .order_by(Course.title)).all()
    return [(c, v) for c, v in rows if v.has_policy]


def _signed(courses: list[tuple[Course, CourseVersion]]):
    """EXISTS: the enrolled employee signed the current policy text of the enrollment's course (one
    correlated condition for every policy course: the current hash per course is a CASE)."""
    hashes = {c.id: policy_hash(v) for c, v in courses}
    return select(Acknowledgement.id).where(
        Acknowledgement.employee_id == Enrollment.employee_id,
        Acknowledgement.course_id == Enrollment.course_id,
        Acknowledgement.policy_hash == case(hashes, value=Enrollment.course_id, else_="")).exists()


def _policy_courses(course_id: int | None) -> list[tuple[Course, CourseVersion]]:
    return [(c, v) for c, v in policy_courses() if not course_id or c.id == course_id]


def compliance_summary(user, courses: list[tuple[Course, CourseVersion]]
                       ) -> list[tuple[Course, CourseVersion, int, int]]:
    """Per policy course: (course, version, people obliged, people who signed the current text), one
    aggregate query whatever the number of people and courses."""
    if not courses:
        return []
    stmt = (_base(user, select(Enrollment.course_id, func.count(Enrollment.id),
                               func.sum(case((_signed(courses), 1), else_=0))), COMPLIANCE_PERM)
            .where(Enrollment.course_id.in_([c.id for c, _ in courses])).group_by(Enrollment.course_id))
    counts = {cid: (n or 0, int(ok or 0)) for cid, n, ok in db.session.execute(stmt)}
    return [(c, v, *counts.get(c.id, (0, 0))) for c, v in courses]


def gaps_stmt(user, courses: list[tuple[Course, CourseVersion]], q: str = "", columns: tuple = ()):
    """The people who have not acknowledged the current policy version of ``courses`` (``q``: name,
    employee number or pinyin), ordered by policy then employee number. Selects (Enrollment, Employee)
    with the department, or ``columns`` when given (exports)."""
    from portal.org.services import search_condition
    stmt = _base(user, select(*columns).select_from(Enrollment) if columns else select(Enrollment, Employee),
                 COMPLIANCE_PERM)
    stmt = (stmt.join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.course_id.in_([c.id for c, _ in courses]), ~_signed(courses)))
    if q.strip():
        stmt = stmt.where(search_condition(q))
    if not columns:
        stmt = stmt.options(joinedload(Employee.department))
    return stmt.order_by(Course.title, Course.id, Employee.emp_no, Enrollment.id)


def compliance(user, course_id: int | None = None, q: str = "", page: int = 1, per_page: int = 50):
    """The summary per policy course and one page of the people who have not acknowledged the current
    policy version (a fixed number of queries whatever the number of people or policy courses)."""
    from portal.core.ui import Page, paginate
    courses = _policy_courses(course_id)
    summary = compliance_summary(user, courses)
    if not courses:
        return summary, Page([], 1, per_page, 0)
    by_id = {c.id: (c, v) for c, v in courses}
    result = paginate(gaps_stmt(user, courses, q), page, per_page, scalars=False)
    result.items = [PolicyGap(*by_id[e.course_id], e, emp) for e, emp in result.items]
    return summary, result


# ---------------------------------------------------------------- XLSX

def _xlsx(sheets: list[tuple[str, list[str], Iterable[Sequence[Any]]]]) -> bytes:
    """Write-only workbook: rows may be a generator (streamed from the database), memory stays flat."""
    from openpyxl import Workbook
    wb = Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.freeze_panes = "A2"
        ws.append(header)
        for r in rows:
            ws.append([_xl(v) for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xl(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        from portal.core.ui import local
        return local(v).replace(tzinfo=None)
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v  # no formula injection from names typed by users
    return v


def _stat_row(s: Stats) -> list[Any]:
    return [s.assigned, s.started, s.completed, s.passed, s.avg_score, s.overdue, s.completion_rate]


STAT_HEADER = ["assigned", "started", "completed", "passed", "average score", "overdue", "completion %"]


def _enrollment_rows(enrollments: list[Enrollment], now: dt.datetime) -> list[list[Any]]:
    return [[e.employee.emp_no, e.employee.name, e.employee.department.name if e.employee.department else "",
             e.course.title, e.version.number, e.status, e.assigned_at, e.due_at, e.started_at, e.completed_at,
             e.best_score, "yes" if e.passed else "no", round(e.learning_seconds / 60, 1),
             "yes" if e.overdue(now) else "no"] for e in enrollments]


ENROLLMENT_HEADER = ["emp no", "name", "department", "course", "version", "status", "assigned at", "due at",
                     "started at", "completed at", "best score", "passed", "learning minutes", "overdue"]


def report_xlsx(user, course: Course | None = None) -> tuple[bytes, int]:
    now = utcnow()
    if course is not None:
        summary = [[course.title, *_stat_row(course_summary(user, course, now))]]
    else:
        summary = [[c.title, *_stat_row(s)] for c, s in course_stats(user, now)]
    depts = [[d.name if d else "—", *_stat_row(s)]
             for d, s in department_stats(user, course.id if course else None, now)]
    enrollments = list(db.session.scalars(enrollments_stmt(user, course.id if course else None, now=now)).unique())
    data = _xlsx([("courses", ["course", *STAT_HEADER], summary),
                  ("departments", ["department", *STAT_HEADER], depts),
                  ("people", ENROLLMENT_HEADER, _enrollment_rows(enrollments, now))])
    return data, len(enrollments)


def compliance_xlsx(user, course_id: int | None = None) -> tuple[bytes, int]:
    """Every person who has not acknowledged (not one page): plain columns streamed in batches, no ORM
    objects; 3 queries whatever the number of rows."""
    courses = _policy_courses(course_id)
    summary = compliance_summary(user, courses)
    count = [0]

    def gap_rows():
        if not courses:
            return
        stmt = gaps_stmt(user, courses, columns=(CourseVersion.policy_name, CourseVersion.policy_version,
                                                 Employee.emp_no, Employee.name, Department.name,
                                                 Enrollment.status, Enrollment.due_at))
        stmt = (stmt.join(CourseVersion, CourseVersion.id == Course.current_version_id)
                .outerjoin(Department, Department.id == Employee.department_id))
        for row in db.session.execute(stmt.execution_options(yield_per=1000)):
            count[0] += 1
            yield [*row[:4], row[4] or "", *row[5:]]

    data = _xlsx([
        ("policies", ["course", "policy", "policy version", "obliged", "acknowledged"],
         [[c.title, v.policy_name, v.policy_version, n, ok] for c, v, n, ok in summary]),
        ("not acknowledged", ["policy", "policy version", "emp no", "name", "department", "status", "due at"],
         gap_rows())])
    return data, count[0]
