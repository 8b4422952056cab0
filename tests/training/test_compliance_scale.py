"""The HR policy compliance view at company size: one page of people (50 by default) with the portal's
pager and a search, summary counts from aggregate SQL, the XLSX export with every row, and a number of
SQL statements that does not depend on the number of people."""
from __future__ import annotations

import datetime as dt
import io
import re

from openpyxl import load_workbook
from sqlalchemy import insert, select

from portal.core.db import db, utcnow
from tests.conftest import password_hash
from tests.training.helpers import build_course, en_user
from tests.training.test_reports import count_queries

ROW = re.compile(r'<td data-label="Employee"><a href="/training/people/\d+">[^<]*</a> <span class="muted">([^<]+)</span>')


def _ids(model, rows: list[dict]) -> list[int]:
    return list(db.session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows))


def _grow(app, course_id: int, start: int, n: int) -> dict:
    """``n`` more employees enrolled on the policy course: every 3rd signed the current text, every 5th of
    the others signed an older text only. Returns the expected numbers (for this batch)."""
    from portal.core.models import User
    from portal.core.signatures import Signature
    from portal.org.models import Department, Employee
    from portal.training.models import Acknowledgement, Course, Enrollment
    from portal.training.services import policy_hash
    with app.app_context():
        course = db.session.get(Course, course_id)
        version = course.current_version
        dept = _ids(Department, [{"name": f"规模部{start}", "code": f"SC{start:05d}"}])[0]
        emps = _ids(Employee, [{"emp_no": f"S{start + i:05d}", "name": f"规模{start + i}", "name_pinyin": "",
                                "name_initials": "", "department_id": dept, "status": "active",
                                "hire_date": dt.date(2024, 1, 1)} for i in range(n)])
        user = _ids(User, [{"username": f"scale{start}", "password_hash": password_hash(), "employee_id": None}])[0]
        now = utcnow()
        statuses = ("assigned", "in_progress", "completed")
        enrs = _ids(Enrollment, [{"course_id": course_id, "employee_id": e, "version_id": version.id,
                                  "status": statuses[i % 3], "assigned_at": now,
                                  "due_at": now + dt.timedelta(days=(i % 7) - 3)} for i, e in enumerate(emps)])
        sig = _ids(Signature, [{"signer_id": user, "signer_name": "x", "purpose": "policy.ack",
                                "subject_type": "x", "subject_id": "x", "content": "{}", "content_hash": "0" * 64,
                                "signed_at": now}])[0]
        current, acks, signed, old = policy_hash(version), [], set(), set()
        for i, (e, en) in enumerate(zip(emps, enrs)):
            if i % 3 == 0:
                h, pv = current, version.policy_version
                signed.add(f"S{start + i:05d}")
            elif i % 5 == 0:
                h, pv = "f" * 64, "2023版"
                old.add(f"S{start + i:05d}")
            else:
                continue
            acks.append({"enrollment_id": en, "employee_id": e, "user_id": user, "course_id": course_id,
                         "version_id": version.id, "policy_name": version.policy_name, "policy_version": pv,
                         "policy_hash": h, "signature_id": sig, "signed_at": now})
        if acks:
            db.session.execute(insert(Acknowledgement), acks)
        db.session.commit()
        everyone = {f"S{start + i:05d}" for i in range(n)}
        return {"all": everyone, "signed": signed, "missing": everyone - signed, "old": old}


def _merge(a: dict, b: dict) -> dict:
    return {k: a[k] | b[k] for k in a}


def _setup(app, make):
    hr = en_user(make, roles=("hr",))
    trainer = en_user(make, roles=("trainer",))
    cid = build_course(app, trainer, lessons=1, bank={}, rules={}, policy=True)
    c = app.test_client()
    from tests.conftest import login
    login(c, hr)
    return c, cid


def test_compliance_page_shows_one_page_with_a_pager_and_right_summary(app, make):
    c, cid = _setup(app, make)
    exp = _grow(app, cid, 0, 130)
    missing = sorted(exp["missing"])
    assert len(missing) > 50

    html = c.get("/training/compliance").get_data(as_text=True)
    first = ROW.findall(html)
    assert first == missing[:50]  # one page, ordered by employee number
    assert 'class="pager"' in html and f"Page 1 of {-(-len(missing) // 50)}" in html
    assert f"{len(missing)} in total" in html
    # the summary covers everyone, not the page
    assert f"{len(exp['signed'])} / {len(exp['all'])}" in html
    assert f'<span class="tag danger">{len(missing)}</span>' in html

    html2 = c.get("/training/compliance?page=2").get_data(as_text=True)
    assert ROW.findall(html2) == missing[50:100]
    assert 'rel="prev"' in html2 and "Page 2 of" in html2
    # the course filter is kept by the pager links
    html3 = c.get(f"/training/compliance?course={cid}&page=2").get_data(as_text=True)
    assert ROW.findall(html3) == missing[50:100]
    assert f"course={cid}" in re.search(r'<a href="([^"]+)" rel="prev"', html3).group(1)
    # what they signed before is shown for the people on the page
    assert any(e in exp["old"] for e in first) and ">2023版<" in html


def test_compliance_search_and_htmx_partial(app, make):
    c, cid = _setup(app, make)
    exp = _grow(app, cid, 0, 80)
    target = sorted(exp["missing"])[-1]  # on the last page without a search
    html = c.get(f"/training/compliance?q={target}").get_data(as_text=True)
    assert ROW.findall(html) == [target]
    signed_one = sorted(exp["signed"])[0]
    assert ROW.findall(c.get(f"/training/compliance?q={signed_one}").get_data(as_text=True)) == []
    part = c.get("/training/compliance?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in part and ROW.findall(part) == sorted(exp["missing"])[50:100]


def test_compliance_export_has_every_row(app, make):
    c, cid = _setup(app, make)
    exp = _grow(app, cid, 0, 130)
    r = c.get("/training/compliance.xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data))
    rows = list(wb["not acknowledged"].iter_rows(values_only=True))
    assert rows[0] == ("policy", "policy version", "emp no", "name", "department", "status", "due at")
    assert [row[2] for row in rows[1:]] == sorted(exp["missing"])
    assert rows[1][4] == "规模部0" and rows[1][0] == "绩效管理制度"
    policies = list(wb["policies"].iter_rows(values_only=True))
    assert policies[1][3:] == (len(exp["all"]), len(exp["signed"]))
    from portal.core.audit import AuditEvent
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "training.compliance_exported"))
    assert ev.payload["rows"] == len(exp["missing"])


def test_compliance_statement_count_does_not_grow_with_rows(app, make):
    c, cid = _setup(app, make)

    def counts():
        out = {}
        for path in ("/training/compliance", "/training/compliance?page=2", "/training/compliance?q=S0",
                     "/training/compliance.xlsx"):
            c.get(path)  # warm-up
            with count_queries() as q:
                assert c.get(path).status_code == 200
            out[path] = q["n"]
        return out

    exp = _grow(app, cid, 0, 20)
    few = counts()
    exp = _merge(exp, _grow(app, cid, 20, 280))
    assert len(exp["missing"]) > 100  # page 2 is full at this size, not at the small one
    many = counts()
    assert many == few
