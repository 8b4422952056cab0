"""`flask --app wsgi audit seal|verify`: seal pending events, check the hash chain."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.core import audit
from portal.core.db import db

audit_cli = AppGroup("audit", help="Audit trail: seal pending events, verify the hash chain.")


def _seal(batch: int) -> int:
    pending = audit.pending_count()
    if pending <= batch:
        return audit.seal(batch)
    with click.progressbar(length=pending, label="sealing", file=sys.stderr) as bar:
        return audit.seal(batch, progress=bar.update)


@audit_cli.command("seal")
@click.option("--batch", default=5000, show_default=True, help="Events per transaction.")
def seal_cmd(batch: int) -> None:
    """Give pending events their sequence numbers and hashes."""
    click.echo(f"sealed {_seal(batch)} events")


@audit_cli.command("verify")
@click.option("--seal", "seal_first", is_flag=True, help="Seal pending events first.")
@click.option("--chunk", default=5000, show_default=True, help="Rows read per query.")
def verify_cmd(seal_first: bool, chunk: int) -> None:
    """Recompute the hash chain. Exit 0 when intact, 1 naming the first broken sequence."""
    if seal_first:
        click.echo(f"sealed {_seal(chunk)} events")
    with db.engine.connect() as conn:
        head_seq = conn.scalar(select(audit.AuditSeal.last_seq).where(audit.AuditSeal.id == 1)) or 0
    if head_seq > chunk:
        with click.progressbar(length=head_seq, label="verifying", file=sys.stderr) as bar:
            result = audit.verify(chunk, progress=lambda done, _total: bar.update(done - bar.pos))
    else:
        result = audit.verify(chunk)
    click.echo(f"checked: {result.checked}, unsealed: {result.unsealed}, last seq: {result.last_seq}")
    if result.ok:
        click.echo("chain intact")
        return
    click.echo(f"first broken sequence: {result.first_broken_seq} ({result.reason})", err=True)
    sys.exit(1)
