"""Migration 0007 fills in what the send now keeps: each participant's last sent message and each
conversation's last asked-about listing, for the conversations already there (and, on SQLite,
keeps every row that refers to the tables it alters)."""
import sqlalchemy as sa

from rentpe import create_app
from rentpe.chat import queries
from rentpe.chat.models import Conversation
from rentpe.extensions import db
from rentpe.models_base import utcnow
from tests.conftest import _overrides, scratch_database


def test_existing_conversations_get_their_last_sent_messages_and_listing(backend, _tmpdir):
    from flask_migrate import downgrade, upgrade

    with scratch_database(backend, _tmpdir, "chat0007") as url, create_app(_overrides(url, _tmpdir)).app_context():
        upgrade(revision="0006")
        now = utcnow()
        with db.engine.begin() as conn:
            for user_id, name in ((1, "buyer"), (2, "seller"), (3, "other")):
                conn.execute(sa.text(
                    "INSERT INTO users (id, email, display_name, password_hash, is_moderator, is_suspended,"
                    " session_generation, created_at) VALUES (:id, :email, :name, 'x', false, false, 0, :now)"
                ), {"id": user_id, "email": f"{name}@example.test", "name": name, "now": now})
            for listing_id, title in ((1, "Banquet hall"), (2, "Fairy lights")):
                conn.execute(sa.text(
                    "INSERT INTO listings (id, seller_id, title, category, description, city, area, price, price_unit,"
                    " deposit, status, view_count, favourite_count, created_at, updated_at) VALUES"
                    " (:id, 2, :title, 'venues', 'Nice.', 'Pune', 'Baner', 900, 'day', 0, 'live', 0, 0, :now, :now)"
                ), {"id": listing_id, "title": title, "now": now})
            for cid, seller in ((1, 2), (2, 3)):
                conn.execute(sa.text(
                    "INSERT INTO conversations (id, kind, buyer_id, seller_id, created_at, last_message_at, message_count)"
                    " VALUES (:id, 'direct', 1, :seller, :now, :now, 0)"), {"id": cid, "seller": seller, "now": now})
                for user_id, role in ((1, "buyer"), (seller, "seller")):
                    conn.execute(sa.text(
                        "INSERT INTO participants (conversation_id, user_id, role, last_read_message_id,"
                        " delivered_message_id, unread_count, joined_at) VALUES (:cid, :uid, :role, 0, 0, 0, :now)"
                    ), {"cid": cid, "uid": user_id, "role": role, "now": now})
            # Conversation 1: the buyer asks about the hall, then the lights; the seller answers last.
            # Conversation 2: only the buyer has written, about nothing in particular.
            for mid, cid, sender, listing in ((1, 1, 1, 1), (2, 1, 1, 2), (3, 1, 2, None), (4, 2, 1, None)):
                conn.execute(sa.text(
                    "INSERT INTO messages (id, conversation_id, sender_id, body, client_key, listing_id, created_at)"
                    " VALUES (:id, :cid, :sender, 'hello', :key, :listing, :now)"
                ), {"id": mid, "cid": cid, "sender": sender, "key": f"key{mid:08d}", "listing": listing, "now": now})
        upgrade()
        try:
            last_sent = dict(((row.conversation_id, row.user_id), row.last_sent_message_id) for row in db.session.execute(
                sa.text("SELECT conversation_id, user_id, last_sent_message_id FROM participants")))
            assert last_sent == {(1, 1): 2, (1, 2): 3, (2, 1): 4, (2, 3): 0}
            # Altering `conversations` on SQLite (copy, drop, rename) left the rows referring to it.
            assert db.session.scalar(sa.text("SELECT count(*) FROM messages")) == 4
            first, second = db.session.get(Conversation, 1), db.session.get(Conversation, 2)
            assert first.last_listing.title == "Fairy lights" and second.last_listing is None
            assert queries.receipt_for(first, 1).message_id == 2 and queries.receipt_for(first, 1).status == "sent"
            assert queries.receipt_for(second, 3).status is None  # nothing sent yet
            db.session.remove()
            downgrade(revision="0006")
            upgrade()
            assert db.session.get(Conversation, 1).last_listing_id == 2
        finally:
            db.session.remove()
            db.engine.dispose()
