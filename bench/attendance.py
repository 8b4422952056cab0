"""Attendance at scale: the daily anomaly scan and the hot pages, against a generated company.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench \\
        .venv/bin/python bench/attendance.py [--repeat 20] [--in-place] [--explain-out FILE]

Prints ONE JSON object on stdout (progress on stderr):

* ``scan``: ``scan.scan(day)`` + commit, exactly what ``flask --app wsgi attendance scan --date DAY`` runs,
  for the latest working day of the data, three times: the first run closes the day and raises the
  alerts, the repeats must find nothing new (idempotent). Wall time, SQL statements, time per phase, the
  costliest statements of the first run and EXPLAIN ANALYZE of the main queries (``--explain-out``);
* ``pages``: through the Flask test client inside this process, signed in as the right user (session
  ``_user_id`` = the user's ``session_token``), each request timed and its statements counted with a
  ``before_cursor_execute`` listener: clock-in (20 different employees, each a real first punch of the
  day), the employee's today page, team-today of a team lead (~10 reports) and of a department head
  (~200 in the subtree), the HR attendance list with filters (first page) and the HR anomaly list.
  One warm-up request each, then ``--repeat`` measured ones: p50 / p95.

On PostgreSQL the measurement runs on a scratch copy (``CREATE DATABASE <name>_run TEMPLATE <name>``)
that is dropped at the end, so the generated data stays as it was and the first scan run is a real one
every time. ``--in-place`` measures the database itself (then only its first run closes the day).
No timing here is asserted anywhere: the machine is shared, figures are noisy.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.common import QueryCounter, log, percentiles  # noqa: E402

SCAN_PHASES = ("close_day", "absence_streaks", "late_flags", "_insert_new", "notify_pending")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=None, help="default: $DATABASE_URL")
    ap.add_argument("--repeat", type=int, default=20, help="measured requests per page")
    ap.add_argument("--scan-runs", type=int, default=3)
    ap.add_argument("--day", type=dt.date.fromisoformat, default=None,
                    help="day to scan (default: the latest working day of the data)")
    ap.add_argument("--in-place", action="store_true", help="no scratch copy (PostgreSQL)")
    ap.add_argument("--keep-copy", action="store_true", help="keep the scratch copy for inspection")
    ap.add_argument("--explain-out", type=Path, default=None,
                    help="write EXPLAIN (ANALYZE, BUFFERS) of the scan's main queries to this file")
    ap.add_argument("--profile-out", type=Path, default=None,
                    help="run the first scan under cProfile and write the top functions to this file")
    ap.add_argument("--skip-pages", action="store_true")
    return ap.parse_args(argv)


# ---------------------------------------------------------------- subjects

def find_subjects(day: dt.date) -> dict:
    """The users to sign in as, chosen from the data (not hard-coded ids)."""
    from sqlalchemy import func, select

    from portal.attendance.models import Exemption, RuleMember
    from portal.core.db import db
    from portal.core.models import Role, User, UserRole
    from portal.org.models import Department, Employee

    roles_of: dict[int, set[str]] = {}
    for uid, code in db.session.execute(select(UserRole.user_id, Role.code).join(Role, Role.id == UserRole.role_id)):
        roles_of.setdefault(uid, set()).add(code)
    users = db.session.execute(select(User.id, User.employee_id, Employee.department_id, Employee.status)
                               .join(Employee, Employee.id == User.employee_id)
                               .where(User.active.is_(True)).order_by(User.id)).all()
    ruled_depts = set(db.session.scalars(select(RuleMember.department_id).where(RuleMember.department_id.is_not(None))))
    ruled_emps = set(db.session.scalars(select(RuleMember.employee_id).where(RuleMember.employee_id.is_not(None))))
    exempt = set(db.session.scalars(select(Exemption.employee_id)))
    # plain employees on the default rule (IP-restricted: the place check runs) first, others if too few
    clockers = [u for u in users if roles_of.get(u.id) == {"employee"} and u.status == "active"
                and u.department_id not in ruled_depts and u.employee_id not in ruled_emps
                and u.employee_id not in exempt]
    clockers += [u for u in users if u not in clockers and u.status == "active" and u.employee_id not in exempt]
    # Team sizes as the team page counts them: direct reports + people in the headed subtrees.
    depts = db.session.execute(select(Department.id, Department.parent_id, Department.head_id)).all()
    children: dict = {}
    for did, parent, _h in depts:
        children.setdefault(parent, []).append(did)
    emps = db.session.execute(select(Employee.id, Employee.department_id, Employee.manager_id)
                              .where(Employee.status.in_(("active", "notice")))).all()
    per_dept: dict = {}
    direct: dict = {}
    for eid, did, mid in emps:
        per_dept.setdefault(did, set()).add(eid)
        direct.setdefault(mid, set()).add(eid)

    def subtree(did):
        out, stack = set(), [did]
        while stack:
            x = stack.pop()
            out.add(x)
            stack.extend(children.get(x, []))
        return out

    team_size = {}
    for did, _parent, head in depts:
        if head is None:
            continue
        members = set(direct.get(head, set()))
        for x in subtree(did):
            members |= per_dept.get(x, set())
        members.discard(head)
        team_size[head] = max(team_size.get(head, 0), len(members))
    managers = [(u, team_size[u.employee_id]) for u in users
                if "manager" in roles_of.get(u.id, set()) and u.employee_id in team_size
                and "hr" not in roles_of.get(u.id, set())]
    lead = min(managers, key=lambda m: (abs(m[1] - 10), m[0].id))
    head = min(managers, key=lambda m: (abs(m[1] - 200), m[0].id))
    hr = next(u for u in users if "hr" in roles_of.get(u.id, set()))
    head_dept = db.session.scalar(select(Department.id).where(Department.head_id == head[0].employee_id)
                                  .order_by(Department.id).limit(1))
    n_emp = db.session.scalar(select(func.count()).select_from(Employee))
    return {"clockers": [u.id for u in clockers], "lead": (lead[0].id, lead[1]), "head": (head[0].id, head[1]),
            "head_dept": head_dept, "hr": hr.id, "employees": n_emp}


def latest_working_day() -> dt.date:
    from sqlalchemy import func, select

    from portal.attendance import engine, services
    from portal.attendance.models import Punch
    from portal.core.db import db
    d = db.session.scalar(select(func.max(Punch.work_date)).where(Punch.work_date < services.today()))
    if d is None:
        raise SystemExit("no punches: run bench/generate.py first")
    cal = services.overrides(d - dt.timedelta(days=30), d)
    while engine.day_kind(d, cal)[0] != "work":
        d -= dt.timedelta(days=1)
    return d


def table_rows() -> dict:
    from sqlalchemy import text

    from portal.core.db import db
    rows = {}
    for t in ("employees", "users", "departments", "attendance_punches", "attendance_days", "attendance_leaves",
              "attendance_anomalies", "attendance_shift_assignments"):
        rows[t] = db.session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar()
    return rows


# ---------------------------------------------------------------- the scan

class PhaseTimer:
    """Wrap the scan's steps (module globals that scan.scan() looks up at call time) to time them."""

    def __init__(self):
        from portal.attendance import scan
        self.scan = scan
        self.saved = {}
        self.laps: dict[str, float] = {}

    def __enter__(self):
        for name in SCAN_PHASES:
            fn = getattr(self.scan, name)
            self.saved[name] = fn

            @functools.wraps(fn)
            def timed(*a, _fn=fn, _name=name, **kw):
                t = time.perf_counter()
                try:
                    return _fn(*a, **kw)
                finally:
                    self.laps[_name] = self.laps.get(_name, 0.0) + time.perf_counter() - t
            setattr(self.scan, name, timed)
        return self

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(self.scan, name, fn)
        return False


def _shape(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def run_scan(day: dt.date, capture: bool, profile: Path | None = None) -> dict:
    """What `flask --app wsgi attendance scan --date DAY` does: scan.scan(day), then commit."""
    from sqlalchemy import func, select

    from portal.attendance import scan
    from portal.attendance.models import AttendanceDay
    from portal.core.db import db
    before = db.session.scalar(select(func.count()).select_from(AttendanceDay).where(AttendanceDay.work_date == day))
    db.session.commit()
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
    with QueryCounter(db.engine, capture=capture) as qc, PhaseTimer() as phases:
        if prof:
            prof.enable()
        t = time.perf_counter()
        res = scan.scan(day)
        t_commit = time.perf_counter()
        db.session.commit()
        took = time.perf_counter() - t
        commit_s = time.perf_counter() - t_commit
        if prof:
            prof.disable()
    after = db.session.scalar(select(func.count()).select_from(AttendanceDay).where(AttendanceDay.work_date == day))
    db.session.commit()
    out = {"seconds": round(took, 3), "statements": qc.count,
           "day_rows_before_after": [before, after], "closed_counted": after - before,
           "result": {"closed": res.closed, "absent_alerts": res.absent_alerts, "escalations": res.escalations,
                      "late_flags": res.late_flags, "messages": res.notified, "new_anomalies": len(res.new_ids)},
           "phases_s": {k: round(v, 3) for k, v in phases.laps.items()}}
    out["phases_s"]["commit"] = round(commit_s, 3)
    out["phases_s"]["other"] = round(took - sum(out["phases_s"].values()), 3)
    if prof:
        out["profile"] = _profile_summary(prof, profile, took)
    if capture:
        groups: dict[str, dict] = {}
        for s in qc.statements:
            g = groups.setdefault(_shape(s["sql"]), {"calls": 0, "ms": 0.0, "example": s})
            g["calls"] += 1
            g["ms"] += s["ms"]
        top = sorted(groups.items(), key=lambda kv: -kv[1]["ms"])[:8]
        out["costliest_statements"] = [{"sql": sql[:220], "calls": g["calls"], "total_ms": round(g["ms"], 1)}
                                       for sql, g in top]
        out["_captured"] = groups
    return out


def _profile_summary(prof, path: Path, wall: float) -> dict:
    """Write the cProfile report (cumulative and own time) and return the portal functions that cost most."""
    import io
    import pstats
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("cumulative").print_stats(45)
    st.sort_stats("tottime").print_stats(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue())
    rows = []
    for (file, line, fn), (_cc, ncalls, _tt, ct, _callers) in st.stats.items():
        if "/portal/" in file and ct > 0.05 * wall:
            rows.append({"function": f"{file.split('/portal/')[-1]}:{line}({fn})", "calls": ncalls,
                         "cumulative_s": round(ct, 3)})
    rows.sort(key=lambda r: -r["cumulative_s"])
    return {"file": str(path), "wall_s_under_profiler": round(wall, 3), "portal_functions": rows[:15]}


MAIN_QUERY_MARKS = ("INSERT INTO attendance_days", "FROM attendance_days", "FROM attendance_anomalies")


def explain_main_queries(groups: dict, url: str) -> tuple[list[dict], str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the scan's set-based queries (after the runs: the plans are the
    same, close_day then finds nothing left to insert)."""
    chosen = [(sql, g) for sql, g in groups.items() if any(m in sql for m in MAIN_QUERY_MARKS)
              and not sql.startswith(("UPDATE", "DELETE"))]
    chosen.sort(key=lambda kv: -kv[1]["ms"])
    return explain([(f"scan: {g['calls']} call(s), {g['ms']:.1f} ms in the first run", sql, g["example"],
                     {"calls_in_first_run": g["calls"], "first_run_total_ms": round(g["ms"], 1)})
                    for sql, g in chosen[:6]], url)


def explain(entries, url: str) -> tuple[list[dict], str]:
    """Run EXPLAIN (ANALYZE, BUFFERS) for captured statements, each in a transaction that is rolled back.
    ``entries``: (label, shaped sql, captured statement, extra summary fields)."""
    if not common.is_postgres(url):
        return [], ""
    from portal.core.db import db
    summaries, text_out = [], []
    raw = db.engine.raw_connection()
    try:
        cur = raw.driver_connection.cursor()
        for label, sql, ex, extra in entries:
            params = ex["params"][0] if ex["executemany"] else ex["params"]
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + ex["sql"], params)
            plan = [r[0] for r in cur.fetchall()]
            raw.driver_connection.rollback()
            exec_ms = next((float(re.findall(r"[\d.]+", line)[0]) for line in plan
                            if line.startswith("Execution Time")), None)
            summaries.append({"sql": sql[:160], **extra, "explain_execution_ms": exec_ms,
                              "plan_top": plan[0].strip()[:160]})
            text_out.append(f"-- {label}\n{ex['sql']}\n-- params: {params}\n" + "\n".join(plan) + "\n")
    finally:
        raw.close()
    return summaries, "\n".join(text_out)


# ---------------------------------------------------------------- pages

CSRF_RE = (re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"'),
           re.compile(r'"X-CSRFToken": "([^"]+)"'))


def _client(app, user_id: int):
    from portal.core.db import db
    from portal.core.models import User
    with app.app_context():
        token = db.session.get(User, user_id).session_token
    c = app.test_client()
    with c.session_transaction() as sess:
        sess["_user_id"] = token
        sess["_fresh"] = True
    return c


def _csrf(client) -> str:
    html = client.get("/attendance", environ_base={"REMOTE_ADDR": "10.1.2.3"}).get_data(as_text=True)
    for rx in CSRF_RE:
        m = rx.search(html)
        if m:
            return m.group(1)
    raise RuntimeError("no CSRF token on /attendance")


def _timed(engine, fn):
    with QueryCounter(engine) as qc:
        t = time.perf_counter()
        resp = fn()
        took = (time.perf_counter() - t) * 1000
    return resp, took, qc.count


def measure_page(app, engine, user_id: int, path: str, repeat: int, expect: int = 200) -> dict:
    """GET ``path`` as ``user_id``: one warm-up, then ``repeat`` timed requests. Runs with no app context
    pushed, as in production: each request gets its own context, ``g`` and session."""
    c = _client(app, user_id)
    resp = c.get(path)
    if resp.status_code != expect:
        raise RuntimeError(f"{path}: HTTP {resp.status_code}")
    times, counts = [], []
    for _ in range(repeat):
        resp, took, n = _timed(engine, lambda: c.get(path))
        if resp.status_code != expect:
            raise RuntimeError(f"{path}: HTTP {resp.status_code}")
        times.append(took)
        counts.append(n)
    with QueryCounter(engine, capture=True) as qc:  # one more, to name the page's costliest statements
        c.get(path)
    slow = sorted((st for st in qc.statements if _shape(st["sql"]).startswith("SELECT")), key=lambda st: -st["ms"])
    PAGE_STATEMENTS.extend((path, st) for st in slow[:2])
    return {"path": path, "statements": _counts(counts), "bytes": len(resp.get_data()), **percentiles(times),
            "slowest_statement_ms": round(slow[0]["ms"], 1) if slow else None}


PAGE_STATEMENTS: list = []  # (path, captured statement): explained at the end with --explain-out


def measure_clock_in(app, engine, user_ids: list[int], repeat: int) -> dict:
    """POST /attendance/clock (kind=in) by ``repeat`` different employees (+1 warm-up): each one is a real
    first punch of the day (lock, dedupe check, rule, place check from the intranet address, insert,
    audit event, summary recompute, commit), not the 60-second duplicate shortcut."""
    if len(user_ids) < 2:
        raise RuntimeError("no employees with an account to clock in")
    repeat = min(repeat, len(user_ids) - 1)
    times, counts = [], []
    for i, uid in enumerate(user_ids[:repeat + 1]):
        c = _client(app, uid)
        token = _csrf(c)
        resp, took, n = _timed(engine, lambda: c.post("/attendance/clock", data={"csrf_token": token, "kind": "in"},
                                                      environ_base={"REMOTE_ADDR": "10.1.2.3"}))
        if resp.status_code != 303:
            raise RuntimeError(f"clock-in: HTTP {resp.status_code}")
        if i:
            times.append(took)
            counts.append(n)
    return {"path": "POST /attendance/clock", "statements": _counts(counts), **percentiles(times)}


def _counts(counts: list[int]) -> dict | int:
    return counts[0] if len(set(counts)) == 1 else {"min": min(counts), "max": max(counts)}


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    url = common.database_url(args.database_url)
    result: dict = {"database": common.bench_name(url), "machine_before": common.machine()}
    run_url = url
    if common.is_postgres(url) and not args.in_place:
        t = time.perf_counter()
        log("copying the database (CREATE DATABASE ... TEMPLATE) ...")
        run_url = common.clone_database(url)
        result["scratch_copy"] = {"database": common.bench_name(run_url),
                                  "seconds": round(time.perf_counter() - t, 1)}
    try:
        app = common.make_app(run_url)
        from portal.core.db import db
        with app.app_context():
            result["rows"] = table_rows()
            day = args.day or latest_working_day()
            subjects = find_subjects(day)
        result["scan_day"] = day.isoformat()

        runs = []
        for i in range(args.scan_runs):
            log(f"scan {day} run {i + 1} ...")
            with app.app_context():
                runs.append(run_scan(day, capture=(i == 0), profile=args.profile_out if i == 0 else None))
            log(f"  {runs[-1]['seconds']} s, {runs[-1]['statements']} statements, {runs[-1]['result']}")
        groups = runs[0].pop("_captured", {})
        scan_out = {"command": f"flask --app wsgi attendance scan --date {day}", "runs": runs}
        with app.app_context():
            explained, plans = explain_main_queries(groups, run_url)
        scan_out["explain"] = explained
        if args.explain_out:
            args.explain_out.parent.mkdir(parents=True, exist_ok=True)
            args.explain_out.write_text(plans)
            scan_out["explain_file"] = str(args.explain_out)
        result["scan"] = scan_out

        if not args.skip_pages:
            engine = db.engine
            pages = {}
            log("clock-in ...")
            pages["clock_in"] = measure_clock_in(app, engine, subjects["clockers"], args.repeat)
            today_user = subjects["clockers"][1]
            log("pages ...")
            pages["employee_today"] = measure_page(app, engine, today_user, "/attendance", args.repeat)
            lead_id, lead_n = subjects["lead"]
            pages["team_today_lead"] = measure_page(app, engine, lead_id, "/attendance/team", args.repeat)
            pages["team_today_lead"]["team_size"] = lead_n
            head_id, head_n = subjects["head"]
            pages["team_today_head"] = measure_page(app, engine, head_id, "/attendance/team", args.repeat)
            pages["team_today_head"]["team_size"] = head_n
            month = day.replace(day=1)
            filtered = (f"/attendance/hr?start={month}&end={day}&department={subjects['head_dept']}"
                        f"&status=late")
            pages["hr_list_filtered"] = measure_page(app, engine, subjects["hr"], filtered, args.repeat)
            pages["hr_list_month_all"] = measure_page(app, engine, subjects["hr"],
                                                      f"/attendance/hr?start={month}&end={day}", args.repeat)
            pages["hr_anomalies"] = measure_page(app, engine, subjects["hr"], "/attendance/anomalies", args.repeat)
            result["pages"] = pages
            if args.explain_out:
                with app.app_context():
                    page_plans, page_text = explain(
                        [(f"page {path}: {st['ms']:.1f} ms", _shape(st["sql"]), st, {"page": path})
                         for path, st in PAGE_STATEMENTS], run_url)
                result["pages_explain"] = page_plans
                with args.explain_out.open("a") as fh:
                    fh.write("\n" + page_text)
        result["machine_after"] = common.machine()
        db.engine.dispose()
    finally:
        _clear_bench_queues()
        if run_url != url and not args.keep_copy:
            common.drop_database(run_url)
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def _clear_bench_queues() -> None:
    """Delivery jobs the scan queued went to the benchmark's own Redis database: empty its queues."""
    try:
        from rq import Queue

        from portal.core import jobs
        conn = jobs.get_redis(common.BENCH_REDIS_URL)
        for name in jobs.QUEUES:
            Queue(name, connection=conn).empty()
    except Exception as exc:  # Redis down: nothing was queued either
        log(f"(bench Redis queues not emptied: {exc})")


if __name__ == "__main__":
    sys.exit(main())
