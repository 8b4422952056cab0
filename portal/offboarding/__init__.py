"""Offboarding (resignations, permission freeze, handover checklists with sign-off, account revocation,
evidence pack) and the client records the handover moves (sub-blueprint ``clients``)."""
from __future__ import annotations

import json
import os

from flask import Blueprint

bp = Blueprint("offboarding", __name__)

from portal.offboarding import perms  # noqa: E402,F401  (permissions first)
from portal.offboarding import views  # noqa: E402,F401


def _env_json(name: str, default):
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def init_app(app) -> None:
    from portal.core import jobs
    from portal.offboarding import client_views
    from portal.offboarding.perms import Refused

    app.register_blueprint(client_views.bp)

    # Company settings (environment, overridable by create_app(config)).
    app.config.setdefault("OFFBOARDING_NOTICE_DAYS", int(os.environ.get("OFFBOARDING_NOTICE_DAYS", 30)))
    app.config.setdefault("OFFBOARDING_PROBATION_NOTICE_DAYS",
                          int(os.environ.get("OFFBOARDING_PROBATION_NOTICE_DAYS", 3)))
    # {role: [permissions]} frozen at submission; "*" applies to every leaver.
    app.config.setdefault("OFFBOARDING_FREEZE", _env_json("OFFBOARDING_FREEZE", None))
    # {permission: days}: revoked this many days before the last working day (e.g. export a week ahead).
    app.config.setdefault("OFFBOARDING_EARLY_DENY", _env_json("OFFBOARDING_EARLY_DENY", {}))
    # Account revocation at "completion" or at the end of the "last_day" (minus REVOKE_DAYS_BEFORE days).
    app.config.setdefault("OFFBOARDING_REVOKE_ON", os.environ.get("OFFBOARDING_REVOKE_ON", "completion"))
    app.config.setdefault("OFFBOARDING_REVOKE_TIME", os.environ.get("OFFBOARDING_REVOKE_TIME", "18:00"))
    app.config.setdefault("OFFBOARDING_REVOKE_DAYS_BEFORE", int(os.environ.get("OFFBOARDING_REVOKE_DAYS_BEFORE", 0)))
    # [{"name": "mail", "url": "https://...", "token": "..."}]
    app.config.setdefault("OFFBOARDING_WEBHOOKS", _env_json("OFFBOARDING_WEBHOOKS", []))
    app.config.setdefault("OFFBOARDING_WEBHOOK_ATTEMPTS", int(os.environ.get("OFFBOARDING_WEBHOOK_ATTEMPTS", 5)))
    app.config.setdefault("OFFBOARDING_WEBHOOK_BACKOFF",
                          _env_json("OFFBOARDING_WEBHOOK_BACKOFF", [30, 120, 600, 1800]))
    app.config.setdefault("OFFBOARDING_WEBHOOK_TIMEOUT", int(os.environ.get("OFFBOARDING_WEBHOOK_TIMEOUT", 10)))
    app.config.setdefault("OFFBOARDING_REVOCATION_LEASE_SECONDS",
                          int(os.environ.get("OFFBOARDING_REVOCATION_LEASE_SECONDS", 300)))

    @app.errorhandler(Refused)
    def _refused(exc: Refused):
        from flask_babel import gettext as _
        from portal.core.web import error_page
        if exc.frozen:
            return error_page(403, _("This permission is frozen during your notice period. The attempt was "
                                      "recorded."))
        return error_page(403, _("You do not have permission to do this."))

    jobs.register_periodic(jobs.Periodic("offboarding.tick", "portal.offboarding.services.tick", every=300))
