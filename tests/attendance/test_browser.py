"""Clocking in on a phone (390x844) in a real browser: one tap, htmx swap, no duplicate on a double
tap, nothing wider than the screen, no CSP or console errors."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.attendance.models import Punch
from portal.core.db import db

pytestmark = pytest.mark.browser


def test_clock_in_on_a_phone(phone, make):
    user = make.user(roles=("employee",), name="王开发")
    phone.login(user)
    phone.goto("/attendance")
    page = phone.page
    assert page.is_visible("#clock-in")
    box = page.locator("#clock-in").bounding_box()
    assert box["height"] >= 44 and box["x"] + box["width"] <= 390
    page.click("#clock-in")
    page.wait_for_selector("ul#today-punches li")
    assert "王开发" in page.inner_text("header .who")
    page.click("#clock-in")  # a second tap within a minute
    page.wait_for_selector("#messages .flash")
    db.session.rollback()
    punches = db.session.scalars(select(Punch).where(Punch.employee_id == user.employee_id)).all()
    assert [p.kind for p in punches] == ["in"]
    assert page.locator("ul#today-punches li").count() == 1
    phone.screenshot("clocked-in")
    phone.assert_clean()
    phone.goto("/attendance/month")
    assert page.locator(".att-cal .att-cell").count() >= 28
    phone.assert_clean()
