"""Pure attendance rules (no database): working-day calendar, schedules, punch-to-shift, day status.

DOMAIN.md "Definitions":
* a punch belongs to the shift whose window [start - 4 h, end + 6 h] contains it (overnight shifts too);
* status precedence: holiday > rest day > approved leave > absent (no punch) > missing punch (one of
  in/out) > late / early leave > normal;
* late: the first "in" after start + grace; the late minutes count from the start (rounded up to whole
  minutes), so with 5 minutes' grace 09:05:00 is on time and 09:05:01 is 6 minutes late. Early leave is
  the same with the early grace before the end.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional
from zoneinfo import ZoneInfo

WINDOW_BEFORE = dt.timedelta(hours=4)
WINDOW_AFTER = dt.timedelta(hours=6)
DEDUPE_SECONDS = 60


# ---------------------------------------------------------------- calendar

def day_kind(day: dt.date, overrides: Mapping[dt.date, str] | None = None) -> tuple[str, str]:
    """("work" | "rest" | "holiday", holiday name) of a local date.

    HR overrides first, then China's official calendar (``chinese_calendar``: statutory holidays and
    make-up working days), then the plain Monday-Friday week for years the package does not know."""
    if overrides and day in overrides:
        kind = overrides[day]
        return ("work" if kind == "workday" else kind), ""
    try:
        import chinese_calendar
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
    except (NotImplementedError, ImportError):
        return ("rest" if day.weekday() >= 5 else "work"), ""
    if not is_holiday:
        return "work", ""
    if name:
        # A statutory holiday (the days off in lieu carry the festival's name too).
        return "holiday", str(name)
    return "rest", ""


def official_year(year: int) -> list[tuple[dt.date, str, str]]:
    """The dates of ``year`` that differ from the Monday-Friday week: (date, holiday|workday, name).
    Raises NotImplementedError when chinese_calendar has no data for the year."""
    import chinese_calendar
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    chinese_calendar.get_holiday_detail(start)  # raises for unknown years
    out = []
    day = start
    while day <= end:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        if is_holiday and name:
            out.append((day, "holiday", str(name)))
        elif not is_holiday and day.weekday() >= 5:
            out.append((day, "workday", str(name or "")))
        day += dt.timedelta(days=1)
    return out


# ---------------------------------------------------------------- schedules

@dataclass(frozen=True)
class Hours:
    """A schedule in local minutes after midnight (end <= start: ends the next day)."""
    start_minute: int
    end_minute: int
    grace_minutes: int = 0
    early_grace_minutes: int = 0
    break_start_minute: Optional[int] = None
    break_minutes: int = 0


@dataclass(frozen=True)
class Schedule:
    """One day's expected work, in UTC."""
    work_date: dt.date
    start: dt.datetime
    end: dt.datetime
    grace: dt.timedelta = dt.timedelta(0)
    early_grace: dt.timedelta = dt.timedelta(0)
    break_start: Optional[dt.datetime] = None
    break_end: Optional[dt.datetime] = None

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start - WINDOW_BEFORE, self.end + WINDOW_AFTER

    def contains(self, at: dt.datetime) -> bool:
        lo, hi = self.window
        return lo <= at <= hi

    @property
    def midpoint(self) -> dt.datetime:
        return self.start + (self.end - self.start) / 2


def _at(day: dt.date, minute: int, tz: ZoneInfo) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time(0), tzinfo=tz) + dt.timedelta(minutes=minute)
    # Re-attach the zone at the wall time (correct across DST in zones that have it).
    local = local.replace(tzinfo=None).replace(tzinfo=tz)
    return local.astimezone(dt.timezone.utc)


def make_schedule(day: dt.date, hours: Hours, tz: ZoneInfo) -> Schedule:
    start = _at(day, hours.start_minute, tz)
    end_day = day + dt.timedelta(days=1) if hours.end_minute <= hours.start_minute else day
    end = _at(end_day, hours.end_minute, tz)
    b_start = b_end = None
    if hours.break_minutes and hours.break_start_minute is not None:
        b_day = day if hours.break_start_minute >= hours.start_minute else end_day
        b_start = _at(b_day, hours.break_start_minute, tz)
        b_end = b_start + dt.timedelta(minutes=hours.break_minutes)
    return Schedule(day, start, end, dt.timedelta(minutes=hours.grace_minutes),
                    dt.timedelta(minutes=hours.early_grace_minutes), b_start, b_end)


def assign_work_date(at: dt.datetime, kind: str, candidates: Iterable[Schedule], tz: ZoneInfo) -> dt.date:
    """The attendance day of a punch: the schedule whose window contains it, else the local date.

    When two windows contain it (long shifts on consecutive days), an "in" goes to the shift that
    starts nearest and an "out" to the shift that ends nearest."""
    hits = [s for s in candidates if s.contains(at)]
    if not hits:
        return at.astimezone(tz).date()
    if kind == "in":
        best = min(hits, key=lambda s: abs((s.start - at).total_seconds()))
    else:
        best = min(hits, key=lambda s: abs((s.end - at).total_seconds()))
    return best.work_date


# ---------------------------------------------------------------- day status

@dataclass(frozen=True)
class PunchIn:
    at: dt.datetime
    kind: str
    outside: bool = False


@dataclass
class DayResult:
    status: str
    first_in: Optional[dt.datetime] = None
    last_out: Optional[dt.datetime] = None
    worked_minutes: int = 0
    late_minutes: int = 0
    early_minutes: int = 0
    leave_half: str = ""
    outside: bool = False
    scheduled_start: Optional[dt.datetime] = None
    scheduled_end: Optional[dt.datetime] = None
    extra: dict = field(default_factory=dict)


def _ceil_minutes(delta: dt.timedelta) -> int:
    return max(0, math.ceil(delta.total_seconds() / 60))


def _overlap(a0, a1, b0, b1) -> dt.timedelta:
    lo, hi = max(a0, b0), min(a1, b1)
    return hi - lo if hi > lo else dt.timedelta(0)


def evaluate(kind: str, punches: Iterable[PunchIn], schedule: Optional[Schedule] = None,
             leave: str = "", flexible: bool = False) -> DayResult:
    """Status of one attendance day.

    ``kind``: "work" | "rest" | "holiday" (after calendar and shift resolution); ``schedule``: the
    expected hours on a work day (None for flexible rules); ``leave``: "" | "full" | "am" | "pm" (approved
    leave covering the day or one half of it)."""
    punches = sorted(punches, key=lambda p: p.at)
    ins = [p.at for p in punches if p.kind == "in"]
    outs = [p.at for p in punches if p.kind == "out"]
    first_in = min(ins) if ins else None
    last_out = max(outs) if outs else None
    worked = 0
    if first_in and last_out and last_out > first_in:
        span = last_out - first_in
        if schedule and schedule.break_start and schedule.break_end:
            span -= _overlap(first_in, last_out, schedule.break_start, schedule.break_end)
        worked = int(span.total_seconds() // 60)
    res = DayResult(status="normal", first_in=first_in, last_out=last_out, worked_minutes=worked,
                    leave_half=leave, outside=any(p.outside for p in punches),
                    scheduled_start=schedule.start if schedule else None,
                    scheduled_end=schedule.end if schedule else None)
    if kind in ("holiday", "rest"):
        res.status = kind
        return res
    if leave == "full" or (leave and not punches):
        res.status = "leave"
        return res
    if not punches:
        res.status = "absent"
        return res
    if first_in is None or last_out is None or last_out <= first_in:
        res.status = "missing"
        return res
    if flexible or schedule is None:
        return res
    start, end = schedule.start, schedule.end
    if leave == "am":
        start = schedule.midpoint
    elif leave == "pm":
        end = schedule.midpoint
    if first_in > start + schedule.grace:
        res.late_minutes = _ceil_minutes(first_in - start)
    if last_out < end - schedule.early_grace:
        res.early_minutes = _ceil_minutes(end - last_out)
    if res.late_minutes:
        res.status = "late"
    elif res.early_minutes:
        res.status = "early"
    return res


# ---------------------------------------------------------------- leave coverage

def leave_cover(day: dt.date, start: dt.date, start_half: str, end: dt.date, end_half: str) -> str:
    """"full" | "am" | "pm" | "" : how a leave (start_half am = from the morning, end_half pm = to the end
    of the day) covers ``day``."""
    if day < start or day > end:
        return ""
    morning = not (day == start and start_half == "pm")
    afternoon = not (day == end and end_half == "am")
    if morning and afternoon:
        return "full"
    if morning:
        return "am"
    if afternoon:
        return "pm"
    return ""


def leave_half_days(start: dt.date, start_half: str, end: dt.date, end_half: str) -> int:
    """Calendar half days a leave spans (working-day counting comes with balances, later)."""
    days = (end - start).days + 1
    halves = days * 2
    if start_half == "pm":
        halves -= 1
    if end_half == "am":
        halves -= 1
    return halves


# ---------------------------------------------------------------- geofence

def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def ip_in_ranges(ip: str, ranges: str) -> bool:
    import ipaddress
    try:
        addr = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return False
    for token in (ranges or "").replace(",", "\n").split():
        try:
            if addr in ipaddress.ip_network(token.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def parse_ranges(ranges: str) -> tuple[list[str], list[str]]:
    """(valid CIDRs, invalid tokens)."""
    import ipaddress
    good, bad = [], []
    for token in (ranges or "").replace(",", "\n").split():
        try:
            good.append(str(ipaddress.ip_network(token.strip(), strict=False)))
        except ValueError:
            bad.append(token)
    return good, bad
