"""Display labels for the offboarding codes stored in the database (stages, statuses, roles, revocation
steps). Lazy: pages show them in the viewer's language; ``notify.send`` renders lazy context values in
the recipient's language; the evidence archive renders them in the language of who asked for it."""
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext

RESPONSIBLE_LABELS = {"leaver": _l("Leaver"), "successor": _l("Successor"), "head": _l("Department head"),
                      "finance": _l("Finance"), "it": _l("IT"), "hr": _l("HR")}
STAGE_LABELS = {"notice": _l("On notice"), "handover": _l("Handover"), "signoff": _l("Sign-off"),
                "signing": _l("Final signatures"), "completed": _l("Completed")}
ITEM_STATUS_LABELS = {"open": lazy_pgettext("checklist item", "Open"), "submitted": _l("Waiting for confirmation"),
                      "done": _l("Done"), "waived": _l("Waived")}
STEP_STATUS_LABELS = {"pending": _l("Pending"), "approved": _l("Approved"), "rejected": _l("Rejected")}
KIND_LABELS = {"resignation": _l("Resignation"), "termination": _l("Termination")}
REVOKE_LABELS = {"completion": _l("At completion"), "last_day": _l("At the end of the last working day")}
UNFREEZE_STATUS_LABELS = {"pending": _l("Waiting for approval"), "approved": _l("Approved"),
                          "rejected": _l("Rejected"), "expired": _l("Expired")}
RUN_STATUS_LABELS = {"scheduled": _l("Scheduled"), "running": _l("Running"), "done": _l("Done"),
                     "failed": _l("Failed")}
REVOCATION_STEP_STATUS_LABELS = {"pending": _l("Not run yet"), "done": _l("Done"), "failed": _l("Failed")}
SIGNATURE_PURPOSE_LABELS = {"offboarding.handover.leaver": _l("Handover (leaver)"),
                            "offboarding.handover.successor": _l("Handover (successor)")}
REVOCATION_STEP_LABELS = {"disable": _l("Disable the account"), "rotate_token": _l("End all sessions"),
                          "remove_roles": _l("Remove roles"),
                          "revoke_permissions": _l("Revoke business permissions")}


def label(labels: dict, code):
    """The label of ``code``, or the code itself when it has none (never fails on unknown data)."""
    return labels.get(code, code)


def revocation_step_label(key: str):
    if key.startswith("webhook:"):
        return _l("External revocation hook: %(name)s", name=key.partition(":")[2])
    return label(REVOCATION_STEP_LABELS, key)


def template_labels() -> dict:
    """The label dicts every offboarding template gets (pages and the evidence archive)."""
    from portal.core.security import PERMISSIONS
    return dict(stages=STAGE_LABELS, responsible=RESPONSIBLE_LABELS, item_statuses=ITEM_STATUS_LABELS,
                step_statuses=STEP_STATUS_LABELS, kinds=KIND_LABELS, revoke_labels=REVOKE_LABELS,
                unfreeze_statuses=UNFREEZE_STATUS_LABELS, run_statuses=RUN_STATUS_LABELS,
                revocation_step_statuses=REVOCATION_STEP_STATUS_LABELS, revocation_step=revocation_step_label,
                purposes=SIGNATURE_PURPOSE_LABELS,
                permissions=PERMISSIONS)
