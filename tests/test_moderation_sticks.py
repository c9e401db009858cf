"""A moderator's decision sticks: a listing a moderator paused or removed can't be put back by its
seller (resume, publish, an edit that publishes), who sees why and can appeal through a report;
only a moderator lifts it."""
import pytest

from rentpe.extensions import db
from rentpe.listings.models import DRAFT, LIVE, PAUSED, SUSPENDED, TAKEN_DOWN, Listing
from rentpe.moderation.models import APPEAL, ModerationAction, Report
from tests.helpers import listing_form


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


def status_of(listing):
    return db.session.get(Listing, listing.id).status


@pytest.fixture
def mod(make_client, moderator):
    return logged_in(make_client, moderator)


@pytest.fixture
def ravi(make_client, seller):
    return logged_in(make_client, seller)


@pytest.mark.parametrize("action, held", [("pause", SUSPENDED), ("remove", TAKEN_DOWN)])
@pytest.mark.parametrize("before", [LIVE, PAUSED])
def test_the_seller_cannot_undo_a_moderators_decision(mod, ravi, make_listing, seller, client, action, held, before):
    listing = make_listing(seller=seller, status=before)
    assert mod.post(f"/admin/listings/{listing.id}/{action}", {"reason": "Photos of someone else's hall"}).status_code == 303

    for attempt in ("resume", "publish", "pause"):
        response = ravi.post(f"/listings/{listing.id}/{attempt}")
        assert response.status_code == 409, attempt
        assert "only a moderator can put it back" in response.get_data(as_text=True)
    edited = ravi.post(f"/listings/{listing.id}/edit", listing_form(title="Same hall, new title", publish="y"))
    assert edited.status_code == 302
    assert status_of(listing) == held
    assert client.get(f"/listings/{listing.id}").status_code == 404
    assert "Same hall" not in client.get("/search").get_data(as_text=True)


@pytest.mark.parametrize("action", ["pause", "remove"])
def test_the_seller_sees_why_on_the_listing_and_the_dashboard(mod, ravi, listing, action):
    mod.post(f"/admin/listings/{listing.id}/{action}", {"reason": "Photos of someone else's hall"})
    for url in (f"/listings/{listing.id}", "/dashboard"):
        page = ravi.get(url).get_data(as_text=True)
        assert "Photos of someone else&#39;s hall" in page, url
        assert f'href="/report/listing/{listing.id}"' in page and "Appeal this decision" in page
        assert f"/listings/{listing.id}/resume" not in page


def test_the_seller_appeals_through_a_report_and_a_moderator_lifts_the_decision(mod, ravi, listing, seller,
                                                                                  moderator, client):
    mod.post(f"/admin/listings/{listing.id}/remove", {"reason": "Looks fake"})

    form = ravi.get(f"/report/listing/{listing.id}").get_data(as_text=True)
    assert "Appeal" in form and 'value="appeal"' in form and 'value="spam"' not in form
    assert ravi.post(f"/report/listing/{listing.id}", {"reason": "spam"}).status_code == 422
    assert ravi.post(f"/report/listing/{listing.id}", {"reason": APPEAL, "note": ""}).status_code == 422
    sent = ravi.post(f"/report/listing/{listing.id}", {"reason": APPEAL, "note": "It is my hall: here is the deed."})
    assert sent.status_code == 303
    appeal = db.session.scalars(db.select(Report)).one()
    assert (appeal.kind, appeal.target_id, appeal.reason, appeal.reporter_id) == ("listing", listing.id, APPEAL, seller.id)
    detail = mod.get(f"/admin/reports/{appeal.id}").get_data(as_text=True)
    assert "Appeal of a moderator" in detail and f"/admin/listings/{listing.id}/lift" in detail

    assert mod.post(f"/admin/listings/{listing.id}/lift", {"reason": "Deed checked", "report_id": appeal.id}).status_code == 303

    assert status_of(listing) == PAUSED and db.session.get(Listing, listing.id).moderation_reason is None
    assert ravi.post(f"/listings/{listing.id}/resume").status_code == 302
    assert status_of(listing) == LIVE and client.get(f"/listings/{listing.id}").status_code == 200
    assert [a.action for a in db.session.scalars(db.select(ModerationAction).order_by(ModerationAction.id))] == [
        "remove_listing", "lift_listing"]
    assert mod.post(f"/admin/listings/{listing.id}/lift", {"reason": "again"}).status_code == 409


def test_a_seller_cannot_report_their_own_listing_otherwise(ravi, listing):
    assert ravi.get(f"/report/listing/{listing.id}").status_code == 400


def test_only_a_moderator_lifts(ravi, make_client, buyer, mod, listing):
    mod.post(f"/admin/listings/{listing.id}/pause", {"reason": "Checking"})
    for who in (ravi, logged_in(make_client, buyer)):
        assert who.post(f"/admin/listings/{listing.id}/lift", {"reason": "me"}).status_code == 404
    assert status_of(listing) == SUSPENDED


def test_even_a_draft_can_be_removed_by_a_moderator(mod, make_listing, seller):
    draft = make_listing(seller=seller, status=DRAFT)
    assert mod.post(f"/admin/listings/{draft.id}/remove", {"reason": "Weapons"}).status_code == 303
    assert status_of(draft) == TAKEN_DOWN
