"""`flask --app wsgi jobs ...`: queue status, failed jobs, sweep."""
from __future__ import annotations

import json

import click
from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="Background jobs: status, failed jobs, outbox sweep.")


@jobs_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status_cmd(as_json: bool):
    """Queue lengths, failed jobs with their error, periodic jobs' last runs."""
    import redis
    from portal.core import jobs
    try:
        st = jobs.status()
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis is not reachable: {exc}")
    if as_json:
        click.echo(json.dumps(st, default=str, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'queue':<12}{'queued':>8}{'started':>9}{'scheduled':>11}{'failed':>8}")
    for q in st["queues"]:
        click.echo(f"{q['name']:<12}{q['queued']:>8}{q['started']:>9}{q['scheduled']:>11}{q['failed']:>8}")
    click.echo("")
    for p in st["periodic"]:
        when = f"every {p['every']}s" if p["every"] else f"daily {p['at']}"
        last = p["last"]
        click.echo(f"periodic {p['name']:<28}{when:<14} last: {last.get('status', 'never')} "
                   f"{last.get('slot', '')} {last.get('error', '')}")
    for f in st["failed"]:
        click.echo(f"FAILED {f['id']} [{f['queue']}] {f['description']} {f['args']}: "
                   f"{f['error'].splitlines()[-1] if f['error'] else ''}")


@jobs_cli.command("sweep")
def sweep_cmd():
    """Re-queue pending outbox messages now."""
    from portal.core import notify
    click.echo(f"re-queued {notify.sweep()} message(s)")


@jobs_cli.command("requeue")
@click.argument("job_id")
def requeue_cmd(job_id: str):
    from portal.core import jobs
    if not jobs.requeue_failed(job_id):
        raise click.ClickException(f"no failed job {job_id}")
    click.echo(f"requeued {job_id}")
