"""The account page: name and e-mail, and how often unread messages are e-mailed."""
import re

from rentpe.accounts.models import User
from rentpe.extensions import db


def test_the_account_page_has_name_email_notifications_and_password(buyer_client):
    page = buyer_client.get("/account").get_data(as_text=True)
    for expected in ('action="/account/profile"', 'action="/account/notifications"', 'action="/account"',
                     "Once a day, a digest", 'value="Asha Verma"'):
        assert expected in page
    [checked] = re.findall(r'<input[^>]*\bchecked\b[^>]*>', page)
    assert 'value="immediate"' in checked


def test_a_new_name_is_saved(buyer_client, buyer):
    response = buyer_client.post("/account/profile", {"display_name": "  Asha   V. ", "email": buyer.email})
    assert response.status_code == 303
    assert db.session.get(User, buyer.id).display_name == "Asha V."


def test_a_new_email_needs_the_current_password_and_must_be_free(buyer_client, buyer, seller):
    refused = buyer_client.post("/account/profile", {"display_name": "Asha", "email": "asha.new@example.test"})
    assert refused.status_code == 422
    assert "To change your e-mail, enter your current password." in refused.get_data(as_text=True)
    taken = buyer_client.post("/account/profile", {"display_name": "Asha", "email": seller.email,
                                                   "current": "password123"})
    assert taken.status_code == 422 and "already exists" in taken.get_data(as_text=True)
    assert db.session.get(User, buyer.id).email == "asha@example.test"
    ok = buyer_client.post("/account/profile", {"display_name": "Asha", "email": "Asha.New@Example.test",
                                                "current": "password123"})
    assert ok.status_code == 303
    assert db.session.get(User, buyer.id).email == "asha.new@example.test"


def test_the_email_preference_is_saved_and_checked(buyer_client, buyer):
    for choice in ("hourly", "daily", "never", "immediate"):
        assert buyer_client.post("/account/notifications", {"notify_email": choice}).status_code == 303
        assert db.session.get(User, buyer.id).notify_email == choice
    bad = buyer_client.post("/account/notifications", {"notify_email": "weekly"})
    assert bad.status_code == 422
    assert db.session.get(User, buyer.id).notify_email == "immediate"


def test_settings_need_a_log_in(client):
    assert client.post("/account/notifications", {"notify_email": "never"}).status_code == 302
