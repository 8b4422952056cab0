"""Performance reviews: template + safe formula, self-assessment, manager score, the signed result flow
(confirm with an electronic signature, HR approval), tamper detection, the appeal path, revisions after
signing, rating -> coefficient, 409 on concurrent changes, and who may do what."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.signatures import Signature
from portal.performance import reviews, services
from portal.performance.models import KeyResult, Review, ReviewRevision, ReviewTemplate
from tests.conftest import PASSWORD, csrf_token, login
from tests.performance.helpers import D, build_org, okr_tree, open_cycle


def _client(app, user):
    c = app.test_client()
    login(c, user)
    return c


def _setup(app, make, kr_value="50"):
    """Cycle + OKR at ``kr_value`` % + a template (0.6 okr + 0.4 manager) + a review for 王开发."""
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    *_ids, kr_id = okr_tree(app, o, cycle)
    with app.app_context():
        kr = db.session.get(KeyResult, kr_id)
        services.check_in(o.dev_user, kr, kr_value, 7, "")
        db.session.commit()
    hr = _client(app, o.hr_user)
    token = csrf_token(hr, "/performance/templates")
    resp = hr.post("/performance/templates", data={"csrf_token": token, "name": "研发考核",
                                                   "criteria": "工作业绩 | 3\n团队协作 | 1",
                                                   "formula": "0.6 * okr + 0.4 * manager"})
    assert resp.status_code == 303
    tpl = db.session.scalar(select(ReviewTemplate))
    resp = hr.post(f"/performance/cycles/{cycle.id}/reviews", data={"csrf_token": token, "template_id": tpl.id})
    assert resp.status_code == 303
    review = db.session.scalar(select(Review).where(Review.employee_id == o.dev.id))
    assert review.status == "self"
    return o, cycle, tpl, review


def _score(app, o, review, perf="80", team="60"):
    mgr = _client(app, o.mgr_user)
    token = csrf_token(mgr, f"/performance/reviews/{review.id}")
    crit = {c.name: c.id for c in db.session.get(ReviewTemplate, review.template_id).criteria}
    return mgr.post(f"/performance/reviews/{review.id}/score", data={
        "csrf_token": token, f"score_{crit['工作业绩']}": perf, f"score_{crit['团队协作']}": team,
        f"comment_{crit['工作业绩']}": "按时交付", "manager_comment": "整体良好"})


def _fresh(review_id) -> Review:
    db.session.expire_all()
    return db.session.get(Review, review_id)


def test_signed_result_flow_and_tamper_detection(app, make):
    o, cycle, tpl, review = _setup(app, make)
    dev, hr = _client(app, o.dev_user), _client(app, o.hr_user)

    # self-assessment
    token = csrf_token(dev, f"/performance/reviews/{review.id}")
    assert dev.post(f"/performance/reviews/{review.id}/self",
                    data={"csrf_token": token, "self_score": "101"}).status_code == 422
    assert dev.post(f"/performance/reviews/{review.id}/self",
                    data={"csrf_token": token, "self_score": "85", "self_comment": "完成了支付模块"}).status_code == 303
    assert _fresh(review.id).status == "manager"

    # the employee cannot score themselves; a criterion left out is a 422 and nothing changes
    assert dev.post(f"/performance/reviews/{review.id}/score", data={"csrf_token": token}).status_code == 403
    assert _score(app, o, review, perf="").status_code == 422
    assert _fresh(review.id).status == "manager"
    assert _score(app, o, review).status_code == 303
    r = _fresh(review.id)
    # manager = (3*80 + 1*60)/4 = 75; okr = 50; final = 0.6*50 + 0.4*75 = 60
    assert (r.manager_score, r.okr_completion, r.final_score) == (D("75.00"), D("50.00"), D("60.00"))
    assert (r.status, r.revision, r.rating, r.coefficient) == ("employee", 1, "C", D("0.8"))

    # the employee sees the detail (the view is audited: results are sensitive)
    html = dev.get(f"/performance/reviews/{review.id}").get_data(as_text=True)
    assert "按时交付" in html and 'id="confirm"' in html and 'id="appeal"' in html
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "perf.review_viewed"))

    # wrong password: nothing signed, the failed attempt is recorded
    token = csrf_token(dev, f"/performance/reviews/{review.id}")
    assert dev.post(f"/performance/reviews/{review.id}/confirm",
                    data={"csrf_token": token, "password": "wrong"}).status_code == 422
    assert db.session.scalar(select(Signature)) is None
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "signature.reauth_failed"))
    assert dev.post(f"/performance/reviews/{review.id}/confirm",
                    data={"csrf_token": token, "password": PASSWORD}).status_code == 303
    r = _fresh(review.id)
    sig = db.session.get(Signature, r.signature_id)
    assert r.status == "confirmed" and sig.purpose == "performance.confirm" and sig.signer_id == o.dev_user.id
    signed = json.loads(sig.content)
    assert signed["final_score"] == "60.00" and signed["rating"] == "C" and signed["revision"] == 1
    with app.app_context():
        assert reviews.verify(r).ok

    # a manager cannot approve; HR can, once
    mgr = _client(app, o.mgr_user)
    t_mgr = csrf_token(mgr, f"/performance/reviews/{review.id}")
    assert mgr.post(f"/performance/reviews/{review.id}/approve", data={"csrf_token": t_mgr}).status_code == 403
    t_hr = csrf_token(hr, f"/performance/reviews/{review.id}")
    assert hr.post(f"/performance/reviews/{review.id}/approve", data={"csrf_token": t_hr}).status_code == 303
    assert hr.post(f"/performance/reviews/{review.id}/approve", data={"csrf_token": t_hr}).status_code == 409
    r = _fresh(review.id)
    assert r.status == "approved" and r.approved_by_id == o.hr_user.id
    with app.app_context():
        assert reviews.coefficient_for(o.dev.id, cycle.id) == D("0.8")  # what payroll reads

    # every step recorded with who and when
    steps = [(e.action, e.actor_id) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.target_type == "perf_reviews",
                                 AuditEvent.target_id == str(review.id),
                                 AuditEvent.action != "perf.review_viewed").order_by(AuditEvent.id))]
    assert steps == [("perf.self_assessed", o.dev_user.id), ("perf.manager_scored", o.mgr_user.id),
                     ("signature.reauth_failed", o.dev_user.id), ("perf.result_confirmed", o.dev_user.id),
                     ("perf.result_approved", o.hr_user.id)]

    # tampering with the signed result in the database is detected
    db.session.execute(text("UPDATE perf_reviews SET final_score = 95, rating = 'A+' WHERE id = :i"),
                       {"i": review.id})
    db.session.commit()
    with app.app_context():
        check = reviews.verify(_fresh(review.id))
    assert not check.ok and "changed after it was signed" in check.reason
    html = hr.get(f"/performance/reviews/{review.id}").get_data(as_text=True)
    assert 'class="tag danger" id="integrity"' in html


def test_tampered_criterion_score_blocks_approval(app, make):
    o, _cycle, _tpl, review = _setup(app, make)
    _score(app, o, review)
    dev = _client(app, o.dev_user)
    token = csrf_token(dev, f"/performance/reviews/{review.id}")
    dev.post(f"/performance/reviews/{review.id}/confirm", data={"csrf_token": token, "password": PASSWORD})
    db.session.execute(text("UPDATE perf_review_scores SET score = 100 WHERE review_id = :i"), {"i": review.id})
    db.session.commit()
    hr = _client(app, o.hr_user)
    t = csrf_token(hr, f"/performance/reviews/{review.id}")
    assert hr.post(f"/performance/reviews/{review.id}/approve", data={"csrf_token": t}).status_code == 409
    assert _fresh(review.id).status == "confirmed"


def test_appeal_path_and_revision_after_signing(app, make):
    o, cycle, _tpl, review = _setup(app, make)
    assert _score(app, o, review).status_code == 303  # manager may score without a self-assessment
    dev, mgr, hr = (_client(app, u) for u in (o.dev_user, o.mgr_user, o.hr_user))
    token = csrf_token(dev, f"/performance/reviews/{review.id}")
    assert dev.post(f"/performance/reviews/{review.id}/appeal",
                    data={"csrf_token": token, "reason": ""}).status_code == 422
    assert dev.post(f"/performance/reviews/{review.id}/appeal",
                    data={"csrf_token": token, "reason": "OKR 数据未包含第四季度交付"}).status_code == 303
    r = _fresh(review.id)
    assert r.status == "appealed"
    # the appeal reached the manager and HR
    from portal.core.notify import Notification
    told = set(db.session.scalars(select(Notification.user_id).where(Notification.template_key == "perf.appealed")))
    assert {o.mgr_user.id, o.hr_user.id} <= told
    # while appealed the employee can neither sign nor appeal again
    assert dev.post(f"/performance/reviews/{review.id}/confirm",
                    data={"csrf_token": token, "password": PASSWORD}).status_code == 409
    other = _client(app, o.other_user)
    assert other.get(f"/performance/reviews/{review.id}").status_code == 404

    # the manager answers and changes the score: a new revision goes to the employee
    t = csrf_token(mgr, f"/performance/reviews/{review.id}")
    assert mgr.post(f"/performance/reviews/{review.id}/respond",
                    data={"csrf_token": t, "response": "已核实，调整为 72", "new_score": "72"}).status_code == 303
    r = _fresh(review.id)
    assert (r.status, r.revision, r.final_score, r.rating, r.coefficient) == ("employee", 2, D("72.00"), "B", D("1.0"))

    assert dev.post(f"/performance/reviews/{review.id}/confirm",
                    data={"csrf_token": token, "password": PASSWORD}).status_code == 303
    r = _fresh(review.id)
    first_sig = r.signature_id
    rev2 = db.session.scalar(select(ReviewRevision).where(ReviewRevision.review_id == r.id,
                                                          ReviewRevision.number == 2))
    assert rev2.signature_id == first_sig
    assert json.loads(db.session.get(Signature, first_sig).content)["final_score"] == "72.00"

    # once signed, a change is a new recorded revision: the approval chain starts again
    t = csrf_token(hr, f"/performance/reviews/{review.id}")
    assert hr.post(f"/performance/reviews/{review.id}/calibrate",
                   data={"csrf_token": t, "final_score": "86", "note": ""}).status_code == 422
    assert _fresh(review.id).revision == 2
    assert hr.post(f"/performance/reviews/{review.id}/calibrate",
                   data={"csrf_token": t, "final_score": "86", "note": "校准会议决定"}).status_code == 303
    r = _fresh(review.id)
    assert (r.status, r.revision, r.signature_id, r.rating) == ("employee", 3, None, "A")
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "perf.review_revised"))
    assert ev.payload["previous"]["signature_id"] == first_sig and ev.payload["previous"]["status"] == "confirmed"
    # the old signature still verifies against the revision it signed
    from portal.core import signatures
    with app.app_context():
        assert signatures.verify(db.session.get(Signature, first_sig), rev2.content).ok
    revs = db.session.scalars(select(ReviewRevision).where(ReviewRevision.review_id == r.id)
                              .order_by(ReviewRevision.number)).all()
    assert [rv.number for rv in revs] == [1, 2, 3] and len({rv.content_hash for rv in revs}) == 3


def test_hr_calibration_before_signing_and_upheld_appeal(app, make):
    o, _cycle, _tpl, review = _setup(app, make)
    _score(app, o, review)
    hr, dev = _client(app, o.hr_user), _client(app, o.dev_user)
    t = csrf_token(hr, f"/performance/reviews/{review.id}")
    assert hr.post(f"/performance/reviews/{review.id}/calibrate",
                   data={"csrf_token": t, "final_score": "65", "note": "部门校准"}).status_code == 303
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "perf.calibrated"))
    token = csrf_token(dev, f"/performance/reviews/{review.id}")
    dev.post(f"/performance/reviews/{review.id}/appeal", data={"csrf_token": token, "reason": "不同意"})
    assert hr.post(f"/performance/reviews/{review.id}/respond",
                   data={"csrf_token": t, "response": "维持原结果"}).status_code == 303
    r = _fresh(review.id)
    assert (r.status, r.revision, r.final_score) == ("employee", 2, D("65.00"))  # upheld: same revision


def test_formula_is_evaluated_safely():
    assert reviews.evaluate("0.6 * okr + 0.4 * manager", {"okr": 50, "manager": 75}) == D("60.00")
    assert reviews.evaluate("max(okr, manager) - 5", {"okr": 50, "manager": 75}) == D("70.00")
    for bad in ("__import__('os').system('true')", "okr +", "open('/etc/passwd')", "okr.__class__",
                "'a' * 3", "unknown * 2", "10 ** 10 ** 10", "okr > 3"):
        with pytest.raises(services.PerfError):
            reviews.evaluate(bad, {"okr": 50, "manager": 75, "self": 1})


def test_template_validation(app, make):
    o = build_org(make)
    hr = _client(app, o.hr_user)
    token = csrf_token(hr, "/performance/templates")
    resp = hr.post("/performance/templates", data={"csrf_token": token, "name": "T", "criteria": "A | 1",
                                                   "formula": "import os"})
    assert resp.status_code == 422
    resp = hr.post("/performance/templates", data={"csrf_token": token, "name": "T", "criteria": "A | 0",
                                                   "formula": "manager"})
    assert resp.status_code == 422
    assert db.session.scalar(select(ReviewTemplate)) is None
    assert _client(app, o.dev_user).get("/performance/templates").status_code == 403


def test_rating_table_is_configurable(app, make):
    o = build_org(make)
    hr = _client(app, o.hr_user)
    html = hr.get("/performance/ratings").get_data(as_text=True)
    assert "A+" in html and "1.5" in html
    token = csrf_token(hr, "/performance/ratings")
    assert hr.post("/performance/ratings", data={"csrf_token": token, "bands": "A | 90 | 1.3"}).status_code == 422
    assert hr.post("/performance/ratings", data={"csrf_token": token,
                                                 "bands": "S | 90 | 2\nM | 50 | 1\nL | 0 | 0.5"}).status_code == 303
    with app.app_context():
        assert reviews.rating_for(D(95)) == ("S", D(2))
        assert reviews.rating_for(D(50)) == ("M", D(1))
        assert reviews.rating_for(D(10)) == ("L", D("0.5"))
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "perf.bands_saved"))
