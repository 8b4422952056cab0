from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    remember = BooleanField(_l("Keep me signed in on this device"))


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(), Length(max=200)])


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    employee_no = StringField(_l("Employee number (optional)"), validators=[Optional(), Length(max=40)])


class OverrideForm(FlaskForm):
    permission = SelectField(_l("Permission"), validators=[DataRequired()])
    effect = SelectField(_l("Effect"), choices=[("deny", _l("Deny")), ("grant", _l("Grant"))])
    expires_at = DateTimeLocalField(_l("Until (optional)"), format="%Y-%m-%dT%H:%M",
                                    validators=[Optional()])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])
