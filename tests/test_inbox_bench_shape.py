"""The data the inbox bench measures (bench/inbox_bench.py `generate`, loaded small) keeps the
access rules: a search for the bench's own words never returns another person's conversation, a
hidden message, a board the seller left, or what the blocked buyer wrote after the block."""
import pytest

from bench.inbox_bench import generate, load, workload
from rentpe.chat.models import Message
from rentpe.chat.search import search_conversations
from rentpe.extensions import db


@pytest.fixture
def bench_data(app):
    tables, meta = generate(seed=3, conversations=60, messages=3000, noise_messages=1500, listings_per_seller=5)
    load(db.engine, tables)
    return tables, meta


def test_the_bench_searches_find_only_what_the_seller_may_read(bench_data):
    tables, meta = bench_data
    me = meta["me"]
    readable = {c["id"] for c in tables["conversations"]} & set(meta["mine"]) - {meta["left_board"]}
    assert meta["hidden"] and meta["after_block"] and meta["left_board"]
    forbidden = set(meta["hidden"]) | set(meta["after_block"])
    words = ("blue", "chairs", "wedding", "photos", "deliver", "golden", "mandap", "price")
    seen = 0
    for q in words:
        for page in (1, 2):
            results = search_conversations(me, q, page=page)
            for hit in results.messages.items:
                seen += 1
                assert hit.conversation.id in readable and hit.message.id not in forbidden
                assert hit.message.hidden_at is None
            assert all(h.conversation.id in readable for h in results.conversations)
    assert seen > 100
    # Every readable message with the word is found (first word, across pages).
    expected = db.session.scalars(db.select(Message.id).where(
        Message.conversation_id.in_(readable), Message.hidden_at.is_(None), Message.body.like("%blue%"),
        Message.id.not_in(meta["after_block"])).order_by(Message.id.desc())).all()
    found, page = [], 1
    while True:
        results = search_conversations(me, "blue", page=page)
        found += [h.message.id for h in results.messages.items]
        if not results.messages.has_next:
            break
        page += 1
    assert found == expected


def test_every_bench_call_runs(bench_data):
    for kind, call in workload(bench_data[1]):
        call()
