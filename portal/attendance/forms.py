from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, DateField, FloatField, HiddenField, IntegerField, SelectField,
                     SelectMultipleField, StringField, TextAreaField, TimeField)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.attendance.labels import (ANOMALY_LABELS, KIND_LABELS, PUNCH_LABELS,  # noqa: F401 (re-exported)
                                      STATUS_LABELS)
from portal.core.forms import NumberRange

RULE_KIND_LABELS = {"fixed": _l("Fixed hours"), "shift": _l("Shifts"), "flexible": _l("Flexible hours")}
CHANNEL_LABELS = [("inapp", _l("In the portal")), ("email", _l("Email")), ("sms", _l("SMS"))]
HALF_START = [("am", _l("from the morning")), ("pm", _l("from the afternoon"))]
HALF_END = [("pm", _l("to the end of the day")), ("am", _l("until noon"))]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ClockForm(FlaskForm):
    kind = HiddenField()
    latitude = FloatField(validators=[Optional(), NumberRange(-90, 90)])
    longitude = FloatField(validators=[Optional(), NumberRange(-180, 180)])
    accuracy = FloatField(validators=[Optional(), NumberRange(0, 100000)])
    outside = BooleanField(_l("I am working out of the office (外勤)"))
    note = StringField(_l("Note (required out of the office)"), validators=[Optional(), Length(max=300)])


class ConsentForm(FlaskForm):
    granted = HiddenField()


class LeaveForm(FlaskForm):
    kind = SelectField(_l("Type"), choices=list(KIND_LABELS.items()))
    start_date = DateField(_l("Start date"), validators=[InputRequired(message=_l("Enter a date."))])
    start_half = SelectField(_l("Starting"), choices=HALF_START)
    end_date = DateField(_l("End date"), validators=[InputRequired(message=_l("Enter a date."))])
    end_half = SelectField(_l("Ending"), choices=HALF_END)
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=2000)])


class CorrectionForm(FlaskForm):
    work_date = DateField(_l("Attendance day"), validators=[InputRequired(message=_l("Enter a date."))])
    kind = SelectField(_l("Punch"), choices=list(PUNCH_LABELS.items()))
    time = TimeField(_l("Time"), validators=[InputRequired(message=_l("Enter a time."))])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(message=_l("Give a reason.")),
                                                     Length(max=2000)])
    attachment = FileField(_l("Attachment (optional)"))


class DecisionForm(FlaskForm):
    decision = HiddenField(validators=[DataRequired()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=300)])


class ResolveForm(FlaskForm):
    note = StringField(_l("What happened"), validators=[DataRequired(), Length(max=300)])


class RuleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Type"), choices=list(RULE_KIND_LABELS.items()))
    is_default = BooleanField(_l("Default rule for everyone not in another rule"))
    start = TimeField(_l("Start"), validators=[InputRequired()])
    end = TimeField(_l("End (earlier than the start: the next day)"), validators=[InputRequired()])
    grace_minutes = IntegerField(_l("Grace minutes (late)"), default=5, validators=[NumberRange(0, 240)])
    early_grace_minutes = IntegerField(_l("Grace minutes (early leave)"), default=0,
                                       validators=[NumberRange(0, 240)])
    break_start = TimeField(_l("Break start"), validators=[Optional()])
    break_minutes = IntegerField(_l("Break minutes"), default=0, validators=[NumberRange(0, 480)])
    restrict_place = BooleanField(_l("Clock-in only on the office network or at a work site"))
    ip_ranges = TextAreaField(_l("Office network IP ranges (CIDR, one per line)"),
                              validators=[Optional(), Length(max=4000)])
    allow_outside = BooleanField(_l("Allow out-of-office clock-in with a note"), default=True)
    correctable = MultiCheckboxField(_l("Corrections allowed for"), choices=[
        (k, STATUS_LABELS[k]) for k in ("missing", "absent", "late", "early")])
    corrections_per_month = IntegerField(_l("Corrections per month (0 = no limit)"), default=3,
                                         validators=[NumberRange(0, 31)])
    correction_deadline_day = IntegerField(_l("Deadline: day of the next month (0 = none)"), default=5,
                                           validators=[NumberRange(0, 28)])


class MembersForm(FlaskForm):
    departments = MultiCheckboxField(_l("Departments"), coerce=int, choices=[])
    employees = TextAreaField(_l("Employees (employee numbers)"), validators=[Optional(), Length(max=20000)])


class SettingsForm(FlaskForm):
    geofence_enabled = BooleanField(_l("Use browser location for clock-in (only with each employee's consent)"))
    escalate_after_days = IntegerField(_l("Escalate after this many working days without a clock-in"),
                                       validators=[NumberRange(1, 30)])
    late_count_threshold = IntegerField(_l("Flag more late arrivals in a month than"),
                                        validators=[NumberRange(0, 31)])
    late_rise_threshold = IntegerField(_l("Flag a rise over the previous month of at least"),
                                       validators=[NumberRange(1, 31)])
    alert_channels = MultiCheckboxField(_l("Alert channels"), choices=CHANNEL_LABELS)
    escalation_channels = MultiCheckboxField(_l("Escalation channels"), choices=CHANNEL_LABELS)
    exemptions = TextAreaField(_l("Exempt from clocking (employee numbers)"),
                               validators=[Optional(), Length(max=20000)])


class SiteForm(FlaskForm):
    name = StringField(_l("Site name"), validators=[DataRequired(), Length(max=120)])
    latitude = FloatField(_l("Latitude"), validators=[InputRequired(), NumberRange(-90, 90)])
    longitude = FloatField(_l("Longitude"), validators=[InputRequired(), NumberRange(-180, 180)])
    radius_m = IntegerField(_l("Radius (m)"), default=200, validators=[NumberRange(10, 5000)])


class ShiftForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=20)])
    name = StringField(_l("Shift name"), validators=[DataRequired(), Length(max=80)])
    start = TimeField(_l("Start"), validators=[InputRequired()])
    end = TimeField(_l("End"), validators=[InputRequired()])
    grace_minutes = IntegerField(_l("Grace minutes"), default=5, validators=[NumberRange(0, 240)])
    break_minutes = IntegerField(_l("Break minutes"), default=0, validators=[NumberRange(0, 480)])


class AssignForm(FlaskForm):
    employees = TextAreaField(_l("Employees (employee numbers)"), validators=[DataRequired(), Length(max=20000)])
    shift = SelectField(_l("Shift"), choices=[])
    start_date = DateField(_l("Start date"), validators=[InputRequired()])
    end_date = DateField(_l("End date"), validators=[InputRequired()])


class CalendarDayForm(FlaskForm):
    day = DateField(_l("Date"), validators=[InputRequired()])
    kind = SelectField(_l("Kind"), choices=[("holiday", _l("Holiday")), ("workday", _l("Working day")),
                                            ("rest", _l("Rest day"))])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=80)])


class YearForm(FlaskForm):
    year = IntegerField(_l("Year"), validators=[InputRequired(), NumberRange(2004, 2100)])


class RangeForm(FlaskForm):
    start_date = DateField(_l("Start date"), validators=[InputRequired()])
    end_date = DateField(_l("End date"), validators=[InputRequired()])
