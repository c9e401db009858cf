import email_validator
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional, Regexp

from .models import NOTIFY_DAILY, NOTIFY_HOURLY, NOTIFY_IMMEDIATE, NOTIFY_NEVER

# The demo accounts live under the reserved `.test` domain (RFC 2606); accept it for sign-up too.
email_validator.SPECIAL_USE_DOMAIN_NAMES = [d for d in email_validator.SPECIAL_USE_DOMAIN_NAMES if d != "test"]


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=200)])
    remember = BooleanField("Keep me logged in")


class SignupForm(FlaskForm):
    display_name = StringField("Your name", validators=[InputRequired(), Length(min=2, max=60)])
    email = EmailField("E-mail", validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(min=8, max=200)])
    confirm = PasswordField(
        "Repeat password", validators=[InputRequired(), EqualTo("password", message="Passwords don't match.")]
    )


class SellerProfileForm(FlaskForm):
    shop_name = StringField("Shop name", validators=[InputRequired(), Length(min=2, max=80)])
    city = StringField("City", validators=[InputRequired(), Length(min=2, max=60)])
    bio = TextAreaField("About your shop", validators=[Optional(), Length(max=1000)])
    phone = StringField(
        "Phone (optional)",
        validators=[Optional(), Length(max=20), Regexp(r"^\+?[0-9 ()-]{6,20}$", message="Enter a valid phone number.")],
    )


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[InputRequired(), Length(min=8, max=200)])
    confirm = PasswordField(
        "Repeat new password", validators=[InputRequired(), EqualTo("password", message="Passwords don't match.")]
    )


class ProfileForm(FlaskForm):
    display_name = StringField("Your name", validators=[InputRequired(), Length(min=2, max=60)])
    email = EmailField("E-mail", validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)])
    # Asked only when the e-mail changes: the address is where a password reset would go.
    current = PasswordField("Current password (to change your e-mail)", validators=[Optional(), Length(max=200)])


NOTIFY_LABELS = {
    NOTIFY_IMMEDIATE: "Right away (a few minutes after a message I haven't read)",
    NOTIFY_HOURLY: "At most once an hour",
    NOTIFY_DAILY: "Once a day, a digest of everything unread",
    NOTIFY_NEVER: "Never",
}


class NotificationsForm(FlaskForm):
    notify_email = RadioField("E-mail me about unread messages", choices=[SelectChoice(key, label) for key, label in NOTIFY_LABELS.items()],
                              validators=[InputRequired(message="Choose one.")])
