"""User-facing texts for AccountError codes."""
from flask_babel import lazy_gettext as _l

ERRORS = {
    "mismatch": _l("The two new passwords do not match."),
    "too_short": _l("The password must have at least 8 characters."),
    "letters_and_digits": _l("The password must mix letters and digits."),
    "wrong_current": _l("The current password is not correct."),
    "username_required": _l("Enter a username of at most 80 characters."),
    "username_taken": _l("This username is already taken."),
    "employee_has_account": _l("This employee already has an account."),
    "unknown_role": _l("Unknown role."),
    "unknown_permission": _l("Unknown permission."),
    "bad_effect": _l("Choose grant or deny."),
    "reason_required": _l("A reason is required."),
    "expiry_in_past": _l("The expiry must be in the future."),
    "unknown_employee": _l("No employee has this number."),
}


def message(exc) -> str:
    return str(ERRORS.get(exc.code, exc.code))
