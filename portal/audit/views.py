"""Audit trail pages: browse and filter, verify the chain and seal, export as CSV."""
from __future__ import annotations

from flask import Response, flash, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.audit import bp, services
from portal.audit.forms import AuditFilterForm
from portal.core import audit
from portal.core.db import db, utcnow
from portal.core.security import require
from portal.core.ui import company_tz, htmx_redirect, page_arg, paginate, register_nav, render

register_nav("audit.index", _l("Audit trail"), "audit.view", order=80)


def _filter_form() -> AuditFilterForm:
    return AuditFilterForm(formdata=request.args)


def _filters(form: AuditFilterForm) -> services.AuditFilters:
    return services.AuditFilters(
        actor=form.actor.data or "", action=form.action.data or "",
        target_type=form.target_type.data or "", target_id=form.target_id.data or "",
        date_from=form.date_from.data, date_to=form.date_to.data)


def _render_index(form: AuditFilterForm):
    if form.validate():
        page, per_page = page_arg(50)
        result = paginate(services.list_stmt(_filters(form), company_tz()), page, per_page)
        status = 200
    else:
        result, status = None, 422
    export_args = {k: v for k, v in request.args.items() if k not in ("page", "per_page") and v}
    return render("audit/index.html", "audit/_table.html", status=status, form=form, events=result,
                  export_args=export_args)


@bp.route("/audit")
@require("audit.view")
def index():
    return _render_index(_filter_form())


@bp.route("/audit/export.csv")
@require("audit.export")
def export():
    form = _filter_form()
    if not form.validate():
        return _render_index(form)
    filters = _filters(form)
    up_to_id = services.start_export(filters, current_user)
    db.session.commit()  # the export is on record before a byte leaves
    headers = [_("Sequence"), _("Time (company)"), _("Time (UTC)"), _("Actor"), _("Actor id"),
               _("Action"), _("Target type"), _("Target id"), _("IP"), _("Request id"), _("Data"),
               _("Hash")]
    body = services.export_csv(filters, company_tz(), up_to_id, headers, _("unsealed"))
    name = f"audit-{utcnow().astimezone(company_tz()):%Y%m%d-%H%M%S}.csv"
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Type"] = "text/csv; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@bp.route("/audit/verify")
@require("audit.view")
def verify():
    return render("audit/verify.html", result=audit.verify())


@bp.route("/audit/seal", methods=["POST"])
@require("audit.view")
def seal():
    audit.record("audit.seal_requested", None, {})
    db.session.commit()
    count = audit.seal()
    flash(_("%(n)s events sealed.", n=count), "success")
    return htmx_redirect(url_for("audit.verify"))
