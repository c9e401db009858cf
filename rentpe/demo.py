"""Deterministic demo data for the embedded default (no network needed)."""
from sqlalchemy import func, select

from .accounts import services as accounts
from .accounts.models import User
from .extensions import db

PASSWORD = "rentpe-demo"
ACCOUNTS = [
    # email, display name, seller profile (shop, city, bio) or None, moderator
    ("buyer@demo.rentpe.test", "Asha Verma", None, False),
    ("seller@demo.rentpe.test", "Ravi Kumar", ("Kumar Events & Venues", "Mumbai",
     "Banquet halls, lawns and terraces for birthdays and weddings since 2009."), False),
    ("seller2@demo.rentpe.test", "Meera Nair", ("Glow Decor & Lights", "Bengaluru",
     "Stage decor, fairy lights, furniture and sound for every kind of celebration."), False),
    ("moderator@demo.rentpe.test", "Mod Team", None, True),
]


def seed_if_empty():
    """Seed the demo accounts and listings into an empty database. True if it seeded."""
    if db.session.scalar(select(func.count()).select_from(User)):
        return False
    users = {}
    for email, name, shop, moderator in ACCOUNTS:
        user = accounts.create_user(email, PASSWORD, name, moderator=moderator)
        if shop:
            accounts.become_seller(user, *shop)
        users[email] = user
    from .listings import demo as listings_demo

    listings_demo.seed(users)
    from .bookings import demo as bookings_demo

    bookings_demo.seed(users)
    return True


def logins_text():
    lines = ["Demo logins (password: %s):" % PASSWORD]
    lines += [f"  {email:<30} {role}" for email, role in (
        ("buyer@demo.rentpe.test", "buyer"),
        ("seller@demo.rentpe.test", "seller"),
        ("seller2@demo.rentpe.test", "seller"),
        ("moderator@demo.rentpe.test", "moderator"),
    )]
    return "\n".join(lines)
