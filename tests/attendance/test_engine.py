"""Pure rules (DOMAIN.md "Definitions"): schedules, overnight shifts, grace boundary, holidays and
make-up days, Asia/Shanghai wall times computed on a UTC server, status precedence, leave halves."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from portal.attendance import engine
from portal.attendance.engine import Hours, PunchIn, evaluate, make_schedule

SH = ZoneInfo("Asia/Shanghai")
UTC = dt.timezone.utc
DAY = Hours(9 * 60, 18 * 60, grace_minutes=5, break_start_minute=12 * 60, break_minutes=60)
NIGHT = Hours(22 * 60, 6 * 60, grace_minutes=10)


def at(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=SH).astimezone(UTC)


D = dt.date(2025, 3, 4)  # a Tuesday


def test_schedule_is_shanghai_wall_time_stored_in_utc():
    s = make_schedule(D, DAY, SH)
    assert s.start == dt.datetime(2025, 3, 4, 1, 0, tzinfo=UTC)  # 09:00 +08:00, no DST in China
    assert s.end == dt.datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    summer = make_schedule(dt.date(2025, 7, 1), DAY, SH)
    assert summer.start.hour == 1  # same offset in summer: Asia/Shanghai has no DST


def test_grace_boundary():
    s = make_schedule(D, DAY, SH)
    on_time = evaluate("work", [PunchIn(at(D, 9, 5, 0), "in"), PunchIn(at(D, 18), "out")], s)
    assert on_time.status == "normal" and on_time.late_minutes == 0
    late = evaluate("work", [PunchIn(at(D, 9, 5, 1), "in"), PunchIn(at(D, 18), "out")], s)
    assert late.status == "late" and late.late_minutes == 6  # counted from the start, rounded up
    early = evaluate("work", [PunchIn(at(D, 8, 50), "in"), PunchIn(at(D, 17, 59, 30), "out")], s)
    assert early.status == "early" and early.early_minutes == 1


def test_worked_minutes_subtract_the_break_overlap():
    s = make_schedule(D, DAY, SH)
    r = evaluate("work", [PunchIn(at(D, 8, 55), "in"), PunchIn(at(D, 18, 10), "out")], s)
    assert r.worked_minutes == 9 * 60 + 15 - 60
    half = evaluate("work", [PunchIn(at(D, 12, 30), "in"), PunchIn(at(D, 18), "out")], s)
    assert half.worked_minutes == 5 * 60 + 30 - 30


def test_overnight_shift_window_and_status():
    s = make_schedule(D, NIGHT, SH)
    assert s.end == at(D + dt.timedelta(days=1), 6)
    nxt = make_schedule(D + dt.timedelta(days=1), NIGHT, SH)
    # the morning clock-out belongs to the shift that started the evening before
    out_at = at(D + dt.timedelta(days=1), 6, 3)
    assert engine.assign_work_date(out_at, "out", [s, nxt], SH) == D
    in_at = at(D, 21, 50)
    assert engine.assign_work_date(in_at, "in", [s, nxt], SH) == D
    # window is [start - 4 h, end + 6 h]
    assert s.contains(at(D, 18)) and not s.contains(at(D, 17, 59))
    assert s.contains(at(D + dt.timedelta(days=1), 12)) and not s.contains(at(D + dt.timedelta(days=1), 12, 1))
    r = evaluate("work", [PunchIn(in_at, "in"), PunchIn(out_at, "out")], s)
    assert r.status == "normal" and r.worked_minutes == 8 * 60 + 13


def test_punch_outside_every_window_goes_to_its_local_date():
    s = make_schedule(D, DAY, SH)
    lonely = at(D, 2)  # 02:00 local = the day before in UTC
    assert lonely.date() == D - dt.timedelta(days=1)
    assert engine.assign_work_date(lonely, "in", [s], SH) == D


def test_holidays_and_make_up_days_from_the_official_calendar():
    assert engine.day_kind(dt.date(2025, 10, 1)) == ("holiday", "National Day")
    assert engine.day_kind(dt.date(2025, 10, 8))[0] == "holiday"  # a weekday off in lieu
    assert engine.day_kind(dt.date(2025, 9, 28)) == ("work", "")  # Sunday make-up working day
    assert engine.day_kind(dt.date(2025, 3, 8)) == ("rest", "")  # plain Saturday
    assert engine.day_kind(D) == ("work", "")
    # HR overrides win
    assert engine.day_kind(dt.date(2025, 10, 1), {dt.date(2025, 10, 1): "workday"})[0] == "work"
    assert engine.day_kind(D, {D: "holiday"})[0] == "holiday"
    # a year the package does not know falls back to Monday-Friday
    assert engine.day_kind(dt.date(2099, 1, 3))[0] == "rest" and engine.day_kind(dt.date(2099, 1, 5))[0] == "work"


def test_official_year_lists_holidays_and_make_up_days():
    rows = {d: k for d, k, _n in engine.official_year(2025)}
    assert rows[dt.date(2025, 10, 1)] == "holiday" and rows[dt.date(2025, 9, 28)] == "workday"
    assert dt.date(2025, 3, 8) not in rows  # ordinary weekends are not listed
    with pytest.raises(NotImplementedError):
        engine.official_year(2099)


def test_status_precedence():
    s = make_schedule(D, DAY, SH)
    punches = [PunchIn(at(D, 9, 30), "in")]
    assert evaluate("holiday", punches, None).status == "holiday"
    assert evaluate("rest", punches, None).status == "rest"
    assert evaluate("work", punches, s, leave="full").status == "leave"
    assert evaluate("work", [], s).status == "absent"
    assert evaluate("work", [], s, leave="am").status == "leave"
    assert evaluate("work", punches, s).status == "missing"  # late but only one punch
    assert evaluate("work", [PunchIn(at(D, 18), "out")], s).status == "missing"
    both = evaluate("work", [PunchIn(at(D, 9, 30), "in"), PunchIn(at(D, 17), "out")], s)
    assert both.status == "late" and both.late_minutes == 30 and both.early_minutes == 60


def test_half_day_leave_moves_the_expected_hours():
    s = make_schedule(D, DAY, SH)
    r = evaluate("work", [PunchIn(at(D, 13, 30), "in"), PunchIn(at(D, 18), "out")], s, leave="am")
    assert r.status == "normal"  # morning off: expected from 13:30
    r = evaluate("work", [PunchIn(at(D, 9), "in"), PunchIn(at(D, 13, 30), "out")], s, leave="pm")
    assert r.status == "normal"


def test_flexible_rule_counts_only_absence():
    r = evaluate("work", [PunchIn(at(D, 11), "in"), PunchIn(at(D, 15), "out")], None, flexible=True)
    assert r.status == "normal" and r.worked_minutes == 240 and r.late_minutes == 0
    assert evaluate("work", [], None, flexible=True).status == "absent"


def test_leave_cover_and_half_days():
    s, e = dt.date(2025, 3, 3), dt.date(2025, 3, 5)
    assert engine.leave_cover(dt.date(2025, 3, 3), s, "pm", e, "am") == "pm"
    assert engine.leave_cover(dt.date(2025, 3, 4), s, "pm", e, "am") == "full"
    assert engine.leave_cover(dt.date(2025, 3, 5), s, "pm", e, "am") == "am"
    assert engine.leave_cover(dt.date(2025, 3, 6), s, "pm", e, "am") == ""
    assert engine.leave_half_days(s, "pm", e, "am") == 4
    assert engine.leave_half_days(s, "am", s, "am") == 1


def test_geofence_distance_and_ip_ranges():
    # about 111 m per 0.001 degree of latitude
    assert 105 < engine.distance_m(31.2304, 121.4737, 31.2314, 121.4737) < 115
    assert engine.ip_in_ranges("10.1.2.3", "10.0.0.0/8\n192.168.1.0/24")
    assert not engine.ip_in_ranges("8.8.8.8", "10.0.0.0/8")
    assert not engine.ip_in_ranges("garbage", "10.0.0.0/8")
    assert engine.parse_ranges("10.0.0.0/8, nope") == (["10.0.0.0/8"], ["nope"])
