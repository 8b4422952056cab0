from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import Length, Optional, ValidationError


class AuditFilterForm(FlaskForm):
    """GET filters of the trail and its export (read-only, so no CSRF token)."""

    class Meta:
        csrf = False

    actor = StringField(_l("Actor (username)"), validators=[Optional(), Length(max=120)],
                        filters=[lambda v: (v or "").strip()])
    action = StringField(_l("Action starts with"), validators=[Optional(), Length(max=80)],
                         filters=[lambda v: (v or "").strip()])
    target_type = StringField(_l("Target type"), validators=[Optional(), Length(max=60)],
                              filters=[lambda v: (v or "").strip()])
    target_id = StringField(_l("Target id"), validators=[Optional(), Length(max=60)],
                            filters=[lambda v: (v or "").strip()])
    date_from = DateField(_l("From (date)"), validators=[Optional()])
    date_to = DateField(_l("To (date)"), validators=[Optional()])

    def validate_date_to(self, field):
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_l("The end date is before the start date."))
