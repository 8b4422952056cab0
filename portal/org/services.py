"""People and organisation: every write and business rule. No request object in here; callers pass the
acting user and commit. Every change writes an audit event in the caller's transaction."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import selectinload

from portal.core import audit
from portal.core.db import db
from portal.core.security import effective_permissions, managed_department_ids, scoped
from portal.org import importer
from portal.org.models import STATUSES, Department, Employee, Position
from portal.org.pinyin import pinyin_fields


class OrgError(ValueError):
    """A user-facing problem; ``field`` names the form field it belongs to."""

    def __init__(self, code: str, field: str | None = None, **params):
        super().__init__(code)
        self.code = code
        self.field = field
        self.params = params


def _clean(value: str | None) -> str:
    return (value or "").strip()


# ---------------------------------------------------------------- departments: reading

@dataclass
class DeptNode:
    dept: Department
    depth: int
    people: int  # employees directly in this department
    children: list["DeptNode"] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.people + sum(c.total for c in self.children)


def _children_map() -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = {}
    for did, parent in db.session.execute(select(Department.id, Department.parent_id)):
        children.setdefault(parent, []).append(did)
    return children


def subtree_ids(dept_id: int, children: dict[int | None, list[int]] | None = None) -> set[int]:
    """The department and everything below it."""
    children = children if children is not None else _children_map()
    result: set[int] = set()
    stack = [dept_id]
    while stack:
        did = stack.pop()
        if did in result:
            continue
        result.add(did)
        stack.extend(children.get(did, []))
    return result


def department_tree() -> list[DeptNode]:
    """The whole tree (two queries), siblings sorted by name."""
    depts = db.session.scalars(select(Department).options(selectinload(Department.head))
                               .order_by(Department.name, Department.id)).all()
    counts = dict(db.session.execute(select(Employee.department_id, func.count())
                                     .where(Employee.department_id.is_not(None))
                                     .group_by(Employee.department_id)).all())
    by_parent: dict[int | None, list[Department]] = {}
    for d in depts:
        by_parent.setdefault(d.parent_id, []).append(d)

    def build(parent: int | None, depth: int, seen: set[int]) -> list[DeptNode]:
        nodes = []
        for d in by_parent.get(parent, []):
            if d.id in seen:
                continue
            node = DeptNode(d, depth, counts.get(d.id, 0))
            node.children = build(d.id, depth + 1, seen | {d.id})
            nodes.append(node)
        return nodes

    return build(None, 0, set())


def flatten(nodes: list[DeptNode]) -> list[DeptNode]:
    out: list[DeptNode] = []
    for n in nodes:
        out.append(n)
        out.extend(flatten(n.children))
    return out


def department_choices(exclude_subtree_of: int | None = None, blank: Any = None) -> list[tuple[str, Any]]:
    """(id, indented name) in tree order, for select fields. One light query (four columns): it runs on
    every filtered list page, and a big company has a thousand departments."""
    rows = db.session.execute(select(Department.id, Department.name, Department.code, Department.parent_id)
                              .order_by(Department.name, Department.id)).all()
    by_parent: dict[int | None, list] = {}
    for row in rows:
        by_parent.setdefault(row.parent_id, []).append(row)
    skip = subtree_ids(exclude_subtree_of) if exclude_subtree_of else set()
    choices = [("", blank)] if blank is not None else []
    stack = [(row, 0) for row in reversed(by_parent.get(None, []))]
    seen: set[int] = set()
    while stack:
        row, depth = stack.pop()
        if row.id in seen:
            continue
        seen.add(row.id)
        if row.id not in skip:
            label = "\u3000" * depth + row.name + (f" ({row.code})" if row.code else "")
            choices.append((str(row.id), label))
        stack.extend((child, depth + 1) for child in reversed(by_parent.get(row.id, [])))
    return choices


def department_path(dept: Department | None) -> list[Department]:
    path: list[Department] = []
    seen: set[int] = set()
    while dept is not None and dept.id not in seen:
        seen.add(dept.id)
        path.append(dept)
        dept = dept.parent
    return list(reversed(path))


def position_choices(blank: Any) -> list[tuple[str, Any]]:
    return [("", blank)] + [(str(p.id), p.name) for p in
                            db.session.scalars(select(Position).order_by(Position.name))]


# ---------------------------------------------------------------- people: reading

@dataclass
class PeopleFilter:
    q: str = ""
    department_id: Optional[int] = None
    status: str = ""
    position_id: Optional[int] = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("q", self.q), ("department", self.department_id), ("status", self.status),
                                  ("position", self.position_id)) if v}


def search_condition(q: str):
    """Name, employee number, mobile, pinyin (zhangsan) or initials (zs)."""
    q = q.strip()
    conds = [Employee.name.contains(q, autoescape=True),
             func.lower(Employee.emp_no).contains(q.lower(), autoescape=True)]
    key = re.sub(r"[\s'·]", "", q.lower())
    if key and key.isascii() and key.isalpha():
        conds.append(Employee.name_pinyin.contains(key, autoescape=True))
        conds.append(Employee.name_initials.startswith(key, autoescape=True))
    if q.isdigit() and len(q) >= 4:
        conds.append(Employee.mobile.contains(q, autoescape=True))
    return or_(*conds)


def _filtered(stmt, flt: PeopleFilter):
    if flt.q:
        stmt = stmt.where(search_condition(flt.q))
    if flt.department_id:
        stmt = stmt.where(Employee.department_id.in_(subtree_ids(flt.department_id)))
    if flt.status in STATUSES:
        stmt = stmt.where(Employee.status == flt.status)
    if flt.position_id:
        stmt = stmt.where(Employee.position_id == flt.position_id)
    return stmt


def _with_relations(stmt):
    return stmt.options(selectinload(Employee.department), selectinload(Employee.position),
                        selectinload(Employee.manager)).order_by(Employee.emp_no)


def people_query(user, flt: PeopleFilter):
    """Employees ``user`` may see (everyone with people.view_all, else self, reports and headed
    subtrees), filtered."""
    return _with_relations(_filtered(scoped(select(Employee), user), flt))


def team_condition(user):
    """Direct reports and people in the departments the user heads (not the user)."""
    emp_id = getattr(user, "employee_id", None)
    if not emp_id:
        return false()
    conds = [Employee.manager_id == emp_id]
    depts = managed_department_ids(user)
    if depts:
        conds.append(Employee.department_id.in_(depts))
    return (Employee.id != emp_id) & or_(*conds)


def team_query(user, flt: PeopleFilter):
    return _with_relations(_filtered(select(Employee).where(team_condition(user)), flt))


def has_team(user) -> bool:
    return db.session.scalar(select(func.count()).select_from(Employee).where(team_condition(user))) > 0


def sees_all(user) -> bool:
    return "people.view_all" in effective_permissions(user)


def direct_reports(emp: Employee, user) -> list[Employee]:
    return list(db.session.scalars(scoped(select(Employee).where(Employee.manager_id == emp.id), user)
                                   .order_by(Employee.emp_no)))


def record_view(emp: Employee, actor) -> None:
    audit.record("people.viewed", emp, {"emp_no": emp.emp_no}, actor=actor)


EXPORT_HEADER = ["工号", "姓名", "部门编码", "部门", "直属上级工号", "直属上级", "岗位", "手机", "邮箱",
                 "入职日期", "试用期截止", "合同开始", "合同结束", "状态"]


def export_csv(user, flt: PeopleFilter, actor) -> tuple[bytes, int]:
    """The people ``user`` may see with the filters, as CSV (UTF-8 with BOM). Audited."""
    people = db.session.scalars(people_query(user, flt)).all()
    rows = [[e.emp_no, e.name, e.department.code if e.department else "",
             e.department.name if e.department else "", e.manager.emp_no if e.manager else "",
             e.manager.name if e.manager else "", e.position.name if e.position else "", e.mobile, e.email,
             e.hire_date, e.probation_end, e.contract_start, e.contract_end,
             importer.STATUS_EXPORT.get(e.status, e.status)] for e in people]
    audit.record("people.exported", None, {"count": len(rows), "filters": flt.as_dict(),
                                           "scope": "all" if sees_all(user) else "scoped"}, actor=actor)
    return importer.csv_bytes(EXPORT_HEADER, rows), len(rows)


# ---------------------------------------------------------------- people: writing

@dataclass
class EmployeeData:
    emp_no: str
    name: str
    department_id: Optional[int]
    manager_no: str = ""
    position_id: Optional[int] = None
    mobile: str = ""
    email: str = ""
    hire_date: Optional[dt.date] = None
    probation_end: Optional[dt.date] = None
    contract_start: Optional[dt.date] = None
    contract_end: Optional[dt.date] = None
    status: str = "active"


TRACKED = ("emp_no", "name", "department_id", "manager_id", "position_id", "mobile", "email", "hire_date",
           "probation_end", "contract_start", "contract_end", "status")


def _values(data: EmployeeData, emp_id: int | None) -> dict[str, Any]:
    """Check ``data`` against the rules and the database; the column values to store."""
    emp_no = _clean(data.emp_no)
    name = _clean(data.name)
    if not emp_no:
        raise OrgError("emp_no_required", "emp_no")
    if not name:
        raise OrgError("name_required", "name")
    taken = db.session.scalar(select(Employee.id).where(Employee.emp_no == emp_no))
    if taken is not None and taken != emp_id:
        raise OrgError("emp_no_taken", "emp_no")
    if data.department_id is None:
        raise OrgError("department_required", "department_id")
    if db.session.get(Department, data.department_id) is None:
        raise OrgError("unknown_department", "department_id")
    if data.position_id is not None and db.session.get(Position, data.position_id) is None:
        raise OrgError("unknown_position", "position_id")
    if data.hire_date is None:
        raise OrgError("hire_date_required", "hire_date")
    if data.status not in STATUSES:
        raise OrgError("bad_status", "status")
    mobile = ""
    if _clean(data.mobile):
        mobile = importer.normalize_mobile(data.mobile) or ""
        if not mobile:
            raise OrgError("bad_mobile", "mobile")
    email = ""
    if _clean(data.email):
        email = importer.normalize_email(data.email) or ""
        if not email:
            raise OrgError("bad_email", "email")
    for fld, code in importer.date_order_problems(data.hire_date, data.probation_end, data.contract_start,
                                                  data.contract_end):
        raise OrgError(code, fld)
    manager_id = None
    manager_no = _clean(data.manager_no)
    if manager_no:
        if manager_no == emp_no:
            raise OrgError("self_manager", "manager_no")
        manager_id = db.session.scalar(select(Employee.id).where(Employee.emp_no == manager_no))
        if manager_id is None:
            raise OrgError("unknown_manager", "manager_no")
        if emp_id is not None and manager_id == emp_id:
            raise OrgError("self_manager", "manager_no")
        if emp_id is not None and reports_to(manager_id, emp_id):
            raise OrgError("manager_cycle", "manager_no")
    py, initials = pinyin_fields(name)
    return {"emp_no": emp_no, "name": name, "name_pinyin": py, "name_initials": initials,
            "department_id": data.department_id, "manager_id": manager_id, "position_id": data.position_id,
            "mobile": mobile, "email": email, "hire_date": data.hire_date, "probation_end": data.probation_end,
            "contract_start": data.contract_start, "contract_end": data.contract_end, "status": data.status}


def reports_to(emp_id: int, boss_id: int) -> bool:
    """Is ``boss_id`` somewhere above ``emp_id`` in the reporting line?"""
    seen: set[int] = set()
    current = db.session.scalar(select(Employee.manager_id).where(Employee.id == emp_id))
    while current is not None and current not in seen:
        if current == boss_id:
            return True
        seen.add(current)
        current = db.session.scalar(select(Employee.manager_id).where(Employee.id == current))
    return False


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def create_employee(data: EmployeeData, actor) -> Employee:
    values = _values(data, None)
    emp = Employee(**values)
    db.session.add(emp)
    db.session.flush()
    audit.record("people.created", emp, {k: _jsonable(values[k]) for k in TRACKED}, actor=actor)
    return emp


def update_employee(emp: Employee, data: EmployeeData, actor) -> dict[str, list]:
    """Apply ``data``; returns {field: [before, after]} of what changed (audited)."""
    values = _values(data, emp.id)
    changes = {}
    for key, value in values.items():
        before = getattr(emp, key)
        if before != value:
            if key in TRACKED:
                changes[key] = [_jsonable(before), _jsonable(value)]
            setattr(emp, key, value)
    if changes:
        audit.record("people.updated", emp, {"emp_no": emp.emp_no, "changes": changes}, actor=actor)
    return changes


def create_account(emp: Employee, username: str, actor):
    """A user account (role employee) linked to ``emp``; returns (user, initial password).
    Raises portal.accounts.services.AccountError."""
    from portal.accounts.services import create_user
    return create_user(_clean(username) or emp.emp_no, None, actor, ["employee"], employee_id=emp.id)


def account_of(emp: Employee):
    from portal.core.models import User
    return db.session.scalar(select(User).where(User.employee_id == emp.id))


# ---------------------------------------------------------------- departments: writing

def _check_department(name: str, code: str, parent_id: int | None, dept_id: int | None) -> tuple[str, str | None]:
    name = _clean(name)
    code = _clean(code) or None
    if not name:
        raise OrgError("dept_name_required", "name")
    same = select(Department.id).where(func.lower(Department.name) == name.lower(),
                                       Department.parent_id.is_(None) if parent_id is None
                                       else Department.parent_id == parent_id)
    if dept_id is not None:
        same = same.where(Department.id != dept_id)
    if db.session.scalar(same) is not None:
        raise OrgError("dept_name_taken", "name")
    if code is not None:
        other = db.session.scalar(select(Department.id).where(func.lower(Department.code) == code.lower()))
        if other is not None and other != dept_id:
            raise OrgError("dept_code_taken", "code")
    return name, code


def _parent(parent_id: int | None) -> Department | None:
    if parent_id is None:
        return None
    parent = db.session.get(Department, parent_id)
    if parent is None:
        raise OrgError("unknown_department", "parent_id")
    return parent


def create_department(name: str, code: str, parent_id: int | None, actor) -> Department:
    _parent(parent_id)
    name, code = _check_department(name, code, parent_id, None)
    dept = Department(name=name, code=code, parent_id=parent_id)
    db.session.add(dept)
    db.session.flush()
    audit.record("department.created", dept, {"name": name, "code": code, "parent_id": parent_id},
                 actor=actor)
    return dept


def rename_department(dept: Department, name: str, code: str, actor) -> None:
    name, code = _check_department(name, code, dept.parent_id, dept.id)
    if (name, code) == (dept.name, dept.code):
        return
    audit.record("department.renamed", dept, {"before": {"name": dept.name, "code": dept.code},
                                              "after": {"name": name, "code": code}}, actor=actor)
    dept.name, dept.code = name, code


def move_department(dept: Department, parent_id: int | None, actor) -> None:
    if parent_id is not None and parent_id in subtree_ids(dept.id):
        raise OrgError("dept_cycle", "parent_id")
    _parent(parent_id)
    if parent_id == dept.parent_id:
        return
    _check_department(dept.name, dept.code or "", parent_id, dept.id)
    audit.record("department.moved", dept, {"before": dept.parent_id, "after": parent_id}, actor=actor)
    dept.parent_id = parent_id


def set_department_head(dept: Department, head_no: str, actor) -> None:
    head_no = _clean(head_no)
    head_id = None
    if head_no:
        head_id = db.session.scalar(select(Employee.id).where(Employee.emp_no == head_no))
        if head_id is None:
            raise OrgError("unknown_head", "head_no")
    if head_id == dept.head_id:
        return
    audit.record("department.head_set", dept, {"before": dept.head_id, "after": head_id, "emp_no": head_no},
                 actor=actor)
    dept.head_id = head_id


def count_in_department(dept_id: int, with_subtree: bool = False) -> int:
    ids = subtree_ids(dept_id) if with_subtree else {dept_id}
    return db.session.scalar(select(func.count()).select_from(Employee)
                             .where(Employee.department_id.in_(ids))) or 0


def delete_department(dept: Department, actor) -> None:
    if db.session.scalar(select(Department.id).where(Department.parent_id == dept.id).limit(1)) is not None:
        raise OrgError("dept_has_children")
    n = count_in_department(dept.id)
    if n:
        raise OrgError("dept_has_people", n=n)
    audit.record("department.deleted", dept, {"name": dept.name, "code": dept.code, "parent_id": dept.parent_id},
                 actor=actor)
    db.session.delete(dept)
    db.session.flush()


# ---------------------------------------------------------------- positions

def positions_with_counts() -> list[tuple[Position, int]]:
    counts = dict(db.session.execute(select(Employee.position_id, func.count())
                                     .where(Employee.position_id.is_not(None))
                                     .group_by(Employee.position_id)).all())
    return [(p, counts.get(p.id, 0)) for p in db.session.scalars(select(Position).order_by(Position.name))]


def _check_position(name: str, code: str, pos_id: int | None) -> tuple[str, str | None]:
    name = _clean(name)
    code = _clean(code) or None
    if not name:
        raise OrgError("position_name_required", "name")
    other = db.session.scalar(select(Position.id).where(func.lower(Position.name) == name.lower()))
    if other is not None and other != pos_id:
        raise OrgError("position_name_taken", "name")
    if code is not None:
        other = db.session.scalar(select(Position.id).where(func.lower(Position.code) == code.lower()))
        if other is not None and other != pos_id:
            raise OrgError("position_code_taken", "code")
    return name, code


def create_position(name: str, code: str, actor) -> Position:
    name, code = _check_position(name, code, None)
    pos = Position(name=name, code=code)
    db.session.add(pos)
    db.session.flush()
    audit.record("position.created", pos, {"name": name, "code": code}, actor=actor)
    return pos


def rename_position(pos: Position, name: str, code: str, actor) -> None:
    name, code = _check_position(name, code, pos.id)
    if (name, code) == (pos.name, pos.code):
        return
    audit.record("position.renamed", pos, {"before": {"name": pos.name, "code": pos.code},
                                           "after": {"name": name, "code": code}}, actor=actor)
    pos.name, pos.code = name, code


def delete_position(pos: Position, actor) -> None:
    n = db.session.scalar(select(func.count()).select_from(Employee).where(Employee.position_id == pos.id))
    if n:
        raise OrgError("position_in_use", n=n)
    audit.record("position.deleted", pos, {"name": pos.name, "code": pos.code}, actor=actor)
    db.session.delete(pos)
    db.session.flush()


# ---------------------------------------------------------------- import

def load_reference() -> importer.Reference:
    """What the importer needs from the database, as plain data (three queries)."""
    depts = [tuple(r) for r in db.session.execute(select(Department.id, Department.code, Department.name))]
    positions = [tuple(r) for r in db.session.execute(select(Position.id, Position.code, Position.name))]
    rows = db.session.execute(select(Employee.id, Employee.emp_no, Employee.manager_id, Employee.hire_date,
                                     Employee.probation_end, Employee.contract_start,
                                     Employee.contract_end)).all()
    no_by_id = {r.id: r.emp_no for r in rows}
    employees = {r.emp_no: importer.Existing(r.id, no_by_id.get(r.manager_id), r.hire_date, r.probation_end,
                                             r.contract_start, r.contract_end) for r in rows}
    return importer.Reference(depts, positions, employees)


@dataclass
class ImportOutcome:
    validation: importer.Validation
    created: int = 0
    updated: int = 0


def import_employees(table: importer.Table, update_existing: bool, actor, filename: str,
                     content: bytes) -> ImportOutcome:
    """Validate every row; write nothing when any row is wrong, else write all (caller commits once)."""
    ref = load_reference()
    result = importer.validate(table, ref, update_existing)
    outcome = ImportOutcome(result)
    if not result.ok:
        return outcome
    by_no: dict[str, Employee] = {}
    existing_ids = {no: e.id for no, e in ref.employees.items()}
    to_update = [existing_ids[r.emp_no] for r in result.rows if r.action == "update"]
    for chunk_start in range(0, len(to_update), 500):
        chunk = to_update[chunk_start:chunk_start + 500]
        for emp in db.session.scalars(select(Employee).where(Employee.id.in_(chunk))):
            by_no[emp.emp_no] = emp
    for row in result.rows:
        values = {k: v for k, v in row.values.items() if k != "manager_no"}
        if "name" in values:
            values["name_pinyin"], values["name_initials"] = pinyin_fields(values["name"])
        if row.action == "create":
            emp = Employee(**{"emp_no": row.emp_no, "mobile": "", "email": "", **values})
            db.session.add(emp)
            by_no[row.emp_no] = emp
            outcome.created += 1
        else:
            emp = by_no[row.emp_no]
            for key, value in values.items():
                setattr(emp, key, value)
            outcome.updated += 1
    db.session.flush()
    for row in result.rows:
        manager_no = row.values.get("manager_no")
        if manager_no:
            manager = by_no.get(manager_no)
            by_no[row.emp_no].manager_id = manager.id if manager is not None else existing_ids[manager_no]
    db.session.flush()
    audit.record("people.imported", None, {
        "file": filename, "sha256": hashlib.sha256(content).hexdigest(), "rows": len(result.rows),
        "created": outcome.created, "updated": outcome.updated, "update_existing": update_existing,
        "ignored_columns": result.unknown_columns}, actor=actor)
    return outcome
