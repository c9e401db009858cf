"""Rate limits: log-in failures per account and per address, sign-ups per address.

Over a limit the form comes back with a readable message and a 429 (for htmx, the form fragment
alone), nothing is stored, and the limit counts the same across app processes when Redis holds
the counters. Every test here turns the limits on for itself (tests/conftest.py turns them off).
"""
import re
import secrets

import limits
import pytest
import redis

from rentpe import create_app, ratelimits
from rentpe.accounts.models import User
from rentpe.extensions import db

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def app_overrides():
    return {"RATELIMIT_ENABLED": True}


def allowance(rule):
    """The smallest amount in a rule: how many requests pass before the first refusal."""
    return min(item.amount for item in limits.parse_many(rule.value))


def fail_login(client, email, address="127.0.0.1", **kwargs):
    return client.post("/login", {"email": email, "password": "not-the-password"},
                       environ_base={"REMOTE_ADDR": address}, **kwargs)


def user_count():
    return db.session.scalar(db.select(db.func.count()).select_from(User))


def signup(client, n, address="127.0.0.1", **kwargs):
    return client.post("/signup", {
        "display_name": f"Member {n}", "email": f"member{n}-{secrets.token_hex(3)}@example.test",
        "password": "long-enough-pw", "confirm": "long-enough-pw",
    }, environ_base={"REMOTE_ADDR": address}, **kwargs)


# Log-in, per account ---------------------------------------------------------------------------


def test_failed_logins_for_one_account_are_limited_and_then_even_the_right_password_waits(client, buyer):
    for attempt in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT)):
        # The same account however the e-mail is typed.
        email = buyer.email.upper() if attempt % 2 else f"  {buyer.email}"
        assert fail_login(client, email).status_code == 422

    response = client.post("/login", {"email": buyer.email, "password": "password123"})

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert '<form id="login-form"' in page and "<html" in page
    assert "Too many failed log-ins for this account. Please try again in 15 minutes." in page
    assert f'value="{buyer.email}"' in page  # the form keeps what was typed
    assert 14 * 60 < int(response.headers["Retry-After"]) <= 15 * 60 + 1  # whole seconds, rounded up
    assert "Log out" not in client.get("/").get_data(as_text=True)


def test_the_account_limit_does_not_touch_other_accounts(client, buyer, seller):
    for _ in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT)):
        fail_login(client, buyer.email)

    assert fail_login(client, buyer.email).status_code == 429
    assert client.login(seller).status_code == 302


def test_successful_logins_never_count(make_client, buyer):
    for _ in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT) + 2):
        client = make_client()
        assert client.login(buyer).status_code == 302


def test_a_refused_htmx_login_gets_the_form_fragment(client, buyer):
    for _ in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT)):
        fail_login(client, buyer.email)

    response = fail_login(client, buyer.email, htmx=True)

    assert response.status_code == 429
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<form id="login-form"') and "<html" not in fragment
    assert '<p class="form-error" role="alert">Too many failed log-ins for this account.' in fragment


# Log-in, per address ---------------------------------------------------------------------------


def test_failed_logins_from_one_address_are_limited_across_accounts(client, buyer):
    for n in range(allowance(ratelimits.LOGIN_FAILURES_PER_ADDRESS)):
        assert fail_login(client, f"guess{n}@example.test", address="203.0.113.7").status_code == 422

    refused = client.post("/login", {"email": buyer.email, "password": "password123"},
                          environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert refused.status_code == 429
    assert "Too many failed log-ins from your network. Please try again in 15 minutes." in refused.get_data(as_text=True)

    elsewhere = client.post("/login", {"email": buyer.email, "password": "password123"},
                            environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert elsewhere.status_code == 302


# Sign-up, per address --------------------------------------------------------------------------


def test_accounts_created_from_one_address_are_limited_and_the_refused_one_is_not_stored(make_client):
    allowed = allowance(ratelimits.SIGNUPS_PER_ADDRESS)
    for n in range(allowed):
        assert signup(make_client(), n, address="203.0.113.8").status_code == 302

    response = signup(make_client(), "refused", address="203.0.113.8")

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert '<form id="signup-form"' in page
    assert "Too many new accounts from your network. Please try again in 60 minutes." in page
    assert "Member refused" in page  # what was typed is still there
    assert user_count() == allowed
    assert signup(make_client(), "other", address="198.51.100.10").status_code == 302


def test_sign_up_attempts_are_limited_even_when_they_fail(client, buyer):
    for _ in range(allowance(ratelimits.SIGNUP_ATTEMPTS_PER_ADDRESS)):
        response = client.post("/signup", {"display_name": "Probe", "email": buyer.email,
                                           "password": "long-enough-pw", "confirm": "long-enough-pw"})
        assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)

    response = client.post("/signup", {"display_name": "Probe", "email": buyer.email,
                                       "password": "long-enough-pw", "confirm": "long-enough-pw"}, htmx=True)

    assert response.status_code == 429
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<form id="signup-form"')
    assert "Too many sign-up attempts from your network. Please try again in 60 minutes." in fragment
    assert "already exists" not in fragment


def test_looking_at_the_forms_is_never_limited(client):
    for _ in range(allowance(ratelimits.SIGNUP_ATTEMPTS_PER_ADDRESS) + 5):
        assert client.get("/signup").status_code == 200
        assert client.get("/login").status_code == 200


# Storage and switches --------------------------------------------------------------------------


@pytest.fixture
def redis_prefix():
    prefix = f"rentpe-test-limits-{secrets.token_hex(4)}"
    yield prefix
    connection = redis.Redis.from_url(REDIS_URL)
    keys = list(connection.scan_iter(f"{prefix}:*"))
    if keys:
        connection.delete(*keys)
    connection.close()


def test_with_redis_the_counters_outlive_the_process_and_are_shared(app, redis_prefix, buyer):
    settings = {**app.config, "RATELIMIT_STORAGE_URI": REDIS_URL,
                "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": redis_prefix}}
    first = create_app(settings)
    client = first.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    for _ in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT)):
        response = client.post("/login", data={"email": buyer.email, "password": "nope", "csrf_token": token})
        assert response.status_code == 422
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}:*"))

    second = create_app(settings)  # another worker, or this one restarted: memory would start at zero
    client = second.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"email": buyer.email, "password": "password123", "csrf_token": token})

    assert response.status_code == 429


def test_when_redis_is_unreachable_limits_still_hold_in_memory(app, buyer):
    # Port 9 (discard) on localhost: nothing listens, so every Redis call fails at once.
    settings = {**app.config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:9/0"}
    client = create_app(settings).test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    for _ in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT)):
        response = client.post("/login", data={"email": buyer.email, "password": "nope", "csrf_token": token})
        assert response.status_code == 422

    response = client.post("/login", data={"email": buyer.email, "password": "password123", "csrf_token": token})

    assert response.status_code == 429


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": False}])
def test_limits_can_be_switched_off(client, buyer):
    for _ in range(allowance(ratelimits.LOGIN_FAILURES_PER_ACCOUNT) + 1):
        assert fail_login(client, buyer.email).status_code == 422
    assert client.login(buyer).status_code == 302


def test_every_limit_value_parses_and_says_what_it_limits():
    rules = [value for value in vars(ratelimits).values() if isinstance(value, ratelimits.Rule)]
    assert len(rules) >= 4
    for rule in rules:
        assert limits.parse_many(rule.value)
        assert rule.message(600) == f"Too many {rule.what}. Please try again in 10 minutes."


# Photo uploads, per user -----------------------------------------------------------------------


@pytest.fixture
def limiter_storage_alive():
    """Flask-Limiter keeps "the storage is dead" on its one global object across apps (init_app
    doesn't reset it): after the unreachable-Redis test above, a later app would count in its
    fallback and switch back mid-test, splitting the counts. A fresh worker starts alive."""
    from rentpe.extensions import limiter

    limiter._storage_dead = False


def test_photo_uploads_are_limited_per_user_and_a_listing_without_photos_is_not_counted(limiter_storage_alive, client,
                                                                                          seller, listing):
    from rentpe.listings.models import Listing, ListingPhoto
    from tests.helpers import jpeg, listing_form, upload

    client.login(seller)
    for _ in range(3):  # saved without photos: never counted
        assert client.post("/listings/new", listing_form(title="No photos yet")).status_code == 302
    for n in range(allowance(ratelimits.PHOTO_UPLOADS_PER_USER)):
        assert client.post(f"/listings/{listing.id}/photos", {"photos": [upload(jpeg((64, 48)), "a.jpg")]}).status_code in (302, 422)
        db.session.execute(db.delete(ListingPhoto))  # room for the next one (eight at most per listing)
        db.session.commit()
    listings_before = db.session.scalar(db.select(db.func.count()).select_from(Listing))

    refused = client.post("/listings/new", {**listing_form(title="Hall with photos"), "photos": [upload(jpeg(), "b.jpg")]})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    page = refused.get_data(as_text=True)
    assert "Too many photo uploads" in page and 'value="Hall with photos"' in page
    assert db.session.scalar(db.select(db.func.count()).select_from(Listing)) == listings_before
    again = client.post(f"/listings/{listing.id}/photos", {"photos": [upload(jpeg((64, 48)), "a.jpg")]})
    assert again.status_code == 429 and "Too many photo uploads" in again.get_data(as_text=True)
