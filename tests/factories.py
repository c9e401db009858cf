"""factory_boy factories and the fixtures that build people and listings for tests."""
import factory
import pytest
from factory.alchemy import SQLAlchemyModelFactory
from werkzeug.security import generate_password_hash

from rentpe.accounts.models import SellerProfile, User
from rentpe.extensions import db
from rentpe.listings.models import LIVE, Listing

PASSWORD = "password123"
# Hashed once, and with a small scrypt work factor: hundreds of test users share the password and
# every `client.login` verifies it (the default factor costs ~125 ms per log-in; this ~2 ms).
PASSWORD_HASH = generate_password_hash(PASSWORD, method="scrypt:1024:8:1")


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "commit"


class UserFactory(Base):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    display_name = factory.Sequence(lambda n: f"User {n}")
    password_hash = PASSWORD_HASH
    is_moderator = False


class SellerProfileFactory(Base):
    class Meta:
        model = SellerProfile

    user = factory.SubFactory(UserFactory)
    shop_name = factory.Sequence(lambda n: f"Shop {n}")
    city = "Mumbai"
    bio = "We rent things."


class ListingFactory(Base):
    class Meta:
        model = Listing

    seller = factory.LazyFunction(lambda: SellerProfileFactory().user)
    title = factory.Sequence(lambda n: f"Banquet hall {n}")
    category = "venues"
    description = "A bright hall for birthdays and weddings, with parking and catering."
    city = "Mumbai"
    area = "Andheri"
    price = 25000
    price_unit = "day"
    deposit = 5000
    capacity = 200
    status = LIVE


@pytest.fixture
def make_user(app):
    def make(**kwargs):
        return UserFactory(**kwargs)

    return make


@pytest.fixture
def make_seller(app):
    def make(**kwargs):
        return SellerProfileFactory(user=UserFactory(**kwargs)).user

    return make


@pytest.fixture
def make_listing(app):
    def make(**kwargs):
        return ListingFactory(**kwargs)

    return make


@pytest.fixture
def buyer(make_user):
    return make_user(display_name="Asha Verma", email="asha@example.test")


@pytest.fixture
def seller(make_seller):
    return make_seller(display_name="Ravi Kumar", email="ravi@example.test")


@pytest.fixture
def moderator(make_user):
    return make_user(display_name="Mod", email="mod@example.test", is_moderator=True)


@pytest.fixture
def listing(make_listing, seller):
    return make_listing(seller=seller)


__all__ = [
    "PASSWORD", "UserFactory", "SellerProfileFactory", "ListingFactory",
    "make_user", "make_seller", "make_listing", "buyer", "seller", "moderator", "listing",
]
