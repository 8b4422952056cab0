"""Object-level access and list scoping, on the seeded company of test_access_matrix.

(a) Every route whose URL addresses a person's object (profile, attendance, OKR, review, enrollment,
    attempt, acknowledgement, notice, notification, client, background task, offboarding case) refuses
    a user of the same role who is not entitled (a colleague; an employee and the manager of another
    team) with 403 or 404, and a refused POST changes no row.
(b) Lists, searches and exports never show another person's rows: the owner's unique markers are absent
    for an outsider and present for someone entitled (so the check cannot pass on an empty page).
"""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from portal.core.db import db
from tests.security import access_matrix as M
from tests.security.test_access_matrix import build_world, routes, sign_in

pytestmark = pytest.mark.access

# URL arguments that address a person's data (keys of World.ids), and who owns it
PERSONAL = {"emp_id", "employee_id", "leave_id", "corr_id", "objective_id", "kr_id", "review_id",
            "enrollment_id", "attempt_id", "ack_id", "notice_id", "notification_id", "client_id", "task_id",
            "offboarding_id", "item_id_offb", "req_id", "anomaly_id"}
CASE_KEYS = {"offboarding_id", "item_id_offb", "req_id"}  # the colleague's case; 同事乙 is its successor


def _snapshot() -> dict:
    from portal.models import metadata
    db.session.remove()
    with db.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in metadata.sorted_tables if t.name not in ("audit_events", "audit_seal")}


def _keys(rule) -> set[str]:
    return {M.ARGS.get((rule.endpoint, a), a) for a in rule.arguments}


def test_other_peoples_objects_are_refused_and_unchanged(app, make):
    w = build_world(app, make)
    client = app.test_client()
    attackers = {"colleague": w.extra["peer"], "other team employee": w.extra["other_emp"],
                 "other team manager": w.extra["other_mgr"]}
    problems, checked = [], 0
    before = _snapshot()
    for rule, method in routes(app):
        keys = _keys(rule)
        if not keys & PERSONAL:
            continue
        values = {a: (M.LITERAL_ARGS[k] if k in M.LITERAL_ARGS else w.ids[k])
                  for a, k in zip(rule.arguments, [M.ARGS.get((rule.endpoint, a), a) for a in rule.arguments])}
        path = rule.build(values, append_unknown=False)[1]
        for who, user in attackers.items():
            if who == "colleague" and keys & CASE_KEYS:
                user = w.users["employee"]  # not involved in the colleague's case
            token = sign_in(app, client, user)
            data = None
            if method != "GET":
                data = {"csrf_token": token, "decision": "approve", "all": "1", "as": "manager",
                        "reason": "x", "note": "x", "comment": "x", "password": "Passw0rd!x"}
            resp = client.open(path, method=method, headers={"X-CSRFToken": token}, data=data)
            checked += 1
            if resp.status_code not in (403, 404):
                problems.append(f"{method} {path} ({rule.endpoint}) as {who}: {resp.status_code}")
    after = _snapshot()
    changed = sorted(t for t in before if before[t] != after[t])
    assert not problems, "\n".join(problems)
    # refused requests (GET or POST) leave every row as it was (the audit trail may grow)
    assert not changed, f"refused requests changed rows in {changed}"
    assert checked > 150


# ---------------------------------------------------------------- lists, searches, exports

def _text(resp) -> str:
    ctype = resp.headers.get("Content-Type", "")
    if "spreadsheetml" in ctype:
        from openpyxl import load_workbook
        wb = load_workbook(io.BytesIO(resp.data), read_only=True)
        return "\n".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                         for c in row if c is not None)
    return resp.get_data(as_text=True)


# (url, the owner's marker, who must NOT see it, who must see it)
EMP, PEER, OTHER_EMP, OTHER_MGR, MGR, HR = "employee", "peer", "other_emp", "other_mgr", "manager", "hr"
SCOPED = [
    ("/people", "员工甲", (PEER, OTHER_EMP, OTHER_MGR), (MGR, HR)),
    ("/people?q=ygj", "员工甲", (PEER, OTHER_MGR), (MGR, HR)),           # pinyin initials search
    ("/people/export.csv", "员工甲", (PEER, OTHER_EMP, OTHER_MGR), (EMP, MGR, HR)),
    ("/team", "员工甲", (PEER, OTHER_MGR), (MGR,)),
    ("/attendance/records", "甲外勤拜访客户", (PEER, OTHER_MGR), (EMP,)),
    ("/attendance/records.csv", "甲外勤拜访客户", (PEER, OTHER_MGR), (EMP,)),
    ("/attendance/leave", "/attendance/leave/LEAVE_ID/cancel", (PEER, OTHER_MGR), (EMP,)),
    ("/attendance/corrections", "忘记打卡", (PEER, OTHER_MGR), (EMP,)),
    ("/attendance/approvals", "探亲", (PEER, OTHER_EMP, OTHER_MGR), (MGR,)),
    ("/attendance/team", "员工甲", (OTHER_MGR,), (MGR,)),
    ("/attendance/team/month", "员工甲", (OTHER_MGR,), (MGR,)),
    ("/okr", "员工甲的目标", (PEER, OTHER_EMP, OTHER_MGR), (EMP,)),
    ("/okr/tree", "员工甲的目标", (PEER, OTHER_EMP, OTHER_MGR), (EMP, MGR, HR)),
    ("/okr/team?cycle=CYCLE_ID", "员工甲", (OTHER_MGR,), (MGR, HR)),
    ("/performance/reviews", "员工甲", (PEER, OTHER_EMP, OTHER_MGR), (MGR, HR)),
    ("/training/reports.xlsx", "员工甲", (OTHER_MGR,), (MGR, HR)),
    ("/training/reports/courses/COURSE_ID", "员工甲", (OTHER_MGR,), (MGR, HR)),
    ("/training/reports/courses/COURSE_ID.xlsx", "员工甲", (OTHER_MGR,), (MGR, HR)),
    ("/clients", "甲的客户", (PEER, OTHER_EMP, OTHER_MGR), (EMP, MGR, HR)),
    ("/clients?q=甲的", "甲的客户", (PEER, OTHER_MGR), (EMP, MGR)),
    ("/clients/export.csv", "甲的客户", (PEER, OTHER_EMP, OTHER_MGR), (EMP, MGR)),
    ("/notifications", "/notifications/NOTIFICATION_ID", (PEER, OTHER_MGR), (EMP,)),
    ("/notices", "警告通知", (PEER, OTHER_MGR), (EMP, HR)),
    ("/offboarding", "离职中丁", (EMP, OTHER_EMP, OTHER_MGR), (MGR, HR)),
]


def test_lists_and_exports_never_show_other_peoples_rows(app, make):
    w = build_world(app, make)
    people = {**w.users, **w.extra}
    client = app.test_client()
    problems = []
    for url, marker, outsiders, insiders in SCOPED:
        for key in ("CYCLE_ID", "COURSE_ID", "LEAVE_ID", "NOTIFICATION_ID"):
            url = url.replace(key, str(w.ids[key.lower()]))
            marker = marker.replace(key, str(w.ids[key.lower()]))
        for who in outsiders + insiders:
            sign_in(app, client, people[who])
            resp = client.get(url)
            if resp.status_code != 200:
                problems.append(f"{url} as {who}: {resp.status_code}")
                continue
            seen = marker in _text(resp)
            if who in outsiders and seen:
                problems.append(f"{url} as {who}: shows {marker!r}")
            if who in insiders and not seen:
                problems.append(f"{url} as {who}: {marker!r} missing (entitled; the check would be vacuous)")
    assert not problems, "\n".join(problems)
