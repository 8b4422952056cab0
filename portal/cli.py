"""`flask --app wsgi portal ...`: platform commands. Modules add their own groups in init_app."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from portal.core.db import db

portal_cli = AppGroup("portal", help="Platform commands: demo data, admin account, backups.")


@portal_cli.command("sync-roles")
def sync_roles_cmd():
    """Create the built-in roles and their default permissions (idempotent)."""
    from portal.core.security import sync_roles
    sync_roles()
    db.session.commit()
    click.echo("roles synced")


@portal_cli.command("create-admin")
@click.option("--username", default="admin", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_admin(username: str, password: str):
    """Create an administrator account (roles admin + hr)."""
    from portal.accounts.services import AccountError, create_user
    from portal.core.security import sync_roles
    sync_roles()
    try:
        user, _pw = create_user(username, password, None, ["admin", "employee"])
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(f"cannot create admin: {exc.code}")
    db.session.commit()
    click.echo(f"admin account {user.username} created")


def init_app(app: Flask) -> None:
    app.cli.add_command(portal_cli)
