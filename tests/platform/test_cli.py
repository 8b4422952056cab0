"""`flask portal ...` commands: sync-roles, create-admin, demo."""
from __future__ import annotations

import datetime as dt

import phonenumbers
from sqlalchemy import func, select, text

from portal.core.audit import AuditEvent
from portal.core.db import db
from portal.core.models import Role, User
from portal.core.passwords import check_password
from portal.org.models import Department, Employee, Position
from portal.org.pinyin import pinyin_fields
from tests.conftest import csrf_token, login
from tests.platform.test_access_walk import _routes

ROLES = ("admin", "hr", "manager", "trainer", "finance", "it", "legal", "employee")


def _snapshot() -> dict[str, list]:
    """Every row of every table, so "changes nothing" is checked on content, not only counts."""
    from portal.models import metadata
    out = {}
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def _logins(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:3] == ["role", "username", "password"])
    return lines[start:]


def _run(app, *args, env=None):
    env = {"DEMO_PASSWORD": None, **(env or {})}  # None: unset while the command runs
    result = app.test_cli_runner().invoke(args=["portal", *args], env=env)
    db.session.remove()  # the command committed through its own session state
    return result


def test_sync_roles_command_creates_builtin_roles(app):
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM role_permissions"))
        conn.execute(text("DELETE FROM roles"))
    result = _run(app, "sync-roles")
    assert result.exit_code == 0, result.output
    codes = set(db.session.scalars(select(Role.code)))
    assert set(ROLES) <= codes
    hr = db.session.scalar(select(Role).where(Role.code == "hr"))
    assert "people.edit" in hr.permission_codes


def test_create_admin_command(app):
    result = _run(app, "create-admin", "--username", "boss", "--password", "Adm1nPassw0rd")
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "boss"))
    assert "admin" in user.role_codes
    assert check_password(user.password_hash, "Adm1nPassw0rd")
    again = _run(app, "create-admin", "--username", "boss", "--password", "Adm1nPassw0rd")
    assert again.exit_code == 1 and "username_taken" in again.output


def test_demo_loads_a_realistic_company(app):
    result = _run(app, "demo")
    assert result.exit_code == 0, result.output
    assert "demonstrations only" in result.output  # the warning (stderr is mixed into output)

    depts = {d.name: d for d in db.session.scalars(select(Department))}
    for name in ("总经办", "人力资源部", "财务部", "销售部", "华东销售组", "华南销售组", "研发部", "后端组",
                 "前端组", "IT部", "法务部"):
        assert name in depts, name
    assert depts["华东销售组"].parent_id == depts["销售部"].id
    assert depts["后端组"].parent_id == depts["研发部"].id
    assert all(d.head_id is not None for d in depts.values())

    employees = db.session.scalars(select(Employee)).all()
    assert len(employees) >= 40
    assert db.session.scalar(select(func.count()).select_from(Position)) >= 10
    by_id = {e.id: e for e in employees}
    for e in employees:
        number = phonenumbers.parse(e.mobile, "CN")
        assert phonenumbers.is_valid_number(number), (e.name, e.mobile)
        assert phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                                    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
        assert len(e.mobile) == 11 and e.mobile.isdigit()
        assert e.email.endswith("@example.com")
        assert (e.name_pinyin, e.name_initials) == pinyin_fields(e.name)
        assert e.hire_date and e.probation_end and e.contract_start
        assert e.probation_end > e.hire_date and e.contract_start >= e.hire_date
        assert e.contract_end is None or e.contract_end > e.contract_start
        # Everyone but the top reports to someone; nobody reports to themself.
        assert e.manager_id != e.id
    assert sum(1 for e in employees if e.manager_id is None) == 1
    # A group member reports to the group's head, the group head to the department head.
    east = depts["华东销售组"]
    member = next(e for e in employees if e.department_id == east.id and e.id != east.head_id)
    assert member.manager_id == east.head_id
    assert by_id[east.head_id].manager_id == depts["销售部"].head_id
    assert len({e.mobile for e in employees}) == len(employees)
    assert len({e.email for e in employees}) == len(employees)
    today = dt.date.today()
    assert any(e.probation_end >= today for e in employees), "someone should still be in probation"

    users = {u.username: u for u in db.session.scalars(select(User))}
    lines = _logins(result.output)
    assert len(lines) == 1 + len(ROLES)
    for line in lines[1:]:
        role, username, password = line.split()
        assert password == "demo1234"
        user = users[username]
        assert role in user.role_codes and "employee" in user.role_codes
        assert user.employee_id is not None
        assert check_password(user.password_hash, "demo1234")
    assert {line.split()[0] for line in lines[1:]} == set(ROLES)
    # The manager login heads a department with sub-groups: a real team to look at.
    manager = next(users[line.split()[1]] for line in lines[1:] if line.split()[0] == "manager")
    headed = [d for d in depts.values() if d.head_id == manager.employee_id]
    assert headed and any(d.parent_id == headed[0].id for d in depts.values())

    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "demo.loaded")).all()
    assert len(events) == 1 and events[0].payload["employees"] == len(employees)


def test_demo_is_idempotent(app):
    first = _run(app, "demo")
    assert first.exit_code == 0, first.output
    before = _snapshot()
    second = _run(app, "demo")
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output
    assert _snapshot() == before
    assert _logins(second.output) == _logins(first.output)
    # An account whose password was changed since is left alone, and its password is not printed.
    from portal.core.passwords import hash_password
    user = db.session.scalar(select(User).where(User.username == "hr"))
    user.password_hash = hash_password("MyOwnSecret99")
    db.session.commit()
    third = _run(app, "demo")
    hr_line = next(line for line in _logins(third.output) if line.split()[1] == "hr")
    assert "demo1234" not in hr_line and "not the demo password" in hr_line
    db.session.expire_all()
    assert check_password(db.session.get(User, user.id).password_hash, "MyOwnSecret99")


def test_demo_password_from_env_and_login_works(app):
    result = _run(app, "demo", env={"DEMO_PASSWORD": "Showcase2024"})
    assert result.exit_code == 0, result.output
    assert all(line.split()[2] == "Showcase2024" for line in _logins(result.output)[1:])
    client = app.test_client()
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": "hr", "password": "Showcase2024", "csrf_token": token})
    assert resp.status_code == 302
    assert client.get("/").status_code == 200


def test_demo_refuses_a_weak_password(app):
    result = _run(app, "demo", env={"DEMO_PASSWORD": "12345678"})
    assert result.exit_code == 1
    assert "DEMO_PASSWORD" in result.output
    assert db.session.scalar(select(func.count()).select_from(Employee)) == 0


def test_every_page_renders_for_every_demo_login(app):
    """The demo data is realistic enough to drive every GET page of every module, for each role."""
    result = _run(app, "demo")
    assert result.exit_code == 0, result.output
    users = {line.split()[1]: db.session.scalar(select(User).where(User.username == line.split()[1]))
             for line in _logins(result.output)[1:]}
    pages = [(endpoint, path) for endpoint, method, path, access in _routes(app)
             if method == "GET" and access[0] != "public"]
    assert pages
    seen_ok = set()
    for username, user in users.items():
        client = app.test_client()
        login(client, user)
        for endpoint, path in pages:
            resp = client.get(path)
            assert resp.status_code in (200, 403, 404), (username, path, resp.status_code)
            if resp.status_code == 200:
                seen_ok.add(endpoint)
    assert {"home.index", "accounts.users"} <= seen_ok
