"""The hash chain: record() joins the caller's transaction, seal() numbers gaplessly, verify() and
the `flask audit` commands detect changed, deleted and missing rows."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from portal.core import audit
from portal.core.audit import GENESIS, AuditEvent, AuditSeal
from portal.core.db import db
from portal.org.models import Department
from tests.audit.helpers import add_events, raw, seqs_by_id


def _count(action: str | None = None) -> int:
    stmt = select(func.count()).select_from(AuditEvent)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return db.session.scalar(stmt)


def test_record_joins_the_callers_transaction(app):
    dept = Department(name="财务部", code="FIN")
    db.session.add(dept)
    audit.record("org.department_created", dept, {"name": "财务部"})
    db.session.rollback()
    assert _count() == 0
    assert db.session.scalar(select(func.count()).select_from(Department)) == 0

    dept = Department(name="财务部", code="FIN")
    db.session.add(dept)
    ev = audit.record("org.department_created", dept, {"name": "财务部"})
    db.session.commit()
    assert (ev.target_type, ev.target_id) == ("departments", str(dept.id))
    assert ev.seq is None and ev.hash is None  # sealing happens later
    assert ev.ip == "" and ev.request_id == ""  # no request: nothing invented
    assert ev.payload == {"name": "财务部"}


def test_seal_numbers_gaplessly_in_insertion_order_and_is_idempotent(app):
    ids = add_events(5)
    assert audit.seal() == 5
    assert seqs_by_id() == [(i, n) for n, i in zip(range(1, 6), ids)]
    rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    prev = GENESIS
    for ev in rows:
        assert ev.prev_hash == prev
        assert ev.hash == audit.event_hash(ev, ev.seq, prev)
        prev = ev.hash
    hashes = [ev.hash for ev in rows]

    assert audit.seal() == 0  # nothing pending: nothing changes
    db.session.expire_all()
    assert [ev.hash for ev in db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq))] == hashes

    more = add_events(2)
    assert audit.seal(batch=1) == 2  # several batches continue the same chain
    assert seqs_by_id()[-2:] == [(more[0], 6), (more[1], 7)]
    head = db.session.get(AuditSeal, 1)
    db.session.refresh(head)
    assert head.last_seq == 7
    assert head.last_hash == db.session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == 7))
    assert audit.verify().ok


def test_seal_max_batches_and_progress(app):
    add_events(5)
    seen: list[int] = []
    assert audit.seal(batch=2, max_batches=2, progress=seen.append) == 4
    assert seen == [2, 2]
    assert audit.verify().unsealed == 1


@pytest.mark.parametrize("head_exists", [False, True], ids=["first-seal", "steady"])
def test_concurrent_sealers_leave_no_gaps_or_duplicates(app, head_exists):
    if head_exists:
        audit.seal()  # creates the seal head row
    add_events(60)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def sealer():
        try:
            start.wait()
            for _ in range(5):
                audit.seal(batch=7)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            db.session.remove()

    def writer():
        try:
            start.wait()
            for i in range(20):
                audit.record("test.concurrent", None, {"i": i})
                db.session.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            db.session.remove()

    threads = [threading.Thread(target=sealer) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    audit.seal()
    rows = seqs_by_id()
    assert len(rows) == 80
    assert sorted(seq for _id, seq in rows) == list(range(1, 81))
    result = audit.verify()
    assert result.ok and result.checked == 80 and result.unsealed == 0


def test_verify_reports_unsealed_rows(app):
    add_events(3)
    audit.seal()
    add_events(2)
    result = audit.verify()
    assert result.ok
    assert (result.checked, result.unsealed, result.last_seq) == (3, 2, 3)


def test_verify_empty_trail_is_intact(app):
    result = audit.verify()
    assert result.ok and result.checked == 0 and result.last_seq == 0


@pytest.mark.parametrize("column, value", [("data", '{"i":99}'), ("actor_name", "someone-else"),
                                           ("ip", "10.9.9.9"), ("action", "test.other")])
def test_changed_row_is_named(app, column, value):
    add_events(5)
    audit.seal()
    raw(f"UPDATE audit_events SET {column} = :v WHERE seq = 3", v=value)
    result = audit.verify()
    assert not result.ok
    assert result.first_broken_seq == 3
    assert result.checked == 2


def test_deleted_middle_row_is_named(app):
    add_events(5)
    audit.seal()
    raw("DELETE FROM audit_events WHERE seq = 2")
    result = audit.verify()
    assert not result.ok and result.first_broken_seq == 2
    assert "missing" in result.reason


def test_deleted_last_row_is_detected(app):
    add_events(5)
    audit.seal()
    raw("DELETE FROM audit_events WHERE seq = 5")
    result = audit.verify()
    assert not result.ok and result.first_broken_seq == 5


def test_deleted_seal_head_is_detected(app):
    add_events(3)
    audit.seal()
    raw("DELETE FROM audit_seal")
    result = audit.verify()
    assert not result.ok and result.first_broken_seq == 4


# ---------------------------------------------------------------- CLI

def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["audit", *args])


def test_cli_seal_and_verify_intact(app):
    add_events(4)
    result = _cli(app, "seal")
    assert result.exit_code == 0, result.output
    assert "sealed 4 events" in result.output
    result = _cli(app, "verify")
    assert result.exit_code == 0, result.output
    assert "checked: 4, unsealed: 0, last seq: 4" in result.output
    assert "chain intact" in result.output


def test_cli_verify_reports_unsealed_and_can_seal_first(app):
    add_events(3)
    result = _cli(app, "verify")
    assert result.exit_code == 0
    assert "checked: 0, unsealed: 3, last seq: 0" in result.output
    result = _cli(app, "verify", "--seal")
    assert result.exit_code == 0
    assert "sealed 3 events" in result.output
    assert "checked: 3, unsealed: 0, last seq: 3" in result.output


def test_cli_verify_names_updated_row(app):
    add_events(6)
    audit.seal()
    raw("UPDATE audit_events SET data = :d WHERE seq = 4", d='{"i":3,"forged":true}')
    result = _cli(app, "verify")
    assert result.exit_code == 1
    assert "first broken sequence: 4 (" in result.output


def test_cli_verify_names_deleted_middle_and_last_rows(app):
    add_events(6)
    audit.seal()
    raw("DELETE FROM audit_events WHERE seq = 6")
    result = _cli(app, "verify")
    assert result.exit_code == 1
    assert "first broken sequence: 6 (" in result.output
    raw("DELETE FROM audit_events WHERE seq = 3")
    result = _cli(app, "verify")
    assert result.exit_code == 1
    assert "first broken sequence: 3 (" in result.output


def test_cli_long_runs_show_progress(app):
    add_events(25)
    result = _cli(app, "seal", "--batch", "10")
    assert result.exit_code == 0
    assert "sealing" in result.output and "sealed 25 events" in result.output
    result = _cli(app, "verify", "--chunk", "10")
    assert result.exit_code == 0
    assert "verifying" in result.output and "checked: 25" in result.output


def test_seal_job_function(app):
    from portal.audit.jobs import seal_pending
    add_events(2)
    assert seal_pending() == 2
    assert seal_pending() == 0
