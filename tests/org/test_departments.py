"""Departments (tree, rename, move without loops, head, delete when empty) and positions."""
from __future__ import annotations

from sqlalchemy import select

from portal.core.db import db
from portal.org.models import Department, Position
from tests.org.conftest import events, post, text


def _dept(name):
    return db.session.scalar(select(Department).where(Department.name == name)
                             .execution_options(populate_existing=True))


def test_departments_need_org_manage(make, signed_in):
    dept = make.department()
    for roles in (("employee",), ("manager",)):
        c = signed_in(make.user(roles=roles))
        assert c.get("/org/departments").status_code == 403
        assert c.get(f"/org/departments/{dept.id}").status_code == 403
        assert post(c, "/org/departments", {"name": "新部门"}).status_code == 403
        assert c.get("/org/positions").status_code == 403
    assert _dept("新部门") is None


def test_create_nested_and_show_the_tree(make, signed_in):
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    assert post(c, "/org/departments", {"name": "总部", "code": "HQ", "parent_id": ""}).status_code == 303
    hq = _dept("总部")
    assert post(c, "/org/departments", {"name": "研发中心", "code": "RD", "parent_id": str(hq.id)}).status_code == 303
    rd = _dept("研发中心")
    assert rd.parent_id == hq.id and rd.code == "RD"
    make.employee(department=rd)
    page = text(c.get("/org/departments"))
    tree = page[page.index('<ul class="tree'):page.index('id="new-department"')]
    assert "<details open>" in tree
    assert tree.index("总部") < tree.index("<ul>") < tree.index("研发中心")  # RD nested under HQ
    assert tree.count("1 people") == 2  # subtree counts: HQ and RD
    hq_page = text(c.get(f"/org/departments/{hq.id}"))
    assert f'<a href="/people?department={hq.id}">1</a>' in hq_page
    ev = events("department.created")
    assert [e.payload["name"] for e in ev] == ["总部", "研发中心"]


def test_create_errors_are_422(make, signed_in):
    make.department(name="销售部", code="S1")
    c = signed_in(make.user(roles=("hr",)))
    resp = post(c, "/org/departments", {"name": "", "code": ""})
    assert resp.status_code == 422 and "Enter a department name." in text(resp)
    resp = post(c, "/org/departments", {"name": "销售部", "code": ""})
    assert resp.status_code == 422 and "A department with this name already exists" in text(resp)
    resp = post(c, "/org/departments", {"name": "销售二部", "code": "s1"})
    assert resp.status_code == 422 and "Another department already has this code." in text(resp)
    assert _dept("销售二部") is None


def test_rename(make, signed_in):
    dept = make.department(name="旧名", code="OLD")
    make.department(name="别的", code="TAKEN")
    c = signed_in(make.user(roles=("hr",)))
    assert post(c, f"/org/departments/{dept.id}/rename", {"name": "新名", "code": "NEW"}).status_code == 303
    assert _dept("新名").code == "NEW"
    resp = post(c, f"/org/departments/{dept.id}/rename", {"name": "新名", "code": "TAKEN"})
    assert resp.status_code == 422 and "Another department already has this code." in text(resp)
    assert _dept("新名").code == "NEW"
    ev = events("department.renamed")
    assert len(ev) == 1 and ev[0].payload["before"] == {"name": "旧名", "code": "OLD"}


def test_move_refuses_loops(make, signed_in):
    a = make.department(name="A")
    b = make.department(name="B", parent=a)
    cdep = make.department(name="C", parent=b)
    other = make.department(name="O")
    client = signed_in(make.user(roles=("hr",)))
    for target in (cdep, b, a):
        resp = post(client, f"/org/departments/{a.id}/move", {"parent_id": str(target.id)})
        assert resp.status_code == 422
        assert "cannot move under itself or under one of its sub-departments" in text(resp)
    assert _dept("A").parent_id is None
    # the move page offers no choice that would make a loop
    page = text(client.get(f"/org/departments/{a.id}"))
    assert f'value="{cdep.id}"' not in page and f'value="{other.id}"' in page
    assert post(client, f"/org/departments/{cdep.id}/move", {"parent_id": ""}).status_code == 303
    assert _dept("C").parent_id is None
    assert post(client, f"/org/departments/{a.id}/move", {"parent_id": str(other.id)}).status_code == 303
    assert _dept("A").parent_id == other.id
    assert [e.payload for e in events("department.moved")] == [
        {"before": b.id, "after": None}, {"before": None, "after": other.id}]


def test_head_gives_the_scope_of_the_subtree(make, signed_in):
    top = make.department(name="T")
    sub = make.department(name="TS", parent=top)
    boss = make.user(roles=("manager",), emp_no="H1", name="头")
    worker = make.employee(name="工人", emp_no="W1", department=sub)
    c_boss = signed_in(boss)
    assert c_boss.get(f"/people/{worker.id}").status_code == 403
    hr = signed_in(make.user(roles=("hr",)))
    assert post(hr, f"/org/departments/{top.id}/head", {"head_no": "H1"}).status_code == 303
    assert _dept("T").head_id == boss.employee_id
    assert c_boss.get(f"/people/{worker.id}").status_code == 200
    resp = post(hr, f"/org/departments/{top.id}/head", {"head_no": "NOBODY"})
    assert resp.status_code == 422 and "No employee has this number." in text(resp)
    assert post(hr, f"/org/departments/{top.id}/head", {"head_no": ""}).status_code == 303
    assert _dept("T").head_id is None
    assert c_boss.get(f"/people/{worker.id}").status_code == 403
    assert [e.payload["after"] for e in events("department.head_set")] == [boss.employee_id, None]


def test_delete_only_when_empty(make, signed_in):
    parent = make.department(name="P")
    child = make.department(name="K", parent=parent)
    staffed = make.department(name="S")
    make.employee(department=staffed)
    c = signed_in(make.user(roles=("hr",)))
    resp = post(c, f"/org/departments/{parent.id}/delete")
    assert resp.status_code == 422 and "still has sub-departments" in text(resp)
    resp = post(c, f"/org/departments/{staffed.id}/delete")
    assert resp.status_code == 422 and "still has employees (1)" in text(resp)
    assert post(c, f"/org/departments/{child.id}/delete").status_code == 303
    assert post(c, f"/org/departments/{parent.id}/delete").status_code == 303
    assert _dept("P") is None and _dept("K") is None and _dept("S") is not None
    assert sorted(e.payload["name"] for e in events("department.deleted")) == ["K", "P"]


def test_positions_create_rename_delete_if_unused(make, signed_in):
    c = signed_in(make.user(roles=("hr",)))
    assert post(c, "/org/positions", {"name": "会计", "code": "ACC"}).status_code == 303
    assert post(c, "/org/positions", {"name": "出纳", "code": ""}).status_code == 303
    resp = post(c, "/org/positions", {"name": "会计", "code": ""})
    assert resp.status_code == 422 and "A position with this name already exists." in text(resp)
    acc = db.session.scalar(select(Position).where(Position.name == "会计"))
    make.employee(position_id=acc.id)
    resp = post(c, f"/org/positions/{acc.id}/delete")
    assert resp.status_code == 422 and "held by employees (1)" in text(resp)
    assert post(c, f"/org/positions/{acc.id}/rename", {"name": "高级会计", "code": "ACC"}).status_code == 303
    cashier = db.session.scalar(select(Position).where(Position.name == "出纳"))
    assert post(c, f"/org/positions/{cashier.id}/delete").status_code == 303
    assert db.session.scalars(select(Position.name)).all() == ["高级会计"]
    actions = [e.action for e in events("position.created") + events("position.renamed") +
               events("position.deleted")]
    assert actions == ["position.created", "position.created", "position.renamed", "position.deleted"]
    page = text(c.get("/org/positions"))
    assert "高级会计" in page
