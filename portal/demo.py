"""Demo company for trying the portal: 星河物流科技有限公司.

``load_demo()`` builds a department tree, positions, 40 employees with managers and contract dates, and one
login per built-in role. It is idempotent: rows are matched by their code, employee number or username and
existing rows are never changed, so a second run changes nothing.

Organisation rows are written with the org models directly (not through org services) so the demo does not
depend on how those services evolve.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.core import audit
from portal.core.db import db
from portal.core.models import User
from portal.core.passwords import check_password, policy_errors
from portal.core.security import sync_roles
from portal.org.models import Department, Employee, Position
from portal.org.pinyin import pinyin_fields

COMPANY = "星河物流科技有限公司"
DEFAULT_PASSWORD = "demo1234"
EMAIL_DOMAIN = "example.com"

# (code, name, parent code)
DEPARTMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("XH", COMPANY, None),
    ("XH-GMO", "总经办", "XH"),
    ("XH-HR", "人力资源部", "XH"),
    ("XH-FIN", "财务部", "XH"),
    ("XH-SAL", "销售部", "XH"),
    ("XH-SAL-E", "华东销售组", "XH-SAL"),
    ("XH-SAL-S", "华南销售组", "XH-SAL"),
    ("XH-RD", "研发部", "XH"),
    ("XH-RD-BE", "后端组", "XH-RD"),
    ("XH-RD-FE", "前端组", "XH-RD"),
    ("XH-IT", "IT部", "XH"),
    ("XH-LEG", "法务部", "XH"),
)

# (code, name)
POSITIONS: tuple[tuple[str, str], ...] = (
    ("CEO", "总经理"),
    ("VP", "副总经理"),
    ("ADMIN-ASST", "行政助理"),
    ("ADMIN-SPEC", "行政专员"),
    ("HR-MGR", "人力资源经理"),
    ("HR-SPEC", "人事专员"),
    ("HR-REC", "招聘专员"),
    ("HR-PAY", "薪酬专员"),
    ("TRN-LEAD", "培训主管"),
    ("FIN-MGR", "财务经理"),
    ("FIN-ACC", "会计"),
    ("FIN-CASH", "出纳"),
    ("SAL-DIR", "销售总监"),
    ("SAL-MGR", "区域销售经理"),
    ("SAL-REP", "销售代表"),
    ("RD-DIR", "研发总监"),
    ("RD-LEAD", "技术经理"),
    ("RD-BE", "后端工程师"),
    ("RD-FE", "前端工程师"),
    ("RD-QA", "测试工程师"),
    ("IT-LEAD", "IT主管"),
    ("IT-OPS", "运维工程师"),
    ("LEG-MGR", "法务经理"),
    ("LEG-SPEC", "法务专员"),
)

# (name, department code, position code, head of the department?, days since hire)
# The first employee of each department that is marked as head heads it; the others report to that head,
# and a head reports to the head of the parent department.
EMPLOYEES: tuple[tuple[str, str, str, bool, int], ...] = (
    ("陈志远", "XH", "CEO", True, 4380),
    ("林婉清", "XH-GMO", "VP", True, 3650),
    ("赵雨桐", "XH-GMO", "ADMIN-ASST", False, 820),
    ("孙浩然", "XH-GMO", "ADMIN-SPEC", False, 75),
    ("王丽华", "XH-HR", "HR-MGR", True, 2920),
    ("刘思雨", "XH-HR", "TRN-LEAD", False, 1460),
    ("张敏", "XH-HR", "HR-SPEC", False, 1100),
    ("何佳怡", "XH-HR", "HR-REC", False, 400),
    ("郭晓雯", "XH-HR", "HR-PAY", False, 40),
    ("郑海燕", "XH-FIN", "FIN-MGR", True, 3300),
    ("吴晓峰", "XH-FIN", "FIN-ACC", False, 1800),
    ("冯静", "XH-FIN", "FIN-CASH", False, 600),
    ("李建军", "XH-SAL", "SAL-DIR", True, 3900),
    ("周晓燕", "XH-SAL-E", "SAL-MGR", True, 2555),
    ("黄丽娟", "XH-SAL-E", "SAL-REP", False, 3680),
    ("钱文博", "XH-SAL-E", "SAL-REP", False, 1250),
    ("许志强", "XH-SAL-E", "SAL-REP", False, 700),
    ("蒋欣怡", "XH-SAL-E", "SAL-REP", False, 120),
    ("梁伟明", "XH-SAL-S", "SAL-MGR", True, 2190),
    ("罗嘉欣", "XH-SAL-S", "SAL-REP", False, 1640),
    ("谢志豪", "XH-SAL-S", "SAL-REP", False, 980),
    ("邓美玲", "XH-SAL-S", "SAL-REP", False, 510),
    ("余子涵", "XH-SAL-S", "SAL-REP", False, 25),
    ("杨振华", "XH-RD", "RD-DIR", True, 3100),
    ("马骏", "XH-RD-BE", "RD-LEAD", True, 2400),
    ("高翔", "XH-RD-BE", "RD-BE", False, 1500),
    ("唐俊杰", "XH-RD-BE", "RD-BE", False, 1020),
    ("韩雪", "XH-RD-BE", "RD-BE", False, 640),
    ("曹宇航", "XH-RD-BE", "RD-BE", False, 150),
    ("卢晨曦", "XH-RD-BE", "RD-QA", False, 880),
    ("宋佳琪", "XH-RD-FE", "RD-LEAD", True, 2000),
    ("彭博文", "XH-RD-FE", "RD-FE", False, 1300),
    ("董思琪", "XH-RD-FE", "RD-FE", False, 560),
    ("袁浩", "XH-RD-FE", "RD-FE", False, 90),
    ("蔡雅婷", "XH-RD-FE", "RD-FE", False, 330),
    ("徐国强", "XH-IT", "IT-LEAD", True, 2700),
    ("田磊", "XH-IT", "IT-OPS", False, 1200),
    ("潘晓东", "XH-IT", "IT-OPS", False, 450),
    ("沈慧敏", "XH-LEG", "LEG-MGR", True, 2300),
    ("姚倩", "XH-LEG", "LEG-SPEC", False, 760),
)

# role code -> (username, employee name). Every account also gets the base role "employee".
LOGINS: tuple[tuple[str, str, str], ...] = (
    ("admin", "admin", "徐国强"),
    ("hr", "hr", "王丽华"),
    ("manager", "manager", "李建军"),
    ("trainer", "trainer", "刘思雨"),
    ("finance", "finance", "郑海燕"),
    ("it", "it", "田磊"),
    ("legal", "legal", "沈慧敏"),
    ("employee", "employee", "黄丽娟"),
)

# Mobile prefixes of the three carriers; numbers are deterministic so a rerun gives the same data.
_MOBILE_PREFIXES = ("138", "139", "135", "136", "137", "150", "151", "152", "158", "159", "182", "187",
                    "188", "186", "185", "130", "131", "132", "155", "156", "133", "153", "177", "180",
                    "181", "189", "199", "173")

CONTRACT_YEARS = 3
# After this many years the demo treats the contract as open-ended (无固定期限劳动合同).
OPEN_ENDED_AFTER_YEARS = 10


class DemoError(ValueError):
    pass


@dataclass
class Login:
    role: str
    username: str
    password: str
    password_ok: bool  # False when the account exists but no longer has the demo password


@dataclass
class DemoResult:
    created: dict[str, int] = field(default_factory=dict)
    logins: list[Login] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.created.values())


def emp_no(index: int) -> str:
    return f"XH{index:04d}"


def mobile(index: int) -> str:
    prefix = _MOBILE_PREFIXES[index % len(_MOBILE_PREFIXES)]
    return f"{prefix}{(index * 73_856_093 + 19_349_663) % 100_000_000:08d}"


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def contract_dates(hire: dt.date, today: dt.date) -> tuple[dt.date | None, dt.date, dt.date | None]:
    """(probation end, current contract start, contract end or None when open-ended)."""
    # Three-year contracts: six months' probation at most (Labour Contract Law art. 19).
    probation_end = _add_months(hire, 6) - dt.timedelta(days=1)
    start = hire
    terms = 0
    while _add_years(start, CONTRACT_YEARS) <= today and terms * CONTRACT_YEARS < OPEN_ENDED_AFTER_YEARS:
        start = _add_years(start, CONTRACT_YEARS)
        terms += 1
    if terms * CONTRACT_YEARS >= OPEN_ENDED_AFTER_YEARS:
        return probation_end, start, None
    return probation_end, start, _add_years(start, CONTRACT_YEARS) - dt.timedelta(days=1)


def demo_password(env_value: str | None) -> str:
    password = env_value or DEFAULT_PASSWORD
    problems = policy_errors(password)
    if problems:
        raise DemoError(problems[0])
    return password


def load_demo(password: str, today: dt.date) -> DemoResult:
    """Create what is missing of the demo company and its logins; commit once. Returns what was done."""
    from portal.accounts.services import create_user

    result = DemoResult(created={"departments": 0, "positions": 0, "employees": 0, "users": 0})
    sync_roles()

    departments = {d.code: d for d in db.session.scalars(
        select(Department).where(Department.code.in_([c for c, _n, _p in DEPARTMENTS])))}
    for code, name, parent in DEPARTMENTS:
        if code not in departments:
            dept = Department(code=code, name=name,
                              parent_id=departments[parent].id if parent else None)
            db.session.add(dept)
            db.session.flush()
            departments[code] = dept
            result.created["departments"] += 1

    positions = {p.code: p for p in db.session.scalars(
        select(Position).where(Position.code.in_([c for c, _n in POSITIONS])))}
    taken_names = set(db.session.scalars(select(Position.name)))
    for code, name in POSITIONS:
        if code not in positions:
            if name in taken_names:  # a company may already have this title: reuse it
                positions[code] = db.session.scalar(select(Position).where(Position.name == name))
                continue
            pos = Position(code=code, name=name)
            db.session.add(pos)
            positions[code] = pos
            result.created["positions"] += 1
    db.session.flush()

    numbers = [emp_no(i) for i in range(1, len(EMPLOYEES) + 1)]
    employees = {e.emp_no: e for e in db.session.scalars(select(Employee).where(Employee.emp_no.in_(numbers)))}
    by_name: dict[str, Employee] = {}
    new_heads: list[tuple[Department, Employee]] = []
    heads: dict[str, Employee] = {}
    for index, (name, dcode, pcode, is_head, days) in enumerate(EMPLOYEES, start=1):
        number = emp_no(index)
        emp = employees.get(number)
        if emp is None:
            hire = today - dt.timedelta(days=days)
            probation_end, start, end = contract_dates(hire, today)
            py, initials = pinyin_fields(name)
            dept = departments[dcode]
            manager = heads.get(dcode) if not is_head else _parent_head(dcode, heads)
            emp = Employee(emp_no=number, name=name, name_pinyin=py, name_initials=initials,
                           department_id=dept.id, position_id=positions[pcode].id,
                           manager_id=manager.id if manager else None,
                           mobile=mobile(index), email=f"{py}@{EMAIL_DOMAIN}",
                           hire_date=hire, probation_end=probation_end, contract_start=start,
                           contract_end=end, status="active")
            db.session.add(emp)
            db.session.flush()
            result.created["employees"] += 1
            if is_head and departments[dcode].head_id is None:
                new_heads.append((departments[dcode], emp))
        if is_head:
            heads[dcode] = emp
        by_name[name] = emp
    for dept, head in new_heads:
        dept.head_id = head.id
    db.session.flush()

    for role, username, emp_name in LOGINS:
        user = db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))
        if user is None:
            emp = by_name[emp_name]
            taken = db.session.scalar(select(User.id).where(User.employee_id == emp.id))
            user, _pw = create_user(username, password, None, sorted({role, "employee"}),
                                    employee_id=None if taken else emp.id, locale=None)
            result.created["users"] += 1
            ok = True
        else:
            ok = check_password(user.password_hash, password)
        result.logins.append(Login(role, user.username, password, ok))

    if result.changed:
        audit.record("demo.loaded", None, {"company": COMPANY, **result.created})
    db.session.commit()
    return result


def _parent_head(dcode: str, heads: dict[str, Employee]) -> Employee | None:
    parents = {c: p for c, _n, p in DEPARTMENTS}
    parent = parents.get(dcode)
    while parent is not None:
        if parent in heads:
            return heads[parent]
        parent = parents.get(parent)
    return None
