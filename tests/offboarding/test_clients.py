"""Client records: role-scoped lists, detail and export, all audited; orders in fen; invalid input 422."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.offboarding.models import Client, ClientOrder
from tests.offboarding.conftest import as_user, post, text


def _events(action):
    db.session.rollback()
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_visibility_own_team_all_and_every_view_audited(app, make, cast):
    other_dept = make.department("市场部")
    outsider = make.user(roles=("employee",), username="outsider", department=other_dept)
    db.session.add(Client(name="外部客户", owner_id=outsider.employee_id))
    db.session.commit()

    leaver = as_user(app, cast.leaver)
    body = text(leaver.get("/clients"))
    assert "顺丰物流" in body and "中远海运" in body and "外部客户" not in body
    listed = _events("client.list_viewed")[-1]
    assert sorted(listed.payload["client_ids"]) == sorted(cast.client_ids) and listed.actor_id == cast.leaver.id

    head = as_user(app, cast.head)  # the department head sees the team's clients, not others'
    body = text(head.get("/clients"))
    assert "顺丰物流" in body and "外部客户" not in body
    hr = as_user(app, cast.hr)  # HR sees all
    assert "外部客户" in text(hr.get("/clients"))

    other = db.session.scalar(select(Client).where(Client.name == "外部客户"))
    assert leaver.get(f"/clients/{other.id}").status_code == 404
    assert leaver.get(f"/clients/{cast.client_ids[0]}").status_code == 200
    viewed = _events("client.viewed")
    assert [(e.actor_id, e.target_id) for e in viewed] == [(cast.leaver.id, str(cast.client_ids[0]))]

    resp = leaver.get("/clients/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    csv_text = resp.get_data(as_text=True)
    assert "顺丰物流" in csv_text and "外部客户" not in csv_text
    exported = _events("client.exported")[-1]
    assert exported.actor_id == cast.leaver.id and sorted(exported.payload["client_ids"]) == sorted(cast.client_ids)


def test_orders_are_stored_in_fen_and_bad_amounts_are_refused(app, cast):
    c = as_user(app, cast.leaver)
    cid = cast.client_ids[0]
    resp = post(c, f"/clients/{cid}/orders", {"order_no": "SO-1", "amount": "1,234.50"})
    assert resp.status_code == 303
    order = db.session.scalar(select(ClientOrder).where(ClientOrder.order_no == "SO-1"))
    assert order.amount_fen == 123450 and order.created_by_id == cast.leaver.id
    for bad in ("12.345", "-1", "abc"):
        resp = post(c, f"/clients/{cid}/orders", {"order_no": "SO-2", "amount": bad})
        assert resp.status_code == 422, bad
        assert "two decimals" in text(resp)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ClientOrder)) == 1
    assert [e.payload["amount_fen"] for e in _events("order.created")] == [123450]


def test_create_client_contact_receivable_and_history(app, cast):
    c = as_user(app, cast.successor)
    resp = post(c, "/clients", {"name": "德邦快递", "contract_no": "HT-9", "contract_end": "2027-06-30",
                                "preferences": "月结"}, token_path="/clients/new")
    assert resp.status_code == 303
    client = db.session.scalar(select(Client).where(Client.name == "德邦快递"))
    assert client.owner_id == cast.successor.employee_id
    assert post(c, f"/clients/{client.id}/contacts", {"name": "赵总", "phone": "13800000000"}).status_code == 303
    assert post(c, f"/clients/{client.id}/receivables", {"amount": "500", "due_date": "2027-01-31"}).status_code == 303
    assert post(c, f"/clients/{client.id}/interactions", {"channel": "phone", "summary": "续约"}).status_code == 303
    assert post(c, "/clients", {"name": ""}, token_path="/clients/new").status_code == 422
    body = text(c.get(f"/clients/{client.id}"))
    assert "赵总" in body and "500.00" in body and "续约" in body
    # someone outside the scope cannot write to it
    other = as_user(app, cast.leaver)
    assert post(other, f"/clients/{client.id}/orders", {"order_no": "X", "amount": "1"}).status_code == 404
