"""OKRs and performance reviews (stories 1 and 3)."""
from flask import Blueprint

bp = Blueprint("performance", __name__)


def init_app(app) -> None:
    import click

    from portal.core import jobs

    # Settings PERF_WARN_MONTHS / _THRESHOLD / _DROP are read in portal/config.py.
    jobs.register_periodic(jobs.Periodic("perf.early_warning", "portal.performance.jobs.early_warning",
                                         at="02:30"))
    jobs.register_periodic(jobs.Periodic("perf.checkin_reminders",
                                         "portal.performance.jobs.checkin_reminders", at="08:00"))

    @click.group("perf", help="OKRs and performance reviews.")
    def perf():
        pass

    @perf.command("warnings", help="Raise early warnings for a month (default: the last finished one).")
    @click.option("--month", default=None, help="YYYY-MM")
    def warnings_cmd(month):
        import datetime as dt
        from portal.performance import jobs as perf_jobs
        d = dt.datetime.strptime(month, "%Y-%m").date() if month else None
        click.echo(f"{perf_jobs.early_warning(d)} warning(s) raised")

    @perf.command("reminders", help="Schedule the check-in reminders of the current period (monthly, "
                                    "biweekly or weekly, per cycle).")
    def reminders_cmd():
        from portal.performance import jobs as perf_jobs
        click.echo(f"{perf_jobs.checkin_reminders()} reminder(s) scheduled")

    app.cli.add_command(perf)


from portal.performance import views, views_reviews  # noqa: E402,F401
