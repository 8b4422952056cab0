"""Training: trainer-authored courses with versions, exams from a question bank, assignments with due
dates, signed policy acknowledgements, reports (stories 1 and 3 of DOMAIN.md)."""
from flask import Blueprint

bp = Blueprint("training", __name__)

from portal.training import views  # noqa: E402,F401
from portal.training import studio  # noqa: E402,F401


def init_app(app) -> None:
    from portal.core import jobs
    from portal.training.cli import training_cli
    app.cli.add_command(training_cli)
    app.config.setdefault("TRAINING_MAX_ATTACHMENT_BYTES", app.config.get("MAX_CONTENT_LENGTH") or 20 * 1024 * 1024)
    jobs.register_periodic(jobs.Periodic("training.sync_assignments", "portal.training.assign.sync", every=600))
    jobs.register_periodic(jobs.Periodic("training.close_expired", "portal.training.exams.close_expired",
                                         every=60))
