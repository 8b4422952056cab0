"""`flask --app wsgi training ...`: run the training jobs by hand (the clock runs them periodically)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

training_cli = AppGroup("training", help="Training: assignments and exams.")


@training_cli.command("sync")
def sync_cmd():
    """Enroll new members of assigned groups (new hires, transfers). Safe to run twice."""
    from portal.training import assign
    n = assign.sync()
    click.echo(f"{n} enrollment(s) created")


@training_cli.command("close-expired")
def close_expired_cmd():
    """Grade exam attempts whose time limit + 30 s grace has passed, on the answers saved in time."""
    from portal.core.db import db
    from portal.training import exams
    n = exams.close_expired()
    db.session.commit()
    click.echo(f"{n} attempt(s) closed")
