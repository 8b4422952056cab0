"""`flask --app wsgi attendance ...`: the daily scan by hand, recomputation, the official calendar."""
from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

attendance_cli = AppGroup("attendance", help="Attendance: anomaly scan, summary recomputation, calendar.")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)")


@attendance_cli.command("scan")
@click.option("--date", "day", required=True, help="the local date to close and scan, YYYY-MM-DD")
def scan_cmd(day: str):
    """Close a day (absences) and raise anomaly alerts. Idempotent."""
    from portal.attendance import scan
    from portal.core.db import db
    res = scan.scan(_date(day))
    db.session.commit()
    click.echo(f"{res.day}: {res.closed} day row(s) closed, {res.absent_alerts} absence alert(s), "
               f"{res.escalations} escalation(s), {res.late_flags} late flag(s), {res.notified} message(s)")


@attendance_cli.command("recompute")
@click.option("--from", "start", required=True)
@click.option("--to", "end", required=True)
def recompute_cmd(start: str, end: str):
    """Recompute the daily summary for a date range (all employees), with progress."""
    from portal.attendance import services
    from portal.core.db import db
    s, e = _date(start), _date(end)
    if e < s:
        raise click.BadParameter("--to is before --from")

    def progress(done, total):
        click.echo(f"  {done}/{total} employees", err=True)
    n = services.recompute_range(s, e, progress=progress)
    db.session.commit()
    click.echo(f"recomputed {n} employee-day(s)")


@attendance_cli.command("import-calendar")
@click.option("--year", type=int, required=True)
def import_calendar_cmd(year: int):
    """Load a year's statutory holidays and make-up working days (chinese_calendar)."""
    from portal.attendance import services
    from portal.core.db import db
    try:
        n = services.import_official_year(year, None)
    except services.AttendanceError:
        raise click.ClickException(f"no official calendar data for {year}")
    db.session.commit()
    click.echo(f"{n} date(s) imported for {year}")
