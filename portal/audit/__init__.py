from flask import Blueprint

bp = Blueprint("audit", __name__)

from portal.audit import views  # noqa: E402,F401


def init_app(app) -> None:
    from portal.audit.cli import audit_cli
    from portal.core import jobs
    app.cli.add_command(audit_cli)
    # Seal new audit events every few seconds (hot paths only INSERT; see core/audit.py).
    jobs.register_periodic(jobs.Periodic("audit.seal", "portal.audit.jobs.seal_pending", every=10,
                                         timeout=300))
