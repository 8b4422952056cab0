"""Step "org": roles, a department tree (~10 people per team, heads set), positions, employees with
pinyin, user accounts for a sample (every manager, HR, an admin and a share of employees).

The company is first built in memory (``build``: plain Python, deterministic for a seed; it stays small:
one object per employee), then bulk-loaded (``load``). Other steps read ``ctx.company``.
"""
from __future__ import annotations

import datetime as dt
import functools
import random
import secrets
from dataclasses import dataclass, field
from typing import Optional

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
            "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强海燕玉兰红梅文辉宇轩浩然子涵欣怡梓萱"
         "思远博文晨阳雨桐佳怡一鸣嘉懿俊杰天佑雅婷晓东立新永刚春梅秋菊冬雪丹凤晓燕鹏飞振华国庆建军亚楠")
DIVISIONS = (  # name, share of the company, attendance rule kind
    ("研发中心", 0.24, "flexible"), ("销售中心", 0.20, "fixed"), ("生产中心", 0.15, "fixed"),
    ("客户服务中心", 0.10, "shift"), ("供应链中心", 0.08, "fixed"), ("市场中心", 0.06, "fixed"),
    ("产品中心", 0.06, "fixed"), ("信息技术中心", 0.04, "fixed"), ("财务中心", 0.04, "fixed"),
    ("人力资源中心", 0.03, "fixed"),
)
DEPT_WORDS = ("平台", "业务", "华东", "华南", "华北", "西南", "基础", "质量", "运营", "数据", "渠道", "大客户",
              "交付", "技术", "综合", "创新", "国际", "规划")
DEPT_SIZES = (40, 60, 80, 100, 150, 200, 260)
POSITIONS = ("总经理", "副总经理", "总监", "部门经理", "组长", "高级工程师", "工程师", "助理工程师", "测试工程师",
             "产品经理", "销售代表", "高级销售代表", "客服专员", "客服组长", "生产操作员", "质检员", "采购专员",
             "物流专员", "市场专员", "设计师", "会计", "出纳", "人事专员", "招聘专员", "行政助理", "运维工程师",
             "数据分析师", "法务专员")
MOBILE_PREFIXES = ("138", "139", "137", "136", "150", "151", "158", "186", "187", "188", "177", "199")


@dataclass(slots=True)
class Dept:
    id: int
    code: str
    name: str
    parent_id: Optional[int]
    division: int  # index into DIVISIONS, -1 for the root
    level: int  # 0 root, 1 division, 2 department, 3 team
    head_id: Optional[int] = None


@dataclass(slots=True)
class Person:
    id: int
    name: str
    dept_id: int
    manager_id: Optional[int]
    position_id: int
    division: int
    head_level: int = 0  # 0 = not a head, else the level of the department headed (3 team lead ... 0 CEO)
    hire_date: dt.date = dt.date(2020, 1, 1)
    status: str = "active"
    exit_date: Optional[dt.date] = None  # last working day of a leaver
    vanish_date: Optional[dt.date] = None  # stops coming in from this day (seed 004), still "active"
    rule: str = "fixed"  # fixed | flexible | shift (resolved like services.rule_for)
    rule_id: int = 0
    exempt: bool = False
    user_id: Optional[int] = None
    roles: tuple[str, ...] = ()

    @property
    def emp_no(self) -> str:
        return f"E{self.id:06d}"


@dataclass
class Company:
    seed: int
    start: dt.date  # first day of history
    end: dt.date  # last day of history (yesterday by default)
    depts: list[Dept] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)
    role_ids: dict[str, int] = field(default_factory=dict)
    hr_user_ids: list[int] = field(default_factory=list)
    password: str = ""
    divisions: list[tuple[str, float, str]] = field(default_factory=list)  # the DIVISIONS used
    extra: dict = field(default_factory=dict)  # what later steps want to hand on

    def person(self, emp_id: int) -> Person:
        return self.people[emp_id - 1]

    def division_index(self, name: str) -> Optional[int]:
        return next((i for i, d in enumerate(self.divisions) if d[0] == name), None)


# ---------------------------------------------------------------- building (no database)

def _name(rng: random.Random) -> str:
    surname = SURNAMES[min(int(rng.expovariate(1 / 18)), len(SURNAMES) - 1)]  # common surnames first
    n = 1 if rng.random() < 0.3 else 2
    return surname + "".join(rng.choice(GIVEN) for _ in range(n))


def build(n: int, seed: int, start: dt.date, end: dt.date, user_share: float) -> Company:
    if n < 20:
        raise SystemExit("--employees must be at least 20")
    rng = random.Random(seed)
    co = Company(seed=seed, start=start, end=end, positions=list(POSITIONS))
    pos = {p: i + 1 for i, p in enumerate(POSITIONS)}
    counters = {"dept": 0}

    def dept(name: str, parent: Optional[Dept], division: int, level: int) -> Dept:
        counters["dept"] += 1
        d = Dept(counters["dept"], f"D{counters['dept']:05d}", name, parent.id if parent else None, division,
                 level)
        co.depts.append(d)
        return d

    def person(d: Dept, manager: Optional[Person], position: str, head_of: Optional[Dept] = None) -> Person:
        p = Person(len(co.people) + 1, _name(rng), d.id, manager.id if manager else None, pos[position],
                   d.division)
        if head_of is not None:
            head_of.head_id = p.id
            p.head_level = 4 - head_of.level  # 4 CEO, 3 division, 2 department, 1 team lead
        co.people.append(p)
        return p

    root = dept("总公司", None, -1, 0)
    ceo = person(root, None, "总经理", head_of=root)
    for _ in range(3):
        person(root, ceo, "副总经理")
    remaining = n - len(co.people)
    n_div = len(DIVISIONS) if n >= 1500 else max(2, min(len(DIVISIONS), n // 150))
    divisions = list(DIVISIONS[:n_div - 1]) + [DIVISIONS[-1]]  # HR always exists
    co.divisions = divisions
    shares = [s for _name_, s, _k in divisions]
    sizes = [max(12, int(remaining * s / sum(shares))) for s in shares]
    sizes[0] += remaining - sum(sizes)
    for di, size in enumerate(sizes):
        dname = divisions[di][0]
        div = dept(dname, root, di, 1)
        head = person(div, ceo, "总监", head_of=div)
        person(div, head, "行政助理")
        left = size - 2
        k = 0
        while left > 0:
            k += 1
            dsize = min(left, rng.choice(DEPT_SIZES))
            if left - dsize < 15:
                dsize = left
            left -= dsize
            word = DEPT_WORDS[(k - 1) % len(DEPT_WORDS)]
            dp = dept(f"{dname[:-2]}{word}{'' if k <= len(DEPT_WORDS) else k}部", div, di, 2)
            boss = person(dp, head, "部门经理", head_of=dp)
            r = dsize - 1
            if r > 20:
                person(dp, boss, "行政助理")
                r -= 1
            t = 0
            while r > 0:
                t += 1
                tsize = min(r, rng.randint(7, 13))
                if r - tsize < 5:
                    tsize = r
                r -= tsize
                team = dept(f"{dp.name}{t}组", dp, di, 3)
                lead = person(team, boss, "组长", head_of=team)
                for _ in range(tsize - 1):
                    person(team, lead, _staff_position(dname, rng))
    _life(co, rng)
    _accounts(co, rng, user_share)
    return co


def _staff_position(division: str, rng: random.Random) -> str:
    options = {
        "研发中心": ("高级工程师", "工程师", "工程师", "助理工程师", "测试工程师", "数据分析师"),
        "销售中心": ("销售代表", "销售代表", "高级销售代表"),
        "生产中心": ("生产操作员", "生产操作员", "质检员"),
        "客户服务中心": ("客服专员", "客服专员", "客服组长"),
        "供应链中心": ("采购专员", "物流专员"),
        "市场中心": ("市场专员", "设计师"),
        "产品中心": ("产品经理", "设计师"),
        "信息技术中心": ("运维工程师", "工程师"),
        "财务中心": ("会计", "出纳"),
        "人力资源中心": ("人事专员", "招聘专员"),
    }.get(division, ("工程师",))
    return rng.choice(options)


def _life(co: Company, rng: random.Random) -> None:
    """Hire dates, leavers, people in their notice period, a few who vanish (seed 004)."""
    span = (co.end - co.start).days
    for p in co.people:
        if p.head_level:
            p.hire_date = co.start - dt.timedelta(days=rng.randint(365, 365 * 12))
            continue
        u = rng.random()
        if u < 0.08:  # hired during the period
            p.hire_date = co.start + dt.timedelta(days=rng.randint(1, max(1, span)))
        else:
            p.hire_date = co.start - dt.timedelta(days=rng.randint(30, 365 * 10))
        u = rng.random()
        if u < 0.03 and p.hire_date < co.end - dt.timedelta(days=30):
            p.status = "left"
            lo = max(co.start, p.hire_date) + dt.timedelta(days=20)
            p.exit_date = lo + dt.timedelta(days=rng.randint(0, max(0, (co.end - lo).days - 1)))
        elif u < 0.04:
            p.status = "notice"


def _accounts(co: Company, rng: random.Random, user_share: float) -> None:
    hr_div = co.division_index("人力资源中心")
    it_div = co.division_index("信息技术中心")
    hr_staff = 0
    admin_done = False
    for p in co.people:
        if p.status == "left":
            continue
        roles: list[str] = []
        if p.head_level:
            roles = ["employee", "manager"]
        if p.division == hr_div and hr_div is not None and hr_staff < 6 and p.head_level in (0, 1, 2, 3):
            roles = sorted(set(roles) | {"employee", "hr"})
            hr_staff += 1
        elif p.division == it_div and it_div is not None and not admin_done and not p.head_level:
            roles = ["employee", "admin"]
            admin_done = True
        elif not roles and rng.random() < user_share:
            roles = ["employee"]
        p.roles = tuple(roles)


# ---------------------------------------------------------------- loading

@functools.lru_cache(maxsize=None)
def _pinyin(name: str) -> tuple[str, str]:
    from portal.org.pinyin import pinyin_fields
    return pinyin_fields(name)


def load(ctx) -> None:
    """Roles (sync_roles), departments, positions, employees, heads, users and their roles."""
    from sqlalchemy import select

    from portal.core.db import db
    from portal.core.models import Role
    from portal.core.passwords import hash_password
    from portal.core.security import sync_roles

    co: Company = ctx.company
    loader = ctx.loader
    rng = random.Random(co.seed + 1)
    sync_roles()
    db.session.commit()
    co.role_ids = {r.code: r.id for r in db.session.scalars(select(Role))}
    db.session.rollback()
    now = dt.datetime.now(dt.timezone.utc)

    loader.load("departments", ["id", "code", "name", "parent_id", "head_id", "created_at", "updated_at"],
                ((d.id, d.code, d.name, d.parent_id, None, now, now) for d in co.depts))
    loader.load("positions", ["id", "code", "name", "created_at", "updated_at"],
                ((i + 1, f"P{i + 1:03d}", name, now, now) for i, name in enumerate(co.positions)))

    def employees():
        for p in co.people:
            py, initials = _pinyin(p.name)
            mobile = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
            probation = p.hire_date + dt.timedelta(days=180)
            contract_end = p.hire_date + dt.timedelta(days=365 * 3)
            while contract_end < co.end:
                contract_end += dt.timedelta(days=365 * 3)
            yield (p.id, p.emp_no, p.name, py, initials, p.dept_id, p.manager_id, p.position_id, mobile,
                   f"{py or 'e'}.{p.id}@bench.example.com", p.hire_date, probation, p.hire_date, contract_end,
                   p.status, now, now)
    loader.load("employees", ["id", "emp_no", "name", "name_pinyin", "name_initials", "department_id",
                              "manager_id", "position_id", "mobile", "email", "hire_date", "probation_end",
                              "contract_start", "contract_end", "status", "created_at", "updated_at"],
                employees())
    # Department heads (departments and employees point at each other): one statement.
    from sqlalchemy import bindparam, update

    from portal.org.models import Department
    with loader.engine.begin() as conn:
        conn.execute(update(Department).where(Department.id == bindparam("did"))
                     .values(head_id=bindparam("hid")),
                     [{"did": d.id, "hid": d.head_id} for d in co.depts if d.head_id])

    # One shared password hash for every account (scrypt once, not 1,000 times).
    co.password = "bench-Passw0rd"
    pw_hash = hash_password(co.password)
    uid = 0
    user_rows, role_rows = [], []
    for p in co.people:
        if not p.roles:
            continue
        uid += 1
        p.user_id = uid
        user_rows.append((uid, p.emp_no.lower(), pw_hash, secrets.token_urlsafe(32), True, None, p.id, None, now,
                          False, now, now))
        for code in p.roles:
            role_rows.append((len(role_rows) + 1, uid, co.role_ids[code]))
        if "hr" in p.roles:
            co.hr_user_ids.append(uid)
    loader.load("users", ["id", "username", "password_hash", "session_token", "active", "locale", "employee_id",
                          "last_login_at", "password_changed_at", "must_change_password", "created_at",
                          "updated_at"], user_rows)
    loader.load("user_roles", ["id", "user_id", "role_id"], role_rows)
    loader.reset_sequences(["departments", "positions", "employees", "users", "user_roles"])
