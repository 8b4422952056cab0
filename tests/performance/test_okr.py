"""OKRs: permission rules per level, approval of an employee's own objectives, check-ins with history and
monthly completion, reminders, alignment tree (bounded queries), team report and XLSX export."""
from __future__ import annotations

import io
import re

from sqlalchemy import event, func, select

from portal.core import reminders
from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.performance import services
from portal.performance.models import CheckIn, KeyResult, MonthlyCompletion, Objective
from tests.conftest import csrf_token, login
from tests.performance.helpers import D, build_org, okr_tree, open_cycle


def _client(app, user):
    c = app.test_client()
    login(c, user)
    return c


def _post_objective(c, cycle_id, level, title, **extra):
    token = csrf_token(c, "/okr/objectives/new")
    data = {"csrf_token": token, "cycle_id": cycle_id, "level": level, "title": title, "description": "",
            "department_id": 0, "owner_id": 0, "parent_id": 0, "link_weight": "1", **extra}
    return c.post("/okr/objectives", data=data)


def _count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_who_may_create_at_each_level(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    hr, mgr, dev, other = (_client(app, u) for u in (o.hr_user, o.mgr_user, o.dev_user, o.other_user))

    # company level: HR only
    assert _post_objective(dev, cycle.id, "company", "公司目标X").status_code == 422
    assert _post_objective(mgr, cycle.id, "company", "公司目标X").status_code == 422
    assert _count(Objective) == 0
    assert _post_objective(hr, cycle.id, "company", "公司目标").status_code == 303
    comp = db.session.scalar(select(Objective).where(Objective.level == "company"))
    assert comp.status == "active"

    # team level: the head of the department (manager role), not an employee, not another department
    assert _post_objective(dev, cycle.id, "team", "团队X", department_id=o.rd.id).status_code == 422
    assert _post_objective(mgr, cycle.id, "team", "团队X", department_id=o.sales.id).status_code == 422
    resp = _post_objective(mgr, cycle.id, "team", "研发团队目标", department_id=o.rd.id, parent_id=comp.id)
    assert resp.status_code == 303
    team = db.session.scalar(select(Objective).where(Objective.level == "team"))
    assert team.status == "active" and team.parent_id == comp.id and team.owner_id == o.mgr.id

    # individual: the employee's own waits for the manager; key results too
    resp = _post_objective(dev, cycle.id, "individual", "我的目标", parent_id=team.id)
    assert resp.status_code == 303
    mine = db.session.scalar(select(Objective).where(Objective.level == "individual"))
    assert mine.status == "pending" and mine.owner_id == o.dev.id
    token = csrf_token(dev, f"/okr/objectives/{mine.id}")
    resp = dev.post(f"/okr/objectives/{mine.id}/krs", data={
        "csrf_token": token, "title": "上线", "kind": "yesno", "unit": "", "start_value": "",
        "target_value": "1", "weight": "1"})
    assert resp.status_code == 303
    kr = db.session.scalar(select(KeyResult).where(KeyResult.objective_id == mine.id))
    assert kr.status == "pending"
    # the manager was asked
    from portal.core.notify import Notification
    assert db.session.scalar(select(Notification).where(Notification.user_id == o.mgr_user.id,
                                                        Notification.template_key == "perf.objective_pending"))

    # an employee cannot approve (neither own nor someone else's); a colleague cannot even see it
    assert dev.post(f"/okr/objectives/{mine.id}/approve", data={"csrf_token": token}).status_code == 403
    assert other.get(f"/okr/objectives/{mine.id}").status_code == 404
    assert other.get(f"/okr/objectives/{team.id}").status_code == 200  # team objectives are open
    token_m = csrf_token(mgr, f"/okr/objectives/{mine.id}")
    assert mgr.post(f"/okr/objectives/{mine.id}/approve",
                    data={"csrf_token": token_m, "decision": "approve"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Objective, mine.id).status == "active"
    assert db.session.get(KeyResult, kr.id).status == "active"
    # approving again: nothing left -> 409
    assert mgr.post(f"/okr/objectives/{mine.id}/approve",
                    data={"csrf_token": token_m, "decision": "approve"}).status_code == 409
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"okr.objective_created", "okr.kr_created", "okr.objective_approved"} <= actions


def test_editing_rules_and_alignment_loops(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    comp_id, team_id, ind_id, _kr = okr_tree(app, o, cycle)
    with app.app_context():
        team = db.session.get(Objective, team_id)
        comp = db.session.get(Objective, comp_id)
        sub = services.create_objective(o.mgr_user, team.cycle, "team", "子团队", department=team.department,
                                        parent=team)
        db.session.commit()
        # team -> sub -> team would loop
        try:
            services.update_objective(o.mgr_user, team, team.title, "", sub, 1)
            raise AssertionError("loop accepted")
        except services.PerfError as exc:
            assert exc.code == "parent_cycle"
        db.session.rollback()
        ind = db.session.get(Objective, ind_id)
        try:
            services.create_objective(o.hr_user, comp.cycle, "team", "x", department=team.department, parent=ind)
            raise AssertionError("alignment to an individual objective accepted")
        except services.PerfError as exc:
            assert exc.code == "parent_level"
        db.session.rollback()
    other = _client(app, o.other_user)
    assert other.get(f"/okr/objectives/{team_id}/edit").status_code == 403
    dev = _client(app, o.dev_user)
    assert dev.get(f"/okr/objectives/{team_id}/edit").status_code == 403
    assert dev.get(f"/okr/objectives/{ind_id}/edit").status_code == 200
    # an employee's edit of an approved objective goes back to the manager
    token = csrf_token(dev, f"/okr/objectives/{ind_id}/edit")
    resp = dev.post(f"/okr/objectives/{ind_id}/edit", data={"csrf_token": token, "title": "完成支付模块 v2",
                                                            "description": "", "parent_id": team_id,
                                                            "link_weight": "2"})
    assert resp.status_code == 303
    db.session.expire_all()
    ind = db.session.get(Objective, ind_id)
    assert ind.status == "pending" and ind.link_weight == 2


def test_checkin_history_progress_and_monthly_completion(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    comp_id, team_id, ind_id, kr_id = okr_tree(app, o, cycle)
    dev = _client(app, o.dev_user)
    page = dev.get(f"/okr/krs/{kr_id}")
    assert page.status_code == 200 and 'id="checkin"' in page.get_data(as_text=True)
    token = csrf_token(dev, f"/okr/krs/{kr_id}")

    bad = dev.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "value": "abc", "confidence": "7"})
    assert bad.status_code == 422
    bad = dev.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "value": "5", "confidence": "11"})
    assert bad.status_code == 422
    assert _count(CheckIn) == 0

    for value, conf in (("30", "6"), ("45", "8")):
        resp = dev.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "value": value,
                                                            "confidence": conf, "comment": "进展顺利"},
                        headers={"HX-Request": "true"})
        assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "checkin-history" in html and "<svg" in html and "polyline" in html
    rows = db.session.scalars(select(CheckIn).order_by(CheckIn.id)).all()
    assert [(r.previous_value, r.value, r.confidence) for r in rows] == [(0, 30, 6), (30, 45, 8)]
    assert rows[-1].progress == D("0.45")
    db.session.expire_all()
    assert db.session.get(KeyResult, kr_id).current_value == 45
    month = db.session.scalar(select(MonthlyCompletion))
    assert month.employee_id == o.dev.id and month.completion == D("45.00")

    # roll-up through the alignment: individual 45 % -> team (only child) 45 % -> company 45 %
    with app.app_context():
        _objs, _krs, res = services.cycle_progress(cycle.id)
        assert res.objective[ind_id] == D("0.45") and res.objective[team_id] == D("0.45")
        assert res.objective[comp_id] == D("0.45")

    # only the owner checks in on an individual key result
    mgr = _client(app, o.mgr_user)
    t2 = csrf_token(mgr, f"/okr/krs/{kr_id}")
    assert mgr.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": t2, "value": "99", "confidence": "5"}).status_code == 403
    other = _client(app, o.other_user)
    assert other.get(f"/okr/krs/{kr_id}").status_code == 404
    assert _count(AuditEvent, AuditEvent.action == "okr.checkin") == 2


def test_closed_cycle_refuses_checkins(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    *_ids, kr_id = okr_tree(app, o, cycle)
    hr = _client(app, o.hr_user)
    token = csrf_token(hr, "/performance/cycles")
    assert hr.post(f"/performance/cycles/{cycle.id}/close", data={"csrf_token": token}).status_code == 303
    assert hr.post(f"/performance/cycles/{cycle.id}/close", data={"csrf_token": token}).status_code == 409
    dev = _client(app, o.dev_user)
    token = csrf_token(dev, f"/okr/krs/{kr_id}")
    assert dev.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "value": "1", "confidence": "5"}).status_code == 403


def test_checkin_reminders_are_scheduled_once_and_stop_after_checkin(app, make):
    o = build_org(make)
    with app.app_context():
        from portal.core.ui import local_today
        cycle = services.create_cycle(o.hr_user, "year", local_today().year, None, 25)
        db.session.commit()
    with app.app_context():
        from portal.performance.models import Cycle
        services.open_cycle(db.session.get(Cycle, cycle.id), o.hr_user)
        db.session.commit()
    *_ids, kr_id = okr_tree(app, o, cycle)
    with app.app_context():
        assert services.schedule_checkin_reminders() == 1
        assert services.schedule_checkin_reminders() == 0  # idempotent
        db.session.commit()
    rows = db.session.scalars(select(reminders.Reminder)).all()
    assert {r.user_id for r in rows} == {o.dev_user.id}
    assert all(r.kind.startswith("okr.checkin.") and r.done_at is None for r in rows)
    dev = _client(app, o.dev_user)
    token = csrf_token(dev, f"/okr/krs/{kr_id}")
    dev.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "value": "10", "confidence": "5"})
    db.session.expire_all()
    assert all(r.done_at is not None for r in db.session.scalars(select(reminders.Reminder)))


def _count_queries(app, fn):
    statements = []

    def listener(conn, cursor, statement, *args):
        statements.append(statement)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(statements)


def test_alignment_tree_query_count_does_not_grow_with_the_tree(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    comp_id, team_id, ind_id, _kr = okr_tree(app, o, cycle)
    hr = _client(app, o.hr_user)
    hr.get(f"/okr/tree?cycle={cycle.id}")
    small = _count_queries(app, lambda: hr.get(f"/okr/tree?cycle={cycle.id}"))
    with app.app_context():
        team = db.session.get(Objective, team_id)
        for i in range(12):
            e = make.employee(f"员工{i}", department=o.rd, manager=o.mgr)
            obj = services.create_objective(o.hr_user, team.cycle, "individual", f"目标{i}",
                                            owner=db.session.get(type(e), e.id), parent=team)
            for j in range(3):
                services.add_key_result(o.hr_user, obj, f"KR{j}", "milestone", "", "0", None, "1",
                                        milestones=["设计", "开发", "上线"])
        db.session.commit()
    resp = hr.get(f"/okr/tree?cycle={cycle.id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "目标11" in html and html.count("<details") >= 15
    big = _count_queries(app, lambda: hr.get(f"/okr/tree?cycle={cycle.id}"))
    assert big == small, (small, big)
    assert big <= 15
    # a colleague from another department sees the company and team levels, no individual objectives
    other = _client(app, o.other_user)
    html = other.get(f"/okr/tree?cycle={cycle.id}").get_data(as_text=True)
    assert "交付新版本" in html and "完成支付模块" not in html and "目标3" not in html
    # the department filter
    html = hr.get(f"/okr/tree?cycle={cycle.id}&dept={o.rd.id}").get_data(as_text=True)
    assert "交付新版本" in html and "营收增长" not in html


def test_team_report_and_xlsx_export(app, make, redis_url):
    """The export runs as a background task with a progress page; the download is the XLSX."""
    from openpyxl import load_workbook

    from portal.core import tasks
    from tests.services import run_worker
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    *_ids, kr_id = okr_tree(app, o, cycle)
    mgr = _client(app, o.mgr_user)
    html = mgr.get(f"/okr/team?cycle={cycle.id}").get_data(as_text=True)
    missing = html.split('id="not-checked-in"')[1].split("</section>")[0]
    assert "王开发" in missing
    assert "赵销售" not in html  # not in the manager's scope
    dev = _client(app, o.dev_user)
    token = csrf_token(dev, f"/okr/krs/{kr_id}")
    dev.post(f"/okr/krs/{kr_id}/checkins", data={"csrf_token": token, "value": "80", "confidence": "9"})
    html = mgr.get(f"/okr/team?cycle={cycle.id}").get_data(as_text=True)
    assert "王开发" not in html.split('id="not-checked-in"')[1].split("</section>")[0]
    token_m = csrf_token(mgr, f"/okr/team?cycle={cycle.id}")
    assert mgr.get(f"/okr/team/export?cycle={cycle.id}").status_code == 405  # starting is a POST
    resp = mgr.post("/okr/team/export", data={"csrf_token": token_m, "cycle": cycle.id})
    assert resp.status_code == 303
    task = db.session.scalar(select(tasks.BackgroundTask))
    assert task.kind == "perf.okr_export" and task.owner_id == o.mgr_user.id and task.status == "queued"
    assert resp.headers["Location"].endswith(f"/tasks/{task.id}")
    page = mgr.get(f"/tasks/{task.id}")
    assert page.status_code == 200 and 'hx-trigger="every 2s"' in page.get_data(as_text=True)
    assert _count(AuditEvent, AuditEvent.action == "okr.report_export_started") == 1
    run_worker(app)
    db.session.expire_all()
    task = db.session.get(tasks.BackgroundTask, task.id)
    assert task.status == "done", task.error
    assert task.done == task.total == 2  # the manager himself and 王开发 (his scope)
    assert mgr.get(f"/tasks/{task.id}/status", headers={"HX-Request": "true"}).status_code == 286
    dl = mgr.get(f"/tasks/{task.id}/download")
    assert dl.status_code == 200
    ws = load_workbook(io.BytesIO(dl.data)).active
    rows = {r[1]: r for r in ws.iter_rows(min_row=4, values_only=True)}
    assert rows["王开发"][4] == 80.0 and "赵销售" not in rows
    assert _count(AuditEvent, AuditEvent.action == "okr.report_exported") == 1
    # employees can neither start an export nor see the report; others cannot fetch the file
    token_d = csrf_token(dev, "/okr")
    assert dev.post("/okr/team/export", data={"csrf_token": token_d, "cycle": cycle.id}).status_code == 403
    assert dev.get(f"/okr/team?cycle={cycle.id}").status_code == 403
    assert dev.get(f"/tasks/{task.id}/download").status_code == 404


def test_my_okrs_page_and_pending_approvals(app, make):
    o = build_org(make)
    cycle = open_cycle(app, o.hr_user)
    okr_tree(app, o, cycle)
    dev = _client(app, o.dev_user)
    html = dev.get("/okr").get_data(as_text=True)
    assert "完成支付模块" in html and "完成接口数" in html
    _post_objective(dev, cycle.id, "individual", "学习新框架")
    html = _client(app, o.mgr_user).get("/okr").get_data(as_text=True)
    assert "pending-approvals" in html and "学习新框架" in html
    assert re.search(r'class="w-\d+"', html)  # progress bars as CSS classes, no style attributes
    assert "style=" not in html
