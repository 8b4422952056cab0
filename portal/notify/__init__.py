"""In-app inbox, channel preferences, the ops page for background jobs, and the `jobs` CLI."""
from flask import Blueprint

bp = Blueprint("notify", __name__)

from portal.notify import views  # noqa: E402,F401


def init_app(app):
    from portal.core import jobs
    from portal.notify.cli import jobs_cli
    app.cli.add_command(jobs_cli)
    jobs.register_periodic(jobs.Periodic("notify.sweep", "portal.core.notify.sweep", every=60))
    jobs.register_periodic(jobs.Periodic("reminders.dispatch", "portal.core.reminders.dispatch", every=60))
    jobs.register_periodic(jobs.Periodic("tasks.sweep", "portal.core.tasks.sweep_queued", every=120))
