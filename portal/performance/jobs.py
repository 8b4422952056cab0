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
