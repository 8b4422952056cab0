"""Attendance: clock in/out, rules and schedules, daily summary, leave, corrections, anomaly scan."""
from flask import Blueprint

bp = Blueprint("attendance", __name__)

from portal.attendance import views  # noqa: E402,F401


def init_app(app) -> None:
    from portal.attendance.cli import attendance_cli
    from portal.core import jobs
    app.cli.add_command(attendance_cli)
    # After each working day: close it and scan for anomalies (also catches up one missed day).
    jobs.register_periodic(jobs.Periodic("attendance.scan", "portal.attendance.scan.daily_job", at="06:00",
                                         timeout=1800))
    # Evening summary of out-of-office clock-ins to each manager.
    jobs.register_periodic(jobs.Periodic("attendance.outside_digest", "portal.attendance.scan.outside_digest_job",
                                         at="20:30"))
