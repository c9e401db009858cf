"""Report and moderator forms: parsing only. The rules (reasons, note lengths) live in services."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from .models import APPEAL, APPEAL_REASONS, NOTE_MAX, REASONS


class ReportForm(FlaskForm):
    reason = RadioField("Why are you reporting this?", choices=[SelectChoice(key, label) for key, label in REASONS.items()],
                        validators=[InputRequired("Choose a reason.")])
    note = TextAreaField("Anything a moderator should know? (optional)",
                         render_kw={"maxlength": NOTE_MAX, "rows": 4})

    def appeal(self):
        """The form as a seller's appeal against a decision on their listing."""
        self.reason.label.text = "What are you asking for?"
        self.reason.choices = [SelectChoice(key, label) for key, label in APPEAL_REASONS.items()]
        if not self.reason.data:
            self.reason.data = APPEAL
        self.note.label.text = "Why should the listing be back? (a moderator reads this)"


class ActionForm(FlaskForm):
    """Every moderator action: why (kept in the audit log), the report it answers, where to go back."""

    reason = TextAreaField("Reason", render_kw={"maxlength": NOTE_MAX, "rows": 2, "required": True})
    report_id = HiddenField()


class ResolveForm(FlaskForm):
    note = TextAreaField("Resolution note", render_kw={"maxlength": NOTE_MAX, "rows": 3, "required": True})
