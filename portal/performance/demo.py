"""OKR demo data for the demo company (portal/demo.py builds the company and its logins first).

``load(today)`` opens the current quarter's cycle (if there is none yet) and fills it: a company
objective, the sales and R&D team objectives, individual objectives of the demo employee (黄丽娟, login
"employee") and her group lead, key results of every type (numeric in CNY, percentage, named milestones,
yes/no), one objective waiting for the manager's approval, and a few check-ins. Everything goes through
the services (so permissions, roll-up and audit are the real ones) as the demo logins "hr", "manager" and
"employee". Idempotent: when the cycle already holds the demo company objective nothing is added.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal.core.db import db
from portal.core.models import User
from portal.org.models import Department, Employee

COMPANY_OBJECTIVE = "本季度营收增长 30%，客户满意度保持行业领先"


class DemoMissing(RuntimeError):
    """The demo company or its logins are not there: run the portal demo command first."""


def _user(username: str) -> User:
    user = db.session.scalar(select(User).where(func.lower(User.username) == username))
    if user is None or user.employee_id is None:
        raise DemoMissing(f"demo login {username!r} with an employee record is missing")
    return user


def _dept(code: str) -> Department:
    dept = db.session.scalar(select(Department).where(Department.code == code))
    if dept is None:
        raise DemoMissing(f"demo department {code} is missing")
    return dept


def load(today: dt.date | None = None) -> dict[str, int]:
    """Create the demo OKRs; commit once. Returns what was created (all zero on a second run)."""
    from portal.core.ui import local_today
    from portal.performance import services
    from portal.performance.models import Cycle, KeyResult, Objective

    today = today or local_today()
    created = {"cycles": 0, "objectives": 0, "key_results": 0, "checkins": 0}
    hr, manager, employee = _user("hr"), _user("manager"), _user("employee")
    sales, rd = _dept("XH-SAL"), _dept("XH-RD")
    east_lead = db.session.scalar(select(Employee).where(Employee.emp_no == "XH0014"))  # 周晓燕

    quarter = (today.month - 1) // 3 + 1
    name, _start, _end = services.cycle_dates("quarter", today.year, quarter)
    cycle = db.session.scalar(select(Cycle).where(Cycle.name == name))
    if cycle is None:
        cycle = services.create_cycle(hr, "quarter", today.year, quarter, 25)
        created["cycles"] += 1
    if cycle.status == "draft":
        services.open_cycle(cycle, hr)
    if cycle.status != "open" or db.session.scalar(select(Objective.id).where(
            Objective.cycle_id == cycle.id, Objective.title == COMPANY_OBJECTIVE)):
        db.session.commit()
        return created

    def objective(actor, level, title, **kw):
        created["objectives"] += 1
        return services.create_objective(actor, cycle, level, title, **kw)

    def kr(actor, obj, title, kind, unit="", start="0", target=None, weight="1", milestones=None):
        created["key_results"] += 1
        return services.add_key_result(actor, obj, title, kind, unit, start, target, weight,
                                       milestones=milestones)

    company = objective(hr, "company", COMPANY_OBJECTIVE,
                        description="公司季度目标：营收、回款与交付三线并进。")
    revenue = kr(hr, company, "季度营收", "number", "CNY", "0", "12000000", "3")
    kr(hr, company, "客户满意度", "percentage", "%", "85", "95", "1")

    sales_obj = objective(manager, "team", "华东、华南市场拓展", department=sales, parent=company,
                          link_weight="2")
    new_clients = kr(manager, sales_obj, "新签客户数", "number", "家", "0", "40", "2")
    kr(manager, sales_obj, "回款率", "percentage", "%", "60", "95", "1")

    rd_obj = objective(hr, "team", "上线新版智能调度系统", department=rd, parent=company)
    release = kr(hr, rd_obj, "调度系统上线", "milestone", milestones=["需求评审", "开发完成", "测试通过", "正式上线"])

    mine = objective(manager, "individual", "完成华东区季度销售目标",
                     owner=db.session.get(Employee, employee.employee_id), parent=sales_obj)
    sales_amount = kr(manager, mine, "个人销售额", "number", "CNY", "0", "1500000", "3")
    visits = kr(manager, mine, "重点客户拜访", "milestone", weight="1",
                milestones=["顺丰华东分拨中心", "京东物流上海仓", "菜鸟杭州园区", "德邦苏州站"])
    crm = kr(manager, mine, "完成 CRM 客户资料整理", "yesno", weight="1")
    if east_lead is not None:
        lead_obj = objective(hr, "individual", "带领华东销售组达成季度目标", owner=east_lead, parent=sales_obj)
        kr(hr, lead_obj, "华东组销售额", "number", "CNY", "0", "5000000", "1")
    # the employee's own proposal waits for the manager's approval (shown under "My OKRs" of "manager")
    own = objective(employee, "individual", "学习物流行业新规并考取证书", parent=sales_obj)
    kr(employee, own, "通过物流师考试", "yesno")

    db.session.flush()

    def checkin(actor, key_result, value, confidence, comment, ticks=None):
        key_result = db.session.get(KeyResult, key_result.id)
        ids = None
        if ticks is not None:
            ids = [m.id for m in key_result.milestones if m.title in ticks]
        services.check_in(actor, key_result, value, confidence, comment, milestone_ids=ids)
        created["checkins"] += 1

    checkin(hr, revenue, "4200000", 7, "首月营收符合预期。")
    checkin(manager, new_clients, "9", 6, "华南新签放缓，华东表现良好。")
    checkin(hr, release, None, 8, "需求评审已完成。", ticks=["需求评审"])
    checkin(employee, sales_amount, "380000", 7, "两个大单在谈。")
    checkin(employee, sales_amount, "520000", 8, "京东物流合同已签。")
    checkin(employee, visits, None, 8, "已拜访两家重点客户。", ticks=["顺丰华东分拨中心", "京东物流上海仓"])
    checkin(employee, crm, "0", 6, "整理了一半。")
    db.session.commit()
    return created
