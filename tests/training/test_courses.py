"""Courses: draft -> published, versions (completions keep theirs), lessons in sanitised Markdown,
attachments checked by core/uploads and served as downloads, the question bank's XLSX import."""
from __future__ import annotations

import io
import re

from openpyxl import Workbook
from sqlalchemy import func, select

from portal.core import uploads
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.training import services
from portal.training.models import Completion, Course, CourseVersion, Enrollment, Lesson, Question
from tests.conftest import login
from tests.training.helpers import en_user, PDF, PNG, build_course, enroll, finish_lessons, fresh, start_exam, token


def test_markdown_is_sanitised_on_output():
    html = str(services.render_markdown(
        "# 标题\n\n**粗体** [链接](https://example.com) [坏](javascript:alert(1))\n\n"
        "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n![图](data:image/png;base64,AAAA)\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n"))
    assert "<h1>标题</h1>" in html and "<strong>粗体</strong>" in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html
    assert "<table>" in html
    tags = re.findall(r"<[a-zA-Z][^>]*>", html)  # real tags only: escaped text is harmless
    assert tags and not [t for t in tags if re.search(r"script|javascript|onerror|data:", t, re.I)]
    assert "&lt;script&gt;" in html  # raw HTML in the source is shown as text, not rendered


def test_course_editor_draft_publish_and_new_version(app, make):
    trainer = en_user(make, roles=("trainer",))
    client = app.test_client()
    login(client, trainer)
    t = token(client, "/training/studio/new")
    assert client.post("/training/studio/new", data={"csrf_token": t, "title": ""}).status_code == 422
    r = client.post("/training/studio/new", data={"csrf_token": t, "title": "信息安全", "description": "说明"})
    assert r.status_code == 303
    cid = db.session.scalar(select(Course.id))
    # publishing without lessons is refused
    r = client.post(f"/training/studio/{cid}/publish", data={"csrf_token": t})
    assert "Add at least one lesson" in client.get(r.headers["Location"]).get_data(as_text=True)
    r = client.post(f"/training/studio/{cid}/lessons/new", data={"csrf_token": t, "title": "第一课",
                                                                 "body": "<script>x</script>**锁屏**"})
    assert r.status_code == 303
    lesson_id = db.session.scalar(select(Lesson.id))
    page = client.get(f"/training/studio/lessons/{lesson_id}").get_data(as_text=True)
    assert "<strong>锁屏</strong>" in page and "<script>x</script>" not in page
    assert client.post(f"/training/studio/{cid}/publish", data={"csrf_token": t}).status_code == 303
    v1 = db.session.scalar(select(CourseVersion).where(CourseVersion.course_id == cid))
    assert fresh(CourseVersion, v1.id).status == "published"
    # a published version cannot be edited in place
    assert client.post(f"/training/studio/lessons/{lesson_id}",
                       data={"csrf_token": t, "title": "改", "body": "改"}).status_code == 409
    assert client.post(f"/training/studio/{cid}/settings", data={"csrf_token": t, "title": "x"}).status_code == 409
    # editing makes version 2, a copy
    assert client.post(f"/training/studio/{cid}/versions", data={"csrf_token": t}).status_code == 303
    v2 = db.session.scalar(select(CourseVersion).where(CourseVersion.course_id == cid, CourseVersion.number == 2))
    assert v2.status == "draft" and [l.title for l in v2.lessons] == ["第一课"]
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "training.version_created")) == 1


def test_completions_keep_the_version_they_were_made_on(app, make):
    trainer = en_user(make, roles=("trainer",))
    done, started, waiting = en_user(make), en_user(make), en_user(make)
    cid = build_course(app, trainer, lessons=1, bank={}, rules={})
    e_done = enroll(app, cid, done.employee)
    e_started = enroll(app, cid, started.employee)
    e_waiting = enroll(app, cid, waiting.employee)
    c = app.test_client()
    login(c, done)
    finish_lessons(c, e_done)
    v1_id = fresh(Enrollment, e_done).version_id
    completion = db.session.scalar(select(Completion))
    completion_id = completion.id
    assert completion.version_id == v1_id and fresh(Enrollment, e_done).status == "completed"
    c2 = app.test_client()
    login(c2, started)
    lesson_id = fresh(CourseVersion, v1_id).lessons[0].id
    assert c2.get(f"/training/learn/{e_started}/lessons/{lesson_id}").status_code == 200

    with app.app_context():
        course = db.session.get(Course, cid)
        v2 = services.new_version(course, trainer)
        services.update_lesson(v2.lessons[0], trainer, "第1课（修订）", "新的内容")
        services.publish(v2, trainer)
        db.session.commit()
        v2_id = v2.id
    completion = fresh(Completion, completion_id)
    assert completion.version_id == v1_id  # pinned
    v1 = fresh(CourseVersion, v1_id)
    assert v1.status == "retired" and v1.lessons[0].title == "第1课" and "重点" in v1.lessons[0].body_md
    assert fresh(Enrollment, e_done).version_id == v1_id and fresh(Enrollment, e_done).status == "completed"
    assert fresh(Enrollment, e_started).version_id == v1_id  # finishes what was started
    assert fresh(Enrollment, e_waiting).version_id == v2_id  # not started: moves to the new version
    # the history page shows the version of each completion
    page = c.get(f"/training/people/{done.employee_id}").get_data(as_text=True)
    assert re.search(r'data-label="Version">\s*1\s*<', page)


def test_attachments_checked_by_content_and_served_as_downloads(app, make):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, lessons=1, bank={}, rules={}, publish=False)
    lesson_id = db.session.scalar(select(Lesson.id))
    client = app.test_client()
    login(client, trainer)
    t = token(client, f"/training/studio/lessons/{lesson_id}")
    url = f"/training/studio/lessons/{lesson_id}/files"

    def upload(data, name):
        return client.post(url, data={"csrf_token": t, "file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    r = upload(PNG, "slides.pdf")  # content does not match the extension
    assert r.status_code == 422 and "does not match its extension" in r.get_data(as_text=True)
    r = upload(PDF, "../../etc/passwd.pdf")  # path traversal in the name
    assert r.status_code == 422 and "file name is not acceptable" in r.get_data(as_text=True)
    r = upload(b"MZ\x90\x00 binary", "setup.exe")
    assert r.status_code == 422 and "not accepted here" in r.get_data(as_text=True)
    app.config["TRAINING_MAX_ATTACHMENT_BYTES"] = 1000
    try:
        r = upload(PDF + b"0" * 5000, "big.pdf")  # oversize
        assert r.status_code == 422 and "larger than" in r.get_data(as_text=True)
    finally:
        app.config["TRAINING_MAX_ATTACHMENT_BYTES"] = 20 * 1024 * 1024
    assert db.session.scalar(select(func.count()).select_from(uploads.StoredFile)) == 0
    assert upload(PDF, "考核制度.pdf").status_code == 303
    stored = db.session.scalar(select(uploads.StoredFile))
    with app.app_context():
        path = uploads.absolute_path(stored)
    assert path.read_bytes() == PDF and path.name != "考核制度.pdf"
    from pathlib import Path
    assert Path(app.static_folder).resolve() not in path.parents

    with app.app_context():
        services.publish(services.draft_of(db.session.get(Course, cid)), trainer)
        db.session.commit()
    eid = enroll(app, cid, learner.employee)
    lc = app.test_client()
    login(lc, learner)
    att_id = fresh(Lesson, lesson_id).attachments[0].id
    page = lc.get(f"/training/learn/{eid}/lessons/{lesson_id}").get_data(as_text=True)
    assert f"/training/learn/{eid}/files/{att_id}" in page
    r = lc.get(f"/training/learn/{eid}/files/{att_id}")
    assert r.status_code == 200 and r.data == PDF
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # someone without the enrollment cannot fetch it
    other = en_user(make)
    oc = app.test_client()
    login(oc, other)
    assert oc.get(f"/training/learn/{eid}/files/{att_id}").status_code == 404
    assert oc.get(f"/training/studio/files/{att_id}").status_code == 403


def _xlsx(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


HEADER = ["分类", "题型", "题目", "选项A", "选项B", "选项C", "答案", "精确匹配", "解析"]


def test_question_import_from_xlsx_is_all_or_nothing(app, make):
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer, lessons=1, bank={}, rules={}, publish=False)
    client = app.test_client()
    login(client, trainer)
    url = f"/training/studio/{cid}/questions/upload"
    t = token(client, url)

    def send(data, name="bank.xlsx"):
        return client.post(url, data={"csrf_token": t, "file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")

    bad = _xlsx([HEADER,
                 ["制度", "单选", "迟到几次算旷工？", "1", "3", "5", "B", "", ""],
                 ["制度", "单选", "坏答案", "1", "3", "", "D", "", ""],
                 ["安全", "问答", "未知题型", "", "", "", "x", "", ""]])
    r = send(bad)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert 'id="import-problems"' in html and ">3<" in html and ">4<" in html
    assert db.session.scalar(select(func.count()).select_from(Question)) == 0
    assert send(PDF, "bank.xlsx").status_code == 422  # not a workbook
    good = _xlsx([HEADER,
                  ["制度", "单选", "迟到几次算旷工？", "1", "3", "5", "B", "", ""],
                  ["制度", "多选", "哪些是保密信息？", "客户名单", "报价", "年报", "A,B", "", "年报是公开的"],
                  ["安全", "判断", "离开工位要锁屏。", "", "", "", "对", "", ""],
                  ["安全", "填空", "热线分机号", "", "", "", "8110|八一一零", "是", ""]])
    r = send(good)
    assert r.status_code == 303
    qs = {q.kind: q for q in db.session.scalars(select(Question))}
    assert qs["single"].options == ["1", "3", "5"] and qs["single"].correct == [1]
    assert qs["multiple"].correct == [0, 1] and qs["multiple"].explanation == "年报是公开的"
    assert qs["truefalse"].correct == [True]
    assert qs["fill"].options == ["8110", "八一一零"] and qs["fill"].exact
    # the template downloads and parses with no problem rows
    r = client.get("/training/studio/question-template.xlsx")
    assert r.status_code == 200
    questions, problems = services.parse_question_rows(r.data)
    assert len(questions) == 4 and problems == []


def test_question_edits_do_not_change_past_attempts(app, make):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, lessons=1, bank={"制度": 1}, rules={"制度": 1})
    eid = enroll(app, cid, learner.employee)
    lc = app.test_client()
    login(lc, learner)
    finish_lessons(lc, eid)
    aid = int(re.search(r"/attempts/(\d+)", start_exam(lc, eid).headers["Location"]).group(1))
    with app.app_context():
        q = db.session.scalar(select(Question))
        services.save_question(db.session.get(Course, cid), trainer, "single", "制度", "改过的题目", ["新A", "新B"], [1],
                               question=q)
        db.session.commit()
    from portal.training.models import Attempt
    item = fresh(Attempt, aid).items[0]
    assert item.prompt == "制度问题1" and "正确" in item.options
