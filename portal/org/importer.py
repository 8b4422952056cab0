"""Employee import: reading CSV/XLSX files and validating every row. Pure functions, no database.

``read_table(filename, content)`` turns a file into a ``Table`` (header row + data rows with their
spreadsheet row numbers). ``validate(table, reference, update_existing)`` checks every row against a
``Reference`` (plain data the caller loaded from the database) and returns the parsed rows and the list of
problems as (row number, column, code). The caller writes nothing when there is any problem.

The same value checks (mobile, e-mail, date order) serve the employee form.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024

STATUSES = ("active", "notice", "left")

# field -> accepted headers (compared after ``norm_header``). The first one is the template header.
COLUMNS: dict[str, tuple[str, ...]] = {
    "emp_no": ("工号", "员工编号", "员工工号", "emp_no", "employee_no", "employee_number"),
    "name": ("姓名", "员工姓名", "name"),
    "department_code": ("部门编码", "部门代码", "department_code", "dept_code"),
    "department": ("部门", "所属部门", "department", "dept"),
    "manager_no": ("直属上级工号", "上级工号", "manager_no", "manager_emp_no"),
    "position": ("岗位", "职位", "position"),
    "mobile": ("手机", "手机号", "手机号码", "mobile", "phone"),
    "email": ("邮箱", "电子邮箱", "email", "e_mail"),
    "hire_date": ("入职日期", "hire_date"),
    "probation_end": ("试用期截止", "试用期截止日期", "试用期结束", "probation_end"),
    "contract_start": ("合同开始", "合同开始日期", "contract_start"),
    "contract_end": ("合同结束", "合同结束日期", "contract_end"),
    "status": ("状态", "在职状态", "status"),
}
TEMPLATE_FIELDS = ("emp_no", "name", "department", "manager_no", "position", "mobile", "email", "hire_date",
                   "probation_end", "contract_start", "contract_end", "status")
DATE_FIELDS = ("hire_date", "probation_end", "contract_start", "contract_end")
REQUIRED_FOR_NEW = ("name", "department", "hire_date")

STATUS_WORDS = {
    "active": "active", "在职": "active", "正式": "active", "试用": "active", "试用期": "active",
    "notice": "notice", "on notice": "notice", "on_notice": "notice", "待离职": "notice",
    "离职中": "notice", "通知期": "notice",
    "left": "left", "离职": "left", "已离职": "left",
}
# Fixed labels written into exported files (the import reads them back).
STATUS_EXPORT = {"active": "在职", "notice": "待离职", "left": "已离职"}

MESSAGES = {
    # file level
    "too_large": _l("The file is larger than %(mb)s MB. Split it into smaller files."),
    "too_many_rows": _l("The file has more than %(max)s data rows. Split it into smaller files."),
    "bad_type": _l("Upload a .csv or .xlsx file (old .xls files: save them as .xlsx first)."),
    "unreadable": _l("The file could not be read. Save it again as CSV (UTF-8) or XLSX."),
    "empty": _l("The file has no data rows."),
    "no_header": _l("The first row must hold the column headers."),
    "missing_column": _l("The file has no %(column)s column."),
    "duplicate_column": _l("The column %(column)s appears twice."),
    # row level
    "required": _l("This value is required."),
    "too_long": _l("At most %(max)s characters."),
    "duplicate_in_file": _l("Employee number %(value)s also appears in row %(other)s."),
    "exists": _l("Employee number %(value)s already exists. Tick \"update existing\" to update it."),
    "unknown_department": _l("No department has the code or name \"%(value)s\"."),
    "ambiguous_department": _l("Several departments are named \"%(value)s\": use the department code."),
    "department_mismatch": _l("The department code and the department name point to different departments."),
    "unknown_position": _l("No position is named \"%(value)s\"."),
    "unknown_manager": _l("No employee has the number %(value)s, in the database or in this file."),
    "self_manager": _l("An employee cannot be their own manager."),
    "manager_cycle": _l("This manager would create a loop in the reporting line (%(chain)s)."),
    "bad_mobile": _l("\"%(value)s\" is not a valid mobile number."),
    "bad_email": _l("\"%(value)s\" is not a valid e-mail address."),
    "bad_date": _l("\"%(value)s\" is not a date (use YYYY-MM-DD)."),
    "bad_status": _l("Unknown status \"%(value)s\" (use active, notice or left / 在职, 待离职, 已离职)."),
    "probation_before_hire": _l("The probation end date cannot be before the hire date."),
    "contract_end_before_start": _l("The contract end date cannot be before the contract start date."),
}


def describe(code: str, **params: Any) -> str:
    """The user-facing text of a problem code (call inside a request: it is translated)."""
    return str(MESSAGES[code]) % params if params else str(MESSAGES[code])


class ImportFileError(ValueError):
    """The file as a whole cannot be used (size, type, header)."""

    def __init__(self, code: str, **params: Any):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message(self) -> str:
        return describe(self.code, **self.params)


@dataclass
class Issue:
    row: int  # spreadsheet row number (the header is row 1)
    column: str  # the header as written in the file
    code: str
    params: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return describe(self.code, **self.params)


@dataclass
class Table:
    headers: list[str]
    rows: list[tuple[int, list[Any]]]  # (row number, cells)


# ---------------------------------------------------------------- reading files

def read_table(filename: str, content: bytes, max_rows: int = MAX_ROWS,
               max_bytes: int = MAX_BYTES) -> Table:
    if len(content) > max_bytes:
        raise ImportFileError("too_large", mb=max_bytes // (1024 * 1024))
    name = (filename or "").lower()
    if name.endswith(".xlsx") or (not name.endswith(".csv") and content[:4] == b"PK\x03\x04"):
        raw = _read_xlsx(content)
    elif name.endswith(".csv") or not name:
        raw = _read_csv(content)
    else:
        raise ImportFileError("bad_type")
    return _to_table(raw, max_rows)


def decode_text(content: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK, what Excel writes on Chinese Windows)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportFileError("unreadable") from exc


def _read_csv(content: bytes) -> Iterable[tuple[int, list[Any]]]:
    text = decode_text(content)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, cells
    except csv.Error as exc:
        raise ImportFileError("unreadable") from exc


def _read_xlsx(content: bytes) -> Iterable[tuple[int, list[Any]]]:
    from openpyxl import load_workbook
    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportFileError("unreadable") from exc
    try:
        ws = wb.worksheets[0]
        ws.reset_dimensions()  # some writers store a wrong sheet size; read what is really there
        for number, cells in enumerate(ws.iter_rows(values_only=True), start=1):
            yield number, list(cells)
    finally:
        wb.close()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _to_table(raw: Iterable[tuple[int, list[Any]]], max_rows: int) -> Table:
    headers: list[str] | None = None
    rows: list[tuple[int, list[Any]]] = []
    for number, cells in raw:
        if all(_blank(c) for c in cells):
            continue
        if headers is None:
            headers = [cell_text(c) for c in cells]
            continue
        rows.append((number, list(cells)))
        if len(rows) > max_rows:
            raise ImportFileError("too_many_rows", max=max_rows)
    if headers is None:
        raise ImportFileError("empty")
    if not rows:
        raise ImportFileError("empty")
    return Table(headers, rows)


# ---------------------------------------------------------------- headers

def norm_header(text: str) -> str:
    text = (text or "").replace("\ufeff", "").strip().lower()
    text = re.sub(r"[（(][^）)]*[）)]$", "", text).strip()  # "工号(必填)"
    text = text.strip("*＊ ")
    return re.sub(r"[\s\-]+", "_", text)


_ALIASES = {norm_header(alias): fld for fld, aliases in COLUMNS.items() for alias in aliases}


def map_headers(headers: list[str]) -> tuple[dict[str, int], list[str]]:
    """{field: column index} and the headers that were not recognised (ignored)."""
    mapping: dict[str, int] = {}
    unknown: list[str] = []
    for idx, header in enumerate(headers):
        key = norm_header(header)
        if not key:
            continue
        fld = _ALIASES.get(key)
        if fld is None:
            unknown.append(header)
            continue
        if fld in mapping:
            raise ImportFileError("duplicate_column", column=header)
        mapping[fld] = idx
    if not mapping:
        raise ImportFileError("no_header")
    if "emp_no" not in mapping:
        raise ImportFileError("missing_column", column="工号 / emp_no")
    return mapping, unknown


def template_headers() -> list[str]:
    return [COLUMNS[f][0] for f in TEMPLATE_FIELDS]


# ---------------------------------------------------------------- value parsing (shared with the form)

def cell_text(value: Any) -> str:
    """A cell as text; whole floats from spreadsheets (13812345678.0) lose their '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace("\ufeff", "").strip()


def normalize_mobile(value: str) -> Optional[str]:
    """A valid mobile number: mainland numbers as 11 digits, others as +E.164; None when invalid."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in (phonenumbers.PhoneNumberType.MOBILE,
                                                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return None
    if number.country_code == 86:
        return phonenumbers.national_significant_number(number)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> Optional[str]:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


_DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def parse_date(value: Any) -> Optional[dt.date]:
    """Dates from cells: date/datetime objects, Excel serial numbers, 2024-03-01, 2024/3/1, 2024年3月1日,
    20240301. Raises ValueError when the value is not a date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 20000 <= value <= 80000:  # Excel serial day numbers for 1954..2119
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(value))
        value = cell_text(value)
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    text = text.split(" ")[0] if re.match(r"^\d{4}-\d{2}-\d{2} \d", text) else text
    m = _DATE_RE.match(text)
    if not m:
        raise ValueError(text)
    return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def parse_status(value: str) -> Optional[str]:
    return STATUS_WORDS.get((value or "").strip().lower())


def date_order_problems(hire_date, probation_end, contract_start, contract_end) -> list[tuple[str, str]]:
    """[(field, code)] for dates in the wrong order."""
    problems = []
    if hire_date and probation_end and probation_end < hire_date:
        problems.append(("probation_end", "probation_before_hire"))
    if contract_start and contract_end and contract_end < contract_start:
        problems.append(("contract_end", "contract_end_before_start"))
    return problems


def manager_cycle(emp_no: str, managers: dict[str, Optional[str]], limit: int = 10000) -> list[str] | None:
    """Follow ``managers`` (emp_no -> manager emp_no) up from ``emp_no``; the chain when it comes back."""
    chain = [emp_no]
    seen = {emp_no}
    current = managers.get(emp_no)
    while current and len(chain) < limit:
        chain.append(current)
        if current == emp_no:
            return chain
        if current in seen:  # a loop above us that does not include us: not this row's doing
            return None
        seen.add(current)
        current = managers.get(current)
    return None


# ---------------------------------------------------------------- validation

@dataclass
class Existing:
    """An employee already in the database, as plain data."""
    id: int
    manager_no: Optional[str] = None
    hire_date: Optional[dt.date] = None
    probation_end: Optional[dt.date] = None
    contract_start: Optional[dt.date] = None
    contract_end: Optional[dt.date] = None


@dataclass
class Reference:
    departments: list[tuple[int, Optional[str], str]] = field(default_factory=list)  # (id, code, name)
    positions: list[tuple[int, Optional[str], str]] = field(default_factory=list)  # (id, code, name)
    employees: dict[str, Existing] = field(default_factory=dict)  # emp_no -> Existing


@dataclass
class ParsedRow:
    row: int
    emp_no: str
    action: str  # "create" | "update"
    values: dict[str, Any]  # only the fields to write; "manager_no" is resolved by the caller


@dataclass
class Validation:
    rows: list[ParsedRow]
    issues: list[Issue]
    unknown_columns: list[str]

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def created(self) -> int:
        return sum(1 for r in self.rows if r.action == "create")

    @property
    def updated(self) -> int:
        return sum(1 for r in self.rows if r.action == "update")


LIMITS = {"emp_no": 40, "name": 80, "email": 200}


def validate(table: Table, ref: Reference, update_existing: bool = False) -> Validation:
    mapping, unknown = map_headers(table.headers)
    issues: list[Issue] = []

    def column(fld: str) -> str:
        idx = mapping.get(fld)
        return table.headers[idx] if idx is not None else COLUMNS[fld][0]

    bad: set[tuple[int, str]] = set()  # (row, field) that already has a problem

    def add(row: int, fld: str, code: str, **params) -> None:
        issues.append(Issue(row, column(fld), code, params))
        bad.add((row, "department" if fld == "department_code" else fld))

    dept_by_code = {c.strip().lower(): i for i, c, _n in ref.departments if c}
    dept_by_name: dict[str, list[int]] = {}
    for i, _c, n in ref.departments:
        dept_by_name.setdefault(n.strip().lower(), []).append(i)
    pos_by_key: dict[str, int] = {}
    for i, c, n in ref.positions:
        pos_by_key[n.strip().lower()] = i
        if c:
            pos_by_key.setdefault(c.strip().lower(), i)

    first_row: dict[str, int] = {}
    parsed: list[ParsedRow] = []
    for number, cells in table.rows:
        raw = {fld: (cells[idx] if idx < len(cells) else None) for fld, idx in mapping.items()}
        text = {fld: _unescape(cell_text(v)) for fld, v in raw.items()}
        emp_no = text.get("emp_no", "")
        if not emp_no:
            add(number, "emp_no", "required")
            continue
        if len(emp_no) > LIMITS["emp_no"]:
            add(number, "emp_no", "too_long", max=LIMITS["emp_no"])
            continue
        if emp_no in first_row:
            add(number, "emp_no", "duplicate_in_file", value=emp_no, other=first_row[emp_no])
            continue
        first_row[emp_no] = number
        existing = ref.employees.get(emp_no)
        if existing is not None and not update_existing:
            add(number, "emp_no", "exists", value=emp_no)
        action = "update" if existing is not None else "create"
        values: dict[str, Any] = {}

        name = text.get("name", "")
        if name:
            if len(name) > LIMITS["name"]:
                add(number, "name", "too_long", max=LIMITS["name"])
            values["name"] = name

        dept_id = _department(number, text, dept_by_code, dept_by_name, add)
        if dept_id is not None:
            values["department_id"] = dept_id

        pos = text.get("position", "")
        if pos:
            pid = pos_by_key.get(pos.lower())
            if pid is None:
                add(number, "position", "unknown_position", value=pos)
            else:
                values["position_id"] = pid

        mobile = text.get("mobile", "")
        if mobile:
            normal = normalize_mobile(mobile)
            if normal is None:
                add(number, "mobile", "bad_mobile", value=mobile)
            else:
                values["mobile"] = normal

        email = text.get("email", "")
        if email:
            normal = normalize_email(email) if len(email) <= LIMITS["email"] else None
            if normal is None:
                add(number, "email", "bad_email", value=email)
            else:
                values["email"] = normal

        for fld in DATE_FIELDS:
            if fld in raw and not _blank(raw[fld]):
                try:
                    values[fld] = parse_date(raw[fld])
                except ValueError:
                    add(number, fld, "bad_date", value=text[fld])

        status = text.get("status", "")
        if status:
            code = parse_status(status)
            if code is None:
                add(number, "status", "bad_status", value=status)
            else:
                values["status"] = code
        elif action == "create":
            values["status"] = "active"

        manager_no = text.get("manager_no", "")
        if manager_no:
            if manager_no == emp_no:
                add(number, "manager_no", "self_manager")
            else:
                values["manager_no"] = manager_no

        if action == "create":
            for fld in REQUIRED_FOR_NEW:
                key = "department_id" if fld == "department" else fld
                if key not in values and (number, fld) not in bad:
                    add(number, fld, "required")

        dates = {fld: values.get(fld, getattr(existing, fld, None) if existing else None)
                 for fld in DATE_FIELDS}
        for fld, code in date_order_problems(**dates):
            add(number, fld, code)

        parsed.append(ParsedRow(number, emp_no, action, values))

    # Managers: an earlier or later row of the file, or someone in the database.
    managers: dict[str, Optional[str]] = {no: e.manager_no for no, e in ref.employees.items()}
    in_file = set(first_row)
    for row in parsed:
        if "manager_no" in row.values:
            managers[row.emp_no] = row.values["manager_no"]
        elif row.action == "create":
            managers[row.emp_no] = None
    for row in parsed:
        mgr = row.values.get("manager_no")
        if mgr is None:
            continue
        if mgr not in in_file and mgr not in ref.employees:
            add(row.row, "manager_no", "unknown_manager", value=mgr)
            continue
        chain = manager_cycle(row.emp_no, managers)
        if chain:
            add(row.row, "manager_no", "manager_cycle", chain=" → ".join(chain))

    order = {h: i for i, h in reversed(list(enumerate(table.headers)))}
    issues.sort(key=lambda i: (i.row, order.get(i.column, len(order))))
    return Validation(parsed, issues, unknown)


def _department(number, text, by_code, by_name, add) -> Optional[int]:
    code = text.get("department_code", "")
    name = text.get("department", "")
    by_code_id = None
    if code:
        by_code_id = by_code.get(code.lower())
        if by_code_id is None:
            add(number, "department_code", "unknown_department", value=code)
            return None
    if not name:
        return by_code_id
    # The department column takes a code or a name.
    ids = [by_code[name.lower()]] if name.lower() in by_code else by_name.get(name.lower(), [])
    if not ids:
        if by_code_id is None:
            add(number, "department", "unknown_department", value=name)
            return None
        add(number, "department", "department_mismatch")
        return None
    if by_code_id is not None:
        if by_code_id not in ids:
            add(number, "department", "department_mismatch")
            return None
        return by_code_id
    if len(ids) > 1:
        add(number, "department", "ambiguous_department", value=name)
        return None
    return ids[0]


_FORMULA_START = "=+-@\t\r"
_NUMBER_LIKE = re.compile(r"^[+-]?[\d\s().-]+$")


def _unescape(text: str) -> str:
    """Undo the apostrophe ``csv_bytes`` puts before formula-like cells."""
    if text.startswith("'") and text[1:2] and text[1] in _FORMULA_START:
        return text[1:]
    return text


# ---------------------------------------------------------------- writing files

def csv_bytes(header: list[str], rows: Iterable[Iterable[Any]]) -> bytes:
    """UTF-8 with BOM (Excel on Windows opens it correctly); cells that a spreadsheet would run as a
    formula are prefixed with an apostrophe."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _safe_cell(value: Any) -> str:
    text = cell_text(value)
    if text and text[0] in _FORMULA_START and not _NUMBER_LIKE.match(text):
        return "'" + text
    return text
