from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, DateField, IntegerField, PasswordField, RadioField, SelectField, StringField,
                     TextAreaField)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from portal.core.forms import NumberRange

KIND_LABELS = {"single": _l("Single choice"), "multiple": _l("Multiple choice"), "truefalse": _l("True / false"),
               "fill": _l("Fill in the blank")}
SHOW_LABELS = {"never": _l("Never show the correct answers"),
               "after_submit": _l("Show the correct answers after each attempt"),
               "when_done": _l("Show the correct answers once passed or out of attempts")}
TARGET_LABELS = {"employee": _l("People"), "department": _l("Department"), "position": _l("Position")}
STATUS_LABELS = {"assigned": _l("Not started"), "in_progress": _l("In progress"), "completed": _l("Completed"),
                 "draft": _l("Draft"), "published": _l("Published"), "retired": _l("Retired")}


class CourseForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    code = StringField(_l("Code (optional)"), validators=[Optional(), Length(max=40)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])


class SettingsForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    policy_name = StringField(_l("Policy name (leave empty for no acknowledgement)"),
                              validators=[Optional(), Length(max=200)])
    policy_version = StringField(_l("Policy version"), validators=[Optional(), Length(max=40)])
    policy_text = TextAreaField(_l("Exact policy text to acknowledge"), validators=[Optional(), Length(max=200000)])
    pass_mark = IntegerField(_l("Pass mark (%)"), default=60, validators=[InputRequired(), NumberRange(0, 100)])
    time_limit_minutes = IntegerField(_l("Time limit (minutes, 0 = none)"), default=0,
                                      validators=[InputRequired(), NumberRange(0, 1440)])
    max_attempts = IntegerField(_l("Maximum attempts (0 = unlimited)"), default=0,
                                validators=[InputRequired(), NumberRange(0, 100)])
    cooloff_hours = IntegerField(_l("Cooling-off between attempts (hours)"), default=0,
                                 validators=[InputRequired(), NumberRange(0, 8760)])
    show_answers = SelectField(_l("Correct answers"), choices=list(SHOW_LABELS.items()))


class LessonForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Text (Markdown)"), validators=[Optional(), Length(max=200000)])


class FileForm(FlaskForm):
    file = FileField(_l("File"))


class QuestionForm(FlaskForm):
    kind = SelectField(_l("Type"), choices=list(KIND_LABELS.items()))
    category = StringField(_l("Category"), validators=[Optional(), Length(max=60)])
    prompt = TextAreaField(_l("Question"), validators=[DataRequired(), Length(max=5000)])
    options = TextAreaField(_l("Options (choice questions: one per line, A, B, C ...)"),
                            validators=[Optional(), Length(max=5000)])
    answer = StringField(_l("Answer: letters such as A or A,C; true or false; accepted fill-in answers "
                            "separated by |"), validators=[Optional(), Length(max=2000)])
    exact = BooleanField(_l("Fill-in: exact match only (otherwise case, width and spacing are ignored)"))
    explanation = TextAreaField(_l("Explanation shown with the correct answer"),
                                validators=[Optional(), Length(max=5000)])


class AssignForm(FlaskForm):
    target_type = RadioField(_l("Assign to"), choices=list(TARGET_LABELS.items()), default="department")
    people = TextAreaField(_l("Employee numbers (one per line or comma-separated)"),
                           validators=[Optional(), Length(max=20000)])
    department_id = SelectField(_l("Department"), choices=[], validators=[Optional()])
    include_subdepartments = BooleanField(_l("Include sub-departments"), default=True)
    position_id = SelectField(_l("Position"), choices=[], validators=[Optional()])
    due_date = DateField(_l("Due date"), validators=[InputRequired()])
    new_hire_days = IntegerField(_l("Days given to people who join the group later"), default=30,
                                 validators=[InputRequired(), NumberRange(1, 365)])


class AckForm(FlaskForm):
    password = PasswordField(_l("Your password (to sign)"), validators=[DataRequired(), Length(max=200)])
