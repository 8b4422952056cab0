"""Periodic jobs of OKRs/performance: take no state, re-read everything, idempotent."""
from __future__ import annotations

import datetime as dt

from portal.core.db import db


def early_warning(month: dt.date | None = None) -> int:
    from portal.performance import services
    raised = services.scan_warnings(month)
    db.session.commit()
    return len(raised)


def checkin_reminders() -> int:
    from portal.performance import services
    n = services.schedule_checkin_reminders()
    db.session.commit()
    return n


def team_export_task(handle, cycle_id: int, locale: str = "zh_Hans_CN"):
    """Background task: the team OKR report of ``cycle_id`` as XLSX, scoped to what the task's owner may
    see (re-checked now: a permission withdrawn since the start stops the export). Returns the file."""
    from flask_babel import force_locale
    from flask_babel import gettext as _

    from portal.core import audit, uploads
    from portal.core.models import User
    from portal.core.security import can
    from portal.performance import services
    from portal.performance.models import Cycle

    user = db.session.get(User, handle.owner_id) if handle.owner_id else None
    cycle = db.session.get(Cycle, cycle_id)
    if user is None or cycle is None or not can(user, "perf.export"):
        raise PermissionError("the export is not allowed (any more)")
    report = services.team_report(user, cycle)
    total = len(report["rows"])
    handle.progress(0, total)
    with force_locale(locale or "zh_Hans_CN"):
        labels = {"cycle": _("Cycle"), "period": _("Check-in period"), "emp_no": _("Employee no."),
                  "name": _("Name"), "department": _("Department"), "objectives": _("Objectives"),
                  "completion": _("Completion %"), "last_checkin": _("Last check-in"),
                  "checked_in": _("Checked in this period"), "yes": _("yes"), "no": _("no")}
        body = services.team_report_xlsx(report, cycle, labels, progress=handle.progress)
    handle.progress(total, total)
    stored = uploads.store_bytes(body, f"okr-{cycle.name}.xlsx", "xlsx", "exports", actor=user)
    audit.record("okr.report_exported", cycle, {"rows": total, "format": "xlsx", "task_id": handle.id,
                                                "file_id": stored.id, "sha256": stored.sha256}, actor=user)
    return stored
