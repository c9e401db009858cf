"""Search my conversations (`GET /inbox?q=`): by the other person's name, the listing asked about,
a board's title and the message text, with highlighted snippets linking into the thread around
the message; never anything the searcher can't read."""
import re

import pytest

from rentpe.chat import blocks, changes, hiding, search, services
from rentpe.chat.boards import services as board_services
from rentpe.chat.models import Conversation, Message
from rentpe.extensions import db
from tests.board_helpers import make_board

MESSAGE_HIT = re.compile(r'id="hit-message-(\d+)"')
CONVERSATION_HIT = re.compile(r'id="hit-conversation-(\d+)"')


def say(conversation_id, user, body):
    message, _ = services.send_message(db.session.get(Conversation, conversation_id), user, body,
                                       services.new_client_key())
    return message.id


def found(client, q, page=None):
    response = client.get("/inbox", query_string={"q": q, **({"page": page} if page else {})})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return [int(i) for i in MESSAGE_HIT.findall(html)], [int(i) for i in CONVERSATION_HIT.findall(html)], html


@pytest.fixture
def chairs(make_user, seller, make_listing):
    """A buyer asked the seller about blue chairs (and the seller answered)."""
    lady = make_user(display_name="Lakshmi Iyer")
    chairs = make_listing(seller=seller, title="Tiffany chairs, set of 50")
    message, _ = services.contact_seller(lady, chairs, "Do you have the blue chairs for weddings?", "chairs000001")
    cid = message.conversation_id
    answer = say(cid, seller, "Yes, 40 blue ones & 10 white <b>ones</b>")
    return {"lady": lady, "listing": chairs, "cid": cid, "question": message.id, "answer": answer}


@pytest.fixture
def seller_client(make_client, seller):
    c = make_client()
    c.login(seller)
    return c


def test_search_finds_the_message_text_with_a_highlighted_snippet_and_a_link_into_the_thread(seller_client, chairs):
    messages, _, html = found(seller_client, "blue chair")
    assert messages == [chairs["question"]]  # both words, the last one as a prefix; newest first
    snippet = re.search(rf'id="hit-message-{chairs["question"]}".*?class="inbox-preview">(.*?)</span>', html, re.S).group(1)
    assert "<mark>blue</mark>" in snippet and "<mark>chairs</mark>" in snippet
    link = f'/conversations/{chairs["cid"]}?around={chairs["question"]}#msg-{chairs["question"]}'
    assert f'href="{link}"' in html
    # Stemmed as listing search stems: "wedding" finds "weddings".
    assert found(seller_client, "wedding")[0] == [chairs["question"]]
    # What a person wrote is text, never markup, in a snippet.
    messages, _, html = found(seller_client, "white")
    assert messages == [chairs["answer"]] and "&lt;b&gt;" in html and "<b>ones" not in html


def test_search_finds_conversations_by_the_other_persons_name_and_the_listing(seller_client, chairs, make_client):
    _, conversations, html = found(seller_client, "lakshmi")
    assert conversations == [chairs["cid"]] and "<mark>Lakshmi</mark> Iyer" in html
    assert found(seller_client, "tiffany")[1] == [chairs["cid"]]
    # The buyer finds it by the seller's name.
    buyer = make_client()
    buyer.login(chairs["lady"])
    assert found(buyer, "ravi")[1] == [chairs["cid"]]
    assert found(buyer, "lakshmi")[1] == []  # not by their own name


def test_the_thread_opens_around_the_message_with_older_and_newer_pages(seller_client, chairs, seller):
    for n in range(40):
        say(chairs["cid"], seller, f"Filler message {n}")
    response = seller_client.get(f'/conversations/{chairs["cid"]}?around={chairs["question"]}')
    html = response.get_data(as_text=True)
    assert f'id="msg-{chairs["question"]}"' in html and "Filler message 39" not in html
    newer = re.search(r'href="([^"]+after=\d+)"[^>]*>Newer messages', html).group(1).replace("&amp;", "&")
    html = seller_client.get(newer).get_data(as_text=True)
    assert "Filler message 0" in html and f'id="msg-{chairs["question"]}"' not in html
    assert "Load older messages" in html
    # Reading an older page marks nothing read.
    assert "Back to the newest messages" in html


def test_search_never_returns_a_stranger_s_conversations(make_client, make_user, chairs):
    stranger = make_client()
    stranger.login(make_user(display_name="Nosy Parker"))
    assert found(stranger, "blue")[:2] == ([], [])
    assert found(stranger, "lakshmi")[:2] == ([], [])


def test_search_never_returns_hidden_messages(seller_client, chairs, moderator):
    hiding.hide_message(db.session.get(Message, chairs["question"]), moderator, hiding.BY_MODERATOR)
    assert found(seller_client, "weddings")[0] == []
    assert found(seller_client, "blue")[0] == [chairs["answer"]]


def test_search_never_returns_deleted_messages_and_finds_an_edit_by_its_new_text(seller_client, chairs):
    question = db.session.get(Message, chairs["question"])
    changes.delete_message(db.session.get(Conversation, chairs["cid"]), question, chairs["lady"])
    assert found(seller_client, "weddings")[0] == []
    answer = db.session.get(Message, chairs["answer"])
    changes.edit_message(db.session.get(Conversation, chairs["cid"]), answer, answer.sender,
                         "Teal chairs only, sorry")
    assert found(seller_client, "blue")[0] == []
    assert found(seller_client, "teal")[0] == [chairs["answer"]]


def test_search_never_returns_a_board_one_left(make_client, make_user, make_seller, buyer):
    florist = make_seller(display_name="Flora Sen")
    board_id = make_board(buyer, sellers=[florist], title="Diwali party")
    say(board_id, buyer, "Marigold garlands for the entrance")
    florist_client = make_client()
    florist_client.login(florist)
    assert found(florist_client, "marigold")[0] != []
    assert found(florist_client, "diwali")[1] == [board_id]
    board_services.leave_board(db.session.get(Conversation, board_id), florist)
    assert found(florist_client, "marigold")[:2] == ([], [])
    assert found(florist_client, "diwali")[:2] == ([], [])


def test_search_never_quotes_what_a_blocked_person_wrote_after_the_block(make_client, make_seller, buyer):
    florist, caterer = make_seller(display_name="Flora Sen"), make_seller(display_name="Kiran Caterer")
    board_id = make_board(buyer, sellers=[florist, caterer], title="Diwali party")
    before = say(board_id, caterer, "Paneer tikka for sixty guests")
    blocks.block_user(florist, caterer)
    say(board_id, caterer, "Paneer tikka price drops tomorrow")
    florist_client, buyer_client = make_client(), make_client()
    florist_client.login(florist)
    buyer_client.login(buyer)
    assert found(florist_client, "paneer")[0] == [before]
    assert len(found(buyer_client, "paneer")[0]) == 2  # nothing stands between the buyer and the caterer


@pytest.mark.parametrize("q", ['" OR 1=1 --', "NEAR(blue chairs)", "*", "a" * 10_000, "the and of", "ब्लू", "'blue':*",
                               "%_%", "blue)chairs(", "<script>"])
def test_any_query_is_answered_never_an_error(seller_client, chairs, q):
    messages, conversations, html = found(seller_client, q)
    assert "Search my conversations" in html and "<script>" not in html.split("<main", 1)[-1]


def test_a_nul_in_the_query_is_a_clear_400(seller_client, chairs):
    response = seller_client.get("/inbox", query_string={"q": "blue\x00chairs"})
    assert response.status_code == 400


def test_results_are_paged(seller_client, chairs, seller, app):
    ids = [say(chairs["cid"], seller, f"Ceiling lights option {n}") for n in range(search.PER_PAGE + 5)]
    first, _, html = found(seller_client, "ceiling")
    assert first == list(reversed(ids))[:search.PER_PAGE] and "Older →" in html
    second, conversations, _ = found(seller_client, "ceiling", page=2)
    assert second == list(reversed(ids))[search.PER_PAGE:] and conversations == []


def test_a_snippet_is_a_window_around_the_first_word_found_with_the_words_marked():
    body = " ".join(f"word{i}" for i in range(40)) + " the Blue chairs, at 5 o'clock <b>sharp</b>"
    snippet = search._marked(search.window(body, ("blue", "chair", "oclock")))
    assert snippet.startswith("… word") and "word39 the <mark>Blue</mark> <mark>chairs</mark>," in snippet
    assert "<mark>o&#39;clock</mark>" in snippet and "&lt;b&gt;sharp&lt;/b&gt;" in snippet
    assert search._marked(search.window("short one", ("none",))) == "short one"
