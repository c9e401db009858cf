"""Listing and photo forms. Photos are checked by content in `photos.py`, not here by file name."""
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import IntegerField, RadioField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import TextInput

from ..templating import rupees
from .models import CATEGORIES, PRICE_UNITS
from .services import MAX_AMOUNT, MAX_CAPACITY


def strip(value):
    return value.strip() if isinstance(value, str) else value


class RupeeField(IntegerField):
    """Whole rupees, written the way people do: '25,000', '₹ 1,20,000' and '25000' all work."""

    widget = TextInput()

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return rupees(self.data).removeprefix("₹") if isinstance(self.data, int) else ""

    def process_formdata(self, valuelist):
        if valuelist and isinstance(valuelist[0], str):
            valuelist = [valuelist[0].replace(",", "").replace("₹", "").replace(" ", "")]
        super().process_formdata(valuelist)


class ListingForm(FlaskForm):
    title = StringField(
        "Title", filters=[strip], validators=[DataRequired("Give your listing a title."), Length(min=5, max=120)],
    )
    category = SelectField(
        "Category",
        choices=[SelectChoice("", "Choose a category…"), *(SelectChoice(k, v) for k, v in CATEGORIES.items())],
        validators=[InputRequired("Choose a category.")],
    )
    description = TextAreaField(
        "Description",
        filters=[strip],
        validators=[DataRequired("Describe what you rent out."), Length(min=20, max=5000)],
    )
    city = StringField("City", filters=[strip], validators=[DataRequired("Which city is it in?"), Length(min=2, max=60)])
    area = StringField("Area or locality", filters=[strip], validators=[Optional(), Length(max=80)])
    price = RupeeField(
        "Price (₹)",
        validators=[InputRequired("Set a price."), NumberRange(min=1, max=MAX_AMOUNT, message="Enter a price from ₹1 to ₹1,00,00,000.")],
    )
    price_unit = RadioField("Price is", choices=[SelectChoice(k, v) for k, v in PRICE_UNITS.items()], default="day")
    deposit = RupeeField(
        "Security deposit (₹)",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=MAX_AMOUNT, message="Enter a deposit from ₹0 to ₹1,00,00,000.")],
    )
    capacity = IntegerField(
        "Capacity (guests)",
        validators=[Optional(), NumberRange(min=1, max=MAX_CAPACITY, message=f"Enter 1 to {MAX_CAPACITY:,} guests.")],
    )
    photos = MultipleFileField("Photos")
    publish = SubmitField("Publish")
    save = SubmitField("Save draft")

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        # Optional() ends the capacity chain when empty, so the venue rule lives here.
        if self.category.data == "venues" and self.capacity.data is None and not self.capacity.errors:
            self.capacity.errors = [*self.capacity.errors, "Venues need a capacity: how many guests fit?"]
            valid = False
        return valid

    def listing_fields(self):
        return {
            "title": self.title.data,
            "category": self.category.data,
            "description": self.description.data,
            "city": self.city.data,
            "area": self.area.data or "",
            "price": self.price.data,
            "price_unit": self.price_unit.data,
            "deposit": self.deposit.data or 0,
            "capacity": self.capacity.data if self.category.data == "venues" else None,
        }


class PhotoForm(FlaskForm):
    photos = MultipleFileField("Add photos")
