from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (DecimalField, IntegerField, PasswordField, SelectField, StringField, TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from portal.core.forms import NumberRange

KIND_LABELS = {"number": _l("Numeric value"), "percentage": _l("Percentage"), "milestone": _l("Milestones"),
               "yesno": _l("Yes / no")}
LEVEL_LABELS = {"company": _l("Company"), "team": _l("Team"), "individual": _l("Individual")}
CYCLE_KIND_LABELS = {"year": _l("Year"), "quarter": _l("Quarter"), "month": _l("Month")}
FREQUENCY_LABELS = {"monthly": _l("Monthly"), "biweekly": _l("Every two weeks"), "weekly": _l("Weekly")}
WEEKDAY_LABELS = [(0, _l("Monday")), (1, _l("Tuesday")), (2, _l("Wednesday")), (3, _l("Thursday")),
                  (4, _l("Friday")), (5, _l("Saturday")), (6, _l("Sunday"))]


class CycleSettingsForm(FlaskForm):
    checkin_frequency = SelectField(_l("Check-ins"), choices=list(FREQUENCY_LABELS.items()), default="monthly")
    checkin_day = IntegerField(_l("Monthly check-in due on day"), default=25,
                               validators=[InputRequired(), NumberRange(1, 28)])
    checkin_weekday = SelectField(_l("Weekly / biweekly check-in due on"), coerce=int, choices=WEEKDAY_LABELS,
                                  default=4)
    response_days = IntegerField(_l("Days the employee has to sign or appeal a result"), default=7,
                                 validators=[InputRequired(), NumberRange(1, 60)])


class CycleForm(CycleSettingsForm):
    kind = SelectField(_l("Kind"), choices=list(CYCLE_KIND_LABELS.items()))
    year = IntegerField(_l("Year"), validators=[InputRequired(), NumberRange(2000, 2100)])
    number = IntegerField(_l("Quarter (1-4) or month (1-12)"), validators=[Optional(), NumberRange(1, 12)])


class ObjectiveForm(FlaskForm):
    cycle_id = SelectField(_l("Cycle"), coerce=int)
    level = SelectField(_l("Level"), choices=list(LEVEL_LABELS.items()))
    title = StringField(_l("Objective"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=4000)])
    department_id = SelectField(_l("Department (team objectives)"), coerce=int, validate_choice=False)
    owner_id = SelectField(_l("Owner (individual objectives)"), coerce=int, validate_choice=False)
    parent_id = SelectField(_l("Aligned to"), coerce=int, validate_choice=False)
    link_weight = DecimalField(_l("Weight in the parent objective"), default=1, places=None,
                               validators=[InputRequired(), NumberRange(min=0)])


class KeyResultForm(FlaskForm):
    title = StringField(_l("Key result"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(_l("Type"), choices=list(KIND_LABELS.items()))
    unit = StringField(_l("Unit (e.g. CNY, %, pcs)"), validators=[Optional(), Length(max=20)])
    start_value = StringField(_l("Start"), default="0", validators=[Optional(), Length(max=30)])
    target_value = StringField(_l("Target"), validators=[Optional(), Length(max=30)])
    weight = StringField(_l("Weight"), default="1", validators=[DataRequired(), Length(max=30)])
    milestones = TextAreaField(_l("Milestones (milestone type), one per line"),
                               validators=[Optional(), Length(max=12000)])


class CheckInForm(FlaskForm):
    value = StringField(_l("Current value"), validators=[Optional(), Length(max=30)])
    confidence = IntegerField(_l("Confidence (1-10)"), default=7, validators=[InputRequired(), NumberRange(1, 10)])
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=4000)])


class TemplateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    criteria = TextAreaField(_l("Criteria, one per line: name | weight | code"),
                             validators=[DataRequired(), Length(max=4000)])
    formula = StringField(_l("Final score formula (names: okr, manager, self and the criterion codes)"),
                          default="0.6 * okr + 0.4 * manager", validators=[DataRequired(), Length(max=300)])


class RatingsForm(FlaskForm):
    bands = TextAreaField(_l("Ratings, one per line: rating | minimum score | coefficient"),
                          validators=[DataRequired(), Length(max=2000)])


class SelfForm(FlaskForm):
    self_score = StringField(_l("Your score (0-100)"), validators=[DataRequired(), Length(max=10)])
    self_comment = TextAreaField(_l("Self-assessment"), validators=[Optional(), Length(max=8000)])


class ConfirmForm(FlaskForm):
    password = PasswordField(_l("Your password (to sign)"), validators=[DataRequired(), Length(max=200)])


class AppealForm(FlaskForm):
    reason = TextAreaField(_l("Why do you appeal?"), validators=[DataRequired(), Length(max=4000)])


class RespondForm(FlaskForm):
    response = TextAreaField(_l("Answer to the appeal"), validators=[DataRequired(), Length(max=4000)])
    new_score = StringField(_l("New final score (empty: unchanged)"), validators=[Optional(), Length(max=10)])


class CalibrateForm(FlaskForm):
    final_score = StringField(_l("Final score"), validators=[DataRequired(), Length(max=10)])
    note = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=4000)])


class UnsignedApprovalForm(FlaskForm):
    reason = TextAreaField(_l("Reason for approving without the employee's signature"),
                           validators=[DataRequired(), Length(max=4000)])


class LaunchForm(FlaskForm):
    template_id = SelectField(_l("Review template"), coerce=int)
