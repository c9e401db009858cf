"""State changes for accounts. Each function owns its transaction."""
from sqlalchemy import bindparam, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from .models import SellerProfile, User

# scrypt is Werkzeug's default and a current memory-hard algorithm.
PASSWORD_METHOD = "scrypt"
# Checked against when the e-mail is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=PASSWORD_METHOD)


class AccountError(ValueError):
    """A rule of the domain was broken; the message is shown to the user."""


class AccountSuspended(AccountError):
    """The right password for a suspended account: said only to someone who knows the password."""

    def __init__(self):
        super().__init__("This account is suspended by our moderators, so you can't log in. "
                         "Write to support if you think this is a mistake.")


def normalise_email(email):
    return (email or "").strip().lower()


def get_user_by_email(email):
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


# Every request of a logged-in user runs this: built once (`Session.get` builds its statement and
# computes the statement's cache key again on every call).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def load_user_from_session(token):
    """Flask-Login user loader: `token` is `<id>:<session_generation>` (see `User.get_id`)."""
    user_id, _, generation = (token or "").partition(":")
    if not user_id.isdigit() or not generation.isdigit():
        return None
    user = db.session.execute(_USER_BY_ID, {"user_id": int(user_id)}).scalar_one_or_none()
    if user is None or user.session_generation != int(generation) or user.is_suspended:
        return None
    return user


def create_user(email, password, display_name=None, *, moderator=False):
    email = normalise_email(email)
    if db.session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise AccountError("An account with this e-mail already exists.")
    user = User(
        email=email,
        display_name=(display_name or email.split("@")[0]).strip()[:60],
        password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
        is_moderator=moderator,
    )
    db.session.add(user)
    db.session.commit()
    return user


def authenticate(email, password):
    """The user for these credentials, or None. Suspended users cannot log in (AccountSuspended)."""
    user = get_user_by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or ""):
        return None
    if user.is_suspended:
        raise AccountSuspended()
    return user


def become_seller(user, shop_name, city, bio="", phone=None):
    profile = user.seller_profile or SellerProfile(user=user)
    profile.shop_name = shop_name.strip()
    profile.city = city.strip()
    profile.bio = (bio or "").strip()
    profile.phone = (phone or "").strip() or None
    db.session.add(profile)
    db.session.commit()
    return profile


def end_all_sessions(user):
    """Every session and remember cookie of this user stops working on its next request, and
    their open streams end now (they reconnect, get a 401 and stop)."""
    from .. import realtime

    user.session_generation += 1
    db.session.commit()
    realtime.end_streams(user.id)
