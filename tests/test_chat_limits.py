"""Rate limits on chat: messages per user, new conversations for new accounts, typing notices.

Over a limit the answer is a 429 with the message where the action was (the composer, the
listing's contact form), and nothing is stored or sent. The limits are on for these tests only
(tests/conftest.py turns them off everywhere else).
"""
from datetime import timedelta

import limits
import pytest

from rentpe import ratelimits
from rentpe.accounts.models import User
from rentpe.extensions import db
from rentpe.models_base import utcnow
from tests.board_helpers import make_board
from tests.chat_helpers import contact, conversation_count, conversation_id_from, message_count


@pytest.fixture
def app_overrides():
    return {"RATELIMIT_ENABLED": True}


def allowance(rule):
    return min(item.amount for item in limits.parse_many(rule.value))


def send(client, cid, body, key, htmx=True):
    return client.post(f"/conversations/{cid}/messages", {"body": body, "client_key": key}, htmx=htmx)


def age(user, days):
    db.session.get(User, user.id).created_at = utcnow() - timedelta(days=days)
    db.session.commit()


@pytest.fixture
def conversation_id(buyer_client, listing):
    return conversation_id_from(contact(buyer_client, listing, "First question"))


# Messages per user ------------------------------------------------------------------------------


def test_messages_over_the_limit_are_refused_in_the_composer_and_not_stored(buyer_client, conversation_id):
    for n in range(allowance(ratelimits.MESSAGES_PER_USER) - 1):  # the first contact counted too
        assert send(buyer_client, conversation_id, f"message {n}", f"limit-key-{n:05d}").status_code == 200
    stored = message_count()

    response = send(buyer_client, conversation_id, "one too many", "limit-key-over1")

    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60
    html = response.get_data(as_text=True)
    assert html.startswith(f'<form id="conv-{conversation_id}-composer"') and "<html" not in html
    assert "Too many messages. Please try again in a minute." in html
    assert ">one too many</textarea>" in html  # what was typed is kept
    assert 'value="limit-key-over1"' in html  # and so is its key: a retry later stores it once
    assert message_count() == stored


def test_without_javascript_the_refusal_is_the_conversation_page_with_the_composer_error(
        buyer_client, conversation_id):
    for n in range(allowance(ratelimits.MESSAGES_PER_USER) - 1):
        send(buyer_client, conversation_id, f"message {n}", f"nojs-key-{n:05d}", htmx=False)

    response = send(buyer_client, conversation_id, "still typing", "nojs-key-over1", htmx=False)

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "<html" in page and f'id="conv-{conversation_id}-messages"' in page
    assert 'class="field-error composer-error" role="alert">Too many messages.' in page
    assert ">still typing</textarea>" in page


def test_the_message_limit_counts_across_conversations_and_boards(buyer_client, buyer, make_listing,
                                                                  make_seller, seller):
    cids = [conversation_id_from(contact(buyer_client, make_listing(seller=s), "Hi"))
            for s in (seller, make_seller())]
    board_id = make_board(buyer, sellers=[seller])
    targets = [*cids, board_id]
    for n in range(allowance(ratelimits.MESSAGES_PER_USER) - 2):
        assert send(buyer_client, targets[n % 3], f"round {n}", f"across-key-{n:05d}").status_code == 200

    assert send(buyer_client, board_id, "and one more", "across-key-over1").status_code == 429


def test_refused_sends_do_not_use_up_the_allowance(buyer_client, conversation_id):
    for n in range(allowance(ratelimits.MESSAGES_PER_USER) + 3):
        assert send(buyer_client, conversation_id, "   ", f"blank-key-{n:05d}").status_code == 422

    assert send(buyer_client, conversation_id, "a real one", "blank-key-real1").status_code == 200


def test_one_persons_limit_is_not_the_others(buyer_client, conversation_id, make_client, seller):
    for n in range(allowance(ratelimits.MESSAGES_PER_USER) - 1):
        send(buyer_client, conversation_id, f"message {n}", f"mine-key-{n:05d}")
    assert send(buyer_client, conversation_id, "over", "mine-key-over01").status_code == 429

    seller_client = make_client()
    seller_client.login(seller)
    assert send(seller_client, conversation_id, "The seller still answers", "seller-key-00001").status_code == 200


def test_a_contact_over_the_message_limit_is_refused_on_the_listing(buyer_client, listing, make_listing, seller):
    cid = conversation_id_from(contact(buyer_client, listing, "First"))
    for n in range(allowance(ratelimits.MESSAGES_PER_USER) - 1):
        send(buyer_client, cid, f"message {n}", f"contact-key-{n:05d}")
    stored = message_count()

    response = contact(buyer_client, make_listing(seller=seller), "About your other listing")

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many messages." in page and "About your other listing</textarea>" in page
    assert message_count() == stored


# New conversations for new accounts ------------------------------------------------------------------


def test_a_new_account_opens_a_limited_number_of_conversations_a_day(buyer_client, make_listing, make_seller):
    allowed = allowance(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT)
    for _ in range(allowed):
        conversation_id_from(contact(buyer_client, make_listing(seller=make_seller()), "Hello"))

    response = contact(buyer_client, make_listing(seller=make_seller()), "Hello again")

    assert response.status_code == 429
    assert "Too many new conversations today for a new account." in response.get_data(as_text=True)
    assert conversation_count() == allowed


def test_writing_again_to_a_seller_one_talks_with_is_not_a_new_conversation(buyer_client, make_listing,
                                                                           make_seller, seller, listing):
    first = conversation_id_from(contact(buyer_client, listing, "Hello"))
    for _ in range(allowance(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT) - 1):
        conversation_id_from(contact(buyer_client, make_listing(seller=make_seller()), "Hello"))

    assert conversation_id_from(contact(buyer_client, make_listing(seller=seller), "And this one?")) == first


def test_established_accounts_open_conversations_without_that_limit(client, buyer, make_listing, make_seller):
    age(buyer, ratelimits.NEW_ACCOUNT_DAYS + 1)
    client.login(buyer)
    for _ in range(allowance(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT) + 2):
        conversation_id_from(contact(client, make_listing(seller=make_seller()), "Hello"))


# Typing ---------------------------------------------------------------------------------------------


def test_typing_notices_over_the_limit_are_dropped_quietly(buyer_client, conversation_id):
    url = f"/conversations/{conversation_id}/typing"
    for _ in range(allowance(ratelimits.TYPING_PER_USER)):
        assert buyer_client.post(url, htmx=True).status_code == 204

    response = buyer_client.post(url, htmx=True)

    assert response.status_code == 429
    assert response.get_data(as_text=True) == ""  # the composer swaps nothing (hx-swap="none")
    assert send(buyer_client, conversation_id, "Sending still works", "typing-key-00001").status_code == 200
