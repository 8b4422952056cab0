"""Client records: reading (scoped by role), writing, export and ownership transfer. No request object;
callers pass the acting user and commit. Every view and export of client records is audited."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation
from typing import Iterable, Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from portal.core import audit
from portal.core.db import db, utcnow
from portal.core.security import can, effective_permissions, employee_scope, is_manager_of, policy
from portal.offboarding.models import (Client, ClientContact, ClientInteraction, ClientOrder,
                                       ClientTransfer, Receivable)
from portal.org.models import Employee


class ClientError(ValueError):
    def __init__(self, code: str, field: str | None = None, **params):
        super().__init__(code)
        self.code, self.field, self.params = code, field, params


# ---------------------------------------------------------------- visibility

@policy("clients.view")
def can_view(user, client: Client) -> bool:
    """Own clients; a manager's team's; everything with clients.view_all."""
    if "clients.view_all" in effective_permissions(user):
        return True
    emp_id = getattr(user, "employee_id", None)
    if not emp_id or client.owner_id is None:
        return False
    if client.owner_id == emp_id:
        return True
    owner = client.owner if client.owner is not None else db.session.get(Employee, client.owner_id)
    return is_manager_of(user, owner)


def can_write(user, perm: str, client: Client) -> bool:
    """Write access: the permission (not frozen) and the client in the user's scope."""
    return perm in effective_permissions(user) and can_view(user, client)


def scope_stmt(user, q: str = ""):
    stmt = select(Client).outerjoin(Employee, Client.owner_id == Employee.id)
    cond = employee_scope(user, "clients.view_all")
    if cond is not None:
        stmt = stmt.where(Client.owner_id.is_not(None), cond)
    q = (q or "").strip()
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Client.name.ilike(like), Client.contract_no.ilike(like), Employee.name.ilike(like)))
    return stmt.options(selectinload(Client.owner)).order_by(Client.name, Client.id)


def record_list_view(user, clients: Iterable[Client], q: str = "") -> None:
    ids = [c.id for c in clients]
    if ids:
        audit.record("client.list_viewed", ("clients", ""), {"client_ids": ids, "q": q}, actor=user)


def record_view(user, client: Client) -> None:
    audit.record("client.viewed", client, {"owner_id": client.owner_id}, actor=user)


# ---------------------------------------------------------------- parsing

def parse_fen(value: str, field: str = "amount") -> int:
    """'1,234.50' yuan -> 123450 fen (never float)."""
    raw = (value or "").strip().replace(",", "").replace("，", "").replace("¥", "").replace("￥", "")
    if not raw:
        raise ClientError("amount_required", field)
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ClientError("bad_amount", field)
    if amount < 0 or amount.as_tuple().exponent < -2 or amount > Decimal("1000000000000"):
        raise ClientError("bad_amount", field)
    return int(amount * 100)


def yuan(fen: int | None) -> str:
    fen = int(fen or 0)
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


# ---------------------------------------------------------------- writing

def create_client(actor, name: str, contract_no: str = "", contract_end: dt.date | None = None,
                  preferences: str = "", owner: Employee | None = None) -> Client:
    name = (name or "").strip()
    if not name:
        raise ClientError("name_required", "name")
    if owner is None:
        if not actor.employee_id:
            raise ClientError("no_employee", "name")
        owner = actor.employee
    c = Client(name=name[:200], contract_no=(contract_no or "").strip()[:80], contract_end=contract_end,
               preferences=(preferences or "").strip(), owner_id=owner.id, created_by_id=actor.id)
    db.session.add(c)
    db.session.flush()
    audit.record("client.created", c, {"name": c.name, "owner_id": owner.id, "contract_no": c.contract_no},
                 actor=actor)
    return c


def update_client(actor, client: Client, name: str, contract_no: str, contract_end: dt.date | None,
                  preferences: str) -> None:
    name = (name or "").strip()
    if not name:
        raise ClientError("name_required", "name")
    before = {"name": client.name, "contract_no": client.contract_no,
              "contract_end": client.contract_end.isoformat() if client.contract_end else None}
    client.name, client.contract_no = name[:200], (contract_no or "").strip()[:80]
    client.contract_end, client.preferences = contract_end, (preferences or "").strip()
    audit.record("client.updated", client, {"before": before, "name": client.name,
                                            "contract_no": client.contract_no}, actor=actor)


def add_contact(actor, client: Client, name: str, title: str = "", phone: str = "", email: str = "") -> ClientContact:
    if not (name or "").strip():
        raise ClientError("name_required", "name")
    c = ClientContact(client_id=client.id, name=name.strip()[:80], title=(title or "").strip()[:80],
                      phone=(phone or "").strip()[:40], email=(email or "").strip()[:200])
    db.session.add(c)
    db.session.flush()
    audit.record("client.contact_added", client, {"contact_id": c.id, "name": c.name}, actor=actor)
    return c


def add_order(actor, client: Client, order_no: str, amount: str, description: str = "") -> ClientOrder:
    order_no = (order_no or "").strip()
    if not order_no:
        raise ClientError("order_no_required", "order_no")
    fen = parse_fen(amount, "amount")
    o = ClientOrder(client_id=client.id, order_no=order_no[:60], amount_fen=fen,
                    description=(description or "").strip(), created_by_id=actor.id, created_at=utcnow())
    db.session.add(o)
    db.session.flush()
    audit.record("order.created", o, {"client_id": client.id, "order_no": o.order_no, "amount_fen": fen},
                 actor=actor)
    return o


def add_receivable(actor, client: Client, reference: str, amount: str, due_date: dt.date | None) -> Receivable:
    fen = parse_fen(amount, "amount")
    r = Receivable(client_id=client.id, reference=(reference or "").strip()[:80], amount_fen=fen,
                   due_date=due_date)
    db.session.add(r)
    db.session.flush()
    audit.record("client.receivable_added", client, {"receivable_id": r.id, "amount_fen": fen}, actor=actor)
    return r


CHANNELS = ("phone", "visit", "email", "wechat", "other")


def log_interaction(actor, client: Client, channel: str, summary: str) -> ClientInteraction:
    if channel not in CHANNELS:
        raise ClientError("bad_channel", "channel")
    if not (summary or "").strip():
        raise ClientError("summary_required", "summary")
    i = ClientInteraction(client_id=client.id, at=utcnow(), by_id=actor.id, channel=channel,
                          summary=summary.strip())
    db.session.add(i)
    db.session.flush()
    audit.record("client.contact_logged", client, {"interaction_id": i.id, "channel": channel}, actor=actor)
    return i


# ---------------------------------------------------------------- export

EXPORT_HEADER = ["id", "name", "owner_emp_no", "owner", "contract_no", "contract_end", "contacts",
                 "open_orders", "open_orders_yuan", "receivables_yuan", "preferences"]


def export_csv(actor, q: str = "") -> tuple[str, int]:
    """The user's scoped client list as CSV (UTF-8 with BOM for Excel); audited with every id."""
    stmt = scope_stmt(actor, q).options(selectinload(Client.contacts), selectinload(Client.orders),
                                        selectinload(Client.receivables))
    rows = db.session.scalars(stmt).unique().all()
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(EXPORT_HEADER)
    for c in rows:
        w.writerow([c.id, c.name, c.owner.emp_no if c.owner else "", c.owner.name if c.owner else "",
                    c.contract_no, c.contract_end.isoformat() if c.contract_end else "",
                    "; ".join(f"{x.name} {x.phone}".strip() for x in c.contacts), len(c.open_orders),
                    yuan(sum(o.amount_fen for o in c.open_orders)), yuan(c.receivable_fen), c.preferences])
    audit.record("client.exported", ("clients", ""), {"format": "csv", "count": len(rows),
                                                      "client_ids": [c.id for c in rows], "q": q}, actor=actor)
    return buf.getvalue(), len(rows)


# ---------------------------------------------------------------- transfer

def transfer(actor, clients: Iterable[Client], to: Employee, offboarding_id: int | None = None) -> list[ClientTransfer]:
    out = []
    for c in clients:
        if c.owner_id == to.id:
            continue
        t = ClientTransfer(client_id=c.id, offboarding_id=offboarding_id, from_employee_id=c.owner_id,
                           to_employee_id=to.id, by_id=actor.id, at=utcnow())
        db.session.add(t)
        audit.record("client.transferred", c, {"from_employee_id": c.owner_id, "to_employee_id": to.id,
                                               "offboarding_id": offboarding_id}, actor=actor)
        c.owner_id = to.id
        out.append(t)
    db.session.flush()
    return out


def owned_by(employee_id: int) -> list[Client]:
    return list(db.session.scalars(select(Client).where(Client.owner_id == employee_id)
                                   .order_by(Client.name, Client.id)))


def parse_date(value: str, field: str) -> Optional[dt.date]:
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ClientError("bad_date", field)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ClientError("bad_date", field)
