"""Audit pages: access, filters, htmx partial, bounded queries, verify page, sealing, CSV export."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import create_engine, event, func, select

from portal.core import audit
from portal.core.audit import AuditEvent
from portal.core.db import db
from tests.audit.helpers import add_events, raw
from tests.conftest import csrf_token, login

UTC = dt.timezone.utc


@pytest.fixture
def hr(make):
    return make.user(roles=("hr", "employee"), username="hr.li")


def _event(action, *, actor=None, target=None, data=None, at=None, ip="10.0.0.8"):
    ev = audit.record(action, target, data or {}, actor=actor, ip=ip)
    if at is not None:
        ev.created_at = at
    db.session.commit()
    return ev


@pytest.mark.parametrize("path", ["/audit", "/audit/verify", "/audit/export.csv"])
def test_employee_is_refused(client, make, path):
    login(client, make.user(roles=("employee",)))
    assert client.get(path).status_code == 403


def test_hr_sees_the_trail_and_nav_link(client, hr):
    login(client, hr)
    assert client.get("/audit").status_code == 200
    assert 'href="/audit"' in client.get("/").get_data(as_text=True)


def test_employee_has_no_nav_link(client, make):
    login(client, make.user(roles=("employee",)))
    assert 'href="/audit"' not in client.get("/").get_data(as_text=True)


def test_legal_may_view_but_not_export(client, make):
    login(client, make.user(roles=("legal",)))
    assert client.get("/audit").status_code == 200
    html = client.get("/audit").get_data(as_text=True)
    assert "/audit/export.csv" not in html
    assert client.get("/audit/export.csv").status_code == 403


def test_anonymous_goes_to_login(client):
    resp = client.get("/audit")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_rows_show_time_actor_target_ip_request_seq_and_escaped_data(client, hr, make):
    actor = make.user(username="zhang.san")
    _event("people.viewed", actor=actor, target=("employees", 42),
           data={"note": "<script>alert(1)</script>", "名字": "张三"},
           at=dt.datetime(2026, 3, 1, 16, 30, 5, tzinfo=UTC))
    audit.seal()
    _event("people.exported", actor=actor, data={"rows": 3})
    login(client, hr)
    html = client.get("/audit").get_data(as_text=True)
    assert "2026-03-02 00:30:05" in html  # Asia/Shanghai
    assert "zhang.san" in html and "employees" in html and "<code>42</code>" in html
    assert "10.0.0.8" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "张三" in html
    assert re.search(r'data-label="[^"]+">1</td>', html)  # the sealed row's sequence number
    assert html.count('class="tag warn"') == 1  # the unsealed row
    # newest first
    assert html.index("people.exported") < html.index("people.viewed")


def test_request_id_and_ip_of_a_web_action_are_recorded(client, hr):
    login(client, hr)
    resp = client.get("/audit/export.csv")
    resp.get_data()
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.exported"))
    assert ev.request_id and ev.request_id == resp.headers["X-Request-ID"]
    assert ev.ip == "127.0.0.1"
    assert ev.actor_id == hr.id and ev.actor_name == "hr.li"


def test_filters(client, hr, make):
    wang = make.user(username="Wang.Wu")
    zhao = make.user(username="zhao.liu")
    _event("people.viewed", actor=wang, target=("employees", 7), data={"m": "A1"},
           at=dt.datetime(2026, 3, 1, 15, 59, tzinfo=UTC))  # 2026-03-01 23:59 local
    _event("people.exported", actor=wang, target=("employees", 8), data={"m": "B2"},
           at=dt.datetime(2026, 3, 1, 16, 0, tzinfo=UTC))  # 2026-03-02 00:00 local
    _event("clients.viewed", actor=zhao, target=("clients", 7), data={"m": "C3"},
           at=dt.datetime(2026, 3, 3, 2, 0, tzinfo=UTC))
    _event("people_x.viewed", actor=zhao, target=("employees", 70), data={"m": "D4"},
           at=dt.datetime(2026, 3, 4, 2, 0, tzinfo=UTC))
    login(client, hr)

    def shown(query: str) -> set[str]:
        resp = client.get("/audit?" + query)
        assert resp.status_code == 200
        return set(re.findall(r"&#34;m&#34;:&#34;(\w\d)&#34;", resp.get_data(as_text=True)))

    assert shown("") == {"A1", "B2", "C3", "D4"}
    assert shown("actor=wang.wu") == {"A1", "B2"}  # usernames compare case-insensitively
    assert shown("action=people.") == {"A1", "B2"}  # prefix; "_" and "." are literal
    assert shown("action=people_") == {"D4"}
    assert shown("target_type=employees") == {"A1", "B2", "D4"}
    assert shown("target_type=employees&target_id=7") == {"A1"}
    assert shown("date_from=2026-03-02") == {"B2", "C3", "D4"}
    assert shown("date_to=2026-03-01") == {"A1"}
    assert shown("date_from=2026-03-02&date_to=2026-03-03") == {"B2", "C3"}
    assert shown("actor=zhao.liu&date_to=2026-03-03") == {"C3"}


def test_bad_filter_is_422_with_message(client, hr):
    login(client, hr)
    resp = client.get("/audit?date_from=2026-03-05&date_to=2026-03-01")
    assert resp.status_code == 422
    assert 'role="alert"' in resp.get_data(as_text=True)
    resp = client.get("/audit?date_from=not-a-date", headers={"HX-Request": "true"})
    assert resp.status_code == 422
    resp = client.get("/audit/export.csv?date_from=2026-03-05&date_to=2026-03-01")
    assert resp.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "audit.exported")) == 0


def test_htmx_gets_the_table_partial(client, hr):
    _event("people.viewed", data={"m": "X"})
    login(client, hr)
    resp = client.get("/audit?action=people", headers={"HX-Request": "true"})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "<html" not in body and 'class="table audit-table"' in body
    assert "HX-Request" in resp.headers["Vary"]
    full = client.get("/audit?action=people").get_data(as_text=True)
    assert "<html" in full and 'id="audit-table"' in full


def test_pagination(client, hr):
    add_events(12, action="bulk.event")
    login(client, hr)
    html = client.get("/audit?per_page=5&page=3").get_data(as_text=True)
    assert html.count("bulk.event") == 2
    assert "page=2" in html


def _count_queries(client, path: str) -> int:
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        resp = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    assert resp.status_code == 200
    return len(statements)


def test_list_query_count_is_bounded_and_independent_of_rows(client, hr, make):
    actors = [make.user() for _ in range(3)]
    for i in range(3):
        _event("few.event", actor=actors[i % 3], target=("employees", i))
    login(client, hr)
    few = _count_queries(client, "/audit?per_page=50")
    for i in range(40):
        _event("many.event", actor=actors[i % 3], target=("employees", i))
    audit.seal()
    many = _count_queries(client, "/audit?per_page=50")
    assert few == many
    assert many <= 8


def test_verify_page_and_seal_button(client, hr):
    add_events(3)
    login(client, hr)
    html = client.get("/audit/verify").get_data(as_text=True)
    assert '<dd id="audit-unsealed">3</dd>' in html
    token = csrf_token(client, "/audit/verify")
    resp = client.post("/audit/seal", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/audit/verify")
    result = audit.verify()
    assert result.ok and result.unsealed == 0 and result.checked == 4
    ev = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.seal_requested"))
    assert ev.actor_id == hr.id and ev.seq == 4
    raw("UPDATE audit_events SET data = '{}' WHERE seq = 2")
    resp = client.get("/audit/verify")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'role="alert"' in html and 'class="broken-seq">2<' in html


def test_seal_requires_post_and_csrf(client, hr):
    add_events(1)
    login(client, hr)
    assert client.get("/audit/seal").status_code == 405
    assert client.post("/audit/seal").status_code == 400
    assert audit.verify().unsealed == 1


def _csv(resp) -> list[list[str]]:
    raw_bytes = resp.get_data()
    assert raw_bytes.startswith("\ufeff".encode("utf-8"))
    return list(csv.reader(io.StringIO(raw_bytes.decode("utf-8-sig"))))


def test_export_csv_content_and_filters(client, hr, make):
    wang = make.user(username="wang.wu")
    _event("people.viewed", actor=wang, target=("employees", 7), data={"名字": "张三"},
           at=dt.datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    _event("clients.viewed", actor=wang, target=("clients", 9), data={"n": 1})
    _event("people.exported", actor=make.user(username="=HYPERLINK(1)"), target=("employees", 8))
    audit.seal()
    login(client, hr)
    resp = client.get("/audit/export.csv?action=people.")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = _csv(resp)
    assert len(rows[0]) == 12
    body = rows[1:]
    assert [r[5] for r in body] == ["people.viewed", "people.exported"]  # oldest first
    first = body[0]
    assert first[0] == "1"
    assert first[1] == "2026-03-02 00:30:00" and first[2] == "2026-03-01T16:30:00.000000Z"
    assert first[3] == "wang.wu" and first[4] == str(wang.id)
    assert (first[6], first[7], first[8]) == ("employees", "7", "10.0.0.8")
    assert first[10] == '{"名字":"张三"}'
    assert len(first[11]) == 64
    assert body[1][3] == "'=HYPERLINK(1)"  # spreadsheet formulas neutralised


def test_export_is_audited_and_committed_before_streaming(app, client, hr, database_url):
    add_events(3, action="people.viewed")
    login(client, hr)
    resp = client.get("/audit/export.csv?action=people&date_from=2026-01-01", buffered=False)
    assert resp.status_code == 200
    # Before a byte is read, another connection already sees the export on record.
    other = create_engine(database_url)
    try:
        with other.connect() as conn:
            row = conn.execute(select(AuditEvent.data, AuditEvent.actor_id)
                               .where(AuditEvent.action == "audit.exported")).one()
    finally:
        other.dispose()
    data = audit.AuditEvent(data=row.data).payload
    assert data["filters"] == {"action": "people", "date_from": "2026-01-01"}
    assert row.actor_id == hr.id
    rows = _csv(resp)
    resp.close()
    assert len(rows) == 1 + 3
    assert "audit.exported" not in {r[5] for r in rows[1:]}  # a fixed cut: the export's own event is after it


def test_export_streams_in_chunks(app, hr):
    from portal.audit import services
    from zoneinfo import ZoneInfo
    add_events(5)
    up_to = db.session.scalar(select(func.max(AuditEvent.id)))
    chunks = list(services.export_csv(services.AuditFilters(), ZoneInfo("Asia/Shanghai"), up_to,
                                      ["h"] * 12, "unsealed", chunk=2))
    assert len(chunks) == 1 + 3  # header, then 2 + 2 + 1 rows
    assert chunks[0].startswith("\ufeff")
    assert sum(c.count("\n") for c in chunks[1:]) == 5
