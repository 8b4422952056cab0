from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.notices.models import KINDS

KIND_LABELS = {"warning": _l("Warning"), "termination": _l("Termination"),
               "policy_change": _l("Policy change"), "other": _l("Other")}


class NoticeForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[(k, KIND_LABELS[k]) for k in KINDS])
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=20000)])
    recipients = TextAreaField(_l("Recipients (employee numbers or usernames, one per line or comma-separated)"),
                               validators=[DataRequired(), Length(max=20000)])
    requires_ack = BooleanField(_l("The recipient must acknowledge with an electronic signature"), default=True)


class AckForm(FlaskForm):
    password = PasswordField(_l("Your password (to sign)"), validators=[DataRequired(), Length(max=200)])
