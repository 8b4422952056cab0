"""Offboarding rules beyond the main story: probation notice, termination with waivers (story 1),
rejection sends an item back, truly concurrent approvals, HR template editing, board order, reminders,
revocation at the last working day."""
from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select

from portal.core.audit import AuditEvent
from portal.core.db import db, utcnow
from portal.core.models import User
from portal.core.reminders import Reminder
from portal.offboarding.models import (ChecklistItem, ChecklistTemplate, Offboarding, RevocationRun,
                                       SignoffStep, TemplateItem)
from portal.org.models import Employee
from tests.offboarding.conftest import as_user, post, strip, text, upload


def _ob() -> Offboarding:
    db.session.rollback()
    return db.session.scalar(select(Offboarding))


def _start(app, cast, hr):
    ob = _ob()
    resp = post(hr, f"/offboarding/{ob.id}/start", {"successor": cast.successor.employee.emp_no,
                                                    "template": str(cast.template_id)})
    assert resp.status_code == 303, text(resp)
    return _ob()


def _resign(app, cast):
    leaver = as_user(app, cast.leaver)
    assert post(leaver, "/offboarding/resign", {"confirm": "y"}, token_path="/offboarding/resign").status_code == 303
    return leaver


def _close_all_items(app, cast, leaver):
    todo = [(i.id, i.title, i.responsible) for i in _ob().items]
    by = {"leaver": leaver, "successor": as_user(app, cast.successor), "finance": as_user(app, cast.finance),
          "it": as_user(app, cast.it)}
    for item_id, title, responsible in todo:
        if responsible == "leaver":
            from tests.conftest import csrf_token
            resp = leaver.post(f"/offboarding/items/{item_id}/fill", data={"note": "ok", "file": upload(),
                               "csrf_token": csrf_token(leaver, "/")}, content_type="multipart/form-data")
        else:
            resp = post(by[responsible], f"/offboarding/items/{item_id}/confirm")
        assert resp.status_code == 303, (title, resp.status_code)
    assert _ob().stage == "signoff"


def test_probation_notice_is_three_days(app, make, cast):
    from portal.core.ui import local_today
    with app.app_context():
        today = local_today()
    emp = db.session.get(Employee, cast.leaver.employee_id)
    emp.probation_end = today + dt.timedelta(days=20)
    db.session.commit()
    _resign(app, cast)
    ob = _ob()
    assert ob.notice_days == 3 and ob.last_day == today + dt.timedelta(days=3)
    # a second resignation while one is open is refused
    leaver = as_user(app, cast.leaver)
    assert post(leaver, "/offboarding/resign", {"confirm": "y"}, token_path="/offboarding/resign").status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Offboarding)) == 1


def test_absconded_leaver_termination_closed_with_waivers(app, cast):
    """Story 1: no handover was ever done; HR waives each item with a reason and evidence."""
    hr = as_user(app, cast.hr)
    resp = post(hr, "/offboarding/terminate", {"employee": cast.leaver.employee.emp_no,
                                               "last_day": "2026-12-01", "reason": "连续旷工五天"},
                token_path="/offboarding/terminate")
    assert resp.status_code == 303
    ob = _start(app, cast, hr)
    assert ob.kind == "termination"
    first = ob.items[0]
    resp = post(hr, f"/offboarding/items/{first.id}/waive", {"reason": "失联，无法交接"})
    assert resp.status_code == 422 and "evidence" in text(resp).lower()
    from tests.conftest import csrf_token
    for item_id in [i.id for i in ob.items]:
        resp = hr.post(f"/offboarding/items/{item_id}/waive", data={
            "reason": "员工失联，快递送达终止通知", "evidence": upload("courier.pdf"),
            "csrf_token": csrf_token(hr, "/")}, content_type="multipart/form-data")
        assert resp.status_code == 303
    ob = _ob()
    assert {i.status for i in ob.items} == {"waived"} and ob.stage == "signoff"
    # sign-off still needed; the leaver's signature is waived by HR with a reason
    step_ids = [s.id for s in ob.current_steps]
    for who, step_id in zip((cast.successor, cast.head, cast.finance, cast.hr), step_ids):
        assert post(as_user(app, who), f"/offboarding/{ob.id}/steps/{step_id}/approve").status_code == 303
    resp = post(hr, f"/offboarding/{ob.id}/complete")
    assert resp.status_code == 409 and "Signature of the leaver" in text(resp)
    assert post(hr, f"/offboarding/{ob.id}/signature-waiver", {"reason": "失联"}).status_code == 303
    from tests.conftest import PASSWORD
    assert post(as_user(app, cast.successor), f"/offboarding/{ob.id}/sign", {"password": PASSWORD}).status_code == 303
    assert post(hr, f"/offboarding/{ob.id}/complete").status_code == 303
    ob = _ob()
    assert ob.stage == "completed"
    page = strip(text(hr.get(f"/offboarding/{ob.id}/evidence")))
    assert page.count("WAIVED") == 4 and "员工失联" in page and "失联" in page
    waived = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "offboarding.item_waived")).all()
    assert len(waived) == 4 and all(e.payload["evidence_sha256"] for e in waived)


def test_rejection_sends_the_item_back_and_restarts_the_chain(app, cast):
    leaver = _resign(app, cast)
    hr = as_user(app, cast.hr)
    _start(app, cast, hr)
    _close_all_items(app, cast, leaver)
    succ = as_user(app, cast.successor)
    head = as_user(app, cast.head)
    ob = _ob()
    step_ids = [s.id for s in ob.current_steps]
    item = next(i for i in ob.items if i.title == "客户资料交接")
    assert post(succ, f"/offboarding/{ob.id}/steps/{step_ids[0]}/approve").status_code == 303
    resp = post(head, f"/offboarding/{ob.id}/steps/{step_ids[1]}/reject", {"item_id": str(item.id),
                                                                          "reason": ""})
    assert resp.status_code == 422
    resp = post(head, f"/offboarding/{ob.id}/steps/{step_ids[1]}/reject",
                {"item_id": str(item.id), "reason": "缺少客户联系人名单"})
    assert resp.status_code == 303
    ob = _ob()
    assert ob.stage == "handover" and ob.signoff_round == 2
    again = db.session.get(ChecklistItem, item.id)
    assert again.status == "open" and again.rejection_reason == "缺少客户联系人名单"
    assert [s.status for s in ob.current_steps] == ["pending"] * 4
    old = db.session.scalars(select(SignoffStep).where(SignoffStep.round == 1).order_by(SignoffStep.seq)).all()
    assert [s.status for s in old[:2]] == ["approved", "rejected"]
    assert "缺少客户联系人名单" in text(leaver.get(f"/offboarding/{ob.id}"))


def test_two_simultaneous_approvals_of_one_step_give_one_result(app, cast):
    leaver = _resign(app, cast)
    hr = as_user(app, cast.hr)
    _start(app, cast, hr)
    _close_all_items(app, cast, leaver)
    ob = _ob()
    ids = {s.role: s.id for s in ob.current_steps}
    for role, who in (("successor", cast.successor), ("head", cast.head), ("finance", cast.finance)):
        assert post(as_user(app, who), f"/offboarding/{ob.id}/steps/{ids[role]}/approve").status_code == 303
    hr_step = next(s for s in _ob().current_steps if s.role == "hr")
    clients = [as_user(app, cast.hr), as_user(app, cast.hr2)]
    from tests.conftest import csrf_token
    tokens = [csrf_token(c, "/") for c in clients]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def approve(c, tok):
        barrier.wait()
        codes.append(c.post(f"/offboarding/{ob.id}/steps/{hr_step.id}/approve", data={"csrf_token": tok}).status_code)

    threads = [threading.Thread(target=approve, args=(c, t)) for c, t in zip(clients, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [303, 409]
    db.session.rollback()
    assert db.session.get(SignoffStep, hr_step.id).status == "approved"
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "offboarding.signoff_approved")) == 4


def test_hr_edits_templates_and_others_cannot(app, cast, make):
    hr = as_user(app, cast.hr)
    pos = make.position("销售代表")
    resp = post(hr, "/offboarding/templates", {"name": "销售代表模板", "department_id": "0",
                                               "position_id": str(pos.id), "active": "y"},
                token_path="/offboarding/templates/new")
    assert resp.status_code == 303
    t = db.session.scalar(select(ChecklistTemplate).where(ChecklistTemplate.name == "销售代表模板"))
    assert t.position_id == pos.id and t.department_id is None
    resp = post(hr, f"/offboarding/templates/{t.id}/items", {"title": "应收账款", "responsible": "finance",
                                                            "requires_upload": "y", "due_offset_days": "-5"})
    assert resp.status_code == 303
    assert post(hr, f"/offboarding/templates/{t.id}/items", {"title": "", "responsible": "finance",
                                                             "due_offset_days": "0"}).status_code == 422
    assert post(hr, f"/offboarding/templates/{t.id}/items", {"title": "x", "responsible": "boss",
                                                             "due_offset_days": "0"}).status_code == 422
    db.session.rollback()
    items = db.session.scalars(select(TemplateItem).where(TemplateItem.template_id == t.id)).all()
    assert [(i.title, i.responsible, i.requires_upload, i.due_offset_days) for i in items] == [
        ("应收账款", "finance", True, -5)]
    employee = as_user(app, cast.successor)
    assert employee.get("/offboarding/templates").status_code == 403
    assert post(employee, f"/offboarding/templates/{t.id}/items/{items[0].id}/delete").status_code == 403
    assert post(hr, f"/offboarding/templates/{t.id}/items/{items[0].id}/delete").status_code == 303
    # the most specific template wins: position match beats the department template
    emp = db.session.get(Employee, cast.leaver.employee_id)
    emp.position_id = pos.id
    db.session.commit()
    with app.app_context():
        from portal.offboarding import services
        assert services.pick_template(db.session.get(Employee, emp.id)).name == "销售代表模板"


def test_board_overdue_first_queues_and_reminders(app, make, cast):
    leaver = _resign(app, cast)
    hr = as_user(app, cast.hr)
    ob = _start(app, cast, hr)
    # reminders: 3 days before each due date and overdue repeats, for the responsible people
    rem = db.session.scalars(select(Reminder).where(Reminder.subject_type == "checklist_items")).all()
    item = next(i for i in ob.items if i.responsible == "finance")
    mine = [r for r in rem if r.subject_id == str(item.id)]
    assert {r.user_id for r in mine} >= {cast.finance.id, cast.leaver.id}
    assert {r.kind for r in mine} == {"offboarding.item", "offboarding.item.overdue"}
    before = next(r for r in mine if r.kind == "offboarding.item")
    assert before.deadline - before.next_at == dt.timedelta(days=3)
    assert "sms" in before.channels
    # a second leaver whose item is overdue comes first on the board
    other = make.user(roles=("employee",), username="late_one", name="晚到者", department=cast.dept)
    with app.app_context():
        from portal.offboarding import services
        ob2 = services.submit_resignation(db.session.get(User, other.id), "")
        db.session.commit()
    post(hr, f"/offboarding/{ob2.id}/start", {"successor": cast.successor.employee.emp_no,
                                              "template": str(cast.template_id)})
    db.session.rollback()
    late = db.session.scalars(select(ChecklistItem).where(ChecklistItem.offboarding_id == ob2.id)).all()
    for i in late:
        i.due_date = dt.date(2020, 1, 1)
    db.session.commit()
    body = strip(text(hr.get("/offboarding")))
    assert body.index("晚到者") < body.index("李娜") and "overdue" in body
    # queues: finance sees the item to confirm, the leaver her own checklist
    assert "应收账款核对" in text(as_user(app, cast.finance).get("/offboarding/queue"))
    assert "Open my checklist" in text(leaver.get("/offboarding/queue"))
    # item completion stops its reminders
    assert post(as_user(app, cast.finance), f"/offboarding/items/{item.id}/confirm").status_code == 303
    db.session.rollback()
    assert all(r.done_at for r in db.session.scalars(select(Reminder).where(Reminder.subject_id == str(item.id))))


def test_revocation_at_the_last_working_day_is_scheduled_and_swept(app, cast, private_redis, smtp_server):
    app.config["OFFBOARDING_REVOKE_ON"] = "last_day"
    try:
        _resign(app, cast)
    finally:
        app.config["OFFBOARDING_REVOKE_ON"] = "completion"
    ob = _ob()
    run = db.session.scalar(select(RevocationRun))
    assert ob.revoke_on == "last_day" and run.status == "scheduled" and run.due_at > utcnow()
    from portal.offboarding import revocation
    with app.app_context():
        assert revocation.sweep() == 0  # not due yet
        assert revocation.sweep(now=run.due_at + dt.timedelta(minutes=1)) == 1
    # HR moves the last day: the scheduled revocation moves with it
    hr = as_user(app, cast.hr)
    new_day = ob.last_day + dt.timedelta(days=7)
    assert post(hr, f"/offboarding/{ob.id}/dates", {"last_day": new_day.isoformat(),
                                                    "revoke_on": "last_day"}).status_code == 303
    db.session.rollback()
    moved = db.session.scalar(select(RevocationRun))
    assert moved.due_at - run.due_at == dt.timedelta(days=7)
