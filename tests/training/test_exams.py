"""Exams: random draw per category without repeats, shuffled options, grading of each question type, the
server-side deadline (DOMAIN.md: 409 after limit + 30 s, graded on answers saved in time), attempt limit
and cooling-off."""
from __future__ import annotations

import datetime as dt
import random
import re
from collections import Counter

import pytest
import time_machine
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.core.db import db
from portal.training import exams, services
from portal.training.models import Attempt, AttemptItem, CourseVersion, Course, Enrollment
from tests.conftest import login
from tests.training.helpers import en_user, build_course, enroll, finish_lessons, fresh, start_exam, token


def test_draw_respects_per_category_counts_and_never_repeats(app, make):
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer, bank={"制度": 5, "安全": 4, "流程": 6}, rules={"制度": 2, "安全": 4, "流程": 3})
    with app.app_context():
        version = db.session.get(Course, cid).current_version
        seen_sets = set()
        for seed in range(200):
            drawn = exams.draw(version, random.Random(seed))
            ids = [q.id for q in drawn]
            assert len(ids) == len(set(ids)) == 9  # never the same question twice
            assert Counter(q.category for q in drawn) == {"制度": 2, "安全": 4, "流程": 3}
            seen_sets.add(frozenset(ids))
        assert len(seen_sets) > 50  # it is random, not the first N
        # retired questions are never drawn; a bank too small is refused
        q = db.session.scalar(select(services.Question).where(services.Question.category == "安全"))
        services.set_question_active(q, trainer, False)
        with pytest.raises(services.TrainingError) as err:
            exams.draw(version, random.Random(1))
        assert err.value.code == "bank_too_small"
        db.session.rollback()


def test_attempt_items_are_unique_per_question_in_the_database(app, make):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, lessons=1)
    eid = enroll(app, cid, learner.employee)
    with app.app_context():
        e = db.session.get(Enrollment, eid)
        a = exams.start_attempt(e, learner, rng=random.Random(3))
        db.session.commit()
        dup = AttemptItem(attempt_id=a.id, question_id=a.items[0].question_id, position=99, kind="single",
                          prompt="x", options=[], option_map=[], correct=[])
        db.session.add(dup)
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_publish_refuses_rules_the_bank_cannot_fill(app, make):
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer, bank={"制度": 2}, rules={"制度": 3}, publish=False)
    with app.app_context():
        version = services.draft_of(db.session.get(Course, cid))
        with pytest.raises(services.TrainingError) as err:
            services.publish(version, trainer)
        assert err.value.code == "bank_too_small" and "制度 (2/3)" in err.value.params["cats"]
        db.session.rollback()


def test_options_are_shuffled_and_the_key_follows_them(app, make):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, bank={"制度": 6}, rules={"制度": 6})
    eid = enroll(app, cid, learner.employee)
    with app.app_context():
        e = db.session.get(Enrollment, eid)
        a = exams.start_attempt(e, learner, rng=random.Random(7))
        orders = set()
        for item in a.items:
            assert sorted(item.options) == sorted(["正确", "错误一", "错误二", "错误三"])
            assert [item.options[i] for i in item.correct] == ["正确"]  # the key moved with the option
            orders.add(tuple(item.options))
        assert len(orders) > 1
        db.session.rollback()


def _item(kind, options, correct, answer, exact=False):
    return AttemptItem(kind=kind, options=options, correct=correct, answer=answer, exact=exact, prompt="q",
                       position=1, question_id=1, option_map=[])


def test_grading_of_each_question_type():
    # single choice
    assert exams.grade_item(_item("single", ["a", "b", "c"], [2], [2]))
    assert not exams.grade_item(_item("single", ["a", "b", "c"], [2], [1]))
    assert not exams.grade_item(_item("single", ["a", "b", "c"], [2], None))
    # multiple choice: all and only the right options
    assert exams.grade_item(_item("multiple", ["a", "b", "c", "d"], [0, 3], [3, 0]))
    assert not exams.grade_item(_item("multiple", ["a", "b", "c", "d"], [0, 3], [0]))
    assert not exams.grade_item(_item("multiple", ["a", "b", "c", "d"], [0, 3], [0, 1, 3]))
    # true / false
    assert exams.grade_item(_item("truefalse", ["true", "false"], [1], [1]))
    assert not exams.grade_item(_item("truefalse", ["true", "false"], [1], [0]))
    # fill-in, normalised: width, case, spaces, trailing punctuation
    accepted = ["ISO 27001", "信息安全管理体系"]
    assert exams.grade_item(_item("fill", [], accepted, "ｉｓｏ  27001。"))
    assert exams.grade_item(_item("fill", [], accepted, " 信息安全管理体系 "))
    assert not exams.grade_item(_item("fill", [], accepted, "ISO 9001"))
    assert not exams.grade_item(_item("fill", [], accepted, ""))
    # fill-in, exact
    assert exams.grade_item(_item("fill", [], ["ISO 27001"], " ISO 27001", exact=True))
    assert not exams.grade_item(_item("fill", [], ["ISO 27001"], "iso 27001", exact=True))


def test_every_question_type_through_the_exam_pages(app, make):
    """The bank editor, the draw, per-question saves and grading, end to end over HTTP."""
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, bank={}, rules={}, publish=False, show_answers="after_submit")
    tc = app.test_client()
    login(tc, trainer)
    t = token(tc, f"/training/studio/{cid}/questions/new")
    new = f"/training/studio/{cid}/questions/new"
    for data in ({"kind": "single", "category": "混合", "prompt": "单选题", "options": "甲\n乙\n丙", "answer": "B"},
                 {"kind": "multiple", "category": "混合", "prompt": "多选题", "options": "甲\n乙\n丙\n丁",
                  "answer": "A,C"},
                 {"kind": "truefalse", "category": "混合", "prompt": "判断题", "answer": "错"},
                 {"kind": "fill", "category": "混合", "prompt": "填空题", "answer": "八一一零|8110"}):
        assert tc.post(new, data={"csrf_token": t, **data}).status_code == 303
    bad = tc.post(new, data={"csrf_token": t, "kind": "single", "category": "混合", "prompt": "x",
                             "options": "甲\n乙", "answer": "C"})
    assert bad.status_code == 422 and "does not match the options" in bad.get_data(as_text=True)
    assert tc.post(f"/training/studio/{cid}/rules", data={"csrf_token": t, "new_category": "混合",
                                                          "new_count": "4"}).status_code == 303
    assert tc.post(f"/training/studio/{cid}/publish", data={"csrf_token": t}).status_code == 303
    eid = enroll(app, cid, learner.employee)

    lc = app.test_client()
    login(lc, learner)
    finish_lessons(lc, eid)
    resp = start_exam(lc, eid)
    assert resp.status_code == 303
    aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
    page = lc.get(f"/training/attempts/{aid}").get_data(as_text=True)
    assert "单选题" in page and "填空题" in page
    a = fresh(Attempt, aid)
    t = token(lc, f"/training/attempts/{aid}")
    wanted = {}
    for item in a.items:
        if item.kind == "single":
            wanted[item.id] = [str(item.options.index("乙"))]
        elif item.kind == "multiple":
            wanted[item.id] = [str(item.options.index("甲")), str(item.options.index("丙"))]
        elif item.kind == "truefalse":
            wanted[item.id] = ["1"]  # "false"
        else:
            wanted[item.id] = ["８１１０"]  # full-width digits, normalised
    for iid, values in wanted.items():
        r = lc.post(f"/training/attempts/{aid}/items/{iid}", data={"csrf_token": t, f"q{iid}": values},
                    headers={"HX-Request": "true"})
        assert r.status_code == 200 and "Saved" in r.get_data(as_text=True)
    choice = next(i for i in a.items if i.kind == "multiple")
    bad = lc.post(f"/training/attempts/{aid}/items/{choice.id}", data={"csrf_token": t, f"q{choice.id}": "9"},
                  headers={"HX-Request": "true"})
    assert bad.status_code == 422
    r = lc.post(f"/training/attempts/{aid}/submit", data={"csrf_token": t})
    assert r.status_code == 303
    a = fresh(Attempt, aid)
    assert a.closed_by == "submit" and a.correct == 4 and a.score == 100 and a.passed
    result = lc.get(f"/training/attempts/{aid}/result").get_data(as_text=True)
    assert "100%" in result and "✓" in result


def _timed_setup(app, make, **kw):
    trainer = en_user(make, roles=("trainer",))
    learner = en_user(make)
    cid = build_course(app, trainer, lessons=1, bank={"制度": 2}, rules={"制度": 2}, **kw)
    eid = enroll(app, cid, learner.employee)
    client = app.test_client()
    login(client, learner)
    finish_lessons(client, eid)
    return learner, eid, client


def _right(item):
    return str(item.correct[0])


def test_time_limit_is_enforced_on_the_server(app, make):
    learner, eid, client = _timed_setup(app, make, time_limit_minutes=10, pass_mark=50)
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False) as traveller:
        resp = start_exam(client, eid)
        aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
        a = fresh(Attempt, aid)
        first, second = a.items
        t = token(client, f"/training/attempts/{aid}")
        page = client.get(f"/training/attempts/{aid}").get_data(as_text=True)
        assert 'data-seconds-left="600"' in page
        # inside the grace period (limit + 29 s): still saved
        traveller.move_to(start + dt.timedelta(minutes=10, seconds=29))
        ok = client.post(f"/training/attempts/{aid}/items/{first.id}",
                         data={"csrf_token": t, f"q{first.id}": _right(first)}, headers={"HX-Request": "true"})
        assert ok.status_code == 200
        # after limit + 30 s: refused with 409, and the attempt is graded on what was saved in time
        traveller.move_to(start + dt.timedelta(minutes=10, seconds=31))
        late = client.post(f"/training/attempts/{aid}/items/{second.id}",
                           data={"csrf_token": t, f"q{second.id}": _right(second)}, headers={"HX-Request": "true"})
        assert late.status_code == 409
        assert "Time is up" in late.get_data(as_text=True)
        a = fresh(Attempt, aid)
        assert a.finished and a.closed_by == "timeout"
        assert a.correct == 1 and a.score == 50 and a.passed
        assert fresh(AttemptItem, second.id).answer is None
        # the exam page now shows the result
        assert client.get(f"/training/attempts/{aid}").status_code == 303


def test_a_late_submit_is_refused_and_graded_on_saved_answers(app, make):
    learner, eid, client = _timed_setup(app, make, time_limit_minutes=5, pass_mark=100, max_attempts=3)
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False) as traveller:
        resp = start_exam(client, eid)
        aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
        a = fresh(Attempt, aid)
        first, second = a.items
        t = token(client, f"/training/attempts/{aid}")
        assert client.post(f"/training/attempts/{aid}/items/{first.id}",
                           data={"csrf_token": t, f"q{first.id}": _right(first)}).status_code == 200
        traveller.move_to(start + dt.timedelta(minutes=6))
        # the no-JavaScript form carries both answers; the second one is too late
        r = client.post(f"/training/attempts/{aid}/submit",
                        data={"csrf_token": t, f"q{first.id}": _right(first), f"q{second.id}": _right(second)})
        assert r.status_code == 409
        assert 'id="late-note"' in r.get_data(as_text=True)
        a = fresh(Attempt, aid)
        assert a.closed_by == "late" and a.correct == 1 and a.score == 50 and not a.passed
        assert fresh(AttemptItem, second.id).answer is None


def test_an_abandoned_attempt_is_closed_by_the_job(app, make):
    learner, eid, client = _timed_setup(app, make, time_limit_minutes=1)
    start = dt.datetime.now(dt.timezone.utc)
    with time_machine.travel(start, tick=False) as traveller:
        resp = start_exam(client, eid)
        aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
        with app.app_context():
            assert exams.close_expired() == 0
        traveller.move_to(start + dt.timedelta(seconds=95))
        with app.app_context():
            assert exams.close_expired() == 1
            assert exams.close_expired() == 0  # idempotent
        a = fresh(Attempt, aid)
        assert a.closed_by == "timeout" and a.score == 0
        assert a.submitted_at == start + dt.timedelta(seconds=90)


def test_attempt_limit_and_cooling_off(app, make):
    learner, eid, client = _timed_setup(app, make, max_attempts=2, cooloff_hours=1, pass_mark=100)
    start = dt.datetime.now(dt.timezone.utc)

    def fail_one():
        resp = start_exam(client, eid)
        assert resp.status_code == 303 and "/attempts/" in resp.headers["Location"]
        aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
        t = token(client, f"/training/attempts/{aid}")
        assert client.post(f"/training/attempts/{aid}/submit", data={"csrf_token": t}).status_code == 303
        assert fresh(Attempt, aid).score == 0

    with time_machine.travel(start, tick=False) as traveller:
        fail_one()
        refused = start_exam(client, eid)
        assert refused.headers["Location"].endswith(f"/training/learn/{eid}")
        assert "You can try again after" in client.get(refused.headers["Location"]).get_data(as_text=True)
        traveller.move_to(start + dt.timedelta(minutes=59))
        start_exam(client, eid)
        assert db.session.scalar(select(func.count()).select_from(Attempt)) == 1
        traveller.move_to(start + dt.timedelta(hours=1, seconds=1))
        fail_one()
        traveller.move_to(start + dt.timedelta(days=3))
        start_exam(client, eid)
        assert db.session.scalar(select(func.count()).select_from(Attempt)) == 2
        assert "No attempts left" in client.get(f"/training/learn/{eid}").get_data(as_text=True)
    with app.app_context():
        e = db.session.get(Enrollment, eid)
        state = exams.exam_state(e, db.session.get(CourseVersion, e.version_id))
        assert state.reason == "no_attempts_left" and not state.can_start


def test_correct_answers_shown_per_setting(app, make):
    learner, eid, client = _timed_setup(app, make, max_attempts=2, pass_mark=100, show_answers="when_done")
    resp = start_exam(client, eid)
    aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
    t = token(client, f"/training/attempts/{aid}")
    client.post(f"/training/attempts/{aid}/submit", data={"csrf_token": t})
    page = client.get(f"/training/attempts/{aid}/result").get_data(as_text=True)
    assert "correct answers are shown once you pass" in page and "制度问题" not in page
    resp = start_exam(client, eid)
    aid2 = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
    client.post(f"/training/attempts/{aid2}/submit", data={"csrf_token": t})
    page = client.get(f"/training/attempts/{aid2}/result").get_data(as_text=True)
    assert "制度问题" in page  # out of attempts: the key is shown


def test_another_employee_cannot_open_or_answer_an_attempt(app, make):
    learner, eid, client = _timed_setup(app, make)
    resp = start_exam(client, eid)
    aid = int(re.search(r"/attempts/(\d+)", resp.headers["Location"]).group(1))
    item = fresh(Attempt, aid).items[0]
    other = en_user(make)
    oc = app.test_client()
    login(oc, other)
    t = token(oc, "/training")
    assert oc.get(f"/training/attempts/{aid}").status_code == 404
    assert oc.post(f"/training/attempts/{aid}/items/{item.id}", data={"csrf_token": t, f"q{item.id}": "0"}
                   ).status_code == 404
    assert oc.get(f"/training/learn/{eid}").status_code == 404
    assert fresh(AttemptItem, item.id).answer is None
