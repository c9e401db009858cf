"""State changes for accounts. Each function owns its transaction."""
import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import bindparam, delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models_base import utcnow
from .models import NOTIFY_CHOICES, SellerProfile, User, UserSession

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


def _key_hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


# Every request of a logged-in user runs this: built once (`Session.get` builds its statement and
# computes the statement's cache key again on every call). One statement reads the user and checks
# that the log-in is still open.
_USER_BY_SESSION = (
    select(User)
    .join(UserSession, UserSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), UserSession.key_hash == bindparam("key_hash"),
           UserSession.expires_at > bindparam("now"))
)


def load_user_from_session(token):
    """Flask-Login user loader: `token` is `<id>:<session_generation>:<session key>` (see
    `User.get_id`), from the session cookie or the remember cookie. None unless that log-in is
    still open, the generation current and the account not suspended."""
    user_id, _, rest = (token or "").partition(":")
    generation, _, key = rest.partition(":")
    if not user_id.isdigit() or not generation.isdigit() or not key or len(key) > 100:
        return None
    user = db.session.execute(
        _USER_BY_SESSION, {"user_id": int(user_id), "key_hash": _key_hash(key), "now": utcnow()}
    ).scalar_one_or_none()
    if user is None or user.session_generation != int(generation) or user.is_suspended:
        return None
    user.session_key = key
    return user


def open_session(user, lifetime):
    """A new log-in for `user`, valid for `lifetime` at most: sets `user.session_key`, which
    `User.get_id` puts into the cookies. The user's expired log-ins are swept on the way."""
    now = utcnow()
    key = secrets.token_urlsafe(32)
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    db.session.add(UserSession(key_hash=_key_hash(key), user_id=user.id, created_at=now,
                               expires_at=now + (lifetime or timedelta(days=30))))
    db.session.commit()
    user.session_key = key
    return key


def close_session(user):
    """Log-out: the log-in `user` was loaded for stops working, from every copy of its cookies,
    and the user's open streams end (the user's other log-ins reconnect at once)."""
    from .. import realtime

    if user.session_key:
        db.session.execute(delete(UserSession).where(UserSession.key_hash == _key_hash(user.session_key)))
        db.session.commit()
    realtime.end_streams(user.id)


def open_session_count(user):
    return db.session.scalar(select(func.count()).select_from(UserSession).where(
        UserSession.user_id == user.id, UserSession.expires_at > utcnow()))


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
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.session.commit()
    realtime.end_streams(user.id)


def change_password(user, current_password, new_password):
    """A new password ends every log-in of the user, this one included (the route opens a fresh
    one for the browser that made the change). AccountError when `current_password` is wrong."""
    if not check_password_hash(user.password_hash, current_password or ""):
        raise AccountError("That is not your current password.")
    user.password_hash = generate_password_hash(new_password, method=PASSWORD_METHOD)
    end_all_sessions(user)


def update_profile(user, display_name, email, current_password=None):
    """A new name, and a new e-mail address if `current_password` is right and no other account
    has it. AccountError says what is wrong."""
    email = normalise_email(email)
    if email != user.email:
        if not check_password_hash(user.password_hash, current_password or ""):
            raise AccountError("To change your e-mail, enter your current password.")
        if db.session.scalar(select(func.count()).select_from(User).where(User.email == email)):
            raise AccountError("An account with this e-mail already exists.")
        user.email = email
    user.display_name = " ".join(display_name.split())[:60]
    db.session.commit()


def set_notify_email(user, choice):
    if choice not in NOTIFY_CHOICES:
        raise AccountError("Choose one of the options.")
    user.notify_email = choice
    db.session.commit()
