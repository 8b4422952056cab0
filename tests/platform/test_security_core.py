"""Identity and access core: effective permissions, overrides, manager scope, session rotation, and the
administrator's account pages."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from portal.accounts import services
from portal.core.audit import AuditEvent
from portal.core.db import db, utcnow
from portal.core.models import PermissionOverride, User
from portal.core.security import (DEFAULT_GRANTS, can, effective_permissions, employee_scope,
                                  is_manager_of, managed_department_ids)
from portal.org.models import Employee
from tests.conftest import csrf_token, login


def _user(user_id: int) -> User:
    db.session.expire_all()
    return db.session.get(User, user_id)


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


# ---------------------------------------------------------------- effective permissions

def test_permissions_come_from_roles(make):
    hr = make.user(roles=("hr", "employee"))
    staff = make.user(roles=("employee",))
    nobody = make.user(roles=())
    assert DEFAULT_GRANTS["hr"] <= effective_permissions(hr)
    assert "people.edit" in effective_permissions(hr)
    assert "people.edit" not in effective_permissions(staff)
    assert effective_permissions(nobody) == frozenset()
    assert can(hr, "people.edit") and not can(staff, "people.edit")
    disabled = make.user(roles=("hr",))
    disabled.active = False
    db.session.commit()
    assert effective_permissions(disabled) == frozenset()


def test_deny_then_temporary_grant_then_expiry_and_revocation(make):
    user = make.user(roles=("hr",))
    t0 = utcnow()
    deny = services.add_override(user, "people.import", "deny", None,
                                 "resigned: business permissions frozen", source="freeze")
    db.session.commit()
    assert "people.import" not in effective_permissions(user, now=t0)
    assert "people.edit" in effective_permissions(user, now=t0)  # only the named permission
    # A newer grant that expires: a temporary unfreeze.
    until = t0 + dt.timedelta(days=2)
    grant = services.add_override(user, "people.import", "grant", None, "finish the last import", until)
    db.session.commit()
    assert "people.import" in effective_permissions(user, now=t0 + dt.timedelta(days=1))
    assert "people.import" not in effective_permissions(user, now=until + dt.timedelta(seconds=1))
    # Revoked overrides are ignored: revoking the grant freezes again, revoking the deny restores.
    services.revoke_override(grant, None, "no longer needed")
    db.session.commit()
    assert "people.import" not in effective_permissions(user, now=t0 + dt.timedelta(days=1))
    services.revoke_override(deny, None, "rehired")
    db.session.commit()
    assert "people.import" in effective_permissions(user, now=t0 + dt.timedelta(days=1))
    # A grant override gives a permission no role holds.
    staff = make.user(roles=("employee",))
    services.add_override(staff, "audit.view", "grant", None, "audit support for a week",
                          utcnow() + dt.timedelta(days=7))
    db.session.commit()
    assert "audit.view" in effective_permissions(staff)
    assert "audit.view" not in effective_permissions(staff, now=utcnow() + dt.timedelta(days=8))


def test_override_validation(make):
    user = make.user()
    for perm, effect, reason, expires, code in (
            ("no.such", "deny", "r", None, "unknown_permission"),
            ("people.edit", "maybe", "r", None, "bad_effect"),
            ("people.edit", "deny", "  ", None, "reason_required"),
            ("people.edit", "deny", "r", utcnow() - dt.timedelta(minutes=1), "expiry_in_past")):
        try:
            services.add_override(user, perm, effect, None, reason, expires)
        except services.AccountError as exc:
            assert exc.code == code
        else:
            raise AssertionError(f"{code} not raised")
    db.session.rollback()
    assert db.session.scalars(select(PermissionOverride)).all() == []


# ---------------------------------------------------------------- manager scope

def _org(make):
    """Sales (headed by boss) > East > East-1; a sibling department R&D; a direct report elsewhere."""
    boss = make.employee("李建军")
    sales = make.department("销售部", head=boss)
    east = make.department("华东销售组", parent=sales)
    east1 = make.department("上海小组", parent=east)
    rd = make.department("研发部")
    ops = make.department("运营部")
    boss.department_id = sales.id
    db.session.commit()
    people = {
        "boss": boss,
        "sales_member": make.employee("钱文博", department=sales, manager=boss),
        "east_member": make.employee("黄丽娟", department=east),
        "deep_member": make.employee("许志强", department=east1),
        "rd_member": make.employee("马骏", department=rd),
        "dotted_line": make.employee("田磊", department=ops, manager=boss),  # reports to boss, other dept
        "ops_member": make.employee("潘晓东", department=ops),
    }
    return people, {"sales": sales, "east": east, "east1": east1, "rd": rd, "ops": ops}


def test_manager_scope_is_subtree_plus_direct_reports(make):
    people, depts = _org(make)
    manager = make.user(roles=("manager", "employee"), employee=people["boss"])
    assert managed_department_ids(manager) == {depts["sales"].id, depts["east"].id, depts["east1"].id}
    inside = {"sales_member", "east_member", "deep_member", "dotted_line"}
    for key, emp in people.items():
        assert is_manager_of(manager, emp) == (key in inside), key
    # A group head sees the group's subtree, not the parent department nor sibling groups.
    east_head = people["east_member"]
    depts["east"].head_id = east_head.id
    db.session.commit()
    lead = make.user(roles=("manager",), employee=east_head)
    assert managed_department_ids(lead) == {depts["east"].id, depts["east1"].id}
    assert is_manager_of(lead, people["deep_member"])
    assert not is_manager_of(lead, people["sales_member"]) and not is_manager_of(lead, people["boss"])


def test_employee_scope_sql_matches_the_python_rule(make):
    people, depts = _org(make)
    depts["east"].head_id = people["east_member"].id
    db.session.commit()
    users = [
        make.user(roles=("manager",), employee=people["boss"]),
        make.user(roles=("manager",), employee=people["east_member"]),
        make.user(roles=("employee",), employee=people["rd_member"]),
        make.user(roles=("employee",), with_employee=False),
    ]
    everyone = db.session.scalars(select(Employee)).all()
    for user in users:
        cond = employee_scope(user)
        assert cond is not None
        sql_ids = set(db.session.scalars(select(Employee.id).where(cond)))
        python_ids = {e.id for e in everyone if e.id == user.employee_id or is_manager_of(user, e)}
        assert sql_ids == python_ids, user.username
    # People who may see everyone get no restriction at all.
    hr = make.user(roles=("hr",))
    assert employee_scope(hr) is None
    assert can(hr, "people.view", people["rd_member"])
    assert can(users[0], "people.view", people["deep_member"])
    assert not can(users[0], "people.view", people["rd_member"])


# ---------------------------------------------------------------- sessions

def test_role_change_rotates_the_session_token(app, make):
    user = make.user(roles=("employee",))
    client = app.test_client()
    login(client, user)
    assert client.get("/").status_code == 200
    old_token = user.session_token
    services.set_roles(_user(user.id), ["employee", "hr"], None)
    db.session.commit()
    changed = _user(user.id)
    assert changed.session_token != old_token
    assert changed.role_codes == {"employee", "hr"}
    assert client.get("/").status_code == 302  # the old cookie no longer signs anyone in
    assert "account.roles_changed" in _actions()
    # Setting the same roles again changes nothing (and does not sign the user out).
    token = changed.session_token
    services.set_roles(changed, ["hr", "employee"], None)
    db.session.commit()
    assert _user(user.id).session_token == token


# ---------------------------------------------------------------- admin pages

def _admin_client(app, make):
    admin = make.user(roles=("admin",), username="admin1")
    client = app.test_client()
    login(client, admin)
    return admin, client, csrf_token(client, "/admin/users")


def test_admin_lists_and_searches_accounts(app, make):
    _admin, client, _token = _admin_client(app, make)
    make.user(username="zhangsf", name="张三丰")
    make.user(username="lisi", name="李四")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "admin1" in page and "zhangsf" in page and "lisi" in page
    for q in ("张三", "zsf", "zhangsan", "ZHANGSF"):
        resp = client.get("/admin/users", query_string={"q": q}, headers={"HX-Request": "true"})
        assert resp.status_code == 200
        body = resp.get_data(as_text=True)
        assert "zhangsf" in body and "lisi" not in body, q
        assert "<html" not in body  # the table partial


def test_admin_creates_an_account_linked_to_an_employee(app, make):
    _admin, client, token = _admin_client(app, make)
    emp = make.employee("韩雪", emp_no="XH0028")
    resp = client.post("/admin/users", data={"csrf_token": token, "username": "hanxue",
                                             "employee_no": "XH0028"})
    assert resp.status_code == 303
    user = db.session.scalar(select(User).where(User.username == "hanxue"))
    assert user.employee_id == emp.id and user.role_codes == {"employee"} and user.must_change_password
    assert resp.headers["Location"].endswith(f"/admin/users/{user.id}")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    # The generated initial password is shown once, in a flash message, and it works.
    flash = re.search(r'class="flash flash-success"[^>]*>([^<]+)<', page).group(1)
    from portal.core.passwords import check_password
    assert any(check_password(user.password_hash, word) for word in re.findall(r"[A-Za-z0-9_-]{12,}", flash))
    assert "flash-success" not in client.get(resp.headers["Location"]).get_data(as_text=True)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.created"))
    assert event.target_id == str(user.id) and event.actor_name == "admin1"
    # Taken username and unknown employee number are refused without creating anything.
    client.post("/admin/users", data={"csrf_token": token, "username": "HanXue"})
    client.post("/admin/users", data={"csrf_token": token, "username": "ghost", "employee_no": "NOPE"})
    assert db.session.scalar(select(User).where(User.username.in_(["HanXue", "ghost"]))) is None


def test_admin_changes_roles_disables_and_forces_logout(app, make):
    admin, client, token = _admin_client(app, make)
    target = make.user(roles=("employee",), username="target")
    victim_client = app.test_client()
    login(victim_client, target)
    assert victim_client.get("/").status_code == 200

    resp = client.post(f"/admin/users/{target.id}/roles",
                       data={"csrf_token": token, "roles": ["employee", "finance"]})
    assert resp.status_code == 303
    assert _user(target.id).role_codes == {"employee", "finance"}
    assert victim_client.get("/").status_code == 302  # the role change ended the session
    bad = client.post(f"/admin/users/{target.id}/roles", data={"csrf_token": token, "roles": ["emperor"]})
    assert bad.status_code == 303 and _user(target.id).role_codes == {"employee", "finance"}

    login(victim_client, _user(target.id))
    assert victim_client.get("/").status_code == 200
    token_before = _user(target.id).session_token
    resp = client.post(f"/admin/users/{target.id}/logout", data={"csrf_token": token})
    assert resp.status_code == 303
    assert _user(target.id).session_token != token_before
    assert victim_client.get("/").status_code == 302

    resp = client.post(f"/admin/users/{target.id}/active",
                       data={"csrf_token": token, "active": "0", "reason": "left the company"})
    assert resp.status_code == 303 and _user(target.id).active is False
    resp = client.post(f"/admin/users/{target.id}/active", data={"csrf_token": token, "active": "1"})
    assert _user(target.id).active is True

    actions = _actions()
    for action in ("account.roles_changed", "account.sessions_revoked", "account.disabled", "account.enabled"):
        assert action in actions, action
    disabled = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.disabled"))
    assert disabled.actor_id == admin.id and disabled.payload["reason"] == "left the company"
    assert client.get(f"/admin/users/{target.id}").status_code == 200


def test_admin_adds_and_revokes_overrides(app, make):
    admin, client, token = _admin_client(app, make)
    target = make.user(roles=("hr",), username="target")
    resp = client.post(f"/admin/users/{target.id}/overrides",
                       data={"csrf_token": token, "permission": "people.import", "effect": "deny",
                             "reason": "notice period", "expires_at": ""})
    assert resp.status_code == 303
    ov = db.session.scalar(select(PermissionOverride).where(PermissionOverride.user_id == target.id))
    assert (ov.permission, ov.effect, ov.created_by_id, ov.expires_at) == ("people.import", "deny", admin.id, None)
    assert "people.import" not in effective_permissions(_user(target.id))
    # A temporary grant, entered in company time (Asia/Shanghai), stored in UTC.
    tomorrow = (utcnow() + dt.timedelta(days=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    local_text = tomorrow.strftime("%Y-%m-%dT%H:%M")
    client.post(f"/admin/users/{target.id}/overrides",
                data={"csrf_token": token, "permission": "people.import", "effect": "grant",
                      "reason": "unfreeze for one import", "expires_at": local_text})
    grant = db.session.scalar(select(PermissionOverride).where(PermissionOverride.effect == "grant"))
    assert grant.expires_at == tomorrow.replace(second=0, microsecond=0).astimezone(dt.timezone.utc)
    assert "people.import" in effective_permissions(_user(target.id))
    # Missing reason: refused, nothing stored.
    client.post(f"/admin/users/{target.id}/overrides",
                data={"csrf_token": token, "permission": "people.edit", "effect": "deny", "reason": ""})
    assert db.session.scalar(select(PermissionOverride).where(PermissionOverride.permission == "people.edit")) is None

    resp = client.post(f"/admin/overrides/{grant.id}/revoke", data={"csrf_token": token, "reason": "done"})
    assert resp.status_code == 303
    db.session.expire_all()
    assert db.session.get(PermissionOverride, grant.id).revoked_at is not None
    assert "people.import" not in effective_permissions(_user(target.id))
    actions = _actions()
    assert actions.count("permission.override_added") == 2 and "permission.override_revoked" in actions


def test_admin_cannot_disable_themself(app, make):
    admin, client, token = _admin_client(app, make)
    before = _actions()
    resp = client.post(f"/admin/users/{admin.id}/active", data={"csrf_token": token, "active": "0"})
    assert resp.status_code == 303
    assert _user(admin.id).active is True
    assert _actions() == before
    assert client.get("/admin/users").status_code == 200


def test_admin_pages_refuse_other_roles(app, make):
    for roles in (("employee",), ("hr", "manager", "finance", "it", "legal", "trainer")):
        user = make.user(roles=roles)
        client = app.test_client()
        login(client, user)
        assert client.get("/admin/users").status_code == 403, roles
        token = csrf_token(client, "/account/password")
        resp = client.post(f"/admin/users/{user.id}/roles", data={"csrf_token": token, "roles": ["admin"]})
        assert resp.status_code == 403
        assert "admin" not in _user(user.id).role_codes
