"""Benchmark data: many users and one private conversation per pair, inserted in bulk.

`flask --app app bench-fixture --users N --password P --out FILE` makes users
`user{i}@bench.test` (i = 0 … N-1) sharing one password hash, and a conversation for each pair
(2k, 2k+1): buyer 2k, seller 2k+1, both participants. FILE maps "2k-2k+1" to the conversation id;
the load generator (`bench/loadgen.py`) reads it. Bulk statements, not services: 10,000 users
take seconds, not the minutes one `create_user` (and one password hash) each would.

`flask --app app bench-board-fixture --users N --password P --out FILE` makes the same users and
one event board owned by user 0 with all N as members (the others as sellers); FILE holds
{"board": id} for `bench/board_fanout.py`.
"""
import json
from datetime import timedelta

import click
from sqlalchemy import insert, select
from werkzeug.security import generate_password_hash

from .accounts.models import User
from .chat.boards.services import MAX_MEMBERS
from .chat.models import BUYER, DIRECT, GROUP, OWNER, SELLER, Conversation, Participant
from .extensions import db
from .models_base import utcnow

# Thousands of clients log in at the start of a run: a light scrypt factor keeps that from
# dominating the measurement (these are throwaway accounts on a throwaway database).
BENCH_HASH_METHOD = "scrypt:1024:8:1"
CHUNK = 1000


def email_for(i):
    return f"user{i}@bench.test"


def create_bench_users(users, password):
    """Insert users user0 … user{N-1}; returns their ids in that order. Refuses if any exists."""
    password_hash = generate_password_hash(password, method=BENCH_HASH_METHOD)
    now = utcnow()
    emails = [email_for(i) for i in range(users)]
    existing = set()
    for start in range(0, users, CHUNK):
        existing.update(db.session.scalars(select(User.email).where(User.email.in_(emails[start:start + CHUNK]))))
    if existing:
        raise click.ClickException(f"{len(existing)} bench users already exist (e.g. {min(existing)}): use an empty database")
    rows = [{"email": e, "display_name": f"User {i}", "password_hash": password_hash, "is_moderator": False,
             "is_suspended": False, "session_generation": 0, "created_at": now} for i, e in enumerate(emails)]
    for start in range(0, users, CHUNK):
        db.session.execute(insert(User), rows[start:start + CHUNK])
    ids = {}
    for start in range(0, users, CHUNK):
        ids.update(db.session.execute(select(User.email, User.id).where(User.email.in_(emails[start:start + CHUNK]))).all())
    return [ids[e] for e in emails]


def create_bench_fixture(users, password):
    """Insert the users and their pair conversations; returns {"conversations": {"a-b": id}}."""
    now = utcnow()
    user_id = create_bench_users(users, password)
    pairs = [(2 * k, 2 * k + 1) for k in range(users // 2)]
    conversations = [{"kind": DIRECT, "buyer_id": user_id[a], "seller_id": user_id[b], "created_at": now,
                      "last_message_at": now, "message_count": 0} for a, b in pairs]
    for start in range(0, len(conversations), CHUNK):
        db.session.execute(insert(Conversation), conversations[start:start + CHUNK])
    by_buyer = {}
    buyer_ids = [user_id[a] for a, _ in pairs]
    for start in range(0, len(buyer_ids), CHUNK):
        by_buyer.update(db.session.execute(
            select(Conversation.buyer_id, Conversation.id).where(Conversation.buyer_id.in_(buyer_ids[start:start + CHUNK]))
        ).all())
    participants = []
    for a, b in pairs:
        cid = by_buyer[user_id[a]]
        for index, role in ((a, BUYER), (b, SELLER)):
            participants.append({"conversation_id": cid, "user_id": user_id[index], "role": role, "joined_at": now,
                                 "last_read_message_id": 0, "delivered_message_id": 0, "unread_count": 0})
    for start in range(0, len(participants), CHUNK):
        db.session.execute(insert(Participant), participants[start:start + CHUNK])
    db.session.commit()
    return {"conversations": {f"{a}-{b}": by_buyer[user_id[a]] for a, b in pairs}}


def create_board_fixture(users, password):
    """Insert the users and one board owned by user 0 with all of them as members; returns
    {"board": id}."""
    now = utcnow()
    user_id = create_bench_users(users, password)
    board_id = db.session.execute(insert(Conversation).values(
        kind=GROUP, title=f"Bench board of {users}", event_date=now.date() + timedelta(days=30), city="Mumbai",
        owner_id=user_id[0], created_at=now, last_message_at=now, message_count=0,
    ).returning(Conversation.id)).scalar_one()
    members = [{"conversation_id": board_id, "user_id": uid, "role": OWNER if i == 0 else SELLER, "joined_at": now,
                "last_read_message_id": 0, "delivered_message_id": 0, "unread_count": 0} for i, uid in enumerate(user_id)]
    for start in range(0, len(members), CHUNK):
        db.session.execute(insert(Participant), members[start:start + CHUNK])
    db.session.commit()
    return {"board": board_id}


@click.command("bench-fixture")
@click.option("--users", type=click.IntRange(min=2), required=True, help="How many users (pairs of 2k, 2k+1).")
@click.option("--password", required=True, help="The password every bench user logs in with.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="Where to write the JSON.")
def bench_fixture_command(users, password, out):
    """Bench users user{i}@bench.test and one conversation per pair, written to OUT as JSON."""
    fixture = create_bench_fixture(users, password)
    with open(out, "w") as fh:
        json.dump(fixture, fh)
    click.echo(f"Created {users} users and {len(fixture['conversations'])} conversations; wrote {out}.")


@click.command("bench-board-fixture")
@click.option("--users", type=click.IntRange(min=2, max=MAX_MEMBERS), required=True,
              help=f"How many users, all members of the board (at most {MAX_MEMBERS}).")
@click.option("--password", required=True, help="The password every bench user logs in with.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="Where to write the JSON.")
def bench_board_fixture_command(users, password, out):
    """Bench users user{i}@bench.test and one board owned by user0 with all of them as members."""
    fixture = create_board_fixture(users, password)
    with open(out, "w") as fh:
        json.dump(fixture, fh)
    click.echo(f"Created {users} users and board {fixture['board']} with all of them as members; wrote {out}.")
