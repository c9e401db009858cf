"""What every message costs to deliver: the per-recipient inbox row comes from the conversation
the renderer already holds, and a sender's own message reaching their other tabs marks nothing."""
import re
from types import SimpleNamespace

from flask import template_rendered
from sqlalchemy import event
from sqlalchemy.engine.interfaces import CacheStats

from rentpe.chat import events, queries, services
from rentpe.chat.models import Conversation
from rentpe.extensions import db
from rentpe.realtime import registry
from rentpe.realtime.broker import ALL
from rentpe.realtime.event import data_lines, parse_fanout
from rentpe.realtime.models import StreamEvent
from tests.chat_helpers import contact, conversation_id_from


class Statements:
    def __init__(self):
        self.count = 0
        self.sql = []
        self.compiled = []  # statements SQLAlchemy compiled for this execution (not from its cache)

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.sql.append(statement)
        if context.compiled is not None and context.cache_hit is not CacheStats.CACHE_HIT:
            self.compiled.append(statement)


def test_inbox_row_for_a_loaded_conversation_is_the_inbox_row(client, make_client, buyer, seller, listing, make_listing):
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing, body="About the hall"))
    other = make_listing(seller=seller, title="Fairy lights")
    contact(client, other, body="And the lights?")
    seller_client = make_client()
    seller_client.login(seller)
    seller_client.post(f"/conversations/{cid}/messages", {"body": "Both free", "client_key": "answer0001"}, htmx=True)
    db.session.expire_all()
    conversation = db.session.get(Conversation, cid)

    for viewer in (buyer, seller):
        expected = queries.inbox_row(viewer.id, cid)
        for hint in (None, queries.message_in(cid, conversation.last_message_id), queries.history(cid)[0][0]):
            row = queries.inbox_row_for(conversation, viewer.id, last_message=hint)
            assert (row.conversation.id, row.me.user_id, row.people, row.last_message.id, row.listing.id) == (
                expected.conversation.id, expected.me.user_id, expected.people,
                expected.last_message.id, expected.listing.id)
            assert row.people == [(buyer.id, buyer.display_name), (seller.id, seller.display_name)]
        assert expected.last_message.body == "Both free" and expected.listing.title == "Fairy lights"
    assert queries.inbox_row_for(conversation, 10**6) is None


def test_a_senders_own_message_reaching_their_tabs_costs_no_queries(client, make_client, buyer, listing):
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    own = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == buyer.id,
                                                          StreamEvent.kind == services.MESSAGE)).all()
    assert own and all(e.data["sender_id"] == buyer.id for e in own)

    # Decided from the events' data alone: nothing to do.
    with Statements() as statements:
        registry.call_delivery_hooks(own)
    assert statements.count == 0
    assert queries.receipt_for(db.session.get(Conversation, cid), buyer.id).status == "sent"

    # The seller's copy of the same event does mark it delivered.
    seller_id = listing.seller_id
    theirs = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == seller_id)).all()
    registry.call_delivery_hooks(theirs)
    db.session.expire_all()
    assert queries.receipt_for(db.session.get(Conversation, cid), buyer.id).status == "delivered"


def test_a_delivery_receipt_renders_from_one_query_and_matches_the_page(client, make_client, buyer, seller, listing):
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    theirs = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == seller.id)).all()
    registry.call_delivery_hooks(theirs)
    receipt_event = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == buyer.id,
                                                                    StreamEvent.kind == services.RECEIPT)).one()
    assert receipt_event.data == {"conversation_id": cid, "recipient_id": seller.id}
    receipt_event = StreamEvent(user_id=buyer.id, seq=receipt_event.seq, kind=receipt_event.kind,
                                data=dict(receipt_event.data))  # as replayed: no hints
    db.session.expunge_all()  # nothing loaded yet, as in a stream's fresh session
    with Statements() as statements:
        html = events.render_receipt_event(receipt_event)
    assert statements.count == 1  # the cursors; not the conversation, nor its people
    assert 'data-status="delivered"' in html and f'id="conv-{cid}-receipt"' in html
    conversation = db.session.get(Conversation, cid)
    for viewer in (buyer, seller):
        assert queries.private_receipt(cid, viewer.id) == queries.receipt_for(conversation, viewer.id)
    page = client.get(f"/conversations/{cid}").get_data(as_text=True)
    assert html.replace(' hx-swap-oob="true"', "").strip() in page
    assert queries.private_receipt(cid, 10**6) is None
    assert queries.private_receipt(10**6, buyer.id) is None


def test_a_delivery_receipt_is_two_writes_and_its_live_render_reads_nothing(client, buyer, seller, listing,
                                                                             monkeypatch, backend):
    """Moving the recipient's cursor and recording the sender's receipt are two plain statements on
    PostgreSQL (the cursor, then the receipt event with its seq), and the receipt published live is
    rendered from what the first returned, the same fragment a replay renders from the cursors
    read again."""
    from rentpe.realtime.core import current

    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    message_id = db.session.get(Conversation, cid).last_message_id
    published = []
    monkeypatch.setattr(current().broker, "publish_many", published.extend)
    seller_id, buyer_id = seller.id, buyer.id
    db.session.expunge_all()
    with Statements() as statements:
        assert services.mark_delivered(seller_id, {cid: message_id}, notify={cid: {buyer_id}}) == [cid]
    assert not any(sql.lstrip().upper().startswith("SELECT") for sql in statements.sql), statements.sql
    writes = [sql for sql in statements.sql if sql.split()[0].upper() in ("UPDATE", "INSERT", "WITH")]
    assert len(writes) == (2 if backend == "postgresql" else 3), statements.sql
    [(user_id, payload)] = published
    assert user_id == buyer_id and b'data-status="delivered"' in payload

    stored = db.session.scalars(db.select(StreamEvent).where(StreamEvent.user_id == buyer_id,
                                                             StreamEvent.kind == services.RECEIPT)).one()
    assert stored.data == {"conversation_id": cid, "recipient_id": seller_id}
    assert data_lines(events.render_receipt_event(stored)).encode() in payload
    assert queries.receipt_for(db.session.get(Conversation, cid), buyer_id).status == "delivered"

    # Delivered again (another tab): the cursor does not move, nothing is recorded or published.
    published.clear()
    assert services.mark_delivered(seller_id, {cid: message_id}, notify={cid: {buyer_id}}) == []
    assert published == []
    assert db.session.scalar(db.select(db.func.count()).select_from(StreamEvent)
                             .where(StreamEvent.kind == services.RECEIPT)) == 1


FIRST_TABLE = re.compile(r"(?:FROM|INTO|UPDATE)\s+(\w+)")


def shape(sql):
    """A statement as its first word and the first table it names: "UPDATE conversations"."""
    return f"{sql.split()[0].upper()} {FIRST_TABLE.search(sql).group(1)}"


# A private send's statements, in order, but for the events `realtime.record` writes (realtime's
# own, after the store): the guard (the login's user, the conversation if theirs), the lock, the
# store (one statement on PostgreSQL, three on SQLite), then after the commit the conversation
# with the message (one statement), its people's names, cursors and unread totals as rows, and
# the inbox thumbnail (the listing asked about with its photos), and the listings the conversation
# asked about (the seller's dashboard inbox by listing gets the row live only when it is about one).
PRIVATE_SEND = {
    "postgresql": ["SELECT users", "SELECT conversations", "UPDATE conversations", "WITH messages",
                   "SELECT conversations", "SELECT participants", "SELECT listings", "SELECT messages"],
    # SQLite has no data-modifying CTEs: the store's statements one by one (the last one makes the
    # recipient's missed-message e-mail pending; on PostgreSQL it is part of the one statement).
    "sqlite": ["SELECT users", "SELECT conversations", "UPDATE conversations", "INSERT messages",
               "WITH conversations", "WITH participants", "WITH notifications",
               "SELECT conversations", "SELECT participants", "SELECT listings", "SELECT messages"],
}


def test_a_private_send_makes_these_statements_and_renders_what_a_fresh_read_shows(client, make_client, buyer,
                                                                                    seller, listing, backend):
    """The send stores the message with plain statements, commits, and reads back by primary key
    what the publish (both people's frames) and the answer render: each once, none compiled for
    this message, and what they show is what a fresh read shows."""
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    seller_client = make_client()
    seller_client.login(seller)
    seller_client.post(f"/conversations/{cid}/read", {"up_to": 10**9})
    seller_client.post(f"/conversations/{cid}/messages", {"body": "Yes, free", "client_key": "reply0000001"}, htmx=True)
    buyer_id, seller_id, listing_id = buyer.id, seller.id, listing.id
    db.session.expunge_all()
    with Statements() as statements:
        response = client.post(f"/conversations/{cid}/messages", {"body": "Great, booking it", "client_key": "book00000001"},
                               htmx=True)
    assert response.status_code == 200
    events_at = [i for i, sql in enumerate(statements.sql) if "stream_" in sql]
    chat = [shape(sql) for sql in statements.sql if "stream_" not in sql]
    assert chat == PRIVATE_SEND[backend], statements.sql
    assert events_at == list(range(events_at[0], events_at[-1] + 1))  # together, between the store and the commit
    assert chat[events_at[0] - 1] in ("WITH messages", "WITH notifications")
    assert statements.count == len(PRIVATE_SEND[backend]) + len(events_at)
    assert statements.compiled == []
    # The block check is part of the store, not a query of its own.
    assert not any("FROM blocks" in sql and sql.lstrip().upper().startswith("SELECT") for sql in statements.sql)
    assert "sum(mine.unread_count)" in statements.sql[-3]  # the people's unread totals, with their rows

    db.session.expire_all()
    conversation = db.session.get(Conversation, cid)
    fresh = queries.receipts_of(queries.people(cid), [buyer_id, seller_id])
    assert fresh[buyer_id].status == "sent" and fresh[seller_id].status == "seen"  # the buyer read the reply by answering
    answer = response.get_data(as_text=True)
    assert 'data-status="sent"' in answer and "Great, booking it" in answer
    row = queries.inbox_row(seller_id, cid)
    assert row.me.unread_count == 1 and row.last_message.body == "Great, booking it" and row.listing.id == listing_id
    assert conversation.message_count == 3 and conversation.last_message_id == row.last_message.id


def test_a_private_sends_statements_all_come_from_the_compiled_cache(client, make_client, buyer, seller, listing):
    """Once warm, a send (its writes, the publish's reads, the answer, the recipient's delivery
    receipt) compiles nothing: every statement is one SQLAlchemy has compiled before."""
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    seller_client = make_client()
    seller_client.login(seller)

    def delivered():  # what the seller's stream does on receiving it
        db.session.expire_all()
        assert services.mark_delivered(seller.id, {cid: db.session.get(Conversation, cid).last_message_id}) == [cid]

    for i in range(2):
        client.post(f"/conversations/{cid}/messages", {"body": f"warm-up {i}", "client_key": f"warm{i:08d}"}, htmx=True)
        delivered()
    with Statements() as statements:
        response = client.post(f"/conversations/{cid}/messages", {"body": "Is Sunday free?", "client_key": "sunday000001"},
                               htmx=True)
        delivered()
    assert response.status_code == 200
    assert any("INSERT INTO messages" in sql for sql in statements.sql)
    assert statements.compiled == []


def board_send_cost(client, make_seller, owner, members):
    """Statements of one board send, and what each member's event carries."""
    from tests.board_helpers import make_board

    board_id = make_board(owner, sellers=[make_seller() for _ in range(members)])
    client.post(f"/conversations/{board_id}/messages", {"body": "warm-up", "client_key": f"warm{members:08d}"}, htmx=True)
    with Statements() as statements:
        response = client.post(f"/conversations/{board_id}/messages",
                               {"body": "Sound check at 6?", "client_key": f"cost{members:08d}"}, htmx=True)
    assert response.status_code == 200
    return statements.count, board_id


def test_a_board_message_costs_the_same_statements_for_3_members_or_30(client, buyer, make_seller):
    client.login(buyer)
    small, _ = board_send_cost(client, make_seller, buyer, 3)
    large, board_id = board_send_cost(client, make_seller, buyer, 30)
    # One seq statement for every member, and one read of each shared thing for all of them:
    # a member more adds no statement (it used to add about eight).
    assert large == small


MESSAGE_FRAGMENT = re.compile(r'<li id="msg-\d+".*?</li>', re.S)


class Renders:
    """Templates rendered (flask's `template_rendered`: one per `render_template`, not per include)."""

    def __init__(self, app):
        self.app, self.names = app, []

    def __enter__(self):
        template_rendered.connect(self._seen, self.app)
        return self

    def __exit__(self, *exc):
        template_rendered.disconnect(self._seen, self.app)

    def _seen(self, sender, template, context, **extra):
        self.names.append(template.name)


def publish_board_message(app, client, make_seller, owner, members, monkeypatch):
    """One board message to `members` sellers and the owner: the templates the send rendered (its
    answer and the publish) and each member's published payload."""
    from rentpe.realtime.core import current
    from tests.board_helpers import make_board

    board_id = make_board(owner, sellers=[make_seller() for _ in range(members)])
    client.post(f"/conversations/{board_id}/messages", {"body": "warm-up", "client_key": f"warm{members:08d}"}, htmx=True)
    published = []
    monkeypatch.setattr(current().broker, "publish_many", published.extend)
    with Renders(app) as renders:
        response = client.post(f"/conversations/{board_id}/messages",
                               {"body": "Sound check at 6? Call 98200 12345", "client_key": f"once{members:08d}"},
                               htmx=True)
    assert response.status_code == 200
    # One payload for every member: the fan-out, whose shared text each member's event refers to.
    [(to, payload)] = published
    assert to is ALL
    payloads = {user_id: message.body for user_id, message in parse_fanout(payload).durables(range(10**6))}
    assert len(payloads) == members + 1
    return renders.names, payloads, payload


def test_a_board_message_is_rendered_once_whatever_the_number_of_members(app, client, buyer, make_seller,
                                                                         monkeypatch):
    client.login(buyer)
    small, _, small_payload = publish_board_message(app, client, make_seller, buyer, 3, monkeypatch)
    large, payloads, large_payload = publish_board_message(app, client, make_seller, buyer, 30, monkeypatch)
    # The message's text crosses the broker once, not once per member: ten times the members
    # add their seqs and unread counts, a small part of one member's event.
    one_event = len(payloads[buyer.id].encode())
    assert len(large_payload) - len(small_payload) < 27 * 200 < one_event * 27 / 3

    # The send's answer, the message and its typing line once, the inbox row once per variant
    # (with and without a seller's dashboard copy): ten times the members, not one render more.
    assert sorted(large) == sorted(small)
    assert large.count("chat/events/message.html") == 1 and large.count("chat/events/inbox_row.html") <= 2
    assert "chat/_unread_badge.html" not in large and "chat/_private_receipt.html" not in large

    # Every member's event carries the very same message: whose it is, is the page's business.
    fragments = {user_id: MESSAGE_FRAGMENT.findall(data_lines_text(payload)) for user_id, payload in payloads.items()}
    [fragment] = fragments[buyer.id]
    assert all(found == [fragment] for found in fragments.values())
    assert f'data-author="{buyer.id}"' in fragment and "mine" not in fragment and "theirs" not in fragment
    # What only others see is in it, marked for the page's viewer rule to hide from the author.
    assert '<span class="msg-sender for-others">' in fragment and 'class="msg-safety for-others"' in fragment
    assert 'class="msg-action for-owner"' in fragment and '<span class="for-others"><a class="report-link"' in fragment
    # Each member's own unread counts (the warm-up and this one) are added to the shared bytes.
    for user_id, payload in payloads.items():
        unread = 0 if user_id == buyer.id else 2
        assert re.search(r'id="unread-badge"[^>]*data-count="%d"' % unread, payload)
        assert f'<span class="badge" data-count="{unread}">' in payload  # in the inbox row
    assert registry.batch_renderers[services.BOARD_MESSAGE] is events.render_message_events


def data_lines_text(payload):
    """The HTML of a broker payload (its `data: ` lines joined back, as the client does)."""
    return "\n".join(line[len("data: "):] for line in payload.split("\n") if line.startswith("data: "))


def test_a_batch_renders_the_frames_each_event_renders_alone(client, buyer, make_seller):
    from tests.board_helpers import make_board

    client.login(buyer)
    board_id = make_board(buyer, sellers=[make_seller() for _ in range(3)])
    client.post(f"/conversations/{board_id}/messages", {"body": "Sound check at 6?", "client_key": "each00000001"},
                htmx=True)
    delivered = db.session.scalars(db.select(StreamEvent).where(StreamEvent.kind == services.BOARD_MESSAGE)
                                   .order_by(StreamEvent.user_id)).all()
    assert len(delivered) == 4 and not db.session.scalars(
        db.select(StreamEvent).where(StreamEvent.kind == services.MESSAGE)).all()

    # A replay renders one event at a time, through the same renders: the same frames.
    together = events.render_message_events(delivered)
    assert together == [events.render_message_event(e) for e in delivered]
    # Boards have no delivery receipts: a board message passing a member's delivery cursor has no
    # hook to run.
    assert registry.delivery_kinds() == [services.MESSAGE]


def test_a_hidden_message_is_rendered_once_for_every_member(app, client, buyer, make_seller):
    from rentpe.chat import hiding
    from tests.board_helpers import make_board

    client.login(buyer)
    board_id = make_board(buyer, sellers=[make_seller() for _ in range(5)])
    client.post(f"/conversations/{board_id}/messages", {"body": "Wrong board", "client_key": "hide00000001"},
                htmx=True)
    message_id = db.session.get(Conversation, board_id).last_message_id
    hidden_events = [StreamEvent(user_id=p.user_id, seq=1, kind=hiding.HIDDEN,
                                 data={"conversation_id": board_id, "message_id": message_id})
                     for p in db.session.get(Conversation, board_id).participants]
    with Renders(app) as renders:
        frames = events.render_hidden_events(hidden_events)
    # The notice and the row once each, the row put into its lists (with and without a seller's
    # dashboard copy) by a wrapper that only places it.
    assert renders.names.count("chat/_message.html") == 1 and renders.names.count("chat/_inbox_row.html") == 1
    assert len(renders.names) <= 4
    assert len({frame[1] for frame in frames}) == 1 and len(frames) == 6
    assert frames == [events.render_hidden_event(e) for e in hidden_events]
    assert registry.batch_renderers[hiding.HIDDEN] is events.render_hidden_events


def test_a_board_message_replayed_as_a_plain_message_moves_no_delivery_cursor(client, buyer, make_seller):
    """Board messages recorded before they had a kind of their own still replay as `chat.message`:
    the delivery hook gets them (their data looks the same) but marks nothing and sends no receipt."""
    from tests.board_helpers import make_board, member_row

    seller = make_seller()
    board_id = make_board(buyer, sellers=[seller])
    client.login(buyer)
    client.post(f"/conversations/{board_id}/messages", {"body": "Sound check at 6?", "client_key": "board0000001"},
                htmx=True)
    message_id = db.session.scalars(db.select(StreamEvent.data).where(StreamEvent.user_id == seller.id)).all()[-1][
        "message_id"]
    old_style = SimpleNamespace(user_id=seller.id, seq=99, kind=services.MESSAGE,
                                data={"conversation_id": board_id, "message_id": message_id, "sender_id": buyer.id})
    registry.call_delivery_hooks([old_style])
    db.session.expire_all()
    assert member_row(board_id, seller).delivered_message_id == 0
    assert not db.session.scalars(db.select(StreamEvent).where(StreamEvent.kind == services.RECEIPT)).all()


def test_a_fragment_rendered_in_a_streams_request_does_not_load_its_user(app, buyer):
    """Stream hooks render in a request rebuilt from the stream's (a receipt, a presence change):
    templates get the `current_user` proxy, so the account is loaded only if a template asks."""
    from flask import render_template, session
    from flask_login import current_user

    from rentpe.accounts.services import open_session

    open_session(buyer, None)
    user_token, user_id = buyer.get_id(), buyer.id
    db.session.expunge_all()  # a stream's hook starts with an empty session
    with app.test_request_context("/events"):
        session["_user_id"] = user_token
        with Statements() as statements:
            html = render_template("chat/_unread_badge.html", unread=3, oob=True)
        assert statements.count == 0 and "3" in html
        assert current_user.id == user_id  # there all the same when asked for


def test_a_private_send_renders_its_message_and_its_inbox_row_once(app, client, buyer, listing):
    """The POST's answer shows the very fragment the publish rendered for both people, and the
    inbox row is rendered once for both (the seller's copy for the dashboard included)."""
    client.login(buyer)
    cid = conversation_id_from(contact(client, listing))
    with Renders(app) as renders:
        response = client.post(f"/conversations/{cid}/messages", {"body": "Is the 14th free?", "client_key": "once00000002"},
                               htmx=True)
    assert response.status_code == 200
    assert renders.names.count("chat/_message.html") == 1 and renders.names.count("chat/_inbox_row.html") == 1
    answer = response.get_data(as_text=True)
    message_id = db.session.get(Conversation, cid).last_message_id
    assert f'id="msg-{message_id}"' in answer and "Is the 14th free?" in answer
