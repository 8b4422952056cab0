"""Data generators of the benchmark, one module per step (see bench/generate.py).

Shared here:

* ``representative_accounts(engine)``: role -> username of a representative account of a generated
  database (the contract with ``bench/run.py``);
* small helpers of the generators: the next free id of a table, numeric / JSON values in the form the
  loader's database wants, extra roles for existing accounts, and ``Evidence`` (signatures with the audit
  events that make them verifiable, sealed with the portal's own ``audit.seal``).
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import text

# ---------------------------------------------------------------- representative accounts

# Each query returns one username; the first row wins (ties broken by the user id, so the answer is
# deterministic for a given database).
_ROLE_SQL = """
SELECT u.username FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
WHERE r.code = :role AND u.active {extra} ORDER BY {order} u.id LIMIT 1
"""

REPRESENTATIVE_SQL: dict[str, str] = {
    # an ordinary employee (no other role) with an open course assignment, the most OKR key results in the
    # open cycle and unread notifications: the pages of a typical learner / OKR owner are all non-empty
    "employee": """
        SELECT u.username FROM users u JOIN employees e ON e.id = u.employee_id
        WHERE u.active AND e.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id
                          WHERE ur.user_id = u.id AND r.code <> 'employee')
          AND EXISTS (SELECT 1 FROM training_enrollments en WHERE en.employee_id = e.id
                      AND en.status IN ('assigned', 'in_progress'))
        ORDER BY (SELECT count(*) FROM perf_key_results k JOIN perf_objectives o ON o.id = k.objective_id
                  JOIN perf_cycles c ON c.id = o.cycle_id
                  WHERE o.owner_id = e.id AND c.status = 'open' AND o.status = 'active') DESC,
                 (SELECT count(*) FROM notifications n WHERE n.user_id = u.id AND n.channel = 'inapp'
                  AND n.read_at IS NULL) DESC, u.id
        LIMIT 1""",
    # the manager (not HR) with the largest team of direct reports
    "manager": """
        SELECT u.username FROM users u JOIN user_roles ur ON ur.user_id = u.id JOIN roles r ON r.id = ur.role_id
        JOIN employees e ON e.id = u.employee_id
        WHERE r.code = 'manager' AND u.active AND e.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM user_roles ur2 JOIN roles r2 ON r2.id = ur2.role_id
                          WHERE ur2.user_id = u.id AND r2.code IN ('hr', 'admin'))
        ORDER BY (SELECT count(*) FROM employees t WHERE t.manager_id = e.id AND t.status <> 'left') DESC, u.id
        LIMIT 1""",
    # the HR account with the most in-app notifications (offboarding, warnings, attendance alerts)
    "hr": _ROLE_SQL.format(extra="", order="(SELECT count(*) FROM notifications n WHERE n.user_id = u.id "
                                             "AND n.channel = 'inapp') DESC,"),
    "trainer": _ROLE_SQL.format(extra="", order=""),
    "admin": _ROLE_SQL.format(extra="", order=""),
    # an HR account (offboarding.manage) other than "hr" when there is one: the offboarding board and its
    # sign-off queue
    "offboarding_hr": _ROLE_SQL.format(
        extra="AND u.username <> COALESCE(:hr, '')",
        order="(SELECT count(*) FROM notifications n WHERE n.user_id = u.id AND n.related_type IN "
              "('offboardings', 'offboarding_signoffs', 'checklist_items')) DESC,"),
    # the leaver (with an account) of an open offboarding: at the handover stage with the most open
    # checklist items first, else any stage
    "leaver": """
        SELECT u.username FROM offboardings o JOIN users u ON u.id = o.user_id
        WHERE o.stage <> 'completed' AND u.active
        ORDER BY CASE WHEN o.stage = 'handover' THEN 0 ELSE 1 END,
                 (SELECT count(*) FROM checklist_items i WHERE i.offboarding_id = o.id
                  AND i.status IN ('open', 'submitted')) DESC, o.id
        LIMIT 1""",
    # the salesperson (employee account) owning the most clients
    "sales": """
        SELECT u.username FROM users u JOIN clients c ON c.owner_id = u.employee_id
        WHERE u.active GROUP BY u.id, u.username ORDER BY count(*) DESC, u.id LIMIT 1""",
}


def representative_accounts(engine) -> dict[str, str]:
    """Role -> username of a representative account (password ``bench-Passw0rd``):

    * ``employee``: only the employee role, an open course assignment, the most OKR key results in the open
      cycle, then the most unread notifications;
    * ``manager``: the manager (not HR/admin) with the largest team of direct reports;
    * ``hr``: the HR account with the most in-app notifications;
    * ``trainer``, ``admin``: the first account with that role;
    * ``offboarding_hr``: another HR account (offboarding.manage), the one most involved in offboardings;
    * ``leaver``: an employee with an account in an open offboarding (handover stage with the most open
      items first);
    * ``sales``: the account owning the most clients.

    A role with no match (e.g. no admin in a very small company) is left out. ``engine``: a SQLAlchemy
    Engine or Connection on the generated database."""
    from sqlalchemy.engine import Connection
    if isinstance(engine, Connection):
        return _representative(engine)
    with engine.connect() as conn:
        return _representative(conn)


def _representative(conn) -> dict[str, str]:
    out: dict[str, str] = {}
    for role, sql in REPRESENTATIVE_SQL.items():
        params = {"role": role if role in ("trainer", "admin") else "hr", "hr": out.get("hr")}
        params = {k: v for k, v in params.items() if f":{k}" in sql}
        try:
            name = conn.execute(text(sql), params).scalar()
        except Exception:  # noqa: BLE001 - a table missing (an older schema): leave the role out
            conn.rollback()
            name = None
        if name:
            out[role] = name
    return out


# ---------------------------------------------------------------- generator helpers

def next_id(loader, table: str) -> int:
    with loader.engine.connect() as conn:
        return int(conn.execute(text(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')).scalar() or 0) + 1


def num(loader):
    """Numeric column values: Decimal (4 places) for PostgreSQL, float for SQLite (as SQLAlchemy does)."""
    q = Decimal("0.0001")

    def conv(v: Any):
        if v is None:
            return None
        d = (v if isinstance(v, Decimal) else Decimal(str(v))).quantize(q)
        return d if loader.copy else float(d)
    return conv


def js(loader):
    """JSON column values: psycopg's Json for PostgreSQL COPY, text for SQLite."""
    if loader.copy:
        from psycopg.types.json import Json
        return lambda v: None if v is None else Json(v)
    return lambda v: None if v is None else json.dumps(v)


def add_roles(ctx, grants: list[tuple[int, str]]) -> None:
    """Give existing accounts extra built-in roles ((user id, role code), e.g. a trainer): what an admin
    does on the accounts page."""
    co = ctx.company
    if not grants:
        return
    start = next_id(ctx.loader, "user_roles")
    rows = [(start + i, uid, co.role_ids[code]) for i, (uid, code) in enumerate(grants)]
    ctx.loader.load("user_roles", ["id", "user_id", "role_id"], rows)
    ctx.loader.reset_sequences(["user_roles"])
    by_uid = {p.user_id: p for p in co.people if p.user_id}
    for uid, code in grants:
        p = by_uid[uid]
        p.roles = tuple(sorted(set(p.roles) | {code}))


def local_dt(tz, day: dt.date, minute: float) -> dt.datetime:
    """A company-time day + minutes after midnight, as an aware UTC datetime."""
    return (dt.datetime.combine(day, dt.time(0), tzinfo=tz) + dt.timedelta(minutes=minute)).astimezone(dt.timezone.utc)


def gen_now(ctx) -> dt.datetime:
    """The generator's "now": midnight (company time) after the last day of history, so the data depends on
    --seed / --employees / --days / --end only, never on the wall clock (capped at the real time)."""
    morning = local_dt(ctx.tz, ctx.company.end + dt.timedelta(days=1), 0)
    return min(morning, dt.datetime.now(dt.timezone.utc))


def ip_of(person) -> str:
    return f"10.{person.division + 1}.{person.id % 250}.{1 + person.id % 200}"


class Evidence:
    """Signatures made with the portal's own content hashing (``signatures.content_hash`` over
    ``audit.canonical_json``), and the audit events the portal writes with them, so ``signatures.verify``
    and ``audit.verify`` accept them. Signature rows are written by the step that needs them (other rows
    point at them); the audit events of every step are written at the end (``flush``), ordered by time,
    and sealed by ``audit.seal`` (the portal's sealer computes the hash chain)."""

    def __init__(self, loader):
        self.loader = loader
        self.sig_next = next_id(loader, "signatures")
        self.sigs: list[tuple] = []
        self.events: list[tuple] = []  # (created_at, actor_id, actor_name, action, ttype, tid, ip, data)

    def sign(self, user_id: int, username: str, signer_name: str, purpose: str, subject: tuple[str, Any],
             content: Any, at: dt.datetime, ip: str, user_agent: str = "") -> tuple[int, str]:
        from portal.core.audit import canonical_json
        from portal.core.signatures import content_hash
        body = content if isinstance(content, str) else canonical_json(content)
        h = content_hash(body)
        sid = self.sig_next
        self.sig_next += 1
        self.sigs.append((sid, user_id, signer_name, purpose, str(subject[0]), str(subject[1]), body, h,
                          "password", ip, user_agent, at))
        self.event(at, user_id, username, "signature.signed", ("signatures", sid),
                   {"purpose": purpose, "subject_type": str(subject[0]), "subject_id": str(subject[1]),
                    "content_hash": h}, ip)
        return sid, h

    def event(self, at: dt.datetime, actor_id: Optional[int], actor_name: str, action: str,
              target: tuple[str, Any], data: dict, ip: str = "") -> None:
        from portal.core.audit import canonical_json
        self.events.append((at, actor_id, actor_name or "", action, str(target[0]), str(target[1]), ip,
                            canonical_json(data)))

    def write_signatures(self) -> None:
        if self.sigs:
            self.loader.load("signatures", ["id", "signer_id", "signer_name", "purpose", "subject_type",
                                            "subject_id", "content", "content_hash", "method", "ip",
                                            "user_agent", "signed_at"], self.sigs)
            self.loader.reset_sequences(["signatures"])
            self.sigs = []

    def flush(self) -> dict:
        """Write the collected audit events (unsealed) in time order, then seal them with the portal."""
        import time

        from portal.core import audit
        self.write_signatures()
        if not self.events:
            return {"audit_events": 0}
        start = next_id(self.loader, "audit_events")
        rows = sorted(self.events, key=lambda e: (e[0], e[3], e[5]))
        self.loader.load("audit_events", ["id", "seq", "created_at", "actor_id", "actor_name", "action",
                                          "target_type", "target_id", "ip", "request_id", "data", "prev_hash",
                                          "hash", "sealed_at"],
                         ((start + i, None, at, aid, an, act, tt, ti, ip, "", data, None, None, None)
                          for i, (at, aid, an, act, tt, ti, ip, data) in enumerate(rows)))
        self.loader.reset_sequences(["audit_events"])
        t = time.perf_counter()
        sealed = audit.seal()
        self.events = []
        return {"audit_events": len(rows), "sealed": sealed, "seal_s": round(time.perf_counter() - t, 1)}
