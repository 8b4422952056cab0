"""Builders shared by the performance tests."""
from __future__ import annotations

from decimal import Decimal

from portal.core.db import db


class Org:
    pass


def build_org(make) -> Org:
    """总部 (head: CEO) > 研发部 (head: 李经理) with 王开发 reporting to 李经理; 销售部 with 赵销售; HR."""
    o = Org()
    o.ceo = make.employee("周总")
    o.root = make.department("总部", head=o.ceo)
    o.mgr_user = make.user(roles=("employee", "manager"), name="李经理", department=o.root, manager=o.ceo)
    o.mgr = o.mgr_user.employee
    o.rd = make.department("研发部", parent=o.root, head=o.mgr)
    o.dev_user = make.user(roles=("employee",), name="王开发", department=o.rd, manager=o.mgr)
    o.dev = o.dev_user.employee
    o.sales = make.department("销售部", parent=o.root)
    o.other_user = make.user(roles=("employee",), name="赵销售", department=o.sales)
    o.hr_user = make.user(roles=("employee", "hr"), name="孙人事", department=o.root)
    return o


def open_cycle(app, hr_user, year=2025):
    from portal.performance import services
    with app.app_context():
        c = services.create_cycle(hr_user, "year", year, None, 25)
        services.open_cycle(c, hr_user)
        db.session.commit()
        return c


def okr_tree(app, o, cycle):
    """Company objective <- 研发部 team objective <- 王开发's approved individual objective with one KR."""
    from portal.performance import services
    with app.app_context():
        from portal.org.models import Department, Employee
        from portal.performance.models import Cycle
        cycle = db.session.get(Cycle, cycle.id)
        comp = services.create_objective(o.hr_user, cycle, "company", "营收增长")
        team = services.create_objective(o.mgr_user, cycle, "team", "交付新版本",
                                         department=db.session.get(Department, o.rd.id), parent=comp)
        ind = services.create_objective(o.mgr_user, cycle, "individual", "完成支付模块",
                                        owner=db.session.get(Employee, o.dev.id), parent=team)
        kr = services.add_key_result(o.mgr_user, ind, "完成接口数", "number", "个", "0", "100", "1")
        db.session.commit()
        return comp.id, team.id, ind.id, kr.id


def D(x) -> Decimal:
    return Decimal(str(x))
