"""People pages: create/edit with validation, search (pinyin), scope of list/detail/export, audit."""
from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import event, func, select

from portal.core.db import db
from portal.core.models import User
from portal.org.models import Employee
from tests.org.conftest import events, post, text


def _form(dept, **over):
    data = {"emp_no": "A1001", "name": "王小明", "department_id": str(dept.id), "manager_no": "",
            "position_id": "", "mobile": "138 1234 5678", "email": "XiaoMing@Example.com",
            "hire_date": "2024-03-01", "probation_end": "2024-08-31", "contract_start": "2024-03-01",
            "contract_end": "2027-02-28", "status": "active"}
    data.update(over)
    return data


def _emp(emp_no):
    return db.session.scalar(select(Employee).where(Employee.emp_no == emp_no)
                             .execution_options(populate_existing=True))


def _count():
    return db.session.scalar(select(func.count()).select_from(Employee))


# ---------------------------------------------------------------- create / edit

def test_hr_creates_employee_with_account(make, signed_in):
    dept = make.department(name="研发部")
    pos = make.position(name="工程师")
    boss = make.employee(name="李雷", emp_no="B0001")
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    resp = post(c, "/people/new", _form(dept, position_id=str(pos.id), manager_no="B0001",
                                        create_account="y", username="xiaoming"))
    assert resp.status_code == 303, text(resp)
    emp = _emp("A1001")
    assert resp.headers["Location"].endswith(f"/people/{emp.id}")
    assert (emp.name_pinyin, emp.name_initials) == ("wangxiaoming", "wxm")
    assert emp.mobile == "13812345678" and emp.email == "XiaoMing@example.com"
    assert emp.manager_id == boss.id and emp.position_id == pos.id and emp.department_id == dept.id
    user = db.session.scalar(select(User).where(User.employee_id == emp.id))
    assert user.username == "xiaoming" and user.role_codes == {"employee"} and user.must_change_password
    page = text(c.get(resp.headers["Location"]))
    assert "Initial password (shown once)" in page
    assert "Initial password" not in text(c.get(resp.headers["Location"]))  # only once
    created = events("people.created")
    assert len(created) == 1 and created[0].target_id == str(emp.id)
    assert created[0].payload["mobile"] == "13812345678"
    assert len(events("account.created")) == 1


def test_account_name_taken_keeps_everything_unsaved(make, signed_in):
    dept = make.department()
    make.user(username="taken")
    hr = make.user(roles=("hr",))
    before = _count()
    resp = post(signed_in(hr), "/people/new", _form(dept, create_account="y", username="taken"))
    assert resp.status_code == 422
    assert "This username is already taken." in text(resp)
    assert _count() == before and _emp("A1001") is None
    assert events("people.created") == []


def test_validation_messages_are_422_and_nothing_is_saved(make, signed_in):
    dept = make.department()
    hr = make.user(roles=("hr",))
    before = _count()
    resp = post(signed_in(hr), "/people/new", _form(
        dept, name="", mobile="12345", email="not-an-email", probation_end="2024-01-31",
        contract_start="2024-03-01", contract_end="2023-12-31", status="retired"))
    assert resp.status_code == 422
    page = text(resp)
    for msg in ("Enter the name.", "Enter a valid mobile number", "Enter a valid e-mail address.",
                "The probation end date cannot be before the hire date.",
                "The contract end date cannot be before the contract start date.", "Not a valid choice"):
        assert msg in page, msg
    assert 'aria-invalid="true"' in page
    assert _count() == before


def test_missing_required_and_bad_date(make, signed_in):
    make.department()
    hr = make.user(roles=("hr",))
    resp = post(signed_in(hr), "/people/new", {"emp_no": "", "name": "x", "department_id": "",
                                               "hire_date": "2024-13-45", "status": "active"})
    assert resp.status_code == 422
    page = text(resp)
    assert "Enter the employee number." in page and "Choose a department." in page
    assert "Not a valid date value." in page
    assert "Enter the hire date." not in page  # a bad date gets one message, not two
    resp = post(signed_in(hr), "/people/new", {"emp_no": "X", "name": "x", "department_id": "",
                                               "hire_date": "", "status": "active"})
    assert resp.status_code == 422
    assert "Enter the hire date." in text(resp) and "Not a valid date value." not in text(resp)


def test_employee_number_must_be_unique(make, signed_in):
    dept = make.department()
    make.employee(emp_no="A1001")
    hr = make.user(roles=("hr",))
    resp = post(signed_in(hr), "/people/new", _form(dept))
    assert resp.status_code == 422
    assert "Another employee already has this number." in text(resp)


def test_htmx_invalid_form_returns_the_form_partial(make, signed_in):
    dept = make.department()
    hr = make.user(roles=("hr",))
    resp = post(signed_in(hr), "/people/new", _form(dept, email="bad"), headers={"HX-Request": "true"})
    assert resp.status_code == 422
    page = text(resp)
    assert page.lstrip().startswith('<form method="post"') and "<html" not in page
    assert "Enter a valid e-mail address." in page


def test_manager_cannot_be_self_or_create_a_loop(make, signed_in):
    dept = make.department()
    top = make.employee(emp_no="T1", department=dept)
    mid = make.employee(emp_no="M1", department=dept, manager=top)
    low = make.employee(emp_no="L1", department=dept, manager=mid)
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    data = _form(dept, emp_no="T1", name="顶层", mobile="", email="", probation_end="", contract_start="",
                 contract_end="")
    resp = post(c, f"/people/{top.id}/edit", {**data, "manager_no": "L1"})
    assert resp.status_code == 422
    assert "that would be a loop" in text(resp)
    resp = post(c, f"/people/{top.id}/edit", {**data, "manager_no": "T1"})
    assert resp.status_code == 422
    assert "An employee cannot be their own manager." in text(resp)
    resp = post(c, f"/people/{top.id}/edit", {**data, "manager_no": "NOPE"})
    assert resp.status_code == 422 and "No employee has this number." in text(resp)
    assert _emp("T1").manager_id is None
    assert _emp("L1").manager_id == mid.id == low.manager_id


def test_edit_saves_and_audits_the_changes(make, signed_in):
    dept = make.department()
    other = make.department()
    emp = make.employee(name="张三", emp_no="Z1", department=dept)
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    page = text(c.get(f"/people/{emp.id}/edit"))
    assert 'value="Z1"' in page and "create_account" not in page
    resp = post(c, f"/people/{emp.id}/edit", _form(other, emp_no="Z1", name="张珊", status="notice"))
    assert resp.status_code == 303
    saved = _emp("Z1")
    assert (saved.name, saved.name_pinyin, saved.status, saved.department_id) == (
        "张珊", "zhangshan", "notice", other.id)
    ev = events("people.updated")
    assert len(ev) == 1 and ev[0].target_id == str(emp.id)
    changes = ev[0].payload["changes"]
    assert changes["name"] == ["张三", "张珊"] and changes["status"] == ["active", "notice"]
    assert changes["department_id"] == [dept.id, other.id]
    assert "name_pinyin" not in changes


def test_edit_and_create_need_people_edit(make, signed_in):
    dept = make.department()
    boss = make.user(roles=("manager",), emp_no="BOSS")
    report = make.employee(manager=boss.employee, department=dept)
    c = signed_in(boss)
    assert c.get(f"/people/{report.id}/edit").status_code == 403
    assert post(c, f"/people/{report.id}/edit", _form(dept, emp_no=report.emp_no)).status_code == 403
    assert post(c, "/people/new", _form(dept)).status_code == 403
    assert c.get("/people/new").status_code == 403


def test_account_for_an_existing_employee(make, signed_in):
    emp = make.employee(emp_no="N77")
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    assert "Create account" in text(c.get(f"/people/{emp.id}"))
    resp = post(c, f"/people/{emp.id}/account", {"username": ""})
    assert resp.status_code == 303
    user = db.session.scalar(select(User).where(User.employee_id == emp.id))
    assert user.username == "N77"
    assert "Initial password (shown once)" in text(c.get(f"/people/{emp.id}"))
    resp = post(c, f"/people/{emp.id}/account", {"username": "again"})
    assert "This employee already has an account." in text(c.get(resp.headers["Location"]))


# ---------------------------------------------------------------- search and filters

def _rows(resp) -> list[str]:
    """Names in the results table."""
    import re
    return re.findall(r'data-label="Name"><a href="/people/\d+">([^<]+)</a>', text(resp))


def test_search_by_pinyin_initials_name_and_number(make, signed_in):
    make.employee(name="张三", emp_no="E100")
    make.employee(name="李四", emp_no="E200")
    make.employee(name="赵小山", emp_no="X300")
    hr = make.user(roles=("hr",), name="人事")
    c = signed_in(hr)
    assert _rows(c.get("/people?q=zs")) == ["张三"]
    assert _rows(c.get("/people?q=zhangsan")) == ["张三"]
    assert _rows(c.get("/people?q=ZhangSan")) == ["张三"]
    assert _rows(c.get("/people?q=张")) == ["张三"]
    assert _rows(c.get("/people?q=e2")) == ["李四"]
    assert _rows(c.get("/people?q=xiaoshan")) == ["赵小山"]
    assert _rows(c.get("/people?q=zxs")) == ["赵小山"]
    assert _rows(c.get("/people?q=100%25")) == []  # LIKE wildcards are literal


def test_htmx_search_returns_the_partial(make, signed_in):
    make.employee(name="张三")
    hr = make.user(roles=("hr",))
    resp = signed_in(hr).get("/people?q=zs", headers={"HX-Request": "true"})
    assert resp.status_code == 200
    page = text(resp)
    assert "<html" not in page and "张三" in page and 'hx-swap-oob="true"' in page
    assert "HX-Request" in resp.headers["Vary"]
    full = text(signed_in(hr).get("/people?q=zs"))
    assert 'hx-push-url="true"' in full and 'id="people-results"' in full


def test_filters_department_subtree_status_position(make, signed_in):
    root = make.department(name="总部")
    sub = make.department(name="分部", parent=root)
    other = make.department(name="别处")
    pos = make.position(name="会计")
    make.employee(name="甲", department=root)
    make.employee(name="乙", department=sub, position_id=pos.id)
    make.employee(name="丙", department=other, status="left")
    hr = make.user(roles=("hr",), name="人事")
    c = signed_in(hr)
    assert sorted(_rows(c.get(f"/people?department={root.id}"))) == ["乙", "甲"]
    assert _rows(c.get(f"/people?department={sub.id}")) == ["乙"]
    assert _rows(c.get("/people?status=left")) == ["丙"]
    assert _rows(c.get(f"/people?position={pos.id}")) == ["乙"]
    assert c.get("/people?department=abc&status=bogus").status_code == 200


def test_pagination(make, signed_in):
    for i in range(7):
        make.employee(name=f"员工{i}", emp_no=f"P{i:02d}")
    hr = make.user(roles=("hr",), emp_no="Z99")
    c = signed_in(hr)
    first = c.get("/people?per_page=5")
    assert len(_rows(first)) == 5 and "Page 1 of 2" in text(first)
    assert len(_rows(c.get("/people?per_page=5&page=2"))) == 3


def test_list_query_count_does_not_grow_with_rows(app, make, signed_in):
    dept = make.department()
    pos = make.position()
    boss = make.employee(department=dept)
    hr = make.user(roles=("hr",))
    c = signed_in(hr)

    def queries(path):
        count = [0]

        def on_exec(*_a, **_k):
            count[0] += 1
        event.listen(db.engine, "before_cursor_execute", on_exec)
        try:
            assert c.get(path).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", on_exec)
        return count[0]

    for _ in range(2):
        make.employee(department=dept, manager=boss, position_id=pos.id)
    few = queries("/people")
    for _ in range(15):
        make.employee(department=make.department(), manager=boss, position_id=make.position().id)
    assert queries("/people") == few


# ---------------------------------------------------------------- scope

def _org(make):
    """A manager M heading D (with sub-department D2) and with a direct report R elsewhere."""
    d = make.department(name="D")
    d2 = make.department(name="D2", parent=d)
    x = make.department(name="X")
    m_user = make.user(roles=("manager",), name="经理", emp_no="M0", department=d)
    m = m_user.employee
    from portal.org.models import Department
    dept = db.session.get(Department, d.id)
    dept.head_id = m.id
    db.session.commit()
    people = {
        "in_d": make.employee(name="部门内", emp_no="S1", department=d),
        "in_d2": make.employee(name="子部门", emp_no="S2", department=d2),
        "report": make.employee(name="直属", emp_no="S3", department=x, manager=m),
        "outsider": make.employee(name="外人", emp_no="S4", department=x),
    }
    return m_user, people


def _export_numbers(resp) -> set[str]:
    assert resp.status_code == 200
    body = resp.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:2] == ["工号", "姓名"]
    return {r[0] for r in rows[1:]}


def test_manager_sees_subtree_and_direct_reports_only(make, signed_in):
    m_user, p = _org(make)
    c = signed_in(m_user)
    assert sorted(_rows(c.get("/people"))) == sorted(["经理", "部门内", "子部门", "直属"])
    assert _rows(c.get("/people?q=wr")) == []  # search stays inside the scope (外人 = wairen)
    for key in ("in_d", "in_d2", "report"):
        assert c.get(f"/people/{p[key].id}").status_code == 200
    assert c.get(f"/people/{p['outsider'].id}").status_code == 403
    assert _export_numbers(c.get("/people/export.csv")) == {"M0", "S1", "S2", "S3"}
    assert sorted(_rows(c.get("/team"))) == sorted(["部门内", "子部门", "直属"])


def test_employee_sees_only_self(make, signed_in):
    m_user, p = _org(make)
    me = make.user(roles=("employee",), name="普通", emp_no="U1", manager=m_user.employee)
    c = signed_in(me)
    assert _rows(c.get("/people")) == ["普通"]
    assert c.get(f"/people/{me.employee_id}").status_code == 200
    assert c.get(f"/people/{m_user.employee_id}").status_code == 403
    assert c.get(f"/people/{p['in_d'].id}").status_code == 403
    assert _export_numbers(c.get("/people/export.csv")) == {"U1"}
    assert _rows(c.get("/team")) == []
    page = text(c.get("/me"))
    assert "普通" in page and "U1" in page
    assert f"/people/{me.employee_id}/edit" not in page  # no people.edit


def test_hr_sees_everyone(make, signed_in):
    m_user, p = _org(make)
    hr = make.user(roles=("hr",), name="人事", emp_no="H1")
    c = signed_in(hr)
    assert len(_rows(c.get("/people"))) == 6
    assert c.get(f"/people/{p['outsider'].id}").status_code == 200
    assert _export_numbers(c.get("/people/export.csv")) == {"M0", "S1", "S2", "S3", "S4", "H1"}
    assert _export_numbers(c.get("/people/export.csv?q=zbm")) == {"S2"}  # 子部门 = zi bu men
    assert _export_numbers(c.get("/people/export.csv?q=zzz")) == set()


def test_me_without_an_employee_record(make, signed_in):
    admin = make.user(roles=("admin",), with_employee=False)
    resp = signed_in(admin).get("/me")
    assert resp.status_code == 200
    assert "not linked to an employee record" in text(resp)


def test_unknown_person_is_404(make, signed_in):
    hr = make.user(roles=("hr",))
    assert signed_in(hr).get("/people/999999").status_code == 404


# ---------------------------------------------------------------- audit of views and exports

def test_views_and_exports_are_audited(make, signed_in):
    emp = make.employee(name="张三")
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    assert c.get(f"/people/{emp.id}").status_code == 200
    viewed = events("people.viewed")
    assert len(viewed) == 1
    assert (viewed[0].target_type, viewed[0].target_id, viewed[0].actor_id) == ("employees", str(emp.id), hr.id)
    c.get(f"/people/{hr.employee_id}")  # one's own record is not a "view of someone else"
    c.get("/me")
    assert len(events("people.viewed")) == 1
    _export_numbers(c.get("/people/export.csv?status=active"))
    exported = events("people.exported")
    assert len(exported) == 1
    assert exported[0].payload == {"count": 2, "filters": {"status": "active"}, "scope": "all"}


def test_export_escapes_formula_cells(make, signed_in):
    make.employee(name="=HYPERLINK(1)", emp_no="F1")
    make.employee(name="正常", emp_no="F2", mobile="+85291234567")
    hr = make.user(roles=("hr",))
    body = signed_in(hr).get("/people/export.csv").get_data().decode("utf-8-sig")
    rows = {r[0]: r for r in csv.reader(io.StringIO(body))}
    assert rows["F1"][1] == "'=HYPERLINK(1)"
    assert rows["F2"][7] == "+85291234567"


def test_profile_shows_probation_and_reports(make, signed_in):
    boss = make.user(roles=("manager",), name="老板", emp_no="B1",
                     probation_end=dt.date.today() + dt.timedelta(days=30))
    make.employee(name="下属", emp_no="R1", manager=boss.employee)
    page = text(signed_in(boss).get("/me"))
    assert "In probation" in page and "下属" in page
