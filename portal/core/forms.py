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
