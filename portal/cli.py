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


@portal_cli.command("demo")
def demo_cmd():
    """Load the demo company 星河物流科技有限公司 and one login per role (idempotent)."""
    import os

    from portal import demo
    from portal.core.ui import local_today

    try:
        password = demo.demo_password(os.environ.get("DEMO_PASSWORD"))
    except demo.DemoError as exc:
        raise click.ClickException(f"DEMO_PASSWORD is not accepted by the password policy ({exc})")
    click.secho(f"WARNING: the demo accounts share the password {password!r}. "
                "Use them for demonstrations only, never on a portal with real data.",
                fg="yellow", err=True)
    result = demo.load_demo(password, local_today())
    # Module demo data (each loader is idempotent and needs the demo company above).
    from portal.performance import demo as performance_demo
    perf = performance_demo.load(local_today())
    click.echo(f"performance demo: {perf}")
    if result.changed:
        done = ", ".join(f"{n} {what}" for what, n in result.created.items() if n)
        click.echo(f"demo company {demo.COMPANY} loaded: {done}")
    else:
        click.echo(f"demo company {demo.COMPANY} already loaded: nothing changed")
    width = max(len(login.username) for login in result.logins)
    click.echo(f"{'role':<10} {'username':<{width}} password")
    for login in result.logins:
        shown = login.password if login.password_ok else "(not the demo password: kept as it is)"
        click.echo(f"{login.role:<10} {login.username:<{width}} {shown}")


@portal_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=True, file_okay=True, path_type=str))
@click.option("--force", is_flag=True, help="Replace PATH when it exists.")
def backup_cmd(path: str, force: bool):
    """Back up the database to PATH (a file, or a directory for a dated file), consistent while the
    portal runs: SQLite online backup or pg_dump --format=custom."""
    from flask import current_app

    import portal.models  # noqa: F401  (every mapper configured before an audit row is written)
    from portal.core import audit, backup

    info = backup.backup(current_app.config["DATABASE_URL"], path, force=force,
                         pg_dump=current_app.config["PG_DUMP"])
    audit.record("backup.created", None, {"file": info.path.name, "size": info.size, "sha256": info.sha256,
                                          "kind": info.kind})
    db.session.commit()
    click.echo(f"backup written: {info.path} ({info.size} bytes, sha256 {info.sha256})")


@portal_cli.command("restore")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not run from a terminal).")
def restore_cmd(path: str, yes: bool):
    """Replace the whole database with the backup at PATH, then verify the audit chain."""
    import sys

    from flask import current_app

    import portal.models  # noqa: F401  (every mapper configured before an audit row is written)
    from portal.core import audit, backup

    url = current_app.config["DATABASE_URL"]
    backup.check_restorable(url, path)
    if not yes:
        if not sys.stdin.isatty():
            raise click.ClickException("restore replaces every row of the database: "
                                       "refusing without --yes when not run from a terminal")
        click.confirm(f"Replace every row of the database with {path}?", abort=True)
    info = backup.restore(url, path, pg_restore=current_app.config["PG_RESTORE"])
    click.echo(f"restored from {info.path} (sha256 {info.sha256})")
    current, head = backup.schema_revisions()
    if current != head:
        click.secho(f"the backup has schema revision {current}, the code expects {head}: "
                    "run `alembic upgrade head`", fg="yellow", err=True)
    audit.record("backup.restored", None, {"file": info.path.name, "sha256": info.sha256, "kind": info.kind,
                                           "schema_revision": current})
    db.session.commit()
    result = audit.verify()
    if not result.ok:
        raise click.ClickException(f"the audit chain does not verify: {result.reason} "
                                   f"(first broken sequence {result.first_broken_seq})")
    click.echo(f"audit chain ok: {result.checked} sealed events verified, {result.unsealed} not yet sealed")


def init_app(app: Flask) -> None:
    app.cli.add_command(portal_cli)
