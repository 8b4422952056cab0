"""Form pieces shared by the modules."""
from __future__ import annotations

from wtforms import validators


class NumberRange(validators.NumberRange):
    """wtforms' NumberRange, except that a number no float can hold (a 400-digit integer) or a signalling
    NaN decimal is refused with the usual range message instead of raising (OverflowError / ValueError
    inside ``math.isnan``, i.e. a 500 on any typed-in value)."""

    def __call__(self, form, field):
        try:
            return super().__call__(form, field)
        except (OverflowError, ValueError, ArithmeticError):
            data, field.data = field.data, None  # None is out of range: same message as any bad number
            try:
                super().__call__(form, field)
            finally:
                field.data = data


def add_field_error(form, field: str | None, default: str, message: str) -> None:
    """Show ``message`` under the form field a service error names (``field``), or under ``default`` when it
    names none or a field this form does not have, so a service error is never lost or a crash."""
    target = getattr(form, field, None) if field else None
    if target is None or not hasattr(target, "errors"):
        target = getattr(form, default)
    target.errors = list(target.errors or []) + [message]
