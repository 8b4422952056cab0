"""Clock in/out over HTTP: POST only, one record for a double tap, IP ranges, geofence with consent,
out-of-office with a note, untrusted X-Forwarded-For, bounded queries."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from portal.attendance.models import AttendanceDay, AttendanceRule, Punch, Settings, WorkSite
from portal.core.audit import AuditEvent
from portal.core.db import db
from tests.attendance.helpers import count_queries
from tests.conftest import csrf_token, login

SITE = (31.2304, 121.4737)


def _clock(client, kind="in", **data):
    token = csrf_token(client, "/attendance")
    return client.post("/attendance/clock", data={"csrf_token": token, "kind": kind, **data})


def _punches():
    db.session.rollback()
    return db.session.scalars(select(Punch).order_by(Punch.id)).all()


def test_clock_in_records_server_time_source_ip_and_summary(app, make, client):
    user = make.user()
    login(client, user)
    assert client.get("/attendance/clock").status_code == 405
    before = dt.datetime.now(dt.timezone.utc)
    resp = _clock(client, "in", headers=None) if False else client.post(
        "/attendance/clock", data={"csrf_token": csrf_token(client, "/attendance"), "kind": "in"},
        headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148"})
    assert resp.status_code == 303
    [p] = _punches()
    assert p.employee_id == user.employee_id and p.kind == "in" and p.source == "mobile"
    assert p.ip == "127.0.0.1" and p.latitude is None and p.method == "any"
    assert before - dt.timedelta(seconds=1) <= p.at <= dt.datetime.now(dt.timezone.utc)
    day = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == user.employee_id))
    assert day is not None and day.work_date == p.work_date and day.first_in == p.at
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "attendance.punch")) is not None
    page = client.get("/attendance").get_data(as_text=True)
    assert 'id="today-punches"' in page and "clock-in" in page


def test_double_tap_gives_one_record(app, make, client):
    user = make.user()
    login(client, user)
    token = csrf_token(client, "/attendance")
    r1 = client.post("/attendance/clock", data={"csrf_token": token, "kind": "in"}, headers={"HX-Request": "true"})
    r2 = client.post("/attendance/clock", data={"csrf_token": token, "kind": "in"}, headers={"HX-Request": "true"})
    assert r1.status_code == r2.status_code == 200
    assert len(_punches()) == 1
    assert "id=\"today\"" in r2.get_data(as_text=True)
    # a clock-out right after is a different kind: recorded
    client.post("/attendance/clock", data={"csrf_token": token, "kind": "out"})
    assert [p.kind for p in _punches()] == ["in", "out"]


def test_bad_kind_and_missing_csrf_are_refused(app, make, client):
    user = make.user()
    login(client, user)
    assert client.post("/attendance/clock", data={"kind": "in"}).status_code == 400
    assert _clock(client, "sideways").status_code == 422
    assert _punches() == []


def _restricted(app, geofence=True):
    with app.app_context():
        from portal.attendance import services
        rule = services.default_rule()
        rule.restrict_place, rule.ip_ranges, rule.allow_outside = True, "10.0.0.0/8", True
        cfg = services.settings()
        cfg.geofence_enabled = geofence
        db.session.add(WorkSite(name="上海总部", latitude=SITE[0], longitude=SITE[1], radius_m=200))
        db.session.commit()


def _consent(client, granted: bool):
    token = csrf_token(client, "/attendance")
    assert client.post("/attendance/consent", data={"csrf_token": token, "granted": "1" if granted else "0"}
                       ).status_code == 303


def test_geofence_inside_outside_with_consent(app, make, client):
    _restricted(app)
    user = make.user()
    login(client, user)
    _consent(client, True)
    outside = _clock(client, "in", latitude="31.2404", longitude="121.4737", accuracy="15")  # ~1.1 km away
    assert outside.status_code == 422
    assert "不在办公网络或办公地点范围内" in outside.get_data(as_text=True)  # default locale: Chinese
    assert _punches() == []
    inside = _clock(client, "in", latitude="31.2310", longitude="121.4740", accuracy="15")
    assert inside.status_code == 303
    [p] = _punches()
    assert p.method == "site" and p.site_id is not None and abs(p.latitude - 31.2310) < 1e-9


def test_consent_refused_location_is_neither_used_nor_stored(app, make, client):
    _restricted(app)
    user = make.user()
    login(client, user)
    _consent(client, False)
    resp = _clock(client, "in", latitude=str(SITE[0]), longitude=str(SITE[1]))  # at the site, but no consent
    assert resp.status_code == 422
    assert _punches() == []
    # the alternative: out-of-office with a note (reported to the manager), no location kept
    assert _clock(client, "in", outside="y", note="").status_code == 422
    ok = _clock(client, "in", outside="y", note="客户现场 client site", latitude=str(SITE[0]),
                longitude=str(SITE[1]))
    assert ok.status_code == 303
    [p] = _punches()
    assert p.method == "outside" and p.latitude is None and p.longitude is None and "客户现场" in p.note


def test_geofence_disabled_by_company_ignores_coordinates(app, make, client):
    _restricted(app, geofence=False)
    user = make.user()
    login(client, user)
    assert _clock(client, "in", latitude=str(SITE[0]), longitude=str(SITE[1])).status_code == 422
    assert "Allow location" not in client.get("/attendance").get_data(as_text=True)


def test_intranet_ip_range_and_untrusted_forwarded_for(app, make, client):
    _restricted(app)
    user = make.user()
    login(client, user)
    token = csrf_token(client, "/attendance")
    spoofed = client.post("/attendance/clock", data={"csrf_token": token, "kind": "in"},
                          headers={"X-Forwarded-For": "10.1.2.3"})
    assert spoofed.status_code == 422  # no proxy configured: the header is not trusted
    ok = client.post("/attendance/clock", data={"csrf_token": token, "kind": "in"},
                     environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert ok.status_code == 303
    [p] = _punches()
    assert p.method == "ip" and p.ip == "10.1.2.3"


def test_clock_in_query_count_is_bounded(app, make, client):
    counts = []
    for history in (0, 40):
        user = make.user()
        with app.app_context():
            from portal.attendance.models import Punch as P
            base = dt.datetime(2025, 1, 1, 1, tzinfo=dt.timezone.utc)
            db.session.add_all([P(employee_id=user.employee_id, at=base + dt.timedelta(days=i), kind="in",
                                  work_date=(base + dt.timedelta(days=i)).date()) for i in range(history)])
            db.session.commit()
        c = app.test_client()
        login(c, user)
        token = csrf_token(c, "/attendance")
        c.post("/attendance/clock", data={"csrf_token": token, "kind": "out"})  # warm-up (default rule row)
        with count_queries() as seen:
            resp = c.post("/attendance/clock", data={"csrf_token": token, "kind": "in"})
        assert resp.status_code == 303
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 30, counts
