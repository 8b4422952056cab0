"""HR approval when the employee neither signs nor appeals in time (with a reminder before the deadline),
criterion codes in review formulas, and the OKR demo data."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select, update

from portal.core import reminders
from portal.core.audit import AuditEvent
from portal.core.db import db, utcnow
from portal.performance import reviews
from portal.performance.models import (CheckIn, Cycle, KeyResult, Objective, Review, ReviewCriterion,
                                       ReviewTemplate)
from tests.conftest import csrf_token
from tests.performance.helpers import D
from tests.performance.test_reviews import _client, _fresh, _score, _setup


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------- 4. no response -> HR approves

def test_hr_approves_after_the_employee_did_not_respond(app, make):
    o, cycle, _tpl, review = _setup(app, make)
    with app.app_context():
        db.session.execute(update(Cycle).where(Cycle.id == cycle.id).values(response_days=7))
        db.session.commit()
    before = utcnow()
    assert _score(app, o, review).status_code == 303
    r = _fresh(review.id)
    due = _aware(r.response_due_at)
    assert dt.timedelta(days=7) <= due - before < dt.timedelta(days=7, minutes=5)
    # a reminder to the employee two days before the deadline
    rem = db.session.scalars(select(reminders.Reminder).where(reminders.Reminder.subject_type == "perf_reviews")).all()
    assert [(x.user_id, x.kind, _aware(x.next_at)) for x in rem] == [(o.dev_user.id, "perf.respond.1",
                                                                     due - dt.timedelta(days=2))]
    dev, hr = _client(app, o.dev_user), _client(app, o.hr_user)
    assert 'id="response-due"' in dev.get(f"/performance/reviews/{review.id}").get_data(as_text=True)

    # before the deadline HR may not approve without the signature
    html = hr.get(f"/performance/reviews/{review.id}").get_data(as_text=True)
    assert 'id="approve-unsigned"' not in html
    token = csrf_token(hr, f"/performance/reviews/{review.id}")
    resp = hr.post(f"/performance/reviews/{review.id}/approve-unsigned",
                   data={"csrf_token": token, "reason": "employee did not respond"})
    assert resp.status_code == 422 and _fresh(review.id).status == "employee"
    # nor without a reason, nor as the manager or the employee; never by GET
    assert hr.get(f"/performance/reviews/{review.id}/approve-unsigned").status_code == 405
    t_dev = csrf_token(dev, f"/performance/reviews/{review.id}")
    assert dev.post(f"/performance/reviews/{review.id}/approve-unsigned",
                    data={"csrf_token": t_dev, "reason": "x"}).status_code == 403
    mgr = _client(app, o.mgr_user)
    t_mgr = csrf_token(mgr, f"/performance/reviews/{review.id}")
    assert mgr.post(f"/performance/reviews/{review.id}/approve-unsigned",
                    data={"csrf_token": t_mgr, "reason": "x"}).status_code == 403

    # the deadline passes
    db.session.execute(update(Review).where(Review.id == review.id)
                       .values(response_due_at=utcnow() - dt.timedelta(hours=1)))
    db.session.commit()
    html = hr.get(f"/performance/reviews/{review.id}").get_data(as_text=True)
    assert 'id="approve-unsigned"' in html
    assert hr.post(f"/performance/reviews/{review.id}/approve-unsigned",
                   data={"csrf_token": token, "reason": " "}).status_code == 422
    resp = hr.post(f"/performance/reviews/{review.id}/approve-unsigned",
                   data={"csrf_token": token, "reason": "employee did not respond"})
    assert resp.status_code == 303
    r = _fresh(review.id)
    assert (r.status, r.signature_id, r.approved_by_id, r.unsigned_reason) == (
        "approved", None, o.hr_user.id, "employee did not respond")
    with app.app_context():
        assert reviews.coefficient_for(o.dev.id, cycle.id) == r.coefficient  # payroll reads it
    assert all(x.done_at is not None for x in db.session.scalars(select(reminders.Reminder).where(
        reminders.Reminder.subject_type == "perf_reviews")))
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "perf.result_approved_unsigned"))
    assert ev.actor_id == o.hr_user.id and json.loads(ev.data)["reason"] == "employee did not respond"
    html = dev.get(f"/performance/reviews/{review.id}").get_data(as_text=True)
    assert 'id="unsigned-approval"' in html and "employee did not respond" in html
    # twice: conflict
    assert hr.post(f"/performance/reviews/{review.id}/approve-unsigned",
                   data={"csrf_token": token, "reason": "again"}).status_code == 409
    # a later change is a recorded revision, which opens a new response window
    t_hr = csrf_token(hr, f"/performance/reviews/{review.id}")
    assert hr.post(f"/performance/reviews/{review.id}/calibrate",
                   data={"csrf_token": t_hr, "final_score": "70", "note": "复核"}).status_code == 303
    r = _fresh(review.id)
    assert (r.status, r.unsigned_reason, r.revision) == ("employee", "", 2)
    assert _aware(r.response_due_at) > utcnow() + dt.timedelta(days=6)


def test_appeal_stops_the_clock_and_the_answer_restarts_it(app, make):
    o, cycle, _tpl, review = _setup(app, make)
    with app.app_context():
        db.session.execute(update(Cycle).where(Cycle.id == cycle.id).values(response_days=2))
        db.session.commit()
    assert _score(app, o, review).status_code == 303
    r = _fresh(review.id)
    rem = db.session.scalar(select(reminders.Reminder).where(reminders.Reminder.subject_type == "perf_reviews"))
    assert _aware(rem.next_at) == _aware(r.response_due_at) - dt.timedelta(hours=12)  # short window
    dev = _client(app, o.dev_user)
    token = csrf_token(dev, f"/performance/reviews/{review.id}")
    assert dev.post(f"/performance/reviews/{review.id}/appeal",
                    data={"csrf_token": token, "reason": "OKR 完成率算错了"}).status_code == 303
    assert db.session.scalar(select(reminders.Reminder).where(reminders.Reminder.done_at.is_(None))) is None
    db.session.execute(update(Review).where(Review.id == review.id)
                       .values(response_due_at=utcnow() - dt.timedelta(days=1)))
    db.session.commit()
    with app.app_context():
        assert not reviews.response_overdue(_fresh(review.id))  # appealed: the employee did respond
    mgr = _client(app, o.mgr_user)
    t_mgr = csrf_token(mgr, f"/performance/reviews/{review.id}")
    assert mgr.post(f"/performance/reviews/{review.id}/respond",
                    data={"csrf_token": t_mgr, "response": "已核对", "new_score": ""}).status_code == 303
    r = _fresh(review.id)
    assert r.status == "employee" and _aware(r.response_due_at) > utcnow() + dt.timedelta(days=1)
    assert db.session.scalar(select(reminders.Reminder).where(reminders.Reminder.done_at.is_(None),
                                                              reminders.Reminder.kind == "perf.respond.1"))


# ---------------------------------------------------------------- 6. criterion codes in formulas

def test_formula_may_use_criterion_codes(app, make):
    o, cycle, _tpl, _review = _setup(app, make)
    hr = _client(app, o.hr_user)
    token = csrf_token(hr, "/performance/templates")

    def post(criteria, formula):
        return hr.post("/performance/templates", data={"csrf_token": token, "name": f"模板{criteria[:4]}{formula}",
                                                       "criteria": criteria, "formula": formula})
    # invalid codes / formulas: 422, nothing saved
    assert post("工作业绩 | 3 | Quality!\n团队协作 | 1", "manager").status_code == 422
    assert post("工作业绩 | 3 | okr\n团队协作 | 1", "manager").status_code == 422
    assert post("工作业绩 | 3 | q\n团队协作 | 1 | q", "manager").status_code == 422
    assert post("工作业绩 | 3 | quality\n团队协作 | 1", "0.5 * quality + 0.5 * nosuch").status_code == 422
    assert post("工作业绩 | 3 | quality\n团队协作 | 1", "__import__('os')").status_code == 422
    assert db.session.scalar(select(func.count()).select_from(ReviewTemplate)) == 1
    # codes given and defaulted (c2)
    assert post("工作业绩 | 3 | quality\n团队协作 | 1", "0.5 * okr + 0.3 * quality + 0.2 * c2").status_code == 303
    tpl = db.session.scalar(select(ReviewTemplate).where(ReviewTemplate.formula.contains("quality")))
    assert [(c.name, c.code) for c in tpl.criteria] == [("工作业绩", "quality"), ("团队协作", "c2")]
    assert "<code>quality</code>" in hr.get("/performance/templates").get_data(as_text=True)

    # a review with this template: 0.5 * 50 (okr) + 0.3 * 90 + 0.2 * 40 = 60
    e = make.user(roles=("employee",), name="钱测试", department=o.rd, manager=o.mgr)
    with app.app_context():
        reviews.launch(o.hr_user, db.session.get(Cycle, cycle.id), db.session.get(ReviewTemplate, tpl.id),
                       [e.employee_id])
        db.session.commit()
    review = db.session.scalar(select(Review).where(Review.employee_id == e.employee_id))
    with app.app_context():
        review = db.session.get(Review, review.id)
        obj = db.session.scalar(select(Objective).where(Objective.level == "individual"))
        obj.owner_id = e.employee_id  # reuse the 50 % OKR of the setup for this employee
        db.session.commit()
        crits = {c.code: c.id for c in db.session.get(ReviewTemplate, tpl.id).criteria}
        reviews.submit_score(o.mgr_user, review, {crits["quality"]: ("90", ""), crits["c2"]: ("40", "")}, "")
        db.session.commit()
        r = db.session.get(Review, review.id)
        assert (r.okr_completion, r.manager_score, r.computed_score) == (D("50.00"), D("77.50"), D("60.00"))
        content = reviews.result_content(r)
        assert [c["code"] for c in content["criteria"]] == ["quality", "c2"]
    assert db.session.scalar(select(func.count()).select_from(ReviewCriterion)) == 4


# ---------------------------------------------------------------- 7. demo data

def test_demo_okrs_load_once(app):
    from portal.demo import load_demo
    from portal.performance import demo as perf_demo
    with app.app_context():
        from portal.core.ui import local_today
        today = local_today()
        load_demo("demo1234", today)
        created = perf_demo.load(today)
        assert created["cycles"] == 1 and created["objectives"] >= 6 and created["checkins"] >= 5
        assert perf_demo.load(today) == {"cycles": 0, "objectives": 0, "key_results": 0, "checkins": 0}
        cycle = db.session.scalar(select(Cycle))
        assert cycle.status == "open" and cycle.kind == "quarter"
        levels = db.session.execute(select(Objective.level, Objective.status)).all()
        assert {lv for lv, _s in levels} == {"company", "team", "individual"}
        assert ("individual", "pending") in levels  # one waits for the manager's approval
        kinds = set(db.session.scalars(select(KeyResult.kind)))
        assert kinds == {"number", "percentage", "milestone", "yesno"}
        assert db.session.scalar(select(func.count()).select_from(CheckIn)) == created["checkins"]
        from portal.core.models import User
        from portal.performance import services
        employee = db.session.scalar(select(User).where(User.username == "employee"))
        assert services.employee_completion(employee.employee_id, cycle.id) is not None
        _objs, _krs, res = services.cycle_progress(cycle.id)
        company = db.session.scalar(select(Objective).where(Objective.level == "company"))
        assert res.objective[company.id] is not None
