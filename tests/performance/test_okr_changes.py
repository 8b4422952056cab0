"""Editing key results (same role rules as creating them, employee edits go back to approval), deleting
objectives and key results (archived instead when check-ins exist), named milestones ticked in
check-ins, and the check-in frequency per cycle (reminders, "who has not checked in")."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import func, select, update

from portal.core import reminders
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.notify import Notification
from portal.performance import services
from portal.performance.models import CheckIn, Cycle, KeyResult, Milestone, MonthlyCompletion, Objective
from tests.conftest import csrf_token, login
from tests.performance.helpers import D, build_org, okr_tree, open_cycle


def _client(app, user):
    c = app.test_client()
    login(c, user)
    return c


def _count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _kr_data(token, **kw):
    data = {"csrf_token": token, "title": "完成接口数", "kind": "number", "unit": "个", "start_value": "0",
            "target_value": "100", "weight": "1", "milestones": ""}
    data.update(kw)
    return data


def _checkin(c, kr_id, **data):
    token = csrf_token(c, f"/okr/krs/{kr_id}")
    return c.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "confidence": "7", **data})


# ---------------------------------------------------------------- 1. editing key results

def test_editing_a_key_result_follows_the_creation_rules(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    comp_id, team_id, ind_id, kr_id = okr_tree(app, o, cycle)
    with app.app_context():
        team = db.session.get(Objective, team_id)
        team_kr = services.add_key_result(o.mgr_user, team, "发布次数", "number", "次", "0", "4", "1")
        db.session.commit()
        team_kr_id = team_kr.id
    dev, mgr, other = (_client(app, u) for u in (o.dev_user, o.mgr_user, o.other_user))

    # team key results: the department head (manager), not an employee of the team
    assert dev.get(f"/okr/krs/{team_kr_id}/edit").status_code == 403
    token = csrf_token(dev, f"/okr/krs/{kr_id}")
    assert dev.post(f"/okr/krs/{team_kr_id}/edit", data=_kr_data(token, title="改")).status_code == 403
    assert other.get(f"/okr/krs/{kr_id}/edit").status_code == 404
    page = mgr.get(f"/okr/krs/{team_kr_id}/edit")
    assert page.status_code == 200 and 'value="发布次数"' in page.get_data(as_text=True)
    t_mgr = csrf_token(mgr, f"/okr/krs/{team_kr_id}/edit")
    resp = mgr.post(f"/okr/krs/{team_kr_id}/edit", data=_kr_data(t_mgr, title="发布次数（含热修复）",
                                                                 unit="次", target_value="6", weight="2"))
    assert resp.status_code == 303
    db.session.expire_all()
    k = db.session.get(KeyResult, team_kr_id)
    assert (k.title, k.target_value, k.weight, k.status) == ("发布次数（含热修复）", 6, 2, "active")

    # invalid input: 422 with the message, nothing changed
    resp = mgr.post(f"/okr/krs/{team_kr_id}/edit", data=_kr_data(t_mgr, start_value="5", target_value="5"))
    assert resp.status_code == 422 and 'id="target_value-err"' in resp.get_data(as_text=True)
    resp = mgr.post(f"/okr/krs/{team_kr_id}/edit", data=_kr_data(t_mgr, title=""))
    assert resp.status_code == 422
    db.session.expire_all()
    assert db.session.get(KeyResult, team_kr_id).target_value == 6

    # an employee's edit of an approved key result goes back to the manager and stops counting meanwhile
    assert _checkin(dev, kr_id, value="40").status_code == 200
    resp = dev.post(f"/okr/krs/{kr_id}/edit", data=_kr_data(token, title="完成接口数（含文档）", target_value="80",
                                                            unit="个"))
    assert resp.status_code == 303
    db.session.expire_all()
    k = db.session.get(KeyResult, kr_id)
    assert (k.title, k.target_value, k.current_value, k.status) == ("完成接口数（含文档）", 80, 40, "pending")
    assert db.session.scalar(select(Notification).where(Notification.user_id == o.mgr_user.id,
                                                        Notification.template_key == "perf.objective_pending"))
    with app.app_context():
        _objs, _krs, res = services.cycle_progress(cycle.id)
        assert res.objective[ind_id] is None  # the pending key result does not count
    t_mgr = csrf_token(mgr, f"/okr/objectives/{ind_id}")
    assert mgr.post(f"/okr/objectives/{ind_id}/approve",
                    data={"csrf_token": t_mgr, "decision": "approve"}).status_code == 303
    with app.app_context():
        _objs, _krs, res = services.cycle_progress(cycle.id)
        assert res.objective[ind_id] == D("0.5")  # 40 of 80

    # the type cannot change once check-ins exist
    resp = dev.post(f"/okr/krs/{kr_id}/edit", data=_kr_data(token, kind="yesno"))
    assert resp.status_code == 422 and 'id="kind-err"' in resp.get_data(as_text=True)
    assert dev.get(f"/okr/krs/{kr_id}/edit").status_code == 200

    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "okr.kr_updated")
                                .order_by(AuditEvent.id)).all()
    assert len(events) == 2
    data = json.loads(events[-1].data)
    assert data["before"]["title"] == "完成接口数" and data["after"]["status"] == "pending"


# ---------------------------------------------------------------- 1. deleting and archiving

def test_delete_or_archive_key_results_and_objectives(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    comp_id, team_id, ind_id, kr_id = okr_tree(app, o, cycle)
    with app.app_context():
        ind = db.session.get(Objective, ind_id)
        spare = services.add_key_result(o.mgr_user, ind, "写文档", "yesno", "", "", "", "1")
        other_kr = services.add_key_result(o.mgr_user, ind, "修复缺陷", "number", "个", "0", "10", "1")
        db.session.commit()
        spare_id, other_kr_id = spare.id, other_kr.id
    dev, mgr, other = (_client(app, u) for u in (o.dev_user, o.mgr_user, o.other_user))
    token = csrf_token(dev, f"/okr/krs/{kr_id}")
    assert dev.get(f"/okr/krs/{spare_id}/delete").status_code == 405
    assert dev.get(f"/okr/objectives/{ind_id}/delete").status_code == 405
    t_other = csrf_token(other, "/okr")
    assert other.post(f"/okr/krs/{spare_id}/delete", data={"csrf_token": t_other}).status_code == 404

    # no check-ins: really deleted
    assert dev.post(f"/okr/krs/{spare_id}/delete", data={"csrf_token": token}).status_code == 303
    assert db.session.get(KeyResult, spare_id) is None
    assert _count(AuditEvent, AuditEvent.action == "okr.kr_deleted") == 1

    # with check-ins: archived, out of the roll-up, no more check-ins, history kept
    assert _checkin(dev, kr_id, value="40").status_code == 200
    assert _checkin(dev, other_kr_id, value="10").status_code == 200
    with app.app_context():
        _o, _k, res = services.cycle_progress(cycle.id)
        assert res.objective[ind_id] == D("0.7")  # (0.4 + 1) / 2
    assert dev.post(f"/okr/krs/{kr_id}/delete", data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert db.session.get(KeyResult, kr_id).status == "archived"
    assert _count(CheckIn, CheckIn.key_result_id == kr_id) == 1
    with app.app_context():
        _o, _k, res = services.cycle_progress(cycle.id)
        assert res.objective[ind_id] == D(1)  # only 修复缺陷 counts now
        assert services.employee_completion(o.dev.id, cycle.id) == D("100.00")
    assert _checkin(dev, kr_id, value="50").status_code == 403
    html = dev.get(f"/okr/krs/{kr_id}").get_data(as_text=True)
    assert "checkin-history" in html and 'id="checkin"' not in html
    assert dev.get(f"/okr/krs/{kr_id}/edit").status_code == 409
    assert dev.post(f"/okr/krs/{kr_id}/delete", data={"csrf_token": token}).status_code == 409
    assert "完成接口数" not in dev.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
    assert _count(AuditEvent, AuditEvent.action == "okr.kr_archived") == 1

    # an objective others align to: refused with a clear message, nothing changed
    t_mgr = csrf_token(mgr, f"/okr/objectives/{team_id}")
    resp = mgr.post(f"/okr/objectives/{team_id}/delete", data={"csrf_token": t_mgr})
    assert resp.status_code == 409
    assert 'class="flash flash-error"' in resp.get_data(as_text=True)  # the reason, in the user's language
    assert db.session.get(Objective, team_id).status == "active"
    # an employee may not delete the team objective at all
    assert dev.post(f"/okr/objectives/{team_id}/delete", data={"csrf_token": token}).status_code == 403

    # the individual objective has check-ins: archived, out of the completion and the parent's roll-up
    assert dev.post(f"/okr/objectives/{ind_id}/delete", data={"csrf_token": token}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Objective, ind_id).status == "archived"
    with app.app_context():
        assert services.employee_completion(o.dev.id, cycle.id) is None
        _o, _k, res = services.cycle_progress(cycle.id)
        assert res.objective[team_id] is None and res.objective[comp_id] is None
    html = dev.get(f"/okr/objectives/{ind_id}").get_data(as_text=True)
    assert 'id="archived-notice"' in html
    assert "完成支付模块" not in dev.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
    assert _count(AuditEvent, AuditEvent.action == "okr.objective_archived") == 1

    # now nothing active is aligned to the team objective; it has no check-ins: deleted with its KRs
    with app.app_context():
        team = db.session.get(Objective, team_id)
        services.add_key_result(o.mgr_user, team, "发布次数", "number", "次", "0", "4", "1")
        db.session.commit()
    resp = mgr.post(f"/okr/objectives/{team_id}/delete", data={"csrf_token": t_mgr})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(Objective, team_id) is None
    assert db.session.get(Objective, ind_id).parent_id is None  # the archived child keeps its history
    assert _count(KeyResult, KeyResult.title == "发布次数") == 0
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "okr.objective_deleted"))
    assert json.loads(ev.data)["key_results"] == ["发布次数"] and ev.actor_id == o.mgr_user.id


# ---------------------------------------------------------------- 2. milestones

def test_milestones_are_named_ticked_in_checkins_and_count_done_over_total(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    _comp, _team, ind_id, _kr = okr_tree(app, o, cycle)
    mgr, dev = _client(app, o.mgr_user), _client(app, o.dev_user)
    token = csrf_token(mgr, f"/okr/objectives/{ind_id}")
    # a milestone key result needs its list
    resp = mgr.post(f"/okr/objectives/{ind_id}/krs", data=_kr_data(token, title="支付模块上线", kind="milestone",
                                                                   target_value="", milestones=" \n"))
    assert resp.status_code == 422 and 'id="milestones-err"' in resp.get_data(as_text=True)
    resp = mgr.post(f"/okr/objectives/{ind_id}/krs", data=_kr_data(
        token, title="支付模块上线", kind="milestone", target_value="", milestones="设计\n设计"))
    assert resp.status_code == 422
    resp = mgr.post(f"/okr/objectives/{ind_id}/krs", data=_kr_data(
        token, title="支付模块上线", kind="milestone", target_value="", start_value="",
        milestones="接口设计\n开发\n联调\n上线"))
    assert resp.status_code == 303
    kr = db.session.scalar(select(KeyResult).where(KeyResult.kind == "milestone"))
    ms = {m.title: m.id for m in kr.milestones}
    assert list(ms) == ["接口设计", "开发", "联调", "上线"] and (kr.target_value, kr.current_value) == (4, 0)

    html = dev.get(f"/okr/krs/{kr.id}").get_data(as_text=True)
    assert 'type="checkbox" name="milestone"' in html and 'name="value"' not in html
    # tick two milestones: progress = 2 / 4
    assert _checkin(dev, kr.id, milestone=[ms["接口设计"], ms["开发"]], comment="开发完成").status_code == 200
    db.session.expire_all()
    kr = db.session.get(KeyResult, kr.id)
    assert kr.current_value == 2 and [m.done for m in kr.milestones] == [True, True, False, False]
    ci = db.session.scalar(select(CheckIn).where(CheckIn.key_result_id == kr.id))
    assert ci.progress == D("0.5") and json.loads(ci.milestones_done) == ["接口设计", "开发"]
    assert json.loads(db.session.scalar(select(AuditEvent.data).where(
        AuditEvent.action == "okr.checkin").order_by(AuditEvent.id.desc())))["milestones_done"] == ["接口设计", "开发"]
    html = dev.get(f"/okr/krs/{kr.id}").get_data(as_text=True)
    assert 'id="milestones"' in html and "✓ 开发" in html
    # a milestone of another key result is refused; nothing changes
    assert _checkin(dev, kr.id, milestone=["999999"]).status_code == 422
    # unticking reopens one: 1 / 4
    assert _checkin(dev, kr.id, milestone=[ms["接口设计"]]).status_code == 200
    with app.app_context():
        _o, _k, res = services.cycle_progress(cycle.id)
        assert res.kr[kr.id] == D("0.25")

    # editing the list: a kept milestone keeps its state, a new one starts open, a dropped one goes
    t_mgr = csrf_token(mgr, f"/okr/krs/{kr.id}/edit")
    assert "接口设计\n开发\n联调\n上线" in mgr.get(f"/okr/krs/{kr.id}/edit").get_data(as_text=True)
    resp = mgr.post(f"/okr/krs/{kr.id}/edit", data=_kr_data(t_mgr, title="支付模块上线", kind="milestone",
                                                            target_value="", milestones="接口设计\n联调\n灰度\n上线\n复盘"))
    assert resp.status_code == 303
    db.session.expire_all()
    kr = db.session.get(KeyResult, kr.id)
    assert [(m.title, m.done) for m in kr.milestones] == [("接口设计", True), ("联调", False), ("灰度", False),
                                                          ("上线", False), ("复盘", False)]
    assert (kr.target_value, kr.current_value) == (5, 1)
    assert _count(Milestone) == 5


# ---------------------------------------------------------------- 3. check-in frequency

def _cycle(**kw) -> Cycle:
    return Cycle(name="x", kind="quarter", start_date=kw.pop("start", dt.date(2026, 10, 1)),
                 end_date=dt.date(2026, 12, 31), status="open", **kw)


def test_checkin_periods_per_frequency(app):
    with app.app_context():
        monthly = services.checkin_period(_cycle(checkin_frequency="monthly", checkin_day=25, checkin_weekday=4),
                                          dt.date(2026, 11, 25))
        assert (monthly.start, monthly.end, monthly.kind) == (dt.date(2026, 11, 1), dt.date(2026, 12, 1),
                                                              "okr.checkin.2026-11")
        assert monthly.due == dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.timezone.utc)  # 18:00 Shanghai
        # weeks counted from the Monday of the cycle's first week (2026-09-28)
        weekly = services.checkin_period(_cycle(checkin_frequency="weekly", checkin_day=25, checkin_weekday=4),
                                         dt.date(2026, 11, 25))
        assert (weekly.start, weekly.last_day) == (dt.date(2026, 11, 23), dt.date(2026, 11, 29))
        assert weekly.due == dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone.utc)  # Friday
        assert weekly.kind == "okr.checkin.2026-11-23"
        biweekly = services.checkin_period(_cycle(checkin_frequency="biweekly", checkin_day=25,
                                                  checkin_weekday=0), dt.date(2026, 11, 25))
        assert (biweekly.start, biweekly.last_day) == (dt.date(2026, 11, 23), dt.date(2026, 12, 6))
        assert biweekly.due == dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone.utc)  # Monday, week 2
        before = services.checkin_period(_cycle(checkin_frequency="biweekly", checkin_day=25, checkin_weekday=0),
                                         dt.date(2026, 11, 22))
        assert (before.start, before.end) == (dt.date(2026, 11, 9), dt.date(2026, 11, 23))


def test_frequency_drives_reminders_and_the_not_checked_in_list(app, make):
    from portal.core.ui import local_today
    o = build_org(make)
    with app.app_context():
        today = local_today()
    cycle = open_cycle(app, o.hr_user, year=today.year)
    *_ids, kr_id = okr_tree(app, o, cycle)
    hr, mgr, dev = (_client(app, u) for u in (o.hr_user, o.mgr_user, o.dev_user))
    with app.app_context():
        assert services.schedule_checkin_reminders() == 1
        db.session.commit()
    assert {r.kind for r in db.session.scalars(select(reminders.Reminder))} == {
        f"okr.checkin.{today:%Y-%m}", f"okr.checkin.{today:%Y-%m}.overdue"}

    # invalid settings: 422, nothing saved
    token = csrf_token(hr, f"/performance/cycles/{cycle.id}/settings")
    bad = hr.post(f"/performance/cycles/{cycle.id}/settings", data={
        "csrf_token": token, "checkin_frequency": "weekly", "checkin_day": "25", "checkin_weekday": "4",
        "response_days": "0"})
    assert bad.status_code == 422
    assert db.session.get(Cycle, cycle.id).checkin_frequency == "monthly"
    assert dev.get(f"/performance/cycles/{cycle.id}/settings").status_code == 403
    # weekly: the monthly reminders are cancelled and this week's are scheduled
    resp = hr.post(f"/performance/cycles/{cycle.id}/settings", data={
        "csrf_token": token, "checkin_frequency": "weekly", "checkin_day": "25", "checkin_weekday": "4",
        "response_days": "5"})
    assert resp.status_code == 303
    db.session.expire_all()
    c = db.session.get(Cycle, cycle.id)
    assert (c.checkin_frequency, c.checkin_weekday, c.response_days) == ("weekly", 4, 5)
    with app.app_context():
        week = services.checkin_period(c, today)
    open_kinds = {r.kind for r in db.session.scalars(select(reminders.Reminder).where(
        reminders.Reminder.done_at.is_(None)))}
    assert open_kinds == {week.kind, f"{week.kind}.overdue"}
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "perf.cycle_settings"))
    assert hr.get("/performance/cycles").status_code == 200
    assert hr.get(f"/performance/cycles/{cycle.id}/settings").status_code == 200

    # a check-in this week ends the week's reminders and takes the employee off the list
    assert _checkin(dev, kr_id, value="30").status_code == 200
    assert not db.session.scalars(select(reminders.Reminder).where(reminders.Reminder.done_at.is_(None))).all()
    missing = mgr.get(f"/okr/team?cycle={cycle.id}").get_data(as_text=True).split('id="not-checked-in"')[1]
    assert "王开发" not in missing.split("</section>")[0]
    # the same check-in dated before this week: still checked in for the month, not for the week
    ci = db.session.scalar(select(CheckIn))
    earlier = week.start - dt.timedelta(days=1)
    db.session.execute(update(CheckIn).values(created_at=dt.datetime(
        earlier.year, earlier.month, earlier.day, 4, 0, tzinfo=dt.timezone.utc)))
    db.session.commit()
    missing = mgr.get(f"/okr/team?cycle={cycle.id}").get_data(as_text=True).split('id="not-checked-in"')[1]
    assert "王开发" in missing.split("</section>")[0]
    assert week.start.strftime("%Y-%m-%d") in missing
    with app.app_context():
        assert services.schedule_checkin_reminders() == 0  # one set of reminders per person and week
        db.session.commit()
    # the early warning still reads the monthly completion
    assert db.session.scalar(select(MonthlyCompletion)).completion == D("30.00")
    assert ci.month == today.replace(day=1)
