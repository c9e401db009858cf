"""Moderators' pages under /admin: who may open them (the access matrix of every route and action),
the reports queue, a report's context, the actions and the audit log that records each of them."""
import pytest

from rentpe.accounts.models import User
from rentpe.chat.models import Message
from rentpe.extensions import db
from rentpe.listings.models import HELD, LIVE, PAUSED, SUSPENDED, TAKEN_DOWN, Listing
from rentpe.moderation.models import ModerationAction, Report
from tests.chat_helpers import contact, conversation_id_from, messages_in
from tests.url_map import rules


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


def audit():
    return [(a.moderator_id, a.action, a.target_kind, a.target_id, a.reason)
            for a in db.session.scalars(db.select(ModerationAction).order_by(ModerationAction.id))]


@pytest.fixture
def case(make_client, buyer, seller, listing):
    """Asha reported a message of Ravi's, in their conversation about Ravi's listing."""
    asha, ravi = logged_in(make_client, buyer), logged_in(make_client, seller)
    cid = conversation_id_from(contact(asha, listing, "Is the hall free?"))
    for n, body in enumerate(["Yes. Pay the deposit to my UPI ravi@okbank", "Why not on RentPe?", "Cheaper for you"]):
        (ravi if n != 1 else asha).post(f"/conversations/{cid}/messages", {"body": body, "client_key": f"case-key-{n:03}"})
    scam = messages_in(cid)[1]
    asha.post(f"/report/message/{scam.id}", {"reason": "off_platform", "note": "Asked for UPI"})
    report = db.session.scalars(db.select(Report)).one()
    return {"asha": asha, "ravi": ravi, "cid": cid, "scam": scam, "report": report}


@pytest.fixture
def mod(make_client, moderator):
    return logged_in(make_client, moderator)


# Who may open what ---------------------------------------------------------------------------

PEOPLE = ["anonymous", "buyer", "seller", "moderator"]
ROUTES = {
    # endpoint: (method, url, form) — the moderator's answer; everyone else: 302 (log in) or 404
    "admin.index": ("get", "/admin/", None, 302),
    "admin.reports": ("get", "/admin/reports?status=open&kind=message&reason=off_platform", None, 200),
    "admin.flagged": ("get", "/admin/flagged", None, 200),
    "admin.review_flagged": ("post", "/admin/flagged/{m}/review", {}, 303),
    "admin.report": ("get", "/admin/reports/{r}", None, 200),
    "admin.reported_conversation": ("get", "/admin/reports/{r}/conversation", None, 200),
    # no photo in this case's conversation: a moderator's 404 (test_message_photos.py serves a real one)
    "admin.report_photo": ("get", "/admin/reports/{r}/photos/large/{m}", None, 404),
    "admin.resolve": ("post", "/admin/reports/{r}/resolve", {"note": "Checked"}, 303),
    "admin.hide_message": ("post", "/admin/messages/{m}/hide", {"reason": "UPI", "report_id": "{r}"}, 303),
    "admin.listing_action": ("post", "/admin/listings/{l}/pause", {"reason": "Scam"}, 303),
    "admin.remove_board_member": ("post", "/admin/boards/{c}/members/{u}/remove", {"reason": "x"}, 404),  # not a board
    "admin.user": ("get", "/admin/users/{u}", None, 200),
    "admin.user_action": ("post", "/admin/users/{u}/suspend", {"reason": "Scam"}, 303),
    "admin.audit": ("get", "/admin/audit", None, 200),
}
EXTRA = {  # the other choices of the `any(...)` routes
    "remove listing": ("post", "/admin/listings/{l}/remove", {"reason": "Scam"}, 303),
    "lift listing": ("post", "/admin/listings/{l}/lift", {"reason": "Appeal upheld"}, 409),
    "reinstate user": ("post", "/admin/users/{u}/reinstate", {"reason": "Appeal"}, 409),
}


def test_the_matrix_covers_every_admin_route(app):
    assert {rule.endpoint for rule in rules(app) if rule.rule.startswith("/admin")} == set(ROUTES)


@pytest.mark.parametrize("name", [*ROUTES, *EXTRA])
def test_access_matrix(make_client, case, buyer, seller, moderator, name):
    method, url, form, moderator_answer = {**ROUTES, **EXTRA}[name]
    db.session.execute(db.update(Message).where(Message.id == case["scam"].id).values(contact_flags="payment"))
    db.session.commit()
    values = dict(r=case["report"].id, m=case["scam"].id, l=case["scam"].listing_id or case["report"].target_id,
                  u=seller.id, c=case["cid"])
    values["l"] = db.session.scalars(db.select(Listing.id).where(Listing.seller_id == seller.id)).first()
    target = url.format(**values)
    data = {k: v.format(**values) for k, v in (form or {}).items()}
    clients = {"anonymous": make_client(), "buyer": case["asha"], "seller": case["ravi"],
               "moderator": logged_in(make_client, moderator)}
    expected = {"anonymous": 302, "buyer": 404, "seller": 404, "moderator": moderator_answer}
    before = audit()
    outcomes = {}
    for who in PEOPLE:
        client = clients[who]
        response = client.get(target) if method == "get" else client.post(target, data)
        outcomes[who] = response.status_code
        if who == "anonymous":
            assert "/login" in response.headers["Location"]
        if who != "moderator":
            assert "ravi@okbank" not in response.get_data(as_text=True)
            assert audit() == before, who  # nothing happened
            assert not db.session.get(User, seller.id).is_suspended
    assert outcomes == expected


# The queue -----------------------------------------------------------------------------------

def test_the_queue_lists_open_reports_oldest_first_filters_and_pages(mod, make_client, make_user, make_listing,
                                                                     monkeypatch):
    from rentpe.moderation import queries

    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    listings = [make_listing(title=f"Hall {n}") for n in range(3)]
    reporters = [logged_in(make_client, make_user()) for _ in range(2)]
    for n, listing in enumerate(listings):
        reporters[0].post(f"/report/listing/{listing.id}", {"reason": "scam" if n != 1 else "spam"})
    reporters[1].post(f"/report/user/{listings[0].seller_id}", {"reason": "abusive"})
    ids = [r.id for r in db.session.scalars(db.select(Report).order_by(Report.id))]

    first = mod.get("/admin/reports").get_data(as_text=True)
    assert first.index(f'id="report-{ids[0]}"') < first.index(f'id="report-{ids[1]}"')
    assert f'id="report-{ids[2]}"' not in first and 'href="/admin/reports?status=open&amp;page=2"' in first
    second = mod.get("/admin/reports?page=2").get_data(as_text=True)
    assert f'id="report-{ids[2]}"' in second and f'id="report-{ids[3]}"' in second
    scams = mod.get("/admin/reports?kind=listing&reason=scam").get_data(as_text=True)
    assert [f'id="report-{i}"' in scams for i in ids] == [True, False, True, False]
    users = mod.get("/admin/reports?kind=user").get_data(as_text=True)
    assert [f'id="report-{i}"' in users for i in ids] == [False, False, False, True]
    assert "No resolved reports" in mod.get("/admin/reports?status=resolved").get_data(as_text=True)
    for junk in ("?status=%FF", "?kind=x&reason=drop", "?page=-3", "?page=999999999999"):
        assert mod.get("/admin/reports" + junk).status_code == 200

    mod.post(f"/admin/reports/{ids[0]}/resolve", {"note": "Fake listing, removed"})
    resolved = mod.get("/admin/reports?status=resolved").get_data(as_text=True)
    assert f'id="report-{ids[0]}"' in resolved
    assert f'id="report-{ids[0]}"' not in mod.get("/admin/reports").get_data(as_text=True)


def test_a_report_shows_the_message_among_its_neighbours_the_listing_and_the_persons_history(mod, case, seller,
                                                                                           listing):
    page = mod.get(f"/admin/reports/{case['report'].id}").get_data(as_text=True)
    bodies = [m.body for m in messages_in(case["cid"])]
    positions = [page.index(body) for body in bodies]
    assert positions == sorted(positions)  # every message around it, in order
    assert 'class="admin-msg reported"' in page and "Asked for UPI" in page
    assert f'id="reported-listing"' in page and listing.title in page
    assert f'id="person-{seller.id}"' in page and "Reports against them: 1 (1 open)" in page
    assert "account 0 days old" in page
    assert "Hide this message" in page and "Suspend this account" in page


def test_the_conversation_opens_only_from_a_report_about_it_and_the_access_is_logged(mod, case, moderator,
                                                                                     make_listing):
    response = mod.get(f"/admin/reports/{case['report'].id}/conversation")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert all(m.body in page for m in messages_in(case["cid"]))
    assert "<textarea" not in page and 'method="post"' not in page.split("<main")[1]  # read-only
    assert audit()[-1] == (moderator.id, "view_conversation", "conversation", case["cid"], "")

    case["asha"].post(f"/report/listing/{make_listing().id}", {"reason": "spam"})
    listing_report = db.session.scalars(db.select(Report).order_by(Report.id.desc())).first()
    assert mod.get(f"/admin/reports/{listing_report.id}/conversation").status_code == 404
    assert mod.get("/admin/reports/999999/conversation").status_code == 404


# Actions and their audit rows ----------------------------------------------------------------

def test_hiding_a_message_needs_a_reason_and_is_logged_once(mod, case, moderator):
    scam, report = case["scam"], case["report"]
    refused = mod.post(f"/admin/messages/{scam.id}/hide", {"reason": "  ", "report_id": report.id})
    assert refused.status_code == 422 and "Write a reason first." in refused.get_data(as_text=True)
    assert audit() == []

    done = mod.post(f"/admin/messages/{scam.id}/hide", {"reason": "UPI outside RentPe", "report_id": report.id})

    assert done.status_code == 303 and done.headers["Location"].endswith(f"/admin/reports/{report.id}")
    assert db.session.get(Message, scam.id).hidden_reason == "moderator"
    again = mod.post(f"/admin/messages/{scam.id}/hide", {"reason": "twice", "report_id": report.id})
    assert again.status_code == 409
    assert audit() == [(moderator.id, "hide_message", "message", scam.id, "UPI outside RentPe")]
    assert db.session.scalars(db.select(ModerationAction)).one().report_id == report.id
    page = case["asha"].get(f"/conversations/{case['cid']}").get_data(as_text=True)
    assert "This message was removed by a moderator." in page and "ravi@okbank" not in page


def test_pausing_and_removing_a_listing(mod, moderator, make_listing, client):
    listing = make_listing()
    assert mod.post(f"/admin/listings/{listing.id}/pause", {"reason": "Fake photos"}).status_code == 303
    assert db.session.get(Listing, listing.id).status == SUSPENDED
    assert client.get(f"/listings/{listing.id}").status_code == 404
    assert mod.post(f"/admin/listings/{listing.id}/pause", {"reason": "again"}).status_code == 409
    assert mod.post(f"/admin/listings/{listing.id}/remove", {"reason": "Seller confirmed it is fake"}).status_code == 303
    assert db.session.get(Listing, listing.id).status == TAKEN_DOWN
    assert client.get(f"/listings/{listing.id}").status_code == 404
    assert mod.post(f"/admin/listings/{listing.id}/remove", {"reason": "again"}).status_code == 409
    assert mod.post("/admin/listings/999999/remove", {"reason": "x"}).status_code == 404
    assert audit() == [(moderator.id, "pause_listing", "listing", listing.id, "Fake photos"),
                       (moderator.id, "remove_listing", "listing", listing.id, "Seller confirmed it is fake")]


def test_a_suspended_seller_cannot_log_in_and_their_listings_leave_every_public_page(
        mod, moderator, make_client, seller, listing, make_listing, buyer):
    paused = make_listing(seller=seller, status=PAUSED, title="Paused lights")
    ravi = logged_in(make_client, seller)
    visitor = make_client()
    assert listing.title in visitor.get("/search?q=banquet").get_data(as_text=True)

    assert mod.post(f"/admin/users/{seller.id}/suspend", {"reason": "Scam ring"}).status_code == 303

    assert db.session.get(User, seller.id).is_suspended
    assert [db.session.get(Listing, i).status for i in (listing.id, paused.id)] == [HELD, PAUSED]
    assert "Log out" not in ravi.get("/").get_data(as_text=True)  # the old session is gone
    assert ravi.get("/dashboard").status_code == 302
    for url in ("/", "/search", "/search?q=banquet", f"/sellers/{seller.id}"):
        assert listing.title not in visitor.get(url).get_data(as_text=True), url
    assert visitor.get(f"/listings/{listing.id}").status_code == 404
    refused = make_client().post("/login", {"email": seller.email, "password": "password123"})
    assert refused.status_code == 422
    assert "This account is suspended" in refused.get_data(as_text=True)
    # A wrong password learns nothing about the account.
    wrong = make_client().post("/login", {"email": seller.email, "password": "not-it"}).get_data(as_text=True)
    assert "suspended" not in wrong and "Wrong e-mail or password." in wrong
    assert mod.post(f"/admin/users/{seller.id}/suspend", {"reason": "again"}).status_code == 409

    assert mod.post(f"/admin/users/{seller.id}/reinstate", {"reason": "Appeal upheld"}).status_code == 303

    assert [db.session.get(Listing, i).status for i in (listing.id, paused.id)] == [LIVE, PAUSED]
    assert listing.title in visitor.get("/search?q=banquet").get_data(as_text=True)
    assert make_client().login(seller).status_code == 302
    assert audit() == [(moderator.id, "suspend_user", "user", seller.id, "Scam ring"),
                       (moderator.id, "reinstate_user", "user", seller.id, "Appeal upheld")]


def test_a_moderator_cannot_suspend_themselves(mod, moderator):
    response = mod.post(f"/admin/users/{moderator.id}/suspend", {"reason": "oops"})
    assert response.status_code == 400 and "You can&#39;t suspend yourself." in response.get_data(as_text=True)
    assert not db.session.get(User, moderator.id).is_suspended and audit() == []


def test_resolving_needs_a_note_and_happens_once(mod, case, moderator):
    report = case["report"]
    assert mod.post(f"/admin/reports/{report.id}/resolve", {"note": ""}).status_code == 422
    assert mod.post(f"/admin/reports/{report.id}/resolve", {"note": "Hid the message"}).status_code == 303
    assert mod.post(f"/admin/reports/{report.id}/resolve", {"note": "again"}).status_code == 409
    db.session.refresh(report)
    assert (report.status, report.resolved_by_id, report.resolution_note) == ("resolved", moderator.id, "Hid the message")
    assert audit() == [(moderator.id, "resolve_report", "report", report.id, "Hid the message")]
    assert "Hid the message" in mod.get(f"/admin/reports/{report.id}").get_data(as_text=True)


def test_flagged_messages_wait_in_their_tab_until_a_moderator_reviews_them(mod, case, moderator):
    scam = messages_in(case["cid"])[3]  # "Cheaper for you": nothing the guard would flag
    assert f'id="admin-msg-{scam.id}"' not in mod.get("/admin/flagged").get_data(as_text=True)
    db.session.execute(db.update(Message).where(Message.id == scam.id).values(contact_flags="payment"))
    db.session.commit()
    assert f'id="admin-msg-{scam.id}"' in mod.get("/admin/flagged").get_data(as_text=True)

    response = mod.post(f"/admin/flagged/{scam.id}/review")

    review = db.session.scalars(db.select(Report).where(Report.reporter_id.is_(None))).one()
    assert response.headers["Location"].endswith(f"/admin/reports/{review.id}")
    assert (review.kind, review.target_id, review.reason, review.subject_user_id) == (
        "message", scam.id, "contact_info", scam.sender_id)
    assert f'id="admin-msg-{scam.id}"' not in mod.get("/admin/flagged").get_data(as_text=True)
    assert mod.post(f"/admin/flagged/{scam.id}/review").headers["Location"].endswith(f"/admin/reports/{review.id}")
    assert "Contact guard" in mod.get("/admin/reports?reason=contact_info").get_data(as_text=True)
    assert audit() == [(moderator.id, "review_flagged", "message", scam.id, "")]
    clean = messages_in(case["cid"])[2]
    assert mod.post(f"/admin/flagged/{clean.id}/review").status_code == 404


def test_the_audit_log_shows_every_action_and_cannot_be_changed(mod, case, moderator, seller):
    mod.post(f"/admin/messages/{case['scam'].id}/hide", {"reason": "UPI", "report_id": case["report"].id})
    mod.post(f"/admin/users/{seller.id}/suspend", {"reason": "Repeat scammer"})
    page = mod.get("/admin/audit").get_data(as_text=True)
    assert page.index("Suspended a user") < page.index("Hid a message")  # newest first
    assert "Repeat scammer" in page and "Mod" in page

    entry = db.session.scalars(db.select(ModerationAction)).first()
    entry.reason = "rewritten"
    with pytest.raises(TypeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.scalars(db.select(ModerationAction)).first())
    with pytest.raises(TypeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert len(audit()) == 2
