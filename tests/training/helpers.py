"""Builders for training tests: a published course with lessons, a question bank, exam rules, a policy."""
from __future__ import annotations

import datetime as dt
import io
import re

from werkzeug.datastructures import FileStorage

from portal.core.db import db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
POLICY_TEXT = "第一条 员工应按时完成月度目标。\n第二条 连续两个月完成率低于70%的，绩效系数减半。"


def fs(data: bytes, name: str) -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=name)


def build_course(app, author, *, lessons: int = 2, bank: dict[str, int] | None = None,
                 rules: dict[str, int] | None = None, policy: bool = False, time_limit_minutes: int = 0,
                 max_attempts: int = 0, cooloff_hours: int = 0, show_answers: str = "when_done",
                 pass_mark: int = 60, publish: bool = True, title: str = "绩效管理制度培训") -> int:
    """Returns the course id. Bank questions are single choice with option 0 ("正确") correct."""
    from portal.training import services
    bank = {"制度": 3} if bank is None else bank
    rules = {"制度": 2} if rules is None else rules
    with app.app_context():
        course = services.create_course(author, title, "课程说明")
        version = services.draft_of(course)
        services.update_settings(version, author, title=title, description="课程说明",
                                 policy_name="绩效管理制度" if policy else "", policy_version="2024版" if policy else "",
                                 policy_text=POLICY_TEXT if policy else "", pass_mark=pass_mark,
                                 time_limit_minutes=time_limit_minutes, max_attempts=max_attempts,
                                 cooloff_hours=cooloff_hours, show_answers=show_answers)
        for i in range(lessons):
            services.add_lesson(version, author, f"第{i + 1}课", f"# 第{i + 1}课\n\n内容 **重点**")
        for cat, n in bank.items():
            for j in range(n):
                services.save_question(course, author, "single", cat, f"{cat}问题{j + 1}",
                                       ["正确", "错误一", "错误二", "错误三"], [0])
        services.set_rules(version, author, rules)
        if publish:
            services.publish(version, author)
        db.session.commit()
        return course.id


def enroll(app, course_id: int, employee, due: dt.date | None = None) -> int:
    from portal.training import assign
    from portal.training.models import Course
    with app.app_context():
        course = db.session.get(Course, course_id)
        a, _n = assign.create_assignment(course, None, "employee", employee.id,
                                         due or dt.date.today() + dt.timedelta(days=30))
        db.session.commit()
        from portal.training.models import Enrollment
        from sqlalchemy import select
        return db.session.scalar(select(Enrollment.id).where(Enrollment.course_id == course_id,
                                                             Enrollment.employee_id == employee.id))


def token(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert m, f"no csrf token on {path}"
    return m.group(1)


def finish_lessons(client, enrollment_id: int) -> None:
    from portal.training.models import Enrollment
    e = db.session.get(Enrollment, enrollment_id)
    lesson_ids = [l.id for l in e.version.lessons]
    db.session.rollback()
    t = token(client, f"/training/learn/{enrollment_id}")
    for lid in lesson_ids:
        assert client.get(f"/training/learn/{enrollment_id}/lessons/{lid}").status_code == 200
        r = client.post(f"/training/learn/{enrollment_id}/lessons/{lid}/done", data={"csrf_token": t})
        assert r.status_code == 303


def start_exam(client, enrollment_id: int):
    t = token(client, f"/training/learn/{enrollment_id}")
    return client.post(f"/training/learn/{enrollment_id}/exam", data={"csrf_token": t})


def fresh(model, ident):
    db.session.expire_all()
    return db.session.get(model, ident)


def en_user(make, roles=("employee",), **kw):
    """A user whose portal language is English (assertions read English text, whatever the catalogs say)."""
    u = make.user(roles=roles, **kw)
    u.locale = "en"
    db.session.commit()
    return u
