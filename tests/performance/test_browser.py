"""A check-in on a phone (390x844): the key result page, the form, htmx swap, history and chart."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core.db import db
from portal.performance.models import CheckIn
from tests.performance.helpers import build_org, okr_tree, open_cycle

pytestmark = pytest.mark.browser


def test_checkin_on_a_phone(phone, make, app):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    *_ids, kr_id = okr_tree(app, o, cycle)
    phone.login(o.dev_user)
    phone.goto("/okr")
    page = phone.page
    assert "完成支付模块" in page.inner_text("main")
    page.click(f'a[href="/okr/krs/{kr_id}"]')
    page.wait_for_selector("#checkin form")
    phone.assert_clean()

    # invalid first: the form comes back (422) with a message, nothing saved
    page.fill("input[name=value]", "abc")
    page.click("#checkin button[type=submit]")
    page.wait_for_selector("#checkin .error")
    assert db.session.scalar(select(CheckIn)) is None
    db.session.rollback()  # end this read transaction: the next read sees the server's commits

    page.fill("input[name=value]", "35")
    page.fill("input[name=confidence]", "8")
    page.fill("textarea[name=comment]", "接口联调完成")
    page.click("#checkin button[type=submit]")
    page.wait_for_selector("#checkin-history")
    assert "35%" in page.inner_text("#kr-progress")
    assert "接口联调完成" in page.inner_text("#checkin-history")
    assert page.locator("svg.perf-chart circle").count() == 1
    box = page.locator("#checkin-history").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    db.session.rollback()
    ci = db.session.scalar(select(CheckIn))
    assert ci is not None and ci.confidence == 8
    phone.screenshot("checkin")
    phone.assert_clean(allow=r"HTTP 422|status of 422|422 \(UNPROCESSABLE")
