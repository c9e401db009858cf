"""Event boards respect people's choices: joining is an invitation the invited person accepts or
declines (sellers the owner talks with are added directly), blocks apply both ways, the invite form
says the same whatever the address, creation, invitations and shares are rate-limited, a moderator
can remove a member (for good), and only live listings are shared."""
import pytest

from rentpe import ratelimits
from rentpe.chat.blocks import Block, block_user
from rentpe.chat.boards import services as board_services
from rentpe.chat.boards.models import BoardInvitation
from rentpe.chat.models import Conversation
from rentpe.extensions import db
from rentpe.listings.models import DRAFT, PAUSED
from rentpe.moderation.models import ModerationAction
from tests.board_helpers import board_form, make_board, member_row, messages_in
from tests.chat_helpers import contact


def logged_in(make_client, user):
    c = make_client()
    c.login(user)
    return c


def invitations():
    return sorted((i.conversation_id, i.user_id, i.role)
                  for i in db.session.scalars(db.select(BoardInvitation)))


@pytest.fixture
def asha_client(make_client, buyer):
    return logged_in(make_client, buyer)


def invite(client, board_id, email):
    response = client.post(f"/boards/{board_id}/members", {"email": email}, follow_redirects=True)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    start = text.index("If someone on RentPe uses")
    return text[start:text.index("</p>", start)].replace(email, "<address>")


def test_the_invite_form_answers_the_same_whatever_the_address(asha_client, buyer, make_user):
    board_id = make_board(buyer)
    meera = make_user(email="meera@example.test")
    blocker = make_user(email="blocker@example.test")
    block_user(blocker, buyer)
    answers = {email: invite(asha_client, board_id, email)
               for email in ("meera@example.test", "nobody@example.test", buyer.email, "blocker@example.test")}
    assert len(set(answers.values())) == 1, answers
    assert invitations() == [(board_id, meera.id, "organiser")]  # only the one who may be asked


def test_an_invitation_is_accepted_or_declined_by_the_invited_person(asha_client, buyer, make_user, make_client):
    board_id, other_board = make_board(buyer), make_board(buyer, title="Mehendi")
    meera = make_user(email="meera@example.test")
    invite(asha_client, board_id, "meera@example.test")
    invite(asha_client, other_board, "meera@example.test")
    meera_client = logged_in(make_client, meera)
    assert meera_client.get(f"/boards/{board_id}").status_code == 404  # not a member yet

    assert meera_client.post(f"/boards/{other_board}/invitation/decline").status_code == 303
    assert meera_client.post(f"/boards/{board_id}/invitation/accept").status_code == 303

    assert member_row(board_id, meera) is not None and member_row(other_board, meera) is None
    assert invitations() == []
    assert meera_client.get(f"/boards/{board_id}").status_code == 200
    # Nobody answers someone else's invitation, nor one that is gone.
    assert meera_client.post(f"/boards/{other_board}/invitation/accept").status_code == 404
    stranger = logged_in(make_client, make_user())
    invite(asha_client, other_board, "meera@example.test")
    assert stranger.post(f"/boards/{other_board}/invitation/accept").status_code == 404


@pytest.mark.parametrize("who_blocks", ["owner", "invited"])
def test_blocks_apply_to_boards_both_ways(asha_client, buyer, make_seller, make_listing, make_user, make_client,
                                        who_blocks):
    talked = make_seller(display_name="Ravi Decor")
    contact(asha_client, make_listing(seller=talked), "Mandaps?")
    friend = make_user(email="friend@example.test")
    board_id = make_board(buyer)
    invite(asha_client, board_id, "friend@example.test")  # before the block
    for other in (talked, friend):
        blocker, blocked = (buyer, other) if who_blocks == "owner" else (other, buyer)
        block_user(blocker, blocked)

    manage = asha_client.get(f"/boards/{board_id}/manage").get_data(as_text=True)
    assert "Ravi Decor" not in manage  # not offered
    with pytest.raises(board_services.BoardError):
        board_services.add_members(db.session.get(Conversation, board_id), buyer, [(talked, "seller")])
    refused = logged_in(make_client, friend).post(f"/boards/{board_id}/invitation/accept", follow_redirects=True)
    assert "You can&#39;t join this board." in refused.get_data(as_text=True)
    assert member_row(board_id, talked) is None and member_row(board_id, friend) is None
    assert invitations() == []


def test_a_seller_the_owner_talks_with_is_added_directly(asha_client, buyer, make_seller, make_listing):
    talked = make_seller()
    contact(asha_client, make_listing(seller=talked), "Mandaps?")
    board_id = make_board(buyer)
    assert asha_client.post(f"/boards/{board_id}/members", {"sellers": [str(talked.id)]}).status_code == 303
    assert member_row(board_id, talked).role == "seller"


@pytest.mark.parametrize("status", [DRAFT, PAUSED])
def test_sharing_a_listing_that_is_not_live_into_a_board_is_refused(make_client, seller, buyer, make_listing, status):
    board_id = make_board(buyer, sellers=[seller])
    make_listing(seller=seller, title="Public hall")
    hidden = make_listing(seller=seller, status=status, title="Secret draft hall")
    ravi = logged_in(make_client, seller)
    response = ravi.post(f"/boards/{board_id}/share", {"listing_id": hidden.id, "client_key": "share-key-0001"})
    assert response.status_code == 409
    assert "Only live listings can be shared" in response.get_data(as_text=True)
    assert messages_in(board_id) == []


def test_a_moderator_removes_a_member_and_the_owner_cannot_bring_them_back(
        asha_client, buyer, make_seller, make_listing, make_client, moderator):
    talked = make_seller(display_name="Ravi Decor", email="ravi@example.test")
    contact(asha_client, make_listing(seller=talked), "Mandaps?")
    board_id = make_board(buyer, sellers=[talked])
    mod = logged_in(make_client, moderator)

    response = mod.post(f"/admin/boards/{board_id}/members/{talked.id}/remove", {"reason": "Harassing members"})

    assert response.status_code == 303
    assert member_row(board_id, talked).left_reason == board_services.MODERATED
    ravi = logged_in(make_client, talked)
    assert "A moderator removed you from this board." in ravi.get(f"/boards/{board_id}").get_data(as_text=True)
    assert "Ravi Decor" not in asha_client.get(f"/boards/{board_id}/manage").get_data(as_text=True)
    with pytest.raises(board_services.BoardError, match="A moderator removed"):
        board_services.add_members(db.session.get(Conversation, board_id), buyer, [(talked, "seller")])
    invite(asha_client, board_id, "ravi@example.test")
    assert invitations() == []
    [action] = db.session.scalars(db.select(ModerationAction)).all()
    assert (action.action, action.target_id) == ("remove_board_member", board_id) and "Harassing" in action.reason
    # The owner can't be removed; strangers to the board aren't members; nobody else may do it.
    assert mod.post(f"/admin/boards/{board_id}/members/{buyer.id}/remove", {"reason": "x"}).status_code == 409
    assert mod.post(f"/admin/boards/{board_id}/members/{talked.id}/remove", {"reason": "x"}).status_code == 404
    assert asha_client.post(f"/admin/boards/{board_id}/members/{buyer.id}/remove", {"reason": "x"}).status_code == 404


# Rate limits ----------------------------------------------------------------------------------


@pytest.fixture
def limits_on():
    return {"RATELIMIT_ENABLED": True}


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": True}])
def test_board_creation_is_rate_limited(asha_client):
    import limits
    allowance = min(item.amount for item in limits.parse_many(ratelimits.BOARDS_PER_USER.value))
    for n in range(allowance):
        assert asha_client.post("/boards", board_form(title=f"Board {n}")).status_code == 303
    refused = asha_client.post("/boards", board_form(title="One too many"))
    assert refused.status_code == 429 and "Too many new boards" in refused.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(Conversation)) == allowance


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": True}])
def test_invitations_are_rate_limited_whatever_the_answer(asha_client, buyer, make_user):
    import limits
    board_id = make_board(buyer)
    allowance = min(item.amount for item in limits.parse_many(ratelimits.BOARD_INVITES_PER_USER.value))
    for n in range(allowance):
        asha_client.post(f"/boards/{board_id}/members", {"email": f"probe{n}@example.test"})
    make_user(email="real@example.test")
    refused = asha_client.post(f"/boards/{board_id}/members", {"email": "real@example.test"})
    assert refused.status_code == 429 and "Too many board invitations" in refused.get_data(as_text=True)
    assert invitations() == []


@pytest.mark.parametrize("app_overrides", [{"RATELIMIT_ENABLED": True}])
def test_a_new_account_cannot_get_round_the_new_conversation_limit_with_boards(asha_client, buyer):
    import limits
    allowance = min(item.amount for item in limits.parse_many(ratelimits.NEW_CONVERSATIONS_PER_NEW_ACCOUNT.value))
    board_id = make_board(buyer)
    for n in range(allowance):
        asha_client.post(f"/boards/{board_id}/members", {"email": f"probe{n}@example.test"})
    refused = asha_client.post(f"/boards/{board_id}/members", {"email": "one-more@example.test"})
    assert refused.status_code == 429 and "new conversations today" in refused.get_data(as_text=True)
