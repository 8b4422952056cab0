from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, DateField, DateTimeLocalField, IntegerField, PasswordField, SelectField,
                     StringField, TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from portal.core.forms import NumberRange
from portal.offboarding.labels import (ITEM_STATUS_LABELS, KIND_LABELS, RESPONSIBLE_LABELS,  # noqa: F401
                                      REVOKE_LABELS, STAGE_LABELS, STEP_STATUS_LABELS)

CHANNEL_LABELS = {"phone": _l("Phone"), "visit": _l("Visit"), "email": _l("Email"), "wechat": _l("WeChat"),
                  "other": _l("Other")}


class ClientForm(FlaskForm):
    name = StringField(_l("Client name"), validators=[DataRequired(), Length(max=200)])
    contract_no = StringField(_l("Contract number"), validators=[Optional(), Length(max=80)])
    contract_end = DateField(_l("Contract end date"), validators=[Optional()])
    preferences = TextAreaField(_l("Preferences"), validators=[Optional(), Length(max=5000)])


class ContactForm(FlaskForm):
    name = StringField(_l("Contact name"), validators=[DataRequired(), Length(max=80)])
    title = StringField(_l("Title"), validators=[Optional(), Length(max=80)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    email = StringField(_l("Email"), validators=[Optional(), Length(max=200)])


class OrderForm(FlaskForm):
    order_no = StringField(_l("Order number"), validators=[DataRequired(), Length(max=60)])
    amount = StringField(_l("Amount (CNY)"), validators=[DataRequired(), Length(max=20)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])


class ReceivableForm(FlaskForm):
    reference = StringField(_l("Reference"), validators=[Optional(), Length(max=80)])
    amount = StringField(_l("Amount (CNY)"), validators=[DataRequired(), Length(max=20)])
    due_date = DateField(_l("Due date"), validators=[Optional()])


class InteractionForm(FlaskForm):
    channel = SelectField(_l("Channel"), choices=list(CHANNEL_LABELS.items()))
    summary = TextAreaField(_l("What was discussed"), validators=[DataRequired(), Length(max=5000)])


class ResignationForm(FlaskForm):
    reason = TextAreaField(_l("Reason (optional)"), validators=[Optional(), Length(max=2000)])
    confirm = BooleanField(_l("I submit my resignation"), validators=[DataRequired()])


class TerminationForm(FlaskForm):
    employee = StringField(_l("Employee number"), validators=[DataRequired(), Length(max=40)])
    last_day = DateField(_l("Last working day"), validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class DatesForm(FlaskForm):
    last_day = DateField(_l("Last working day"), validators=[DataRequired()])
    revoke_on = SelectField(_l("Revoke the account"), choices=list(REVOKE_LABELS.items()))


class StartForm(FlaskForm):
    successor = StringField(_l("Successor (employee number)"), validators=[DataRequired(), Length(max=40)])
    template = SelectField(_l("Checklist template"), coerce=int, choices=[])


class ItemForm(FlaskForm):
    note = TextAreaField(_l("What was handed over"), validators=[Optional(), Length(max=5000)])
    file = FileField(_l("Document"))


class WaiveForm(FlaskForm):
    reason = TextAreaField(_l("Reason for the waiver"), validators=[DataRequired(), Length(max=2000)])
    evidence = FileField(_l("Evidence (e.g. courier receipt, written statement)"))


class RejectForm(FlaskForm):
    item_id = SelectField(_l("Item to send back"), coerce=int, choices=[])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class SignForm(FlaskForm):
    password = PasswordField(_l("Your password (to sign)"), validators=[DataRequired(), Length(max=200)])


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class UnfreezeForm(FlaskForm):
    permission = SelectField(_l("Permission"), choices=[])
    until = DateTimeLocalField(_l("Until"), format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=2000)])


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    department_id = SelectField(_l("Department"), coerce=int, choices=[])
    position_id = SelectField(_l("Position"), coerce=int, choices=[])
    active = BooleanField(_l("Active"), default=True)


class TemplateItemForm(FlaskForm):
    title = StringField(_l("Item"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    responsible = SelectField(_l("Responsible"), choices=list(RESPONSIBLE_LABELS.items()))
    requires_upload = BooleanField(_l("An uploaded document is required"))
    due_offset_days = IntegerField(_l("Due (days relative to the last day, negative = before)"), default=0,
                                   validators=[InputRequired(), NumberRange(min=-365, max=365)])
