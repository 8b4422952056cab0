"""Display labels for the attendance codes stored in the database. Lazy: they become text in the
language of whoever sees them (a page, or the recipient of a notification: ``notify.send`` renders lazy
context values in the recipient's locale)."""
from flask_babel import lazy_gettext as _l

KIND_LABELS = {"annual": _l("Annual leave"), "sick": _l("Sick leave"), "personal": _l("Personal leave"),
               "compensatory": _l("Compensatory time off")}
STATUS_LABELS = {"normal": _l("Normal"), "late": _l("Late"), "early": _l("Left early"),
                 "missing": _l("Missing punch"), "absent": _l("Absent"), "leave": _l("On leave"),
                 "rest": _l("Rest day"), "holiday": _l("Holiday")}
ANOMALY_LABELS = {"absent": _l("No clock-in"), "escalation": _l("Consecutive absence (risk)"),
                  "late_count": _l("Frequent late arrivals"), "late_rise": _l("Late arrivals rising")}
PUNCH_LABELS = {"in": _l("Clock-in"), "out": _l("Clock-out")}
REQUEST_STATUS_LABELS = {"pending": _l("Waiting"), "approved": _l("Approved"), "rejected": _l("Rejected"),
                         "cancelled": _l("Withdrawn")}
SOURCE_LABELS = {"web": _l("Web browser"), "mobile": _l("Mobile phone"), "correction": _l("Correction")}
NOTICE_TITLES = {"leave": _l("Leave"), "correction": _l("Correction")}


def label(labels: dict, code):
    """The label of ``code``, or the code itself when it has none (never fails on unknown data)."""
    return labels.get(code, code)
