"""Faults (issue 9): real parts are broken while users act, and the portal stays correct.

* Redis stopped while a user submits (resignation, formal notice, leave request): the submit succeeds, the
  outbox keeps the messages, and after Redis returns the sweep + a worker deliver each message exactly once
  to the real SMTP sink / SMS gateway, even when the sweep runs twice. (Clock-in sends no message, so the
  attendance case is the leave request that notifies the manager.)
* The database connection dies in the middle of a multi-statement request: the transaction is rolled
  back entirely, the user sees the 500 page with the request id (= X-Request-ID), the next request works.
* Duplicate submissions (double click with the same form, two tabs, real concurrent requests): one record.
* Two approvers at once: one state change, one audit row, the other gets a clear conflict message.

Already covered elsewhere and not repeated here: a worker SIGKILLed mid-delivery
(tests/notify/test_worker_process.py) and mid-revocation (tests/offboarding/test_revocation.py), two
simultaneous sign-off approvals (tests/offboarding/test_rules.py), a sequential double tap of clock-in
(tests/attendance/test_clock.py), a notice sent twice (tests/notices/test_notices.py).
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.core import notify
from portal.core.audit import AuditEvent
from portal.core.db import db
from tests.conftest import PASSWORD, csrf_token
from tests.security.fault_support import ConnectionKiller, body, client_for, count, post, race, snapshot
from tests.services import run_worker

pytestmark = pytest.mark.fault

ROOT = Path(__file__).resolve().parents[2]
N = notify.Notification


# ---------------------------------------------------------------- people

def _org(make):
    """A department headed by 王经理, two reports (李娜, 张伟), HR 陈人事. Chinese UI (the default)."""
    from portal.org.models import Department
    head = make.user(roles=("employee", "manager"), name="王经理", mobile="13900000001", email="head@example.com")
    dept = make.department("销售部", head=head.employee)
    d = db.session.get(Department, dept.id)
    db.session.get(type(head.employee), head.employee_id).department_id = d.id
    db.session.commit()
    staff = make.user(roles=("employee",), name="李娜", department=dept, manager=head.employee,
                      mobile="13900000002", email="lina@example.com")
    other = make.user(roles=("employee",), name="张伟", department=dept, manager=head.employee,
                      mobile="13900000003", email="zhangwei@example.com")
    hr = make.user(roles=("employee", "hr"), name="陈人事", mobile="13900000004", email="hr@example.com")
    return head, staff, other, hr


def _compose(client, recipients, title="警告通知", text="连续三日未打卡，予以书面警告。"):
    from portal.notices.models import Notice
    resp = post(client, "/notices/new", {"kind": "warning", "title": title, "body": text,
                                         "recipients": "\n".join(recipients), "requires_ack": "y"},
                token_path="/notices/new")
    assert resp.status_code == 303, body(resp)[:1500]
    db.session.rollback()
    return db.session.scalar(select(Notice.id).order_by(Notice.id.desc()))


# ---------------------------------------------------------------- Redis stopped while a user submits

def _submit_resignation(app, head, staff, other, hr):
    c = client_for(app, staff)
    resp = post(c, "/offboarding/resign", {"reason": "个人发展", "confirm": "y"}, token_path="/offboarding/resign")
    from portal.offboarding.models import Offboarding
    assert count(Offboarding) == 1
    return resp, "offboardings"


def _submit_notice(app, head, staff, other, hr):
    c = client_for(app, hr)
    nid = _compose(c, [staff.employee.emp_no, other.employee.emp_no])
    resp = post(c, f"/notices/{nid}/send", token_path=f"/notices/{nid}")
    from portal.notices.models import Notice
    db.session.rollback()
    assert db.session.get(Notice, nid).status == "sent"
    return resp, "notice_recipients"


def _submit_leave(app, head, staff, other, hr):
    from portal.attendance.models import LeaveRequest
    c = client_for(app, staff)
    resp = post(c, "/attendance/leave", {"kind": "annual", "start_date": "2025-03-10", "start_half": "am",
                                         "end_date": "2025-03-11", "end_half": "pm", "reason": "家事"},
                token_path="/attendance/leave")
    assert count(LeaveRequest) == 1
    return resp, "attendance_leaves"


@pytest.mark.parametrize("submit", [_submit_resignation, _submit_notice, _submit_leave],
                         ids=["resignation", "formal-notice", "leave-request"])
def test_redis_down_at_submit_then_every_message_is_delivered_once(app, make, private_redis, smtp_server,
                                                                   sms_gateway, submit):
    head, staff, other, hr = _org(make)
    private_redis.stop()
    resp, related = submit(app, head, staff, other, hr)
    assert resp.status_code == 303, body(resp)[:1500]  # the submit succeeded although Redis is down

    db.session.rollback()
    rows = db.session.scalars(select(N).where(N.related_type == related)).all()
    outbound = [n for n in rows if n.channel in ("email", "sms")]
    assert outbound, "the submit wrote no outbound message"
    assert all(n.status == "pending" and n.attempts == 0 for n in outbound)  # kept in the outbox
    assert all(n.status == "sent" for n in rows if n.channel == "inapp")  # the inbox needs no Redis
    emails = {n.id for n in outbound if n.channel == "email"}
    sms = {n.id for n in outbound if n.channel == "sms"}

    private_redis.start()
    cli = app.test_cli_runner()
    for _ in range(2):  # the sweep runs twice (e.g. the clock and an operator): each message queued twice
        out = cli.invoke(args=["jobs", "sweep"])
        assert out.exit_code == 0 and f"re-queued {len(outbound)} message(s)" in out.output, out.output
    run_worker(app)
    with app.app_context():
        assert notify.sweep() == 0  # nothing left pending
    run_worker(app)

    db.session.rollback()
    assert {n.status for n in db.session.scalars(select(N).where(N.related_type == related))} == {"sent"}
    got_mail = [int(m["X-Portal-Notification"]) for m in smtp_server.messages]
    got_sms = [int(r["body"]["reference"][1:]) for r in sms_gateway.requests]
    assert sorted(got_mail) == sorted(emails)  # each email exactly once
    assert sorted(got_sms) == sorted(sms)  # each SMS exactly once
    assert all(n.attempts == 1 for n in db.session.scalars(select(N).where(N.id.in_(emails | sms))))


def test_clock_in_with_redis_down_succeeds_and_needs_no_queue(app, make, private_redis):
    """Clock-in writes no message (the punch and its audit row are the whole work): it must not depend on
    Redis at all."""
    from portal.attendance.models import Punch
    _head, staff, _other, _hr = _org(make)
    private_redis.stop()
    c = client_for(app, staff)
    t0 = time.monotonic()
    resp = post(c, "/attendance/clock", {"kind": "in"}, token_path="/attendance")
    assert resp.status_code == 303 and time.monotonic() - t0 < 5
    assert count(Punch) == 1 and count(N) == 0


# ---------------------------------------------------------------- a worker killed with SIGKILL mid-job

def _start_worker(app) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=app.config["DATABASE_URL"], REDIS_URL=app.config["REDIS_URL"],
               SMS_BACKEND="console", SECRET_KEY="test-secret-key-not-for-production")
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait(predicate, seconds: float = 60.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_worker_killed_mid_background_task_then_the_task_completes_once(app, make, redis_url, tmp_path):
    """A long task (the progress-bar kind: attendance recompute here) is mid-run in a real `python
    worker.py` when the worker is SIGKILLed. The task row says 'running' for ever unless the periodic
    sweep takes over a run left by a dead worker: after recovery it completes, once."""
    from portal.attendance.models import AttendanceDay
    from portal.core import tasks
    from portal.core.tasks import BackgroundTask
    _head, staff, other, hr = _org(make)
    (tmp_path / "hold").write_text("stall")
    with app.app_context():
        task_id = tasks.start("attendance.recompute", hr, "tests.security.fault_support.gated_recompute",
                              str(tmp_path), "2025-03-03", "2025-03-07").id
        db.session.commit()  # queued after commit

    def status():
        db.session.rollback()
        return db.session.get(BackgroundTask, task_id).status

    worker = _start_worker(app)
    try:
        assert _wait(lambda: (tmp_path / "entered").exists() and status() == "running", 120), \
            "the worker never started the task"
        os.killpg(worker.pid, signal.SIGKILL)  # mid-job
        worker.wait(10)
        assert status() == "running" and count(AttendanceDay) == 0

        (tmp_path / "hold").unlink()  # the stalled system is back
        worker = _start_worker(app)
        time.sleep(1.2)
        with app.app_context():  # the periodic tasks.sweep, with the dead run's lease shortened to 1 s
            assert tasks.sweep_queued(older_than=dt.timedelta(0), stale_after=dt.timedelta(seconds=1)) == 1
        assert _wait(lambda: status() == "done", 120), "the task did not complete after recovery"
        with app.app_context():
            assert tasks.sweep_queued(older_than=dt.timedelta(0), stale_after=dt.timedelta(seconds=1)) == 0
        time.sleep(0.5)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(10)
    assert (tmp_path / "entered").read_text() == "xx"  # the interrupted run and the one after recovery
    assert (tmp_path / "finished").read_text() == "x"  # completed exactly once
    db.session.rollback()
    task = db.session.get(BackgroundTask, task_id)
    assert task.finished_at is not None and task.error == "" and "20" in task.message
    # 2 staff + head + HR, Monday..Friday: one summary row per employee-day, none twice
    assert count(AttendanceDay) == 4 * 5


# ---------------------------------------------------------------- the database connection dies mid-request

@pytest.fixture
def real_error_pages(app):
    """The app answers unhandled errors with its 500 page, as in production (tests propagate them)."""
    app.config["PROPAGATE_EXCEPTIONS_IN_TESTS"] = False
    yield app
    app.config["PROPAGATE_EXCEPTIONS_IN_TESTS"] = True


def test_connection_killed_mid_request_rolls_back_everything(app, make, redis_url, real_error_pages):
    from portal.notices.models import Notice
    from portal.core import jobs
    _head, staff, other, hr = _org(make)
    c = client_for(app, hr)
    nid = _compose(c, [staff.employee.emp_no, other.employee.emp_no])
    token = csrf_token(c, f"/notices/{nid}")
    before = snapshot(db.engine)

    # Sending updates the notice, inserts 2 x 3 outbox rows (batched by shape inside a savepoint) and an
    # audit row: the connection dies before the 2nd outbox INSERT, after the update and the 1st insert ran.
    with ConnectionKiller(db.engine, nth=2, match="INSERT INTO notifications") as killer:
        resp = c.post(f"/notices/{nid}/send", data={"csrf_token": token})
    assert killer.killed_statement is not None, "the fault was not injected"

    assert resp.status_code == 500
    rid = resp.headers["X-Request-ID"]
    page = body(resp)
    assert len(rid) == 16 and f"<code>{rid}</code>" in page  # the id the user can quote to IT
    assert "系统出错，未保存任何内容。" in page
    assert snapshot(db.engine) == before  # nothing of the request is stored
    db.session.rollback()
    assert db.session.get(Notice, nid).status == "draft"
    assert jobs.get_queue("notify").count == 0  # no delivery queued for rolled-back rows

    # the pool recovers: the same action works on the next request
    resp = c.post(f"/notices/{nid}/send", data={"csrf_token": token})
    assert resp.status_code == 303
    db.session.rollback()
    assert db.session.get(Notice, nid).status == "sent"
    assert count(N, N.related_type == "notice_recipients") == 6
    assert count(AuditEvent, AuditEvent.action == "notice.sent") == 1


def test_connection_killed_at_commit_time_of_a_clock_in(app, make, real_error_pages):
    """The connection dies on the audit insert of a clock-in (the last write before commit): no punch, no
    summary, no audit row; the user gets the error page and the retry records the punch."""
    from portal.attendance.models import AttendanceDay, Punch
    _head, staff, _other, _hr = _org(make)
    c = client_for(app, staff)
    token = csrf_token(c, "/attendance")
    before = snapshot(db.engine)
    with ConnectionKiller(db.engine, nth=1, match="INSERT INTO audit_events") as killer:
        resp = c.post("/attendance/clock", data={"csrf_token": token, "kind": "in"})
    assert killer.killed_statement is not None
    assert resp.status_code == 500 and resp.headers["X-Request-ID"] in body(resp)
    assert snapshot(db.engine) == before
    resp = c.post("/attendance/clock", data={"csrf_token": token, "kind": "in"})
    assert resp.status_code == 303
    assert count(Punch) == 1 and count(AttendanceDay) == 1
    assert count(AuditEvent, AuditEvent.action == "attendance.punch") == 1


# ---------------------------------------------------------------- duplicate submissions

def test_resignation_double_click_gives_one_record(app, make):
    from portal.offboarding.models import Offboarding
    _head, staff, _other, _hr = _org(make)
    # double click: the same form (same token) posted twice
    c = client_for(app, staff)
    token = csrf_token(c, "/offboarding/resign")
    form = {"csrf_token": token, "reason": "个人发展", "confirm": "y"}
    first, second = c.post("/offboarding/resign", data=form), c.post("/offboarding/resign", data=form)
    assert first.status_code == 303
    assert second.status_code == 409 and "该员工已有进行中的离职流程。" in body(second)
    assert count(Offboarding) == 1
    assert count(AuditEvent, AuditEvent.action == "offboarding.resignation_submitted") == 1


def test_resignation_from_two_tabs_at_the_same_moment_gives_one_record(app, make):
    from portal.offboarding.models import Offboarding
    head, staff, _other, hr = _org(make)
    tabs = [client_for(app, staff), client_for(app, staff)]
    tokens = [csrf_token(t, "/offboarding/resign") for t in tabs]  # two tabs opened
    codes = race(*[lambda t=t, k=k: t.post("/offboarding/resign", data={
        "csrf_token": k, "reason": "个人发展", "confirm": "y"}) for t, k in zip(tabs, tokens)])
    assert sorted(r.status_code for r in codes) == [303, 409], [body(r)[:300] for r in codes]
    loser = next(r for r in codes if r.status_code == 409)
    assert "该员工已有进行中的离职流程。" in body(loser)
    assert count(Offboarding) == 1
    assert count(AuditEvent, AuditEvent.action == "offboarding.resignation_submitted") == 1
    # HR and the head are told once each (in-app + email)
    assert count(N, N.related_type == "offboardings", N.channel == "inapp") == 2


def test_clock_in_double_tap_at_the_same_moment_gives_one_punch(app, make):
    """DOMAIN.md: a second punch of the same kind within 60 s returns the first. Here the two taps
    arrive together (the sequential case is tests/attendance/test_clock.py)."""
    from portal.attendance.models import Punch
    _head, staff, _other, _hr = _org(make)
    tabs = [client_for(app, staff), client_for(app, staff)]
    tokens = [csrf_token(t, "/attendance") for t in tabs]
    res = race(*[lambda t=t, k=k: t.post("/attendance/clock", data={"csrf_token": k, "kind": "in"})
                 for t, k in zip(tabs, tokens)])
    assert [r.status_code for r in res] == [303, 303]
    assert count(Punch) == 1
    assert count(AuditEvent, AuditEvent.action == "attendance.punch") == 1


@pytest.mark.parametrize("concurrent", [False, True], ids=["double-click", "together"])
def test_leave_request_submitted_twice_gives_one_request(app, make, concurrent):
    from portal.attendance.models import LeaveRequest
    head, staff, _other, _hr = _org(make)
    form = {"kind": "annual", "start_date": "2025-03-10", "start_half": "am", "end_date": "2025-03-11",
            "end_half": "pm", "reason": "家事"}
    tabs = [client_for(app, staff), client_for(app, staff)]
    tokens = [csrf_token(t, "/attendance/leave") for t in tabs]
    calls = [lambda t=t, k=k: t.post("/attendance/leave", data={**form, "csrf_token": k})
             for t, k in zip(tabs, tokens)]
    res = race(*calls) if concurrent else [calls[0](), calls[1]()]
    assert sorted(r.status_code for r in res) == [303, 422], [body(r)[:300] for r in res]
    assert "您在其中部分日期已提交过请假申请。" in body(next(r for r in res if r.status_code == 422))
    assert count(LeaveRequest) == 1
    assert count(N, N.template_key == "attendance.leave_request", N.user_id == head.id, N.channel == "inapp") == 1


@pytest.mark.parametrize("concurrent", [False, True], ids=["double-click", "together"])
def test_correction_request_submitted_twice_gives_one_request(app, make, concurrent):
    from portal.attendance.models import Correction
    from tests.attendance.helpers import punch
    head, staff, _other, _hr = _org(make)
    with app.app_context():
        from portal.attendance import services
        services.default_rule().correction_deadline_day = 0
        db.session.commit()
    day = dt.date(2025, 3, 4)
    punch(app, staff, day, 8, 55, "in")
    form = {"work_date": day.isoformat(), "kind": "out", "time": "18:05", "reason": "忘记打卡"}
    tabs = [client_for(app, staff), client_for(app, staff)]
    tokens = [csrf_token(t, "/attendance/corrections") for t in tabs]
    calls = [lambda t=t, k=k: t.post("/attendance/corrections", data={**form, "csrf_token": k})
             for t, k in zip(tabs, tokens)]
    res = race(*calls) if concurrent else [calls[0](), calls[1]()]
    assert sorted(r.status_code for r in res) == [303, 422], [body(r)[:300] for r in res]
    assert "该打卡记录已有一条补卡申请在等待审批。" in body(next(r for r in res if r.status_code == 422))
    assert count(Correction) == 1
    assert count(N, N.template_key == "attendance.correction_request", N.channel == "inapp") == 1


@pytest.mark.parametrize("concurrent", [False, True], ids=["double-click", "together"])
def test_notice_acknowledged_twice_gives_one_signature(app, make, redis_url, concurrent):
    from portal.core.signatures import Signature
    from portal.notices.models import NoticeRecipient
    _head, staff, _other, hr = _org(make)
    h = client_for(app, hr)
    nid = _compose(h, [staff.employee.emp_no])
    assert post(h, f"/notices/{nid}/send", token_path=f"/notices/{nid}").status_code == 303
    tabs = [client_for(app, staff), client_for(app, staff)]
    tokens = [csrf_token(t, f"/notices/{nid}") for t in tabs]
    calls = [lambda t=t, k=k: t.post(f"/notices/{nid}/ack", data={"csrf_token": k, "password": PASSWORD})
             for t, k in zip(tabs, tokens)]
    res = race(*calls) if concurrent else [calls[0](), calls[1]()]
    assert [r.status_code for r in res] == [303, 303], [body(r)[:300] for r in res]
    assert count(Signature) == 1
    assert count(AuditEvent, AuditEvent.action == "notice.acknowledged") == 1
    db.session.rollback()
    rec = db.session.scalar(select(NoticeRecipient))
    assert rec.signature_id is not None
    # the second click is told, in Chinese, that it was already done
    page = body(tabs[0].get(f"/notices/{nid}")) + body(tabs[1].get(f"/notices/{nid}"))
    assert page.count("您已签收确认过此通知。") == 1


@pytest.mark.parametrize("concurrent", [False, True], ids=["double-click", "together"])
def test_exam_submitted_twice_is_graded_once(app, make, concurrent):
    from portal.training.models import Attempt
    from tests.training.helpers import build_course, enroll, finish_lessons
    trainer = make.user(roles=("employee", "trainer"))
    learner = make.user()
    cid = build_course(app, trainer, lessons=1)
    eid = enroll(app, cid, learner.employee)
    tabs = [client_for(app, learner), client_for(app, learner)]
    finish_lessons(tabs[0], eid)
    start = post(tabs[0], f"/training/learn/{eid}/exam", token_path=f"/training/learn/{eid}")
    assert start.status_code == 303, body(start)[:800]
    db.session.rollback()
    attempt = db.session.scalar(select(Attempt))
    page = f"/training/attempts/{attempt.id}"
    tokens = [csrf_token(t, page) for t in tabs]
    answers = {f"q{i.id}": "0" for i in attempt.items}
    calls = [lambda t=t, k=k: t.post(f"{page}/submit", data={**answers, "csrf_token": k})
             for t, k in zip(tabs, tokens)]
    res = race(*calls) if concurrent else [calls[0](), calls[1]()]
    assert [r.status_code for r in res] == [303, 303], [body(r)[:300] for r in res]
    assert all(r.headers["Location"].endswith(f"{page}/result") for r in res)
    assert count(Attempt) == 1
    db.session.rollback()
    a = db.session.get(Attempt, attempt.id)
    assert a.finished and a.closed_by == "submit" and a.score is not None
    assert count(AuditEvent, AuditEvent.action == "training.attempt_graded") == 1


# ---------------------------------------------------------------- two approvers at once

def _leave(app, staff):
    from portal.attendance.models import LeaveRequest
    c = client_for(app, staff)
    assert post(c, "/attendance/leave", {"kind": "annual", "start_date": "2025-03-10", "start_half": "am",
                                         "end_date": "2025-03-10", "end_half": "pm"},
                token_path="/attendance/leave").status_code == 303
    db.session.rollback()
    return db.session.scalar(select(LeaveRequest.id))


def _correction(app, staff):
    from portal.attendance.models import Correction
    from tests.attendance.helpers import punch
    with app.app_context():
        from portal.attendance import services
        services.default_rule().correction_deadline_day = 0
        db.session.commit()
    punch(app, staff, dt.date(2025, 3, 4), 8, 55, "in")
    c = client_for(app, staff)
    assert post(c, "/attendance/corrections", {"work_date": "2025-03-04", "kind": "out", "time": "18:05",
                                               "reason": "忘记打卡"},
                token_path="/attendance/corrections").status_code == 303
    db.session.rollback()
    return db.session.scalar(select(Correction.id))


@pytest.mark.parametrize("what", ["leave", "corrections"])
def test_manager_and_hr_decide_the_same_request_at_once(app, make, what):
    from portal.attendance.models import Correction, LeaveRequest
    head, staff, _other, hr = _org(make)
    rid = _leave(app, staff) if what == "leave" else _correction(app, staff)
    model = LeaveRequest if what == "leave" else Correction
    deciders = [client_for(app, head), client_for(app, hr)]
    tokens = [csrf_token(c, "/attendance/approvals") for c in deciders]
    res = race(*[lambda c=c, t=t, d=d: c.post(f"/attendance/{what}/{rid}/decide",
                                              data={"csrf_token": t, "decision": d})
                 for c, t, d in zip(deciders, tokens, ("approve", "reject"))])
    assert [r.status_code for r in res] == [303, 303], [body(r)[:300] for r in res]
    db.session.rollback()
    row = db.session.get(model, rid)
    assert row.status in ("approved", "rejected")
    prefix = "attendance.leave_" if what == "leave" else "attendance.correction_"
    decided = db.session.scalars(select(AuditEvent).where(AuditEvent.action.in_(
        [prefix + "approved", prefix + "rejected"]))).all()
    assert len(decided) == 1 and decided[0].action == prefix + row.status
    winner = next(i for i, u in enumerate((head, hr)) if u.id == row.decided_by_id)
    # the loser is told clearly, in Chinese, that someone else decided first
    page = body(deciders[1 - winner].get("/attendance/approvals"))
    assert "该申请已处理。" in page
    assert "该申请已处理。" not in body(deciders[winner].get("/attendance/approvals"))


def test_two_hr_approve_the_same_unfreeze_at_once(app, make):
    from portal.offboarding.models import Offboarding, UnfreezeRequest
    head, staff, _other, hr = _org(make)
    hr2 = make.user(roles=("employee", "hr"), name="周人事")
    leaver = client_for(app, staff)
    assert post(leaver, "/offboarding/resign", {"confirm": "y"}, token_path="/offboarding/resign").status_code == 303
    db.session.rollback()
    ob = db.session.scalar(select(Offboarding))
    until = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    h = client_for(app, head)
    assert post(h, f"/offboarding/{ob.id}/unfreeze", {"permission": "orders.create", "until": until,
                                                      "reason": "客户续单"}).status_code == 303
    db.session.rollback()
    req = db.session.scalar(select(UnfreezeRequest))
    approvers = [client_for(app, hr), client_for(app, hr2)]
    tokens = [csrf_token(c, "/") for c in approvers]
    res = race(*[lambda c=c, t=t: c.post(f"/offboarding/unfreeze/{req.id}/approve", data={"csrf_token": t, "as": "hr"})
                 for c, t in zip(approvers, tokens)])
    assert sorted(r.status_code for r in res) == [303, 409], [body(r)[:300] for r in res]
    loser = next(r for r in res if r.status_code == 409)
    assert "此步骤已由其他人处理，未做任何更改。" in body(loser)
    assert count(AuditEvent, AuditEvent.action == "offboarding.unfreeze_approved") == 1
    db.session.rollback()
    req = db.session.get(UnfreezeRequest, req.id)
    assert req.hr_by_id in (hr.id, hr2.id) and req.status == "pending"  # still waits for the manager


def test_manager_and_hr_answer_the_same_appeal_at_once(app, make):
    from portal.performance.models import Appeal, Review
    from tests.performance.test_reviews import _score, _setup
    o, _cycle, _tpl, review = _setup(app, make)
    assert _score(app, o, review).status_code == 303
    dev = client_for(app, o.dev_user)
    assert post(dev, f"/performance/reviews/{review.id}/appeal", {"reason": "第四季度交付未计入"},
                token_path=f"/performance/reviews/{review.id}").status_code == 303
    deciders = [client_for(app, o.mgr_user), client_for(app, o.hr_user)]
    tokens = [csrf_token(c, f"/performance/reviews/{review.id}") for c in deciders]
    res = race(*[lambda c=c, t=t, s=s: c.post(f"/performance/reviews/{review.id}/respond",
                                              data={"csrf_token": t, "response": "已核实", "new_score": s})
                 for c, t, s in zip(deciders, tokens, ("72", "90"))])
    assert sorted(r.status_code for r in res) == [303, 409], [body(r)[:300] for r in res]
    loser = next(r for r in res if r.status_code == 409)
    assert "其他人已先修改了此内容，请刷新后重试。" in body(loser)
    assert count(AuditEvent, AuditEvent.action == "perf.appeal_answered") == 1
    db.session.rollback()
    r = db.session.get(Review, review.id)
    a = db.session.scalar(select(Appeal))
    assert r.status == "employee" and a.responded_at is not None
    assert str(r.final_score) in ("72.00", "90.00") and a.responded_by_id in (o.mgr_user.id, o.hr_user.id)


def test_two_hr_approve_the_same_result_at_once(app, make):
    from portal.performance.models import Review
    from tests.performance.test_reviews import _score, _setup
    o, _cycle, _tpl, review = _setup(app, make)
    assert _score(app, o, review).status_code == 303
    dev = client_for(app, o.dev_user)
    assert post(dev, f"/performance/reviews/{review.id}/confirm", {"password": PASSWORD},
                token_path=f"/performance/reviews/{review.id}").status_code == 303
    hr2 = make.user(roles=("employee", "hr"), name="周人事")
    approvers = [client_for(app, o.hr_user), client_for(app, hr2)]
    tokens = [csrf_token(c, f"/performance/reviews/{review.id}") for c in approvers]
    res = race(*[lambda c=c, t=t: c.post(f"/performance/reviews/{review.id}/approve", data={"csrf_token": t})
                 for c, t in zip(approvers, tokens)])
    assert sorted(r.status_code for r in res) == [303, 409], [body(r)[:300] for r in res]
    assert "其他人已先修改了此内容，请刷新后重试。" in body(next(r for r in res if r.status_code == 409))
    assert count(AuditEvent, AuditEvent.action == "perf.result_approved") == 1
    db.session.rollback()
    assert db.session.get(Review, review.id).status == "approved"
