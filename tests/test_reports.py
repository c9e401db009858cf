"""Reporting: anyone logged in reports a message, a conversation, a listing or a user they can see,
with a reason and an optional note; they see a confirmation, can't file the same open report
twice, can't report what they can't see, and are held to the reports rate limit."""
import re

import pytest

from rentpe import ratelimits
from rentpe.extensions import db
from rentpe.listings.models import PAUSED
from rentpe.moderation.models import Report
from tests.chat_helpers import contact, conversation_id_from, messages_in, shown_to


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


def reports():
    return db.session.scalars(db.select(Report).order_by(Report.id)).all()


@pytest.fixture
def talk(make_client, buyer, seller, listing):
    asha, ravi = logged_in(make_client, buyer), logged_in(make_client, seller)
    cid = conversation_id_from(contact(asha, listing, "Is the hall free?"))
    ravi.post(f"/conversations/{cid}/messages", {"body": "Pay me on my UPI, outside RentPe", "client_key": "scam-key-01"})
    [_, scam] = messages_in(cid)
    return asha, ravi, cid, scam


def test_a_buyer_reports_a_message_and_sees_a_confirmation(talk, buyer, seller):
    asha, ravi, cid, scam = talk
    page = shown_to(asha.get(f"/conversations/{cid}").get_data(as_text=True), buyer)
    assert f'href="/report/message/{scam.id}"' in page  # on their message, not on mine
    assert f'href="/report/message/{messages_in(cid)[0].id}"' not in page
    form = asha.get(f"/report/message/{scam.id}").get_data(as_text=True)
    assert "Report a message from Ravi Kumar" in form and 'value="off_platform"' in form

    response = asha.post(f"/report/message/{scam.id}", {"reason": "off_platform", "note": "  Wants UPI outside \r\n"})

    assert response.status_code == 303
    [report] = reports()
    assert (report.reporter_id, report.kind, report.target_id, report.reason, report.note) == (
        buyer.id, "message", scam.id, "off_platform", "Wants UPI outside")
    assert (report.subject_user_id, report.conversation_id, report.status) == (seller.id, cid, "open")
    assert response.headers["Location"].endswith(f"/reports/{report.id}")
    confirmation = asha.get(response.headers["Location"]).get_data(as_text=True)
    assert "Thank you, your report is sent" in confirmation
    # The confirmation is the reporter's own.
    assert ravi.get(f"/reports/{report.id}").status_code == 404


def test_the_same_report_twice_is_refused_while_the_first_is_open(talk):
    asha, ravi, cid, scam = talk
    asha.post(f"/report/message/{scam.id}", {"reason": "scam"})

    again = asha.post(f"/report/message/{scam.id}", {"reason": "spam", "note": "again"})

    assert again.status_code == 409
    assert "You already reported this" in again.get_data(as_text=True)
    assert "You already reported this" in asha.get(f"/report/message/{scam.id}").get_data(as_text=True)
    assert len(reports()) == 1
    # Another thing, or another person, is another report.
    assert asha.post(f"/report/conversation/{cid}", {"reason": "scam"}).status_code == 303
    assert len(reports()) == 2


def test_once_resolved_the_same_thing_can_be_reported_again(talk, moderator, make_client):
    asha, ravi, cid, scam = talk
    asha.post(f"/report/message/{scam.id}", {"reason": "scam"})
    mod = logged_in(make_client, moderator)
    assert mod.post(f"/admin/reports/{reports()[0].id}/resolve", {"note": "Warned"}).status_code == 303

    assert asha.post(f"/report/message/{scam.id}", {"reason": "scam", "note": "He did it again"}).status_code == 303
    assert [r.status for r in reports()] == ["resolved", "open"]


@pytest.mark.parametrize("data, status, error", [
    ({}, 422, "Choose a reason."),
    ({"reason": "because"}, 422, "Not a valid choice"),
    ({"reason": "contact_info"}, 422, "Not a valid choice"),  # the guard's reason isn't offered
    ({"reason": "other", "note": "x" * 1001}, 422, "at most 1,000 characters"),
])
def test_a_report_needs_an_offered_reason_and_a_short_note(client, buyer, listing, data, status, error):
    client.login(buyer)
    response = client.post(f"/report/listing/{listing.id}", data)
    assert response.status_code == status
    assert error in response.get_data(as_text=True)
    assert reports() == []


def test_listings_and_sellers_are_reported_from_their_pages(client, buyer, seller, listing):
    client.login(buyer)
    assert f'href="/report/listing/{listing.id}"' in client.get(f"/listings/{listing.id}").get_data(as_text=True)
    assert f'href="/report/user/{seller.id}"' in client.get(f"/sellers/{seller.id}").get_data(as_text=True)

    assert client.post(f"/report/listing/{listing.id}", {"reason": "scam"}).status_code == 303
    assert client.post(f"/report/user/{seller.id}", {"reason": "abusive", "note": "Rude"}).status_code == 303
    assert [(r.kind, r.target_id, r.subject_user_id) for r in reports()] == [
        ("listing", listing.id, seller.id), ("user", seller.id, seller.id)]


def test_nobody_reports_what_they_cannot_see(talk, make_client, make_user, make_listing, seller, buyer):
    asha, ravi, cid, scam = talk
    stranger = logged_in(make_client, make_user())
    paused = make_listing(seller=seller, status=PAUSED)
    quiet = make_user(display_name="Not a seller")  # no public page, no conversation with the stranger
    for url in (f"/report/message/{scam.id}", f"/report/conversation/{cid}", f"/report/listing/{paused.id}",
                f"/report/user/{quiet.id}", "/report/message/999999", "/report/user/999999"):
        assert stranger.get(url).status_code == 404, url
        assert stranger.post(url, {"reason": "spam"}).status_code == 404, url
    # Your own things are not yours to report.
    assert ravi.post(f"/report/message/{scam.id}", {"reason": "spam"}).status_code == 400
    assert ravi.post(f"/report/listing/{scam.listing_id or paused.id}", {"reason": "spam"}).status_code in (400, 404)
    assert asha.post(f"/report/user/{buyer.id}", {"reason": "spam"}).status_code == 400
    # A buyer who is not a seller can be reported by the people they talk with.
    assert ravi.post(f"/report/user/{buyer.id}", {"reason": "abusive"}).status_code == 303
    assert [(r.kind, r.reporter_id) for r in reports()] == [("user", seller.id)]
    assert make_client().get(f"/report/listing/{paused.id}").status_code == 302  # log in first


class TestRateLimit:
    @pytest.fixture
    def app_overrides(self):
        return {"RATELIMIT_ENABLED": True}

    def test_over_the_reports_limit_the_form_says_so_and_nothing_is_stored(self, client, buyer, listing, make_listing):
        client.login(buyer)
        allowance = int(re.match(r"\d+", ratelimits.REPORTS_PER_USER.value).group())
        assert client.post(f"/report/listing/{listing.id}", {"reason": "spam"}).status_code == 303
        for _ in range(allowance - 1):  # duplicates count too
            assert client.post(f"/report/listing/{listing.id}", {"reason": "spam"}).status_code == 409
        other = make_listing()

        refused = client.post(f"/report/listing/{other.id}", {"reason": "scam", "note": "fake photos"})

        assert refused.status_code == 429
        page = refused.get_data(as_text=True)
        assert "Too many reports from you. Please try again in 60 minutes." in page
        assert f'action="/report/listing/{other.id}"' in page
        assert int(refused.headers["Retry-After"]) > 0
        assert [r.target_id for r in reports()] == [listing.id]
        assert client.get(f"/report/listing/{other.id}").status_code == 200  # reading the form is never limited
