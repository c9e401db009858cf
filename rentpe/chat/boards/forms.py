"""Board forms: parsing only. The rules (lengths, dates, who may be invited) live in services and
queries, shared with every caller."""
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, HiddenField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget


class BoardForm(FlaskForm):
    title = StringField("Board name", validators=[InputRequired("Give the board a name.")],
                        render_kw={"maxlength": 80, "placeholder": "Meera & Arjun's wedding"})
    event_date = DateField("Event date", validators=[InputRequired("When is the event? Pick a date.")])
    city = StringField("City", validators=[InputRequired("Which city is the event in?")],
                       render_kw={"maxlength": 60, "placeholder": "Mumbai"})


class InviteForm(FlaskForm):
    sellers = SelectMultipleField("Sellers", coerce=int, choices=[], validate_choice=True,
                                  widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())
    email = EmailField("Co-organiser's e-mail", validators=[Optional(), Length(max=254)],
                       render_kw={"placeholder": "friend@example.com"})


class ShareForm(FlaskForm):
    # Any listing the member may see can be shared (checked by the listing guard); the choices
    # offered are their saved listings and the board's sellers' listings.
    listing_id = SelectField("Listing", coerce=int, choices=[], validate_choice=False)
    body = TextAreaField("Note", validators=[Optional()])
    client_key = HiddenField()
