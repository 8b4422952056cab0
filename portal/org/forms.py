"""Forms of the people and organisation pages. Formats are checked here; rules that need the database
(unique numbers, existing manager, loops) are checked in services.py."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, StopValidation, ValidationError

from portal.org import importer
from portal.org.messages import ERRORS, STATUS_LABELS


class Required:
    """Like DataRequired, with one message per problem: an empty input gets ``message`` (not the date
    parser's "not a valid date"), an unparsable one keeps only the parser's message."""

    def __init__(self, message):
        self.message = message
        self.field_flags = {"required": True}

    def __call__(self, form, field):
        raw = field.raw_data[0] if field.raw_data else None
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            field.errors[:] = []
            raise StopValidation(self.message)
        if field.process_errors:
            raise StopValidation()


def _status_choices():
    return [(code, label) for code, label in STATUS_LABELS.items()]


class EmployeeForm(FlaskForm):
    emp_no = StringField(_l("Employee number"), validators=[Required(ERRORS["emp_no_required"]),
                                                            Length(max=40)])
    name = StringField(_l("Name"), validators=[Required(ERRORS["name_required"]), Length(max=80)])
    department_id = SelectField(_l("Department"), validators=[Required(ERRORS["department_required"])])
    manager_no = StringField(_l("Manager (employee number)"), validators=[Optional(), Length(max=40)])
    position_id = SelectField(_l("Position"), validators=[Optional()])
    mobile = StringField(_l("Mobile"), validators=[Optional(), Length(max=30)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=200)])
    hire_date = DateField(_l("Hire date"), validators=[Required(ERRORS["hire_date_required"])])
    probation_end = DateField(_l("Probation ends"), validators=[Optional()])
    contract_start = DateField(_l("Contract start"), validators=[Optional()])
    contract_end = DateField(_l("Contract end"), validators=[Optional()])
    status = SelectField(_l("Status"), choices=_status_choices, default="active")
    create_account = BooleanField(_l("Also create a user account (role: employee)"))
    username = StringField(_l("Username (empty: the employee number)"), validators=[Optional(), Length(max=80)])

    def validate_mobile(self, field):
        if importer.normalize_mobile(field.data) is None:
            raise ValidationError(ERRORS["bad_mobile"])

    def validate_email(self, field):
        if importer.normalize_email(field.data) is None:
            raise ValidationError(ERRORS["bad_email"])

    def validate_probation_end(self, field):
        self._date_order("probation_end")

    def validate_contract_end(self, field):
        self._date_order("contract_end")

    def _date_order(self, name):
        problems = importer.date_order_problems(self.hire_date.data, self.probation_end.data,
                                                self.contract_start.data, self.contract_end.data)
        for fld, code in problems:
            if fld == name:
                raise ValidationError(ERRORS[code])


class DepartmentForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(message=ERRORS["dept_name_required"]),
                                               Length(max=120)])
    code = StringField(_l("Code (optional)"), validators=[Optional(), Length(max=40)])
    parent_id = SelectField(_l("Parent department"), validators=[Optional()])


class DepartmentRenameForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(message=ERRORS["dept_name_required"]),
                                               Length(max=120)])
    code = StringField(_l("Code (optional)"), validators=[Optional(), Length(max=40)])


class DepartmentMoveForm(FlaskForm):
    parent_id = SelectField(_l("New parent"), validators=[Optional()])


class DepartmentHeadForm(FlaskForm):
    head_no = StringField(_l("Head (employee number, empty: none)"), validators=[Optional(), Length(max=40)])


class PositionForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(message=ERRORS["position_name_required"]),
                                               Length(max=120)])
    code = StringField(_l("Code (optional)"), validators=[Optional(), Length(max=40)])


class ImportForm(FlaskForm):
    file = FileField(_l("File (.csv or .xlsx)"), validators=[FileRequired(message=_l("Choose a file."))])
    update_existing = BooleanField(_l("Update employees that already exist (same employee number)"))
