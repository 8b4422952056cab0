"""Offboarding (resignations, permission freeze, handover checklists with sign-off, account revocation,
evidence pack) and the client records the handover moves (sub-blueprint ``clients``)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("offboarding", __name__)

from portal.offboarding import perms  # noqa: E402,F401  (permissions first)
from portal.offboarding import views  # noqa: E402,F401


def init_app(app) -> None:
    from portal.core import jobs
    from portal.offboarding import client_views
    from portal.offboarding.perms import Refused

    app.register_blueprint(client_views.bp)

    # Company settings are read in portal/config.py (OFFBOARDING_*).

    @app.errorhandler(Refused)
    def _refused(exc: Refused):
        from flask_babel import gettext as _
        from portal.core.web import error_page
        if exc.frozen:
            return error_page(403, _("This permission is frozen during your notice period. The attempt was "
                                      "recorded."))
        return error_page(403, _("You do not have permission to do this."))

    jobs.register_periodic(jobs.Periodic("offboarding.tick", "portal.offboarding.services.tick", every=300))
