"""Early warning: N consecutive months below the threshold, or a drop of more than X points, flags the
employee to HR and the manager with the numbers, once per (employee, month), from the periodic job."""
from __future__ import annotations

import datetime as dt
import json

import time_machine
from sqlalchemy import func, select

from portal.core import jobs
from portal.core.db import db
from portal.core.notify import Notification
from portal.performance import services
from portal.performance.models import EarlyWarning, KeyResult, MonthlyCompletion
from tests.performance.helpers import D, build_org, okr_tree, open_cycle

SH = dt.timezone(dt.timedelta(hours=8))


def _checkin_at(app, user, kr_id, value, when):
    with time_machine.travel(when, tick=False), app.app_context():
        services.check_in(user, db.session.get(KeyResult, kr_id), value, 7, "")
        db.session.commit()


def test_two_low_months_raise_one_warning_to_hr_and_manager(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user, 2025)
    *_ids, kr_id = okr_tree(app, o, cycle)
    _checkin_at(app, o.dev_user, kr_id, "40", dt.datetime(2025, 1, 10, 10, tzinfo=SH))
    _checkin_at(app, o.dev_user, kr_id, "60", dt.datetime(2025, 1, 31, 23, 30, tzinfo=SH))  # month's last
    _checkin_at(app, o.dev_user, kr_id, "65", dt.datetime(2025, 2, 20, 10, tzinfo=SH))
    months = {m.month: m.completion for m in db.session.scalars(select(MonthlyCompletion))}
    assert months == {dt.date(2025, 1, 1): D("60.00"), dt.date(2025, 2, 1): D("65.00")}

    with app.app_context():
        assert services.scan_warnings(dt.date(2025, 1, 1)) == []  # one low month is not enough
        db.session.commit()
    # the periodic job, run on 1 March for February; twice (a second clock, a retry): one warning
    from portal.performance import jobs as perf_jobs
    assert any(p.name == "perf.early_warning" for p in jobs.PERIODIC)
    with time_machine.travel(dt.datetime(2025, 3, 1, 2, 30, tzinfo=SH), tick=False), app.app_context():
        assert perf_jobs.early_warning() == 1
        assert perf_jobs.early_warning() == 0
    warnings = db.session.scalars(select(EarlyWarning)).all()
    assert len(warnings) == 1
    w = warnings[0]
    assert w.employee_id == o.dev.id and w.month == dt.date(2025, 2, 1) and w.reasons == "low"
    assert json.loads(w.data)["months"] == {"2025-01": "60.00", "2025-02": "65.00"}
    notes = db.session.scalars(select(Notification).where(Notification.template_key == "perf.warning",
                                                          Notification.channel == "inapp")).all()
    assert {n.user_id for n in notes} == {o.hr_user.id, o.mgr_user.id}
    assert all("60.00" in n.body and "65.00" in n.body for n in notes)
    # HR and the manager see it; the employee's colleague does not
    from tests.conftest import login
    for user, visible in ((o.hr_user, True), (o.mgr_user, True)):
        c = app.test_client()
        login(c, user)
        html = c.get("/performance/warnings").get_data(as_text=True)
        assert ("王开发" in html) is visible
    c = app.test_client()
    login(c, o.other_user)
    assert c.get("/performance/warnings").status_code == 403


def test_drop_of_more_than_twenty_points(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user, 2025)
    *_ids, kr_id = okr_tree(app, o, cycle)
    _checkin_at(app, o.dev_user, kr_id, "95", dt.datetime(2025, 4, 25, 10, tzinfo=SH))
    # a drop: the value went down (e.g. a milestone reopened / a correction)
    _checkin_at(app, o.dev_user, kr_id, "74", dt.datetime(2025, 5, 25, 10, tzinfo=SH))
    with app.app_context():
        raised = services.scan_warnings(dt.date(2025, 5, 1))
        db.session.commit()
    assert len(raised) == 1
    w = db.session.scalar(select(EarlyWarning))
    assert w.reasons == "drop"  # 74 is not below 70


def test_no_warning_for_good_months_or_a_small_drop(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user, 2025)
    *_ids, kr_id = okr_tree(app, o, cycle)
    _checkin_at(app, o.dev_user, kr_id, "90", dt.datetime(2025, 6, 25, 10, tzinfo=SH))
    _checkin_at(app, o.dev_user, kr_id, "71", dt.datetime(2025, 7, 25, 10, tzinfo=SH))  # drop 19
    with app.app_context():
        assert services.scan_warnings(dt.date(2025, 7, 1)) == []
        db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(EarlyWarning)) == 0


def test_months_setting_is_respected(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user, 2025)
    *_ids, kr_id = okr_tree(app, o, cycle)
    for month, value in ((8, "50"), (9, "55")):
        _checkin_at(app, o.dev_user, kr_id, value, dt.datetime(2025, month, 20, 10, tzinfo=SH))
    old = app.config["PERF_WARN_MONTHS"]
    app.config["PERF_WARN_MONTHS"] = 3
    try:
        with app.app_context():
            assert services.scan_warnings(dt.date(2025, 9, 1)) == []  # only two low months of three
            db.session.rollback()
    finally:
        app.config["PERF_WARN_MONTHS"] = old
