"""The import parser and validator: pure functions, no database, no app."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook

from portal.org import importer
from portal.org.importer import Existing, ImportFileError, Reference

HEAD = "工号,姓名,部门,直属上级工号,岗位,手机,邮箱,入职日期,试用期截止,合同开始,合同结束,状态"


def _csv(*lines, header=HEAD, encoding="utf-8") -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode(encoding)


def _ref(**kw) -> Reference:
    ref = Reference(departments=[(1, "RD", "研发部"), (2, "SALES", "销售部"), (3, None, "综合部"),
                                 (4, "OPS1", "运营部"), (5, "OPS2", "运营部")],
                    positions=[(10, "ENG", "工程师"), (11, None, "销售")])
    for k, v in kw.items():
        setattr(ref, k, v)
    return ref


def _codes(result) -> list[tuple[int, str, str]]:
    return [(i.row, i.column, i.code) for i in result.issues]


# ---------------------------------------------------------------- reading

def test_csv_utf8_with_and_without_bom_and_gbk():
    line = "E1,张三,研发部,,工程师,13812345678,zs@example.com,2024-03-01,,,,在职"
    for content in (_csv(line), b"\xef\xbb\xbf" + _csv(line), _csv(line, encoding="gbk")):
        table = importer.read_table("people.csv", content)
        assert table.headers[:2] == ["工号", "姓名"]
        assert table.rows == [(2, line.split(","))]


def test_undecodable_bytes_are_refused():
    with pytest.raises(ImportFileError) as exc:
        importer.decode_text(b"\x81\x30\x81")  # cut in the middle of a GB18030 sequence
    assert exc.value.code == "unreadable"


def test_xlsx_with_dates_and_numbers():
    wb = Workbook()
    ws = wb.active
    ws.append(["emp_no", "name", "department", "mobile", "hire_date"])
    ws.append([1001, "张三", "RD", 13812345678, dt.datetime(2024, 3, 1)])
    ws.append([None, None, None, None, None])  # blank rows are skipped
    ws.append(["1002", "李四", "研发部", "13912345678", "2024/3/2"])
    buf = io.BytesIO()
    wb.save(buf)
    table = importer.read_table("people.xlsx", buf.getvalue())
    assert [n for n, _ in table.rows] == [2, 4]
    result = importer.validate(table, _ref())
    assert result.ok, _codes(result)
    first, second = result.rows
    assert first.emp_no == "1001" and first.values["mobile"] == "13812345678"
    assert first.values["hire_date"] == dt.date(2024, 3, 1)
    assert second.values["hire_date"] == dt.date(2024, 3, 2) and second.values["department_id"] == 1


def test_file_level_errors():
    with pytest.raises(ImportFileError) as exc:
        importer.read_table("a.csv", b"x" * 100, max_bytes=50)
    assert exc.value.code == "too_large"
    with pytest.raises(ImportFileError) as exc:
        importer.read_table("a.xls", b"\xd0\xcf\x11\xe0")
    assert exc.value.code == "bad_type"
    with pytest.raises(ImportFileError) as exc:
        importer.read_table("a.xlsx", b"PK\x03\x04 not really a zip")
    assert exc.value.code == "unreadable"
    with pytest.raises(ImportFileError) as exc:
        importer.read_table("a.csv", _csv())
    assert exc.value.code == "empty"
    rows = [f"E{i},名{i},研发部" for i in range(6)]
    with pytest.raises(ImportFileError) as exc:
        importer.read_table("a.csv", _csv(*rows, header="工号,姓名,部门"), max_rows=5)
    assert exc.value.code == "too_many_rows" and exc.value.params == {"max": 5}
    assert len(importer.read_table("a.csv", _csv(*rows[:5], header="工号,姓名,部门"), max_rows=5).rows) == 5


def test_header_mapping_chinese_english_and_unknown():
    mapping, unknown = importer.map_headers(["工号*", " Name ", "Hire Date", "部门(必填)", "备注"])
    assert mapping == {"emp_no": 0, "name": 1, "hire_date": 2, "department": 3}
    assert unknown == ["备注"]
    with pytest.raises(ImportFileError) as exc:
        importer.map_headers(["姓名", "部门"])
    assert exc.value.code == "missing_column"
    with pytest.raises(ImportFileError) as exc:
        importer.map_headers(["工号", "emp_no"])
    assert exc.value.code == "duplicate_column"
    with pytest.raises(ImportFileError) as exc:
        importer.map_headers(["a", "b"])
    assert exc.value.code == "no_header"


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("raw,expected", [
    ("2024-03-01", dt.date(2024, 3, 1)), ("2024/3/1", dt.date(2024, 3, 1)), ("2024.03.01", dt.date(2024, 3, 1)),
    ("2024年3月1日", dt.date(2024, 3, 1)), ("20240301", dt.date(2024, 3, 1)),
    ("2024-03-01 00:00:00", dt.date(2024, 3, 1)), (45352, dt.date(2024, 3, 1)),
    (dt.datetime(2024, 3, 1, 9, 0), dt.date(2024, 3, 1)), ("", None), (None, None),
])
def test_parse_date(raw, expected):
    assert importer.parse_date(raw) == expected


@pytest.mark.parametrize("raw", ["2024-02-30", "01/03/2024", "soon", "2024-13-01"])
def test_parse_date_refuses(raw):
    with pytest.raises(ValueError):
        importer.parse_date(raw)


def test_mobile_and_email_normalisation():
    assert importer.normalize_mobile("+86 138-1234-5678") == "13812345678"
    assert importer.normalize_mobile("+852 9123 4567") == "+85291234567"
    assert importer.normalize_mobile("12345") is None
    assert importer.normalize_mobile("021 1234 5678") is None  # a landline, not a mobile
    assert importer.normalize_email("Zhang.San@Example.COM") == "Zhang.San@example.com"
    assert importer.normalize_email("zhang@") is None


# ---------------------------------------------------------------- validation

def test_happy_path_with_manager_defined_later_in_the_file():
    table = importer.read_table("a.csv", _csv(
        "E2,李四,RD,E1,工程师,13912345678,ls@example.com,2024-03-01,2024-08-31,2024-03-01,2027-02-28,active",
        "E1,张三,研发部,,,13812345678,,2020-01-01,,,,",
        "E3,王五,综合部,E2,销售,,,2024-05-06,,,,待离职"))
    result = importer.validate(table, _ref())
    assert result.ok, _codes(result)
    assert (result.created, result.updated) == (3, 0)
    e2, e1, e3 = result.rows
    assert e2.values["manager_no"] == "E1" and e3.values["manager_no"] == "E2"
    assert e2.values["position_id"] == 10 and e3.values["position_id"] == 11
    assert e1.values["status"] == "active" and e3.values["status"] == "notice"
    assert e3.values["department_id"] == 3


def test_every_row_is_checked_and_reported_by_row_and_column():
    table = importer.read_table("a.csv", _csv(
        "E1,张三,研发部,,,,,2024-03-01,,,,",
        ",无号,研发部,,,,,2024-03-01,,,,",
        "E1,重复,研发部,,,,,2024-03-01,,,,",
        "E4,,未知部,,厨师,123,bad@,2024-02-30,,,,retired",
        "E5,赵六,运营部,E9,,,,2024-03-01,2024-01-01,2024-03-01,2024-02-01,",
        "E6,钱七,研发部,E6,,,,,,,,"))
    result = importer.validate(table, _ref())
    assert _codes(result) == [
        (3, "工号", "required"),
        (4, "工号", "duplicate_in_file"),
        (5, "姓名", "required"),
        (5, "部门", "unknown_department"),
        (5, "岗位", "unknown_position"),
        (5, "手机", "bad_mobile"),
        (5, "邮箱", "bad_email"),
        (5, "入职日期", "bad_date"),
        (5, "状态", "bad_status"),
        (6, "部门", "ambiguous_department"),
        (6, "直属上级工号", "unknown_manager"),
        (6, "试用期截止", "probation_before_hire"),
        (6, "合同结束", "contract_end_before_start"),
        (7, "直属上级工号", "self_manager"),
        (7, "入职日期", "required"),
    ]
    assert result.issues[1].params == {"value": "E1", "other": 2}


def test_manager_loop_inside_the_file_and_with_the_database():
    table = importer.read_table("a.csv", _csv("A,甲,RD,B,2024-01-01", "B,乙,RD,A,2024-01-01",
                                              header="工号,姓名,部门,直属上级工号,入职日期"))
    result = importer.validate(table, _ref())
    assert [(i.row, i.code) for i in result.issues] == [(2, "manager_cycle"), (3, "manager_cycle")]
    assert result.issues[0].params["chain"] == "A → B → A"
    # In the database X reports to Y; the file makes Y report to X.
    ref = _ref(employees={"X": Existing(1, manager_no="Y"), "Y": Existing(2)})
    table = importer.read_table("a.csv", _csv("Y,乙,RD,X,2024-01-01", header="工号,姓名,部门,直属上级工号,入职日期"))
    assert _codes(importer.validate(table, ref, update_existing=True)) == [(2, "直属上级工号", "manager_cycle")]


def test_existing_numbers_need_update_existing_and_blank_cells_keep_values():
    ref = _ref(employees={"E1": Existing(7, hire_date=dt.date(2024, 3, 1), contract_start=dt.date(2024, 3, 1))})
    table = importer.read_table("a.csv", _csv("E1,,,,,13812345678,,,2024-02-01,,2023-01-01,离职"))
    assert _codes(importer.validate(table, ref)) == [
        (2, "工号", "exists"), (2, "试用期截止", "probation_before_hire"),
        (2, "合同结束", "contract_end_before_start")]
    table = importer.read_table("a.csv", _csv("E1,,,,,13812345678,,,2024-09-01,,,离职"))
    result = importer.validate(table, ref, update_existing=True)
    assert result.ok and (result.created, result.updated) == (0, 1)
    assert result.rows[0].values == {"mobile": "13812345678", "probation_end": dt.date(2024, 9, 1),
                                     "status": "left"}


def test_department_code_and_name_columns():
    header = "工号,姓名,部门编码,部门,入职日期"
    table = importer.read_table("a.csv", _csv("E1,甲,OPS2,运营部,2024-01-01", "E2,乙,RD,销售部,2024-01-01",
                                              "E3,丙,NOPE,,2024-01-01", "E4,丁,,ops1,2024-01-01",
                                              header=header))
    result = importer.validate(table, _ref())
    assert _codes(result) == [(3, "部门", "department_mismatch"), (4, "部门编码", "unknown_department")]
    by_no = {r.emp_no: r for r in result.rows}
    assert by_no["E1"].values["department_id"] == 5 and by_no["E4"].values["department_id"] == 4
    assert "required" not in {i.code for i in result.issues}  # one message per problem


def test_template_headers_map_to_every_template_field():
    mapping, unknown = importer.map_headers(importer.template_headers())
    assert list(mapping) == list(importer.TEMPLATE_FIELDS) and unknown == []


def test_csv_bytes_bom_formula_escape_and_round_trip():
    body = importer.csv_bytes(["工号", "姓名", "手机"], [["E1", "=SUM(A1)", "+85291234567"],
                                                        ["E2", "@cmd", "-"]])
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert "'=SUM(A1)" in text and "'@cmd" in text and ",+85291234567" in text
    table = importer.read_table("back.csv", body)
    assert table.rows[0][1] == ["E1", "'=SUM(A1)", "+85291234567"]
    result = importer.validate(table, _ref(employees={"E1": Existing(1), "E2": Existing(2)}),
                               update_existing=True)
    assert result.rows[0].values["name"] == "=SUM(A1)"
