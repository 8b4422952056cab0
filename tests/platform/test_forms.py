"""Shared form pieces (portal/core/forms.py)."""
from __future__ import annotations

from wtforms import Form, IntegerField, StringField

from portal.core.forms import NumberRange, add_field_error


class _Form(Form):
    title = StringField()
    count = IntegerField(validators=[NumberRange(min=0, max=10)])


def test_a_service_error_lands_on_its_field_or_the_default_one():
    form = _Form()
    add_field_error(form, "count", "title", "too many")
    add_field_error(form, None, "title", "no field named")
    add_field_error(form, "no_such_field", "title", "unknown field")
    add_field_error(form, "meta", "title", "not a field")  # an attribute of every form, not a field
    assert list(form.count.errors) == ["too many"]
    assert list(form.title.errors) == ["no field named", "unknown field", "not a field"]


def test_number_range_refuses_numbers_no_float_can_hold():
    from werkzeug.datastructures import MultiDict
    form = _Form(MultiDict({"title": "x", "count": "9" * 400}))
    assert not form.validate()
    assert form.count.errors
    form = _Form(MultiDict({"title": "x", "count": "3"}))
    assert form.validate(), form.errors
