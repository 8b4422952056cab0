"""Build a benchmark company in a portal_bench* database.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench \\
        .venv/bin/python bench/generate.py --employees 10000 --days 365 --seed 1 [--reset]

* creates the database when missing (only names starting with ``portal_bench``), ``--reset`` drops it
  first; the schema comes from ``alembic upgrade heads`` (the migrations, never ``create_all``);
* fills it step by step (``STEPS``: each module adds its own step module under ``bench/datagen/``);
  PostgreSQL gets binary COPY streams, SQLite batched executemany (keep SQLite small);
* deterministic for a given ``--seed``, ``--employees``, ``--days`` and ``--end`` (default: yesterday in
  the company time zone), except password salts and session tokens, which are random on purpose;
* prints rows/s per table, then checks a sample of summary rows against the module's own computation.

Steps (``STEPS``, each in ``bench/datagen/<module>.py`` with its volumes in the module docstring): org,
attendance, okr (two quarterly cycles, weekly check-ins, monthly completion, early warnings), training
(courses, versions, banks, assignments, enrollments, attempts, signed acknowledgements, reminders),
offboarding (clients and orders, checklist templates, offboardings in every stage and completed ones),
notify (the outbox / inbox those events produced, formal notices), audit (the audit events of the
signatures, sealed by the portal's ``audit.seal``). Each new step has a ``verify`` (skipped with
``--skip-verify``) that recomputes a sample with the module's own services; the last one runs
``audit.verify`` and checks sampled signatures.

Representative accounts for measuring (password ``bench-Passw0rd``): ``bench.datagen.representative_accounts
(engine)`` returns role -> username, chosen by SQL (``bench.datagen.REPRESENTATIVE_SQL``):

* employee: only the employee role, an open course enrollment, the most key results in the open OKR cycle,
  then the most unread in-app messages;
* manager: the manager (not HR/admin) with the most direct reports;
* hr / offboarding_hr: the HR accounts with the most in-app messages / offboarding messages;
* trainer, admin: the first account with that role (the training step makes two trainers);
* leaver: the employee of an offboarding at the handover stage with the most open items;
* sales: the account owning the most clients.

The generator's "now" is midnight (company time) after ``--end``: nothing is dated later, and the same
arguments give the same rows.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.common import log  # noqa: E402


@dataclass
class Context:
    args: argparse.Namespace
    url: str
    loader: common.Loader
    tz: ZoneInfo
    company: Any = None
    report: dict = field(default_factory=dict)
    # steps hand further values on as attributes (ctx.calendar, ctx.scan_day ...)


def step_org(ctx: Context) -> None:
    from bench.datagen import org
    ctx.company = org.build(ctx.args.employees, ctx.args.seed, ctx.args.start, ctx.args.end,
                            ctx.args.user_share)
    org.load(ctx)


def step_attendance(ctx: Context) -> None:
    from bench.datagen import attendance
    attendance.load(ctx)


def _evidence(ctx: Context):
    """Signatures and their audit events, shared by the steps that sign (written at the end)."""
    if getattr(ctx, "evidence", None) is None:
        from bench.datagen import Evidence
        ctx.evidence = Evidence(ctx.loader)
    return ctx.evidence


def step_okr(ctx: Context) -> None:
    from bench.datagen import okr
    okr.load(ctx)


def step_training(ctx: Context) -> None:
    from bench.datagen import training
    _evidence(ctx)
    training.load(ctx)


def step_offboarding(ctx: Context) -> None:
    from bench.datagen import offboarding
    _evidence(ctx)
    offboarding.load(ctx)


def step_notify(ctx: Context) -> None:
    from bench.datagen import notify
    notify.load(ctx)


def step_audit(ctx: Context) -> None:
    """The audit events of the signatures made above, written in time order and sealed by the portal."""
    ctx.report["audit"] = _evidence(ctx).flush()


# In order; each module's generator lives in bench/datagen/<module>.py.
STEPS: list[tuple[str, Callable[[Context], None]]] = [
    ("org", step_org),
    ("attendance", step_attendance),
    ("okr", step_okr),
    ("training", step_training),
    ("offboarding", step_offboarding),
    ("notify", step_notify),
    ("audit", step_audit),
]

# (step, module under bench/datagen) whose verify(ctx) checks a sample against the module's own code
VERIFY = [("okr", "okr"), ("training", "training"), ("offboarding", "offboarding"), ("notify", "notify"),
          ("audit", "notify")]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--employees", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365, help="days of history, ending at --end")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--end", type=dt.date.fromisoformat, default=None,
                    help="last day of history (default: yesterday in the company time zone)")
    ap.add_argument("--user-share", type=float, default=0.05,
                    help="share of ordinary employees with an account (managers and HR always have one)")
    ap.add_argument("--reset", action="store_true", help="drop and recreate the database first")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes generating the attendance history (same data whatever the number)")
    ap.add_argument("--database-url", default=None, help="default: $DATABASE_URL")
    ap.add_argument("--skip-verify", action="store_true", help="skip the consistency check and the recompute "
                                                               "measurement")
    ap.add_argument("--json", type=Path, default=None, help="also write the report as JSON to this file")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    url = common.database_url(args.database_url)
    if not common.is_postgres(url) and args.employees * args.days > 200 * 400:
        raise SystemExit("SQLite is for small sizes only (e.g. --employees 200 --days 90); use PostgreSQL")
    t_all = time.perf_counter()
    created = common.ensure_database(url, reset=args.reset)
    log(f"database {common.bench_name(url)}: {'created' if created else 'exists'}")
    t = time.perf_counter()
    common.migrate(url)
    log(f"schema: alembic upgrade heads ({time.perf_counter() - t:.1f} s)")

    app = common.make_app(url)
    tz = ZoneInfo(app.config["TIMEZONE"])
    args.end = args.end or (dt.datetime.now(tz).date() - dt.timedelta(days=1))
    args.start = args.end - dt.timedelta(days=args.days - 1)
    loader = common.Loader(url)
    ctx = Context(args, url, loader, tz)
    report: dict[str, Any] = {"database": common.bench_name(url), "employees": args.employees,
                              "days": args.days, "seed": args.seed, "start": args.start.isoformat(),
                              "end": args.end.isoformat(), "machine": common.machine()}
    with app.app_context():
        from sqlalchemy import func, select

        from portal.core.db import db
        from portal.org.models import Employee
        if db.session.scalar(select(func.count()).select_from(Employee)):
            raise SystemExit("the database already holds employees: use --reset to rebuild it")
        db.session.rollback()
        steps = {}
        for name, fn in STEPS:
            t = time.perf_counter()
            log(f"step {name} ...")
            fn(ctx)
            steps[name] = round(time.perf_counter() - t, 1)
            log(f"step {name}: {steps[name]} s")
        analyze_tables = [s.table for s in loader.stats]
        t = time.perf_counter()
        loader.analyze(dict.fromkeys(analyze_tables))
        steps["vacuum_analyze"] = round(time.perf_counter() - t, 1)
        report["steps_s"] = steps
        report.update({k: v for k, v in ctx.report.items() if k not in report})
        report["scan_day"] = getattr(ctx, "scan_day", None) and ctx.scan_day.isoformat()
        merged: dict[str, common.TableStats] = {}  # a table loaded by several steps: summed
        for s in loader.stats:
            m = merged.setdefault(s.table, common.TableStats(s.table))
            m.rows, m.seconds, m.write_seconds = m.rows + s.rows, m.seconds + s.seconds, m.write_seconds + s.write_seconds
        report["tables"] = {s.table: {"rows": s.rows, "wall_s": round(s.seconds, 2), "rows_per_s": round(s.rate),
                                      "driver_s": round(s.write_seconds, 2)} for s in merged.values()}
        total_rows = sum(s.rows for s in loader.stats)
        report["total_rows"] = total_rows
        report["total_s"] = round(time.perf_counter() - t_all, 1)
        print(common.format_stats(loader.stats))
        hist = [s for s in loader.stats if s.table.startswith("attendance_") and s.rows > 1000]
        if hist:
            wall = max(s.seconds for s in hist)
            rows = sum(s.rows for s in hist)
            report["attendance_history"] = {"rows": rows, "wall_s": round(wall, 1), "rows_per_s": round(rows / wall)}
            print(f"attendance history streams together: {rows:,} rows in {wall:.1f} s = {rows / wall:,.0f} rows/s "
                  f"(generation in Python included)")
            bulk = ctx.report.get("bulk_mode") or {}
            if bulk:
                extra = sum(bulk.values())
                report["attendance_history"].update(bulk)
                report["attendance_history"]["rows_per_s_with_rebuild"] = round(rows / (wall + extra))
                print(f"  then index rebuild {bulk.get('index_rebuild_s')} s, foreign-key check "
                      f"{bulk.get('foreign_key_check_s')} s: {rows / (wall + extra):,.0f} rows/s overall")
        print(f"total: {total_rows:,} rows, {report['total_s']} s including schema, VACUUM ANALYZE "
              f"{steps['vacuum_analyze']} s")
        if not args.skip_verify and getattr(ctx, "scan_day", None):
            from bench.datagen import attendance
            t = time.perf_counter()
            report["verify"] = attendance.verify(ctx)
            report["verify"]["seconds"] = round(time.perf_counter() - t, 1)
            print(f"consistency: {report['verify']['mismatched']} of {report['verify']['checked']} sampled summary "
                  f"rows differ from services.compute_day")
            for ex in report["verify"]["examples"]:
                print("   ", ex)
            report["module_recompute"] = attendance.measure_recompute(ctx)
            r = report["module_recompute"]
            print(f"module recompute (services.recompute_range, rolled back): {r['employee_days']} employee-days "
                  f"in {r['seconds']} s = {r['employee_days_per_s']}/s; the whole company would take "
                  f"~{r['whole_company_estimate_s']} s")
        if not args.skip_verify:
            import importlib
            done = {name for name, _fn in STEPS}
            for step, module in VERIFY:
                if step not in done:
                    continue
                mod = importlib.import_module(f"bench.datagen.{module}")
                fn = getattr(mod, "verify_audit" if step == "audit" else "verify")
                t = time.perf_counter()
                res = fn(ctx)
                res["seconds"] = round(time.perf_counter() - t, 1)
                report.setdefault("verify_modules", {})[step] = res
                print(f"verify {step}: {res.get('mismatched', 0)} of {res.get('checked', 0)} sampled rows differ "
                      f"from the module ({', '.join(f'{k}={v}' for k, v in res.items() if k not in ('examples', 'checked', 'mismatched'))})")
                for ex in res.get("examples", []):
                    print("   ", ex)
        from bench.datagen import representative_accounts
        report["representative_accounts"] = representative_accounts(loader.engine)
        print("representative accounts (password bench-Passw0rd):",
              ", ".join(f"{k}={v}" for k, v in report["representative_accounts"].items()))
    loader.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
