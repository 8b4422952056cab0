"""Offboarding fixtures: the seed-002 cast (sales department, leaver, successor, head, HR x2, finance,
IT), a checklist template and the leaver's clients."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest

from portal.core.db import db
from tests.conftest import csrf_token, login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Cast:
    dept: object
    head: object
    leaver: object
    successor: object
    hr: object
    hr2: object
    finance: object
    it: object
    template_id: int
    client_ids: list


def token(client, path: str = "/") -> str:
    return csrf_token(client, path)


def post(client, path: str, data: dict | None = None, headers: dict | None = None, token_path: str = "/"):
    data = dict(data or {})
    data["csrf_token"] = token(client, token_path)
    return client.post(path, data=data, headers=headers or {})


def upload(name: str = "handover.pdf", content: bytes = PDF):
    return (io.BytesIO(content), name)


def as_user(app, user):
    c = app.test_client()
    login(c, user)
    return c


@pytest.fixture
def cast(app, make) -> Cast:
    from portal.offboarding.models import ChecklistTemplate, Client, TemplateItem
    dept = make.department("销售部")
    head = make.user(roles=("employee", "manager"), username="wang_head", name="王经理", department=dept)
    from portal.org.models import Department
    d = db.session.get(Department, dept.id)
    d.head_id = head.employee_id
    db.session.commit()
    leaver = make.user(roles=("employee",), username="li_na", name="李娜", department=dept,
                       manager=head.employee)
    successor = make.user(roles=("employee",), username="zhang_wei", name="张伟", department=dept,
                          manager=head.employee)
    hr = make.user(roles=("employee", "hr"), username="hr_chen", name="陈人事")
    hr2 = make.user(roles=("employee", "hr"), username="hr_zhou", name="周人事")
    finance = make.user(roles=("employee", "finance"), username="fin_liu", name="刘财务")
    it = make.user(roles=("employee", "it"), username="it_zhao", name="赵网管")
    t = ChecklistTemplate(name="销售岗离职交接", department_id=dept.id, active=True)
    t.items = [
        TemplateItem(sort=10, title="客户资料交接", responsible="leaver", requires_upload=True, due_offset_days=-3),
        TemplateItem(sort=20, title="未结订单确认", responsible="successor", requires_upload=False, due_offset_days=-2),
        TemplateItem(sort=30, title="应收账款核对", responsible="finance", requires_upload=False, due_offset_days=-1),
        TemplateItem(sort=40, title="电脑设备归还", responsible="it", requires_upload=False, due_offset_days=0),
    ]
    db.session.add(t)
    clients = [Client(name="顺丰物流", owner_id=leaver.employee_id, contract_no="HT-2015-001"),
               Client(name="中远海运", owner_id=leaver.employee_id, contract_no="HT-2016-007")]
    db.session.add_all(clients)
    from portal.core.models import User
    for u in (head, leaver, successor, hr, hr2, finance, it):  # English UI: assertions on messages
        db.session.get(User, u.id).locale = "en"
    db.session.commit()
    return Cast(dept, head, leaver, successor, hr, hr2, finance, it, t.id, [c.id for c in clients])


def text(resp) -> str:
    return resp.get_data(as_text=True)


def strip(html: str) -> str:
    return re.sub(r"\s+", " ", html)
