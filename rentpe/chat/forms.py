from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField


class MessageForm(FlaskForm):
    """CSRF only: the body's rules live in `services.clean_body`, shared with every sender."""

    body = TextAreaField("Message")
    client_key = HiddenField()
