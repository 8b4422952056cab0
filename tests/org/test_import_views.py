"""The import page: all-or-nothing writes, the row-by-row report, CSV (UTF-8/GBK) and XLSX, limits."""
from __future__ import annotations

import datetime as dt
import io
import re

from openpyxl import Workbook
from sqlalchemy import func, select

from portal.core.db import db
from portal.org import importer
from portal.org.models import Employee
from tests.org.conftest import events, post, text

HEAD = "工号,姓名,部门,直属上级工号,岗位,手机,邮箱,入职日期,试用期截止,合同开始,合同结束,状态"


def _upload(client, content: bytes, filename="people.csv", update_existing=False):
    data = {"file": (io.BytesIO(content), filename)}
    if update_existing:
        data["update_existing"] = "y"
    return post(client, "/people/import", data, content_type="multipart/form-data")


def _csv(*lines, encoding="utf-8") -> bytes:
    return ("\r\n".join([HEAD, *lines]) + "\r\n").encode(encoding)


def _people() -> dict[str, Employee]:
    return {e.emp_no: e for e in db.session.scalars(
        select(Employee).execution_options(populate_existing=True))}


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Employee))


def _setup(make):
    rd = make.department(name="研发部", code="RD")
    sales = make.department(name="销售部", code="SALES")
    eng = make.position(name="工程师")
    hr = make.user(roles=("hr",), emp_no="HR01")
    return rd, sales, eng, hr


def test_import_needs_people_import(make, signed_in):
    for roles in (("employee",), ("manager",), ("admin",)):
        c = signed_in(make.user(roles=roles))
        assert c.get("/people/import").status_code == 403
        assert c.get("/people/import/template.csv").status_code == 403
        assert _upload(c, _csv("E1,张三,RD,,,,,2024-01-01,,,,")).status_code == 403
    assert _count() == 3  # the three users' own records only


def test_csv_happy_path_with_manager_defined_later(make, signed_in):
    rd, sales, eng, hr = _setup(make)
    c = signed_in(hr)
    resp = _upload(c, _csv(
        "E2,李四,销售部,E1,工程师,139 1234 5678,LS@Example.com,2024-03-01,2024-08-31,2024-03-01,2027-02-28,在职",
        "E1,张三,RD,HR01,,13812345678,,2020-01-01,,,,active",
        "E3,王五,SALES,E2,,,,2024/05/06,,,,待离职"))
    assert resp.status_code == 303, text(resp)
    assert resp.headers["Location"].endswith("/people")
    assert "Import done: 3 created, 0 updated." in text(c.get("/people"))
    p = _people()
    assert p["E2"].manager_id == p["E1"].id and p["E3"].manager_id == p["E2"].id
    assert p["E1"].manager_id == hr.employee_id
    assert p["E2"].department_id == sales.id and p["E1"].department_id == rd.id
    assert p["E2"].position_id == eng.id and p["E2"].mobile == "13912345678"
    assert p["E2"].email == "LS@example.com" and p["E2"].probation_end == dt.date(2024, 8, 31)
    assert p["E3"].status == "notice" and p["E3"].hire_date == dt.date(2024, 5, 6)
    assert (p["E1"].name_pinyin, p["E1"].name_initials) == ("zhangsan", "zs")
    ev = events("people.imported")
    assert len(ev) == 1
    data = ev[0].payload
    assert (data["created"], data["updated"], data["rows"], data["file"]) == (3, 0, 3, "people.csv")
    assert len(data["sha256"]) == 64 and ev[0].actor_id == hr.id
    # imported people are found by pinyin straight away
    assert "张三" in text(c.get("/people?q=zs"))


def test_xlsx_happy_path(make, signed_in):
    _rd, _sales, _eng, hr = _setup(make)
    wb = Workbook()
    ws = wb.active
    ws.append(["emp_no", "name", "department", "manager_no", "mobile", "hire_date", "contract_end", "status"])
    ws.append(["X2", "赵六", "RD", "X1", 13712345678, dt.datetime(2024, 3, 1), None, "notice"])
    ws.append([1001, "钱七", "研发部", None, None, dt.date(2023, 1, 9), dt.date(2026, 1, 8), None])
    ws.append(["X1", "孙八", "销售部", 1001, "+852 9123 4567", "2022-02-02", None, "left"])
    buf = io.BytesIO()
    wb.save(buf)
    resp = _upload(signed_in(hr), buf.getvalue(), filename="员工.xlsx")
    assert resp.status_code == 303, text(resp)
    p = _people()
    assert p["X2"].mobile == "13712345678" and p["X2"].status == "notice"
    assert p["X2"].manager_id == p["X1"].id and p["X1"].manager_id == p["1001"].id
    assert p["1001"].contract_end == dt.date(2026, 1, 8) and p["1001"].status == "active"
    assert p["X1"].mobile == "+85291234567" and p["X1"].status == "left"
    assert events("people.imported")[0].payload["file"] == "员工.xlsx"


def test_one_bad_row_writes_nothing_and_is_reported(make, signed_in):
    _rd, _sales, _eng, hr = _setup(make)
    before = _count()
    lines = [f"G{i:03d},员工{i},RD,,,,,2024-01-01,,,," for i in range(20)]
    lines[13] = "G013,员工13,RD,,,1380000,,2024-01-01,,,,"  # row 15 in the file: bad mobile
    resp = _upload(signed_in(hr), _csv(*lines))
    assert resp.status_code == 422
    page = text(resp)
    assert "Nothing was imported: 1 problems found" in page
    row = re.search(r'data-label="Row">(\d+)</td>\s*<td data-label="Column">([^<]+)</td>\s*'
                    r'<td data-label="Problem">([^<]+)</td>', page)
    assert row.groups() == ("15", "手机", "&#34;1380000&#34; is not a valid mobile number.")
    assert _count() == before
    assert events("people.imported") == []


def test_gbk_csv(make, signed_in):
    _setup(make)
    hr = make.user(roles=("hr",))
    resp = _upload(signed_in(hr), _csv("K1,欧阳娜娜,研发部,,工程师,,,2024-01-01,,,,在职", encoding="gbk"))
    assert resp.status_code == 303, text(resp)
    emp = _people()["K1"]
    assert emp.name == "欧阳娜娜" and emp.name_initials == "oynn"


def test_existing_numbers_need_the_update_box(make, signed_in):
    rd, sales, _eng, hr = _setup(make)
    make.employee(name="老员工", emp_no="OLD1", department=rd, mobile="13800000000",
                  hire_date=dt.date(2020, 1, 1))
    c = signed_in(hr)
    content = _csv("OLD1,,销售部,,,,,,,,,已离职", "NEW1,新人,RD,OLD1,,,,2024-06-01,,,,")
    resp = _upload(c, content)
    assert resp.status_code == 422
    assert "Employee number OLD1 already exists." in text(resp).replace("&#34;", '"')
    assert _count() == 2
    resp = _upload(c, content, update_existing=True)
    assert resp.status_code == 303, text(resp)
    p = _people()
    old = p["OLD1"]
    assert (old.name, old.department_id, old.status, old.mobile, old.hire_date) == (
        "老员工", sales.id, "left", "13800000000", dt.date(2020, 1, 1))
    assert p["NEW1"].manager_id == old.id
    data = events("people.imported")[0].payload
    assert (data["created"], data["updated"], data["update_existing"]) == (1, 1, True)


def test_file_errors_are_clear(make, signed_in):
    _setup(make)
    hr = make.user(roles=("hr",))
    c = signed_in(hr)
    resp = _upload(c, b"a" * (importer.MAX_BYTES + 1))
    assert resp.status_code == 422 and "The file is larger than 5 MB." in text(resp)
    lines = [f"M{i:05d},员工,RD,,,,,2024-01-01,,,," for i in range(importer.MAX_ROWS + 1)]
    resp = _upload(c, _csv(*lines))
    assert resp.status_code == 422 and "more than 5000 data rows" in text(resp)
    resp = _upload(c, b"\xd0\xcf\x11\xe0", filename="old.xls")
    assert resp.status_code == 422 and "Upload a .csv or .xlsx file" in text(resp)
    resp = _upload(c, "姓名,部门\n张三,RD\n".encode())
    assert resp.status_code == 422 and "The file has no 工号 / emp_no column." in text(resp)
    resp = post(c, "/people/import", {}, content_type="multipart/form-data")
    assert resp.status_code == 422 and "Choose a file." in text(resp)
    assert _count() == 2


def test_template_download(make, signed_in):
    hr = make.user(roles=("hr",))
    resp = signed_in(hr).get("/people/import/template.csv")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    body = resp.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig").strip() == HEAD


def test_export_can_be_imported_back(make, signed_in):
    rd, _sales, eng, hr = _setup(make)
    boss = make.employee(name="老板", emp_no="B1", department=rd)
    make.employee(name="员工甲", emp_no="W1", department=rd, manager=boss, position_id=eng.id,
                  contract_start=dt.date(2024, 1, 1), contract_end=dt.date(2026, 12, 31))
    c = signed_in(hr)
    exported = c.get("/people/export.csv").get_data()
    before = {no: (e.name, e.department_id, e.manager_id, e.position_id, e.mobile, e.contract_end, e.status)
              for no, e in _people().items()}
    resp = _upload(c, exported, filename="people.csv", update_existing=True)
    assert resp.status_code == 303, text(resp)
    after = {no: (e.name, e.department_id, e.manager_id, e.position_id, e.mobile, e.contract_end, e.status)
             for no, e in _people().items()}
    assert after == before
    assert events("people.imported")[0].payload["ignored_columns"] == ["直属上级"]
