"""Taking an exam on a phone (390x844): my learning -> lesson -> exam with a countdown, answers saved one
by one over htmx (a reload loses nothing), submit, result."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.core.db import db
from portal.training.models import Attempt, AttemptItem
from tests.training.helpers import build_course, enroll

pytestmark = pytest.mark.browser


def test_taking_an_exam_on_a_phone(phone, make, app):
    trainer = make.user(roles=("trainer",))
    learner = make.user(name="王开发")
    cid = build_course(app, trainer, lessons=1, bank={"制度": 3}, rules={"制度": 3}, time_limit_minutes=10,
                       pass_mark=60)
    eid = enroll(app, cid, learner.employee)
    page = phone.page
    page.on("dialog", lambda d: d.accept())  # the confirm() before starting / submitting
    phone.login(learner)

    phone.goto("/training")
    page.click(f'a[data-enrollment="{eid}"]')
    page.wait_for_url(phone.live(f"/training/learn/{eid}"))
    page.click("ol.lesson-list a")
    page.wait_for_selector(".lesson-reader")
    assert "重点" in page.inner_text(".training-md")
    phone.assert_clean()
    with page.expect_navigation():
        page.click(".lesson-nav button[type=submit]")
    assert page.url == phone.live(f"/training/learn/{eid}")

    with page.expect_navigation():
        page.click("#exam form button[type=submit]")
    assert re.search(r"/training/attempts/\d+$", page.url)
    aid = int(page.url.rsplit("/", 1)[1])
    assert re.fullmatch(r"\d+:\d\d", page.inner_text("#exam-timer-value").strip())
    phone.screenshot("exam")
    phone.assert_clean()

    items = db.session.scalars(select(AttemptItem).where(AttemptItem.attempt_id == aid)
                               .order_by(AttemptItem.position)).all()
    keys = [(i.id, i.correct[0]) for i in items]
    db.session.rollback()
    # answer the first two correctly, the third wrongly: each is saved as soon as it is tapped
    for n, (iid, right) in enumerate(keys):
        choice = right if n < 2 else (right + 1) % 4
        page.click(f'#q-{iid} input[value="{choice}"]')
        expect(page.locator(f"#save-{iid}")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"))
    saved = {i.id: i.answer for i in db.session.scalars(select(AttemptItem).where(AttemptItem.attempt_id == aid))}
    db.session.rollback()
    assert all(saved[iid] is not None for iid, _r in keys)

    # the connection drops and the page is reopened: the answers are still there
    page.reload()
    for n, (iid, right) in enumerate(keys):
        choice = right if n < 2 else (right + 1) % 4
        assert page.is_checked(f'#q-{iid} input[value="{choice}"]')

    with page.expect_navigation():
        page.click("#exam-submit")
    assert page.url == phone.live(f"/training/attempts/{aid}/result")
    assert page.inner_text("#score").strip() == "67%"
    attempt = db.session.get(Attempt, aid)
    assert attempt.passed and attempt.closed_by == "submit"
    db.session.rollback()
    phone.screenshot("result")
    phone.assert_clean()
