"""Step "attendance": rules, shifts and schedules, the official calendar, settings, exemptions, then a
history of punches with the daily summary, leave, corrections and the anomalies the daily scans raised.

Consistency with the module: the day plan comes from ``engine.day_kind`` / ``engine.make_schedule`` (the
same calendar rows the portal reads) and every summary row is ``engine.evaluate`` of the punches written
for that day, with the leave coverage of ``engine.leave_cover``; absences of closed days look like the
rows ``scan.close_day`` inserts. ``verify`` recomputes a random sample with ``services.compute_day``.

What the scan of the benchmark day (``ctx.scan_day``: the latest working day up to ``--end``) will do is
left to it: that day has the summary rows of people who punched (the portal writes them on each punch),
but no "absent"/"leave" rows yet and no anomalies detected on it. Earlier days are closed, and the
anomalies of earlier scans exist (notified; older ones mostly resolved by HR).
"""
from __future__ import annotations

import datetime as dt
import random
import time
from zoneinfo import ZoneInfo

from bench.common import log

# id, name, kind, default, start, end, grace, early grace, break start, break minutes, restrict place
RULES = (
    (1, "Standard hours", "fixed", True, 9 * 60, 18 * 60, 5, 0, 12 * 60, 60, True),
    (2, "弹性工时", "flexible", False, 9 * 60, 18 * 60, 0, 0, None, 0, False),
    (3, "客服排班", "shift", False, 9 * 60, 18 * 60, 5, 0, None, 0, False),
)
RULE_BY_KIND = {"fixed": 1, "flexible": 2, "shift": 3}
# id, code, name, start, end, grace, early grace, break start, break minutes
SHIFTS = (
    (1, "D", "早班", 8 * 60, 17 * 60, 5, 0, 12 * 60, 60),
    (2, "M", "中班", 13 * 60, 22 * 60, 5, 0, 17 * 60, 60),
    (3, "N", "夜班", 22 * 60, 7 * 60, 5, 0, None, 0),  # overnight: ends the next day
)
IP_RANGES = "10.0.0.0/8\n172.16.0.0/12"
LEAVE_PLAN = (  # kind, how many requests a year (one picked), length range in days
    ("annual", (0, 1, 1, 2, 2, 3), (1, 5)),
    ("sick", (0, 0, 1, 1, 2), (1, 2)),
    ("personal", (0, 0, 0, 1), (1, 1)),
    ("compensatory", (0, 0, 1), (1, 1)),
)
LEAVE_REASONS = {"annual": "年假", "sick": "身体不适，就医", "personal": "家中有事", "compensatory": "调休"}
LATE_CLASSES = ((0.70, 0.015), (0.25, 0.06), (0.05, 0.22))  # share of people, chance to be late on a day
P_ABSENT, P_MISSING, P_EARLY, P_REST_OVERTIME, P_CORRECTED = 0.003, 0.012, 0.02, 0.008, 0.3
THRESHOLDS = {"escalate": 3, "late_count": 4, "late_rise": 3}  # Settings() defaults

PUNCH_COLS = ["id", "employee_id", "at", "work_date", "kind", "source", "ip", "method", "latitude", "longitude",
              "accuracy_m", "site_id", "note", "created_by_id", "created_at"]
DAY_COLS = ["id", "employee_id", "work_date", "status", "scheduled_start", "scheduled_end", "first_in",
            "last_out", "worked_minutes", "late_minutes", "early_minutes", "leave_half", "outside", "computed_at"]
LEAVE_COLS = ["id", "employee_id", "kind", "start_date", "start_half", "end_date", "end_half", "half_days",
              "reason", "status", "decided_by_id", "decided_at", "decision_note", "created_at", "updated_at"]
CORR_COLS = ["id", "employee_id", "work_date", "kind", "at", "reason", "file_id", "status", "decided_by_id",
             "decided_at", "decision_note", "punch_id", "created_at", "updated_at"]
ANOMALY_COLS = ["id", "employee_id", "kind", "key_date", "detected_on", "days", "risk", "status", "notified_at",
                "created_at", "resolved_by_id", "resolved_at", "note"]
ASSIGN_COLS = ["id", "employee_id", "work_date", "shift_id"]
TABLES = ["attendance_rules", "attendance_rule_members", "attendance_shifts", "attendance_calendar",
          "attendance_settings", "attendance_sites", "attendance_exemptions", "attendance_punches",
          "attendance_days", "attendance_leaves", "attendance_corrections", "attendance_anomalies",
          "attendance_shift_assignments"]
BIG_TABLES = ["attendance_punches", "attendance_days", "attendance_leaves", "attendance_corrections",
              "attendance_anomalies", "attendance_shift_assignments"]


def _days(a: dt.date, b: dt.date):
    d = a
    one = dt.timedelta(days=1)
    while d <= b:
        yield d
        d += one


class Calendar:
    """Day kinds and schedules of the period, computed once with the engine."""

    def __init__(self, start: dt.date, end: dt.date, overrides: dict[dt.date, str], tz: ZoneInfo):
        from portal.attendance import engine
        self.tz = tz
        self.kind = {d: engine.day_kind(d, overrides)[0] for d in _days(start, end + dt.timedelta(days=40))}
        fixed = engine.Hours(*RULES[0][4:10])
        self.fixed = {d: engine.make_schedule(d, fixed, tz) for d, k in self.kind.items() if k == "work"}
        self.shift_hours = {s[1]: engine.Hours(*s[3:9]) for s in SHIFTS}
        self._shift: dict[tuple[str, dt.date], object] = {}
        self._midnight: dict[dt.date, dt.datetime] = {}

    def shift(self, code: str, d: dt.date):
        key = (code, d)
        s = self._shift.get(key)
        if s is None:
            from portal.attendance import engine
            s = self._shift[key] = engine.make_schedule(d, self.shift_hours[code], self.tz)
        return s

    def local(self, d: dt.date, minute: float) -> dt.datetime:
        m = self._midnight.get(d)
        if m is None:
            m = self._midnight[d] = dt.datetime.combine(d, dt.time(0), tzinfo=self.tz).astimezone(dt.timezone.utc)
        return m + dt.timedelta(minutes=minute)


def official_overrides(start: dt.date, end: dt.date) -> list[tuple[dt.date, str, str]]:
    """The imported calendar rows (what ``services.import_official_year`` stores) for the years covered."""
    from portal.attendance import engine
    rows = []
    for year in range(start.year, end.year + 2):
        try:
            rows += engine.official_year(year)
        except NotImplementedError:
            log(f"  calendar: no official data for {year}; Monday-Friday weeks")
    return rows


def scan_day_of(cal: Calendar, end: dt.date) -> dt.date:
    d = end
    while cal.kind.get(d) != "work":
        d -= dt.timedelta(days=1)
    return d


def _shift_code(p, d: dt.date):
    """Rotating 5-on/2-off weeks of early, middle and night shifts (offset per person)."""
    i = d.toordinal() + p.id % 7
    if i % 7 >= 5:
        return None
    return "DMN"[(i // 7 + p.id // 7) % 3]


# ---------------------------------------------------------------- configuration rows

def load_config(ctx) -> None:
    co = ctx.company
    loader = ctx.loader
    now = dt.datetime.now(dt.timezone.utc)
    rng = random.Random(co.seed + 2)
    div_rule = {i: kind for i, (_n, _s, kind) in enumerate(co.divisions)}
    sales = co.division_index("销售中心")
    dept_rule: dict[int, int] = {}
    for d in co.depts:
        kind = div_rule.get(d.division, "fixed")
        if kind != "fixed":
            dept_rule[d.id] = RULE_BY_KIND[kind]
    emp_rule: dict[int, int] = {}
    for p in co.people:  # a few people on flexible hours by name (an employee entry beats the department)
        if p.division == sales and not p.head_level and rng.random() < 0.01:
            emp_rule[p.id] = RULE_BY_KIND["flexible"]
    for p in co.people:
        p.rule_id = emp_rule.get(p.id) or dept_rule.get(p.dept_id) or 1
        p.rule = RULES[p.rule_id - 1][2]
        p.exempt = p.head_level >= 4 or p.dept_id == 1  # the executives
    ctx.cal_rows = official_overrides(co.start, co.end)
    overrides = {d: k for d, k, _n in ctx.cal_rows}
    ctx.calendar = Calendar(co.start, co.end, overrides, ctx.tz)
    ctx.scan_day = scan_day_of(ctx.calendar, co.end)
    # Five people stop coming in (the seed-004 story): on the scan day itself, 2 days before (the scan
    # escalates: 3rd day), and streaks that are older.
    candidates = [p for p in co.people if not p.head_level and p.status == "active" and p.rule == "fixed"
                  and p.hire_date < co.start and not p.roles and not p.exempt]
    work_days = sorted(d for d, k in ctx.calendar.kind.items() if k == "work" and d <= ctx.scan_day)
    for back, p in zip((0, 2, 5, 12, 25), rng.sample(candidates, min(5, len(candidates)))):
        if back < len(work_days):
            p.vanish_date = work_days[-1 - back]

    loader.load("attendance_rules", ["id", "name", "kind", "is_default", "start_minute", "end_minute",
                                     "grace_minutes", "early_grace_minutes", "break_start_minute", "break_minutes",
                                     "restrict_place", "ip_ranges", "allow_outside", "correctable",
                                     "corrections_per_month", "correction_deadline_day", "created_at",
                                     "updated_at"],
                [(*r, IP_RANGES if r[10] else "", True, "missing,absent,late,early", 3, 5, now, now)
                 for r in RULES])
    members = [(i + 1, rule, did, None) for i, (did, rule) in enumerate(sorted(dept_rule.items()))]
    members += [(len(members) + i + 1, rule, None, eid) for i, (eid, rule) in enumerate(sorted(emp_rule.items()))]
    loader.load("attendance_rule_members", ["id", "rule_id", "department_id", "employee_id"], members)
    loader.load("attendance_shifts", ["id", "code", "name", "start_minute", "end_minute", "grace_minutes",
                                      "early_grace_minutes", "break_start_minute", "break_minutes"], SHIFTS)
    loader.load("attendance_calendar", ["id", "day", "kind", "name", "source"],
                [(i + 1, d, k, n[:80], "import") for i, (d, k, n) in enumerate(ctx.cal_rows)])
    loader.load("attendance_settings", ["id", "geofence_enabled", "escalate_after_days", "late_count_threshold",
                                        "late_rise_threshold", "alert_channels", "escalation_channels"],
                [(1, False, THRESHOLDS["escalate"], THRESHOLDS["late_count"], THRESHOLDS["late_rise"],
                  "inapp,email", "inapp,email,sms")])
    loader.load("attendance_sites", ["id", "name", "latitude", "longitude", "radius_m", "active"],
                [(1, "上海总部", 31.2304, 121.4737, 300, True), (2, "苏州工厂", 31.2989, 120.5853, 500, True)])
    loader.load("attendance_exemptions", ["id", "employee_id", "reason", "created_at"],
                [(i + 1, p.id, "高管免打卡", now) for i, p in enumerate(x for x in co.people if x.exempt)])


# ---------------------------------------------------------------- history

class Ids:
    """Row ids in a fixed block per employee (sparse, but the same whatever ``--jobs`` is)."""

    def __init__(self, n_days: int):
        self.size = {"attendance_punches": 4 * n_days + 8, "attendance_days": n_days + 1,
                     "attendance_leaves": 40, "attendance_corrections": n_days + 1,
                     "attendance_anomalies": 2 * n_days + 40, "attendance_shift_assignments": n_days + 20}
        self.next: dict[str, int] = {}
        self.limit: dict[str, int] = {}

    def employee(self, emp_id: int) -> None:
        self.next = {t: (emp_id - 1) * n for t, n in self.size.items()}
        self.limit = {t: emp_id * n for t, n in self.size.items()}

    def __call__(self, table: str) -> int:
        v = self.next[table] + 1
        if v > self.limit[table]:
            raise OverflowError(f"id block of {table} exhausted")
        self.next[table] = v
        return v


STREAMS = {"attendance_punches": PUNCH_COLS, "attendance_days": DAY_COLS, "attendance_leaves": LEAVE_COLS,
           "attendance_corrections": CORR_COLS, "attendance_anomalies": ANOMALY_COLS,
           "attendance_shift_assignments": ASSIGN_COLS}  # punches before corrections (punch_id)


def load_history(ctx) -> None:
    """Generate and stream the history; ``--jobs N`` splits the employees over N forked processes, each
    with its own COPY connections (same rows, same ids)."""
    jobs = max(1, getattr(ctx.args, "jobs", 1)) if ctx.loader.copy else 1
    people = ctx.company.people
    t0 = time.perf_counter()
    with ctx.loader.bulk_mode(BIG_TABLES) as bulk:
        if jobs == 1:
            stats = _generate(ctx, people, ctx.loader, "")
        else:
            stats = _in_processes(ctx, people, jobs)
    wall = time.perf_counter() - t0 - sum(bulk.values())
    from bench.common import TableStats
    for table in STREAMS:
        parts = [s for s in stats if s.table == table]
        ctx.loader.stats.append(TableStats(table, sum(s.rows for s in parts), max(s.seconds for s in parts),
                                           sum(s.write_seconds for s in parts)))
    ctx.report["bulk_mode"] = bulk
    ctx.report["history_jobs"] = jobs
    ctx.report["history_generation_s"] = round(wall, 1)
    ctx.loader.reset_sequences(TABLES)


def _in_processes(ctx, people, jobs):
    import multiprocessing as mp
    import os
    import pickle
    mp_ctx = mp.get_context("fork")
    queue = mp_ctx.Queue()
    chunk = -(-len(people) // jobs)

    def child(k, part):
        code = 0
        try:
            from portal.core.db import db
            if db.engine is not None:
                db.engine.dispose(close=False)  # the parent's pooled connections are not ours
            from bench.common import Loader
            loader = Loader(ctx.url)
            stats = _generate(ctx, part, loader, f"[job {k}] ")
            loader.close()
            queue.put(pickle.dumps(stats))
        except BaseException as exc:  # noqa: BLE001 - report, then exit non-zero
            log(f"[job {k}] failed: {exc!r}")
            queue.put(pickle.dumps(exc))
            code = 1
        finally:
            queue.close()
            queue.join_thread()  # flush the result before the hard exit
            os._exit(code)

    procs = [mp_ctx.Process(target=child, args=(k, people[k * chunk:(k + 1) * chunk])) for k in range(jobs)]
    for pr in procs:
        pr.start()
    results = [pickle.loads(queue.get()) for _ in procs]
    for pr in procs:
        pr.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors or any(pr.exitcode for pr in procs):
        raise RuntimeError(f"history generation failed: {errors}")
    return [s for r in results for s in r]


def _generate(ctx, people, loader, prefix: str):
    from portal.attendance import engine
    co, cal, scan_day = ctx.company, ctx.calendar, ctx.scan_day
    day_list = list(_days(co.start, co.end))
    ids = Ids(len(day_list))
    t0 = time.perf_counter()
    PunchIn, evaluate, leave_cover, leave_half_days = (engine.PunchIn, engine.evaluate, engine.leave_cover,
                                                       engine.leave_half_days)
    hr_users = co.hr_user_ids or [None]
    sales = co.division_index("销售中心")

    def user_of(emp_id):
        return co.person(emp_id).user_id if emp_id else None

    n0 = len(loader.stats)
    with loader.streams(STREAMS) as out:
        w_punch, w_day = out["attendance_punches"].write, out["attendance_days"].write
        w_leave, w_corr = out["attendance_leaves"].write, out["attendance_corrections"].write
        w_anom, w_assign = out["attendance_anomalies"].write, out["attendance_shift_assignments"].write
        for n_done, p in enumerate(people):
            if n_done % 1000 == 0 and n_done:
                el = time.perf_counter() - t0
                log(f"  {prefix}attendance history: {n_done:,}/{len(people):,} employees, "
                    f"{out['attendance_punches'].stats.rows:,} punches, {el:.0f} s")
            if p.exempt:
                continue
            ids.employee(p.id)
            rng = random.Random(co.seed * 1_000_003 + p.id)
            lo = max(co.start, p.hire_date)
            hi = min(co.end, p.exit_date) if p.exit_date else co.end
            if hi < lo:
                continue
            manager_user = user_of(p.manager_id)
            r = rng.random()
            p_late = next(pl for share, pl in _cumulative(LATE_CLASSES) if r < share)
            p_outside = 0.04 if p.division == sales else 0.004
            flexible = p.rule == "flexible"
            grace = dt.timedelta(minutes=RULES[p.rule_id - 1][6])
            method_in = "ip" if RULES[p.rule_id - 1][10] else "any"
            sources = ("web", "mobile") if p.user_id else ("kiosk",)

            # shift schedule (published two weeks ahead)
            if p.rule == "shift":
                for d in _days(lo, (co.end if not p.exit_date else hi) + dt.timedelta(days=14)):
                    code = _shift_code(p, d)
                    if code and cal.kind.get(d) != "holiday":
                        w_assign((ids("attendance_shift_assignments"), p.id, d, "DMN".index(code) + 1))

            # leave requests (no overlaps), coverage of the approved ones
            cover: dict[dt.date, str] = {}
            taken: set[dt.date] = set()
            leave_hi = hi if p.exit_date else hi + dt.timedelta(days=20)
            for kind, counts_choice, (lmin, lmax) in LEAVE_PLAN:
                for _ in range(rng.choice(counts_choice)):
                    span = (leave_hi - lo).days
                    if span < 2:
                        break
                    s = lo + dt.timedelta(days=rng.randint(0, span))
                    length = rng.randint(lmin, lmax)
                    e = s + dt.timedelta(days=length - 1)
                    sh, eh = "am", "pm"
                    if length == 1 and rng.random() < 0.25:
                        sh = eh = rng.choice(("am", "pm"))
                    rng_days = list(_days(s, e))
                    if taken.intersection(rng_days):
                        continue
                    taken.update(rng_days)
                    created = cal.local(s - dt.timedelta(days=rng.randint(1, 20)), 10 * 60 + rng.random() * 300)
                    u = rng.random()
                    status = "approved" if u < 0.9 else ("rejected" if u < 0.95 else "cancelled")
                    if s > co.end - dt.timedelta(days=5) and rng.random() < 0.5:
                        status = "pending"
                    decided = created + dt.timedelta(hours=rng.randint(1, 30)) if status in ("approved",
                                                                                              "rejected") else None
                    w_leave((ids("attendance_leaves"), p.id, kind, s, sh, e, eh, leave_half_days(s, sh, e, eh),
                             LEAVE_REASONS[kind], status, manager_user if decided else None, decided, "",
                             created, decided or created))
                    if status == "approved":
                        for d in rng_days:
                            c = leave_cover(d, s, sh, e, eh)
                            if c:
                                cover[d] = c

            rows: list[tuple[dt.date, str, bool]] = []  # (day, status, late) of closed days, for anomalies
            for d in day_list:
                if d < lo or d > hi:
                    continue
                kind = cal.kind[d]
                sched = None
                if p.rule == "shift":
                    if kind != "holiday":
                        code = _shift_code(p, d)
                        if code:
                            kind, sched = "work", cal.shift(code, d)
                        else:
                            kind = "rest"
                elif p.rule == "fixed" and kind == "work":
                    sched = cal.fixed[d]
                vanished = p.vanish_date is not None and d >= p.vanish_date
                punches: list[tuple] = []  # (at, kind, source, method, note, created_by)
                if kind != "work":
                    if (kind == "rest" and p.rule == "fixed" and not vanished
                            and rng.random() < P_REST_OVERTIME):
                        a = cal.local(d, 9 * 60 + 60 * rng.random() * 2)
                        b = a + dt.timedelta(minutes=240 + 240 * rng.random())
                        src = rng.choice(sources)
                        punches = [(a, "in", src, method_in, "", p.user_id), (b, "out", src, method_in, "", p.user_id)]
                    else:
                        continue
                else:
                    leave = cover.get(d, "")
                    if not (vanished or leave == "full" or (not leave and rng.random() < P_ABSENT)):
                        punches = _work_punches(rng, cal, d, sched, leave, flexible, grace, p_late, p_outside,
                                                method_in, sources, p.user_id)
                if kind != "work":
                    leave = ""
                res = evaluate(kind, [PunchIn(a, k, m == "outside") for a, k, _s, m, _n, _c in punches], sched,
                               leave, flexible)
                corr = None
                if res.status == "missing" and d < co.end - dt.timedelta(days=1) and rng.random() < P_CORRECTED:
                    have = punches[0]
                    if have[1] == "in":
                        ref = sched.end if sched else cal.local(d, 18 * 60)
                        at = max(have[0] + dt.timedelta(hours=8), ref + dt.timedelta(minutes=rng.randint(1, 30)))
                        ck = "out"
                    else:
                        ref = sched.start if sched else cal.local(d, 9 * 60)
                        at = min(have[0] - dt.timedelta(hours=8), ref - dt.timedelta(minutes=rng.randint(1, 20)))
                        ck = "in"
                    at = at.replace(second=0, microsecond=0)
                    decided_at = cal.local(d + dt.timedelta(days=1), 10 * 60 + rng.random() * 400)
                    corr = (at, ck, decided_at)
                    punches.append((at, ck, "correction", "correction", "忘记打卡", manager_user))
                    res = evaluate(kind, [PunchIn(a, k, m == "outside") for a, k, _s, m, _n, _c in punches],
                                   sched, leave, flexible)
                punch_ids = []
                for at, k, src, method, note, by in punches:
                    pid = ids("attendance_punches")
                    punch_ids.append(pid)
                    ip = f"10.{p.division + 1}.{p.id % 250}.{1 + p.id % 200}" if method != "outside" else \
                        f"117.{p.id % 200}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                    created = corr[2] if src == "correction" else at
                    w_punch((pid, p.id, at, d, k, src if src != "correction" else "correction", ip, method,
                             None, None, None, None, note, by, created))
                if corr is not None:
                    w_corr((ids("attendance_corrections"), p.id, d, corr[1], corr[0], "忘记打卡", None, "approved",
                            manager_user, corr[2], "", punch_ids[-1], corr[2] - dt.timedelta(hours=2), corr[2]))
                if punches:
                    computed = max(corr[2] if corr else punches[-1][0], max(x[0] for x in punches))
                    w_day((ids("attendance_days"), p.id, d, res.status, res.scheduled_start, res.scheduled_end,
                           res.first_in, res.last_out, res.worked_minutes, res.late_minutes, res.early_minutes,
                           res.leave_half, res.outside, computed))
                elif d < scan_day:  # closed by an earlier scan (or a leave approval)
                    closed_at = cal.local(d + dt.timedelta(days=1), 6 * 60 + rng.random() * 2)
                    if res.status == "leave":
                        w_day((ids("attendance_days"), p.id, d, "leave", res.scheduled_start, res.scheduled_end,
                               None, None, 0, 0, 0, res.leave_half, False, closed_at))
                    else:  # what scan.close_day inserts
                        w_day((ids("attendance_days"), p.id, d, "absent", None, None, None, None, 0, 0, 0, "", False,
                               closed_at))
                else:
                    continue
                if d < scan_day:
                    rows.append((d, res.status if punches else ("leave" if res.status == "leave" else "absent"),
                                 res.late_minutes > 0))
            for a in _anomalies(rows, rng, cal, co, hr_users):
                w_anom((ids("attendance_anomalies"), p.id, *a))
    mine = loader.stats[n0:]
    del loader.stats[n0:]
    return mine


def _cumulative(classes):
    acc = 0.0
    for share, value in classes:
        acc += share
        yield acc, value
    yield 2.0, classes[-1][1]


def _work_punches(rng, cal, d, sched, leave, flexible, grace, p_late, p_outside, method_in, sources, user_id):
    """In/out punches of a working day: on time, late, early, with a missing one, out of the office."""
    if sched is None:  # flexible hours: only presence counts
        start = cal.local(d, 9 * 60 + rng.gauss(30, 40))
        end = start + dt.timedelta(minutes=9 * 60 + rng.gauss(20, 45))
        if leave == "am":
            start = cal.local(d, 13 * 60 + rng.random() * 30)
        elif leave == "pm":
            end = cal.local(d, 12 * 60 + rng.random() * 30)
    else:
        start = sched.midpoint if leave == "am" else sched.start
        end = sched.midpoint if leave == "pm" else sched.end
        if rng.random() < p_late:
            start = start + grace + dt.timedelta(minutes=1 + min(170, rng.expovariate(1 / 14)))
        elif rng.random() < 0.08:
            start = start + grace * rng.random()
        else:
            start = start - dt.timedelta(minutes=45 * rng.random())
        if rng.random() < P_EARLY:
            end = end - dt.timedelta(minutes=1 + min(180, rng.expovariate(1 / 25)))
        else:
            end = end + dt.timedelta(minutes=100 * rng.random())
    start = start.replace(microsecond=0)
    end = end.replace(microsecond=0)
    if end <= start + dt.timedelta(minutes=30):
        end = start + dt.timedelta(minutes=30 + rng.randint(0, 60))
    outside = method_in == "ip" and rng.random() < p_outside
    method = "outside" if outside else method_in
    note = "拜访客户" if outside else ""
    src = "mobile" if outside else rng.choice(sources)  # out of the office: from the phone
    punches = [(start, "in", src, method, note, user_id), (end, "out", src, method, note, user_id)]
    if rng.random() < P_MISSING:
        punches.pop(0 if rng.random() < 0.3 else 1)
    return punches


def _anomalies(rows, rng, cal, co, hr_users):
    """The anomaly rows the daily scans of the closed days raised (scan.absence_streaks / late_flags),
    notified the next morning; most older ones resolved by HR."""
    found = []
    streak, start = 0, None
    for d, status, _late in rows:
        if status == "absent":
            if streak == 0:
                start = d
            streak += 1
            if streak == 1:
                found.append(("absent", start, d, 1, False, ""))
            if streak == THRESHOLDS["escalate"]:
                found.append(("escalation", start, d, streak, True, ""))
        elif status not in ("rest", "holiday"):
            streak = 0
    per_month: dict[dt.date, list[dt.date]] = {}
    for d, _status, late in rows:
        if late:
            per_month.setdefault(d.replace(day=1), []).append(d)
    for month in sorted(per_month):
        prev = (month - dt.timedelta(days=1)).replace(day=1)
        p = len(per_month.get(prev, ()))
        for n, d in enumerate(per_month[month], start=1):
            if n == THRESHOLDS["late_count"] + 1:
                found.append(("late_count", month, d, n, False, str(p)))
            if n - p == THRESHOLDS["late_rise"]:
                found.append(("late_rise", month, d, n, False, str(p)))
    out = []
    for kind, key, detected, days, risk, note in sorted(found, key=lambda f: (f[2], f[0])):
        notified = cal.local(detected + dt.timedelta(days=1), 6 * 60 + rng.random() * 3)
        status, by, at = "open", None, None
        if detected < co.end - dt.timedelta(days=14) and rng.random() < 0.85:
            status, by = "resolved", rng.choice(hr_users)
            at = notified + dt.timedelta(hours=rng.randint(2, 72))
            note = note or "已核实"
        out.append((kind, key, detected, days, risk, status, notified, notified, by, at, note))
    return out


# ---------------------------------------------------------------- checks

def verify(ctx, sample: int = 300) -> dict:
    """Recompute a random sample of summary rows with the module (services.compute_day) and compare."""
    from sqlalchemy import select

    from portal.attendance import services
    from portal.attendance.models import AttendanceDay
    from portal.core.db import db
    from portal.org.models import Employee
    rng = random.Random(ctx.company.seed + 3)
    db.session.rollback()  # a fresh snapshot: the rows were written on other connections
    people = [p for p in ctx.company.people if not p.exempt]
    span = (ctx.company.end - ctx.company.start).days
    checked = mismatched = 0
    examples = []
    far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    for _ in range(sample * 20):
        if checked >= sample:
            break
        p = rng.choice(people)
        day = ctx.company.start + dt.timedelta(days=rng.randint(0, span))
        row = db.session.scalar(select(AttendanceDay).where(AttendanceDay.employee_id == p.id,
                                                            AttendanceDay.work_date == day))
        emp = db.session.get(Employee, p.id)
        if row is None:
            # no row: the module must not want one either (rest day, holiday), on a closed day of employment
            if day < max(p.hire_date, ctx.company.start) or day >= ctx.scan_day or (p.exit_date and day > p.exit_date):
                continue
            res = services.compute_day(emp, day, now=far)
            checked += 1
            if res is not None:
                mismatched += 1
                if len(examples) < 5:
                    examples.append({"employee_id": p.id, "day": day.isoformat(), "stored": "no row",
                                     "module": res.status})
            continue
        res = services.compute_day(emp, row.work_date, now=far)
        checked += 1
        got = (res.status, res.first_in, res.last_out, res.worked_minutes, res.late_minutes, res.early_minutes,
               res.outside) if res else None
        want = (row.status, row.first_in, row.last_out, row.worked_minutes, row.late_minutes, row.early_minutes,
                row.outside)
        if got != want:
            mismatched += 1
            if len(examples) < 5:
                examples.append({"employee_id": row.employee_id, "day": row.work_date.isoformat(),
                                 "stored": str(want), "module": str(got)})
    db.session.rollback()
    return {"checked": checked, "mismatched": mismatched, "examples": examples}


def measure_recompute(ctx, employees: int = 10, days: int = 31) -> dict:
    """The module's own recompute (services.recompute_range) on a sample, rolled back: is it fast enough
    to build the summary of a whole company? Returns employee-days/s and the extrapolated time."""
    from sqlalchemy import select

    from portal.attendance import services
    from portal.core.db import db
    from portal.org.models import Employee
    db.session.rollback()
    end = ctx.scan_day - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days - 1)
    ids = db.session.scalars(select(Employee.id).where(Employee.status == "active").order_by(Employee.id)
                             .offset(100).limit(employees)).all()
    t = time.perf_counter()
    n = services.recompute_range(start, end, ids)
    db.session.flush()
    took = time.perf_counter() - t
    db.session.rollback()
    rate = n / took if took else 0
    total = len(ctx.company.people) * (ctx.company.end - ctx.company.start).days
    return {"employee_days": n, "seconds": round(took, 2), "employee_days_per_s": round(rate),
            "whole_company_estimate_s": round(total / rate) if rate else None}


def load(ctx) -> None:
    load_config(ctx)
    load_history(ctx)
