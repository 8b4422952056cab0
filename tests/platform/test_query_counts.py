"""Issue 8: each measured page runs the same number of SQL statements with 10 and with 1,000 employees.

One company shape, built in bulk (core INSERTs, one transaction per growth step): groups of ten employees,
each group a department (a child of the R&D centre the measured manager heads) with its head as the
manager of the other nine; attendance day rows and punches for the last days and today; an OKR cycle with
a company objective, a team objective per department and an individual objective (two key results, a
check-in each) per employee; published courses everyone is enrolled in, with lesson progress and two
finished exam attempts each (the catalogue grows with the company: 2 courses at 10 employees, 6 at
1,000); one offboarding in progress per department (checklist items, sign-off steps); three messages per
user, and one per employee for HR.

The first test of a process builds 10 employees, measures every page (after one warm-up request), grows
the company to 1,000 employees with the same data per employee and measures every page again; each
page's test then asserts its two counts are equal. The lists that grow with the company (team today, HR
attendance list, OKR tree, offboarding board, HR inbox, a learner's course list) show more rows at 1,000,
so a query per row shows up as a difference; the other pages (clock-in, home, course page, an employee's
inbox) show the same rows at both sizes and catch queries per company row (e.g. a loop over all
employees or enrollments)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from portal.core.db import db
from tests.conftest import count_queries, csrf_token, login, password_hash

GROUP = 10  # employees per department
DAYS_BACK = 3  # attendance history (days before today)




def _ids(model, rows: list[dict]) -> list[int]:
    """Bulk INSERT returning the new ids in the order of ``rows`` (sequences stay right on PostgreSQL)."""
    if not rows:
        return []
    return list(db.session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def _bulk(model, rows: list[dict]) -> None:
    """Core executemany (one statement per batch): every row gets the same keys."""
    if rows:
        keys = {k for r in rows for k in r}
        db.session.execute(model.__table__.insert(), [{k: r.get(k) for k in keys} for r in rows])


@dataclass
class Company:
    app: object
    n: int = 0
    roles: dict = field(default_factory=dict)
    emp_ids: list = field(default_factory=list)
    user_ids: list = field(default_factory=list)  # parallel to emp_ids
    dept_ids: list = field(default_factory=list)
    head_ids: list = field(default_factory=list)  # employee id of each department's head
    members: list = field(default_factory=list)  # (employee id, user id) of the grown groups

    # ---------------------------------------------------------------- fixed part (size 0)

    def setup(self) -> "Company":
        from portal.core.models import Role
        from portal.org.models import Department
        from portal.performance.models import Cycle, Objective
        with self.app.app_context():
            self.roles = {r.code: r.id for r in db.session.scalars(select(Role))}
            self.today = _today()
            self.hr_emp, self.hr_user = self._people([{"name": "人事专员"}], ("employee", "hr"))[0]
            self.boss_emp, self.boss_user = self._people([{"name": "研发总监"}], ("employee", "manager"))[0]
            centre = Department(name="研发中心", code="RD", head_id=self.boss_emp)
            db.session.add(centre)
            db.session.flush()
            self.centre_id = centre.id
            from portal.org.models import Employee
            db.session.get(Employee, self.boss_emp).department_id = centre.id
            db.session.get(Employee, self.hr_emp).department_id = centre.id
            start = self.today.replace(day=1) - dt.timedelta(days=40)
            cycle = Cycle(name="2026 Q-test", kind="quarter", start_date=start,
                          end_date=start + dt.timedelta(days=120), status="open")
            db.session.add(cycle)
            db.session.flush()
            self.cycle_id = cycle.id
            company = Objective(cycle_id=cycle.id, level="company", title="公司目标：营收增长", status="active",
                                link_weight=Decimal(1))
            db.session.add(company)
            db.session.flush()
            self.company_objective = company.id
            self.courses = []  # (course id, version id, [lesson ids])
            for _c in range(2):
                self._add_course()
            db.session.commit()
        return self

    def _add_course(self) -> None:
        from portal.training.models import Course, CourseVersion, ExamRule, Lesson, Question
        c = len(self.courses)
        course = Course(code=f"QC{c}", title=f"合规课程{c}")
        db.session.add(course)
        db.session.flush()
        version = CourseVersion(course_id=course.id, number=1, status="published", title=course.title,
                                description="课程说明", policy_name=f"制度{c}", policy_version="1",
                                policy_text="制度全文", pass_mark=60, max_attempts=3,
                                published_at=dt.datetime.now(dt.timezone.utc))
        db.session.add(version)
        db.session.flush()
        course.current_version_id = version.id
        lessons = [Lesson(version_id=version.id, position=i, title=f"第{i + 1}课", body_md="正文")
                   for i in range(3)]
        db.session.add_all(lessons)
        db.session.add(ExamRule(version_id=version.id, category="", count=1))
        db.session.add_all([Question(course_id=course.id, kind="truefalse", prompt=f"判断题{q}",
                                     options=[], correct=[True]) for q in range(2)])
        db.session.flush()
        self.courses.append((course.id, version.id, [l.id for l in lessons]))

    def _people(self, specs: list[dict], roles: tuple[str, ...]) -> list[tuple[int, int]]:
        from portal.core.models import User, UserRole
        from portal.org.models import Employee
        base = len(self.emp_ids) + 1
        emps = []
        for i, s in enumerate(specs):
            k = base + i
            emps.append({"emp_no": f"Q{k:06d}", "name": s["name"], "name_pinyin": "", "name_initials": "",
                         "department_id": s.get("department_id"), "manager_id": s.get("manager_id"),
                         "mobile": f"139{k:08d}", "email": f"q{k}@example.com",
                         "hire_date": dt.date(2024, 1, 1), "status": s.get("status", "active")})
        emp_ids = _ids(Employee, emps)
        pw = password_hash()
        user_ids = _ids(User, [{"username": f"q{base + i}", "password_hash": pw, "employee_id": e}
                               for i, e in enumerate(emp_ids)])
        _bulk(UserRole, [{"user_id": u, "role_id": self.roles[r]} for u in user_ids for r in roles])
        self.emp_ids += emp_ids
        self.user_ids += user_ids
        return list(zip(emp_ids, user_ids))

    # ---------------------------------------------------------------- growth

    def grow(self, to: int) -> "Company":
        """Add groups of ten employees (department, head, nine reports) with their data up to ``to``."""
        from portal.org.models import Department
        with self.app.app_context():
            while self.n < to:
                groups = min((to - self.n) // GROUP, 50)
                first = len(self.dept_ids)
                dept_ids = _ids(Department, [{"name": f"研发{first + g:03d}组", "code": f"RD{first + g:03d}",
                                              "parent_id": self.centre_id} for g in range(groups)])
                heads = self._people([{"name": f"组长{first + g:03d}", "department_id": d,
                                       "manager_id": self.boss_emp} for g, d in enumerate(dept_ids)],
                                     ("employee", "manager"))
                db.session.execute(update(Department), [{"id": d, "head_id": h} for d, (h, _u) in zip(dept_ids, heads)])
                staff = self._people([{"name": f"员工{first + g:03d}{j}", "department_id": d,
                                       "manager_id": heads[g][0],
                                       "status": "notice" if j == GROUP - 1 else "active"}
                                      for g, d in enumerate(dept_ids) for j in range(1, GROUP)], ("employee",))
                self.dept_ids += dept_ids
                self.head_ids += [h for h, _u in heads]
                new = heads + staff
                firsts = {staff[g * (GROUP - 1)][0] for g in range(groups)}  # not clocked in today
                self._attendance(new, firsts)
                self._okr(dept_ids, heads, staff)
                # the catalogue grows with the company (2 courses at 10 employees, 6 at 1,000) and everyone
                # is enrolled in every course, so a learner's list is longer in the big company
                had = len(self.courses)
                while len(self.courses) < 2 + (self.n + groups * GROUP) // 250:
                    self._add_course()
                self._training(self.members, self.courses[had:])
                self.members += new
                self._training(new, self.courses)
                self._offboarding([p for i, p in enumerate(staff) if i % (GROUP - 1) == GROUP - 2])
                self._messages(new)
                self.n += groups * GROUP
            db.session.commit()
        return self

    def _attendance(self, people, not_in_today: set[int]):
        from portal.attendance.models import AttendanceDay, Punch
        from tests.attendance.helpers import local
        days, punches = [], []
        for idx, (emp, _user) in enumerate(people):
            for back in range(DAYS_BACK, -1, -1):
                day = self.today - dt.timedelta(days=back)
                if back == 0 and emp in not_in_today:
                    continue
                late = 20 if (idx + back) % 3 == 0 else 0
                first_in = local(day, 9, late)
                last_out = None if back == 0 else local(day, 18, 5)
                days.append({"employee_id": emp, "work_date": day, "status": "late" if late else "normal",
                             "scheduled_start": local(day, 9), "scheduled_end": local(day, 18),
                             "first_in": first_in, "last_out": last_out,
                             "worked_minutes": 0 if back == 0 else 480 - late, "late_minutes": late})
                punches.append({"employee_id": emp, "at": first_in, "work_date": day, "kind": "in",
                                "method": "any"})
                if last_out:
                    punches.append({"employee_id": emp, "at": last_out, "work_date": day, "kind": "out",
                                    "method": "any"})
        _bulk(AttendanceDay, days)
        _bulk(Punch, punches)

    def _okr(self, dept_ids, heads, staff):
        from portal.performance.models import CheckIn, KeyResult, Objective
        team = _ids(Objective, [{"cycle_id": self.cycle_id, "level": "team", "title": f"团队目标{d}",
                                 "owner_id": h, "department_id": d, "parent_id": self.company_objective,
                                 "link_weight": Decimal(1), "status": "active"}
                                for d, (h, _u) in zip(dept_ids, heads)])
        by_dept = dict(zip(dept_ids, team))
        owners = [(by_dept[d], e, u) for g, d in enumerate(dept_ids)
                  for e, u in [heads[g]] + staff[g * (GROUP - 1):(g + 1) * (GROUP - 1)]]
        objs = _ids(Objective, [{"cycle_id": self.cycle_id, "level": "individual", "title": f"目标IO{e}",
                                 "owner_id": e, "parent_id": t, "link_weight": Decimal(1), "status": "active"}
                                for t, e, _u in owners])
        krs = _ids(KeyResult, [{"objective_id": o, "title": f"关键结果{o}-{k}", "kind": "number",
                                "start_value": Decimal(0), "target_value": Decimal(100),
                                "current_value": Decimal(30 + 10 * k), "weight": Decimal(1), "status": "active"}
                               for o in objs for k in range(2)])
        month = self.today.replace(day=1)
        owner_of = [(e, u) for _t, e, u in owners for _k in range(2)]
        _bulk(CheckIn, [{"key_result_id": kr, "employee_id": e, "user_id": u, "month": month,
                         "previous_value": Decimal(0), "value": Decimal(30), "progress": Decimal("0.3"),
                         "confidence": 7} for kr, (e, u) in zip(krs, owner_of)])

    def _training(self, people, courses):
        from portal.training.models import Attempt, Enrollment, LessonProgress
        now = dt.datetime.now(dt.timezone.utc)
        for course_id, version_id, lessons in courses:
            if not people:
                continue
            enr = _ids(Enrollment, [{"course_id": course_id, "employee_id": e, "version_id": version_id,
                                     "status": "in_progress", "due_at": now + dt.timedelta(days=10),
                                     "started_at": now - dt.timedelta(days=2), "best_score": 50,
                                     "learning_seconds": 600} for e, _u in people])
            _bulk(LessonProgress, [{"enrollment_id": en, "lesson_id": l, "first_opened_at": now,
                                    "last_seen_at": now, "seconds": 300, "completed_at": now}
                                   for en in enr for l in lessons[:2]])
            _bulk(Attempt, [{"enrollment_id": en, "version_id": version_id, "user_id": u, "number": n,
                             "started_at": now - dt.timedelta(hours=30 - n), "deadline_at": None,
                             "submitted_at": now - dt.timedelta(hours=29 - n), "closed_by": "submit",
                             "correct": 0, "total": 1, "score": 50 - n, "passed": False}
                            for en, (_e, u) in zip(enr, people) for n in (1, 2)])

    def _offboarding(self, leavers):
        from portal.offboarding.models import ChecklistItem, Offboarding, SignoffStep
        stages = ("notice", "handover", "signoff", "signing")
        first = len(self.dept_ids) - len(leavers)
        obs = _ids(Offboarding, [{"employee_id": e, "user_id": u, "kind": "resignation", "reason": "个人原因",
                                  "notice_days": 30, "last_day": self.today + dt.timedelta(days=10 + i % 7),
                                  "stage": stages[(first + i) % 4], "signoff_round": 1}
                                 for i, (e, u) in enumerate(leavers)])
        items, steps = [], []
        for i, ob in enumerate(obs):
            for s in range(4):
                items.append({"offboarding_id": ob, "sort": s, "title": f"交接事项{s}",
                              "responsible": ("leaver", "head", "it", "finance")[s],
                              "due_date": self.today + dt.timedelta(days=s - 2),
                              "status": "done" if s == 0 else "open"})
            for seq, role in enumerate(("successor", "head", "finance", "hr"), 1):
                steps.append({"offboarding_id": ob, "round": 1, "seq": seq, "role": role,
                              "status": "approved" if seq == 1 else "pending"})
        _bulk(ChecklistItem, items)
        _bulk(SignoffStep, steps)

    def _messages(self, people):
        from portal.core.notify import Notification
        now = dt.datetime.now(dt.timezone.utc)
        rows = [{"user_id": u, "channel": "inapp", "template_key": "generic", "subject": f"提醒{k}",
                 "body": "内容", "status": "sent", "sent_at": now, "created_at": now - dt.timedelta(minutes=k),
                 "read_at": now if k == 0 else None} for _e, u in people for k in range(3)]
        rows += [{"user_id": self.hr_user, "channel": "inapp", "template_key": "generic",
                  "subject": f"新员工入职：{e}", "body": "内容", "status": "sent", "sent_at": now,
                  "created_at": now} for e, _u in people]
        _bulk(Notification, rows)

    # ---------------------------------------------------------------- lookups for the pages

    def enrollment_of(self, emp_id: int) -> int:
        from portal.training.models import Enrollment
        with self.app.app_context():
            return db.session.scalar(select(Enrollment.id).where(Enrollment.employee_id == emp_id)
                                     .order_by(Enrollment.id).limit(1))

    def user(self, user_id: int):
        from portal.core.models import User
        with self.app.app_context():
            u = db.session.get(User, user_id)
            db.session.expunge(u)
            return u


def _today() -> dt.date:
    from portal.attendance import services
    return services.today()


# ---------------------------------------------------------------- the pages


@dataclass
class Measured:
    count: int
    html: str


def _get(app, co: Company, user_id: int, path: str) -> Measured:
    c = app.test_client()
    login(c, co.user(user_id))
    warm = c.get(path)
    assert warm.status_code == 200, (path, warm.status_code)
    with count_queries() as seen:
        resp = c.get(path)
    assert resp.status_code == 200, (path, resp.status_code)
    return Measured(len(seen), resp.get_data(as_text=True))


def _plain_employee(co: Company, group: int) -> tuple[int, int]:
    """The first plain employee of department ``group`` (not clocked in today at build time)."""
    from portal.org.models import Employee
    with co.app.app_context():
        emp = db.session.scalar(select(Employee.id).where(Employee.department_id == co.dept_ids[group],
                                                          Employee.manager_id.is_not(None),
                                                          Employee.manager_id != co.boss_emp)
                                .order_by(Employee.id).limit(1))
    return emp, co.user_ids[co.emp_ids.index(emp)]


def page_clock(app, co: Company, size: int) -> Measured:
    # a different (same-shaped) employee at each size: a second tap within a minute would count once
    emp, user_id = _plain_employee(co, 0 if size == 10 else len(co.dept_ids) // 2)
    c = app.test_client()
    login(c, co.user(user_id))
    token = csrf_token(c, "/attendance")
    warm = c.post("/attendance/clock", data={"csrf_token": token, "kind": "out"})  # default rule, settings
    assert warm.status_code == 303
    with count_queries() as seen:
        resp = c.post("/attendance/clock", data={"csrf_token": token, "kind": "in"})
    assert resp.status_code == 303, resp.status_code
    return Measured(len(seen), c.get("/attendance").get_data(as_text=True))


def page_home(app, co: Company, size: int) -> Measured:
    _emp, user_id = _plain_employee(co, 0)
    return _get(app, co, user_id, "/")


def page_team_today(app, co: Company, size: int) -> Measured:
    m = _get(app, co, co.boss_user, "/attendance/team")
    assert m.html.count('data-state="') == min(50, co.n + 1), m.html.count('data-state="')  # + HR; 50 a page
    return m


def page_hr_attendance(app, co: Company, size: int) -> Measured:
    start = co.today - dt.timedelta(days=DAYS_BACK)
    m = _get(app, co, co.hr_user,
             f"/attendance/hr?start={start}&end={co.today}&department={co.centre_id}&status=late&q=员工")
    rows = len(re.findall(r'<td data-label="[^"]*"><a href="/attendance/trend/', m.html))
    assert (rows < 50) if size == 10 else (rows == 50), rows  # a full page at 1,000
    return m


def page_hr_attendance_dates(app, co: Company, size: int) -> Measured:
    start = co.today - dt.timedelta(days=DAYS_BACK)
    m = _get(app, co, co.hr_user, f"/attendance/hr?start={start}&end={co.today}")
    rows = len(re.findall(r'<td data-label="[^"]*"><a href="/attendance/trend/', m.html))
    assert (rows < 50) if size == 10 else (rows == 50), rows
    return m


def page_okr_tree_hr(app, co: Company, size: int) -> Measured:
    m = _get(app, co, co.hr_user, f"/okr/tree?cycle={co.cycle_id}")
    # 10 employees: the whole tree; 1,000: a bounded part (the first TREE_CHILDREN team objectives, individual
    # objectives up to TREE_BUDGET in all), the rest loads on demand from /okr/tree/node/<id>
    from portal.performance.services import TREE_BUDGET, TREE_CHILDREN
    want = co.n if size == 10 else TREE_BUDGET - TREE_CHILDREN
    assert m.html.count(">目标IO") == want, m.html.count(">目标IO")
    return m


def page_okr_tree_manager(app, co: Company, size: int) -> Measured:
    head = co.head_ids[0]
    m = _get(app, co, co.user_ids[co.emp_ids.index(head)], f"/okr/tree?cycle={co.cycle_id}")
    assert m.html.count(">目标IO") == GROUP, m.html.count(">目标IO")  # own + the team's
    return m


def page_course(app, co: Company, size: int) -> Measured:
    emp, user_id = _plain_employee(co, 0)
    m = _get(app, co, user_id, f"/training/learn/{co.enrollment_of(emp)}")
    assert "第3课" in m.html and m.html.count("not passed") + m.html.count("未通过") == 2
    return m


def page_course_list(app, co: Company, size: int) -> Measured:
    emp, user_id = _plain_employee(co, 0)
    m = _get(app, co, user_id, "/training")
    assert m.html.count("data-enrollment=") == len(co.courses) == (2 if size == 10 else 6)
    return m


def page_offboarding_board(app, co: Company, size: int) -> Measured:
    m = _get(app, co, co.hr_user, "/offboarding")
    assert len(re.findall(r'class="board-row', m.html)) == co.n // GROUP, m.html.count("board-row")
    return m


def page_inbox_hr(app, co: Company, size: int) -> Measured:
    m = _get(app, co, co.hr_user, "/notifications")
    assert len(re.findall(r'/notifications/\d+/read', m.html)) == (10 if size == 10 else 20)
    return m


def page_inbox_employee(app, co: Company, size: int) -> Measured:
    _emp, user_id = _plain_employee(co, 0)
    m = _get(app, co, user_id, "/notifications")
    assert m.html.count("提醒") == 3
    return m


PAGES = {
    "clock_in": page_clock,
    "home": page_home,
    "team_today": page_team_today,
    "hr_attendance": page_hr_attendance,
    "hr_attendance_dates": page_hr_attendance_dates,
    "okr_tree_hr": page_okr_tree_hr,
    "okr_tree_manager": page_okr_tree_manager,
    "course_page": page_course,
    "course_list": page_course_list,
    "offboarding_board": page_offboarding_board,
    "inbox_hr": page_inbox_hr,
    "inbox_employee": page_inbox_employee,
}


_RESULTS: dict[str, tuple] = {}


def _measure_all(app) -> dict[str, tuple]:
    """Build 10 employees, measure every page, grow to 1,000, measure every page again: once per test
    process (the data is emptied after each test, the counts are kept). A page that fails to render keeps
    its exception, re-raised by that page's test only."""
    if not _RESULTS:
        co = Company(app).setup().grow(10)
        small = {}
        for name, measure in PAGES.items():
            try:
                small[name] = measure(app, co, 10)
            except Exception as exc:  # noqa: BLE001 - reported by the page's own test
                small[name] = exc
        co.grow(1000)
        for name, measure in PAGES.items():
            try:
                big = small[name] if isinstance(small[name], Exception) else measure(app, co, 1000)
            except Exception as exc:  # noqa: BLE001
                big = exc
            _RESULTS[name] = (small[name], big)
    return _RESULTS


@pytest.mark.parametrize("page", list(PAGES))
def test_query_count_same_with_10_and_1000_employees(app, page):
    small, big = _measure_all(app)[page]
    for m in (small, big):
        if isinstance(m, Exception):
            raise m
    print(f"{page}: {small.count} statements at 10 employees, {big.count} at 1,000")
    assert small.count == big.count, f"{page}: {small.count} statements at 10 employees, {big.count} at 1,000"
