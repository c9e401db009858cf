"""A busy seller's inbox and conversation search, on SQLite and on PostgreSQL.

Target (issue 22): p95 ≤ 50 ms for a person with 2,000 conversations and 100,000 messages.

Builds a scratch database per backend with the Alembic migrations and bulk-loads (plain multi-row
INSERTs, no ORM) one seller ("me") with CONVERSATIONS conversations holding MESSAGES messages:
private ones with buyers about the seller's listings, and event boards; a few put away, some
unread, some messages hidden, a board the seller left, a buyer the seller blocked who wrote after
the block. Other people's conversations (NOISE_MESSAGES messages, with the same words) are in the
database too, so every query has to keep to what "me" may read. Then a fixed mix of searches
(common and rare words, two words, a prefix, a name, a listing title) and of inbox pages (first
page, deep page, More after a cursor, Unread, Archived, by listing) runs through the app's own
functions; one warm-up pass, then ROUNDS timed passes; prints p50 / p95 / p99 per backend and per
kind.

    .venv/bin/python bench/inbox_bench.py                      # both backends, full size
    .venv/bin/python bench/inbox_bench.py --only sqlite --conversations 200 --messages 10000

The PostgreSQL database is created on --pg-admin-url's server and dropped at the end (VACUUM
ANALYZE after the load, as autovacuum would soon do). `generate` is also what
tests/test_inbox_bench_shape.py runs small, to check that the shape it measures is the shape the
access rules are tested on.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rentpe import create_app  # noqa: E402
from rentpe.extensions import db  # noqa: E402
from rentpe.models_base import utcnow  # noqa: E402

CONVERSATIONS = 2_000
MESSAGES = 100_000
NOISE_MESSAGES = 50_000
ROUNDS = 5
BOARD_SHARE = 0.05

FIRST = ["Asha", "Meena", "Lakshmi", "Ravi", "Kiran", "Arjun", "Priya", "Neha", "Rahul", "Sunita", "Vikram", "Anjali",
         "Deepak", "Pooja", "Sanjay", "Kavya", "Rohan", "Divya", "Amit", "Isha"]
LAST = ["Iyer", "Verma", "Kumar", "Sharma", "Patel", "Reddy", "Nair", "Gupta", "Das", "Menon", "Joshi", "Rao"]
ITEMS = ["chairs", "tables", "fairy lights", "mandap", "sofa set", "projector", "speakers", "tent", "backdrop",
         "chandelier", "marigold garlands", "stage", "lanterns", "carpet", "crockery"]
COLOURS = ["blue", "white", "golden", "red", "pastel", "green", "silver", "pink", "black", "ivory"]
EVENTS = ["wedding", "birthday", "reception", "sangeet", "mehendi", "haldi", "anniversary", "diwali party",
          "baby shower", "engagement"]
PHRASES = [
    "Is the {colour} {item} available on the {day}th for a {event}?",
    "Can you deliver the {item} to {city} before noon?",
    "We need {n} {item} in {colour}, what is the price?",
    "Thanks, the {item} looked lovely at the {event}.",
    "Could you send photos of the {colour} {item}?",
    "Is setup included for the {item}? The {event} starts at {n} pm.",
    "Price for {n} days of {item} and {item2}?",
    "Confirming the {event} booking: {item} and {item2}.",
]
CITIES = ["Mumbai", "Pune", "Delhi", "Bengaluru", "Chennai", "Jaipur", "Goa", "Kochi"]


def sentence(rng):
    return rng.choice(PHRASES).format(
        colour=rng.choice(COLOURS), item=rng.choice(ITEMS), item2=rng.choice(ITEMS), event=rng.choice(EVENTS),
        city=rng.choice(CITIES), day=rng.randint(1, 28), n=rng.randint(2, 80))


def generate(seed=7, conversations=CONVERSATIONS, messages=MESSAGES, noise_messages=NOISE_MESSAGES,
             listings_per_seller=40):
    """Rows to load, as {table name: [dicts]} in insert order, and what the bench needs to know
    (`meta`: me, my listing ids, the ids of what must never be found). Ids are given, from 1."""
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(days=365)
    users, profiles, listings, convs, parts, msgs, blocks = [], [], [], [], [], [], []
    meta = {"hidden": [], "left_board": None, "after_block": [], "blocked": None}

    def user(name, seller=False):
        uid = len(users) + 1
        users.append({"id": uid, "email": f"u{uid}@bench.test", "password_hash": "x", "display_name": name,
                      "created_at": start})
        if seller:
            profiles.append({"user_id": uid, "shop_name": f"{name}'s shop", "city": rng.choice(CITIES),
                             "created_at": start})
        return uid

    def listing(seller_id):
        lid = len(listings) + 1
        listings.append({"id": lid, "seller_id": seller_id, "title": f"{rng.choice(COLOURS).title()} {rng.choice(ITEMS)}",
                         "category": "furniture", "description": sentence(rng), "city": rng.choice(CITIES),
                         "area": "", "price": rng.randint(100, 9000), "price_unit": "day", "status": "live", "created_at": start})
        return lid

    me = user("Ravi Kumar", seller=True)
    mine = [listing(me) for _ in range(listings_per_seller)]
    other_seller = user("Flora Sen", seller=True)
    theirs = [listing(other_seller) for _ in range(listings_per_seller)]
    meta.update(me=me, listings=mine)

    def conversation(kind, buyer_id=None, seller_id=None, owner_id=None, title=None):
        cid = len(convs) + 1
        convs.append({"id": cid, "kind": kind, "buyer_id": buyer_id, "seller_id": seller_id, "owner_id": owner_id,
                      "title": title, "event_date": (now + timedelta(days=30)).date() if kind == "group" else None,
                      "city": rng.choice(CITIES) if kind == "group" else None, "created_at": start,
                      "last_message_at": start, "last_message_id": None, "message_count": 0, "last_listing_id": None})
        return cid

    def part(cid, uid, role, left=False):
        parts.append({"conversation_id": cid, "user_id": uid, "role": role, "joined_at": start,
                      "last_read_message_id": 0, "delivered_message_id": 0, "last_sent_message_id": 0,
                      "unread_count": 0, "muted": False, "left_at": now if left else None,
                      "left_reason": "left" if left else None, "archived_message_id": None})

    # My conversations: private ones with a buyer each, and some boards.
    mine_convs = []
    for n in range(conversations):
        if rng.random() < BOARD_SHARE:
            owner = user(f"{rng.choice(FIRST)} {rng.choice(LAST)}")
            cid = conversation("group", owner_id=owner, title=f"{rng.choice(FIRST)}'s {rng.choice(EVENTS)}")
            part(cid, owner, "owner")
            part(cid, me, "seller", left=meta["left_board"] is None)
            if meta["left_board"] is None:
                meta["left_board"] = cid
            for _ in range(rng.randint(1, 3)):
                part(cid, user(f"{rng.choice(FIRST)} {rng.choice(LAST)}", seller=True), "seller")
            members = [p["user_id"] for p in parts if p["conversation_id"] == cid]
        else:
            buyer = user(f"{rng.choice(FIRST)} {rng.choice(LAST)}")
            cid = conversation("direct", buyer_id=buyer, seller_id=me)
            part(cid, buyer, "buyer")
            part(cid, me, "seller")
            members = [buyer, me]
        mine_convs.append((cid, members))
    blocked_cid, blocked_members = next((c, m) for c, m in mine_convs if len(m) == 2)
    meta["blocked"] = blocked_members[0]
    # Other people's conversations: the same words, never mine.
    noise_convs = []
    for n in range(max(conversations // 4, 1)):
        buyer = user(f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        cid = conversation("direct", buyer_id=buyer, seller_id=other_seller)
        part(cid, buyer, "buyer")
        part(cid, other_seller, "seller")
        noise_convs.append((cid, [buyer, other_seller]))

    # Messages in time order across conversations (ids grow with time, as in the app).
    plan = [rng.choice(mine_convs) for _ in range(messages)] + [rng.choice(noise_convs) for _ in range(noise_messages)]
    rng.shuffle(plan)
    step = (now - start) / max(len(plan), 1)
    block_at = start + step * int(len(plan) * 0.8)
    blocks.append({"blocker_id": me, "blocked_id": meta["blocked"], "created_at": block_at})
    conv_by_id = {c["id"]: c for c in convs}
    part_by_key = {(p["conversation_id"], p["user_id"]): p for p in parts}
    for i, (cid, members) in enumerate(plan):
        mid = i + 1
        at = start + step * i
        sender = rng.choice(members)
        conv = conv_by_id[cid]
        listing_id = None
        if conv["kind"] == "direct" and (conv["message_count"] == 0 or rng.random() < 0.05):
            listing_id = rng.choice(mine if conv["seller_id"] == me else theirs)
        hidden = rng.random() < 0.002
        if cid == blocked_cid and sender == meta["blocked"] and at >= block_at:
            meta["after_block"].append(mid)
        msgs.append({"id": mid, "conversation_id": cid, "sender_id": sender, "body": sentence(rng),
                     "client_key": f"k{mid}", "listing_id": listing_id, "created_at": at,
                     "hidden_at": at if hidden else None, "kind": "text"})
        if hidden and sender != me:
            meta["hidden"].append(mid)
        conv.update(last_message_id=mid, last_message_at=at, message_count=conv["message_count"] + 1)
        if listing_id:
            conv["last_listing_id"] = listing_id
        for uid in members:
            p = part_by_key[(cid, uid)]
            if uid == sender:
                p["last_sent_message_id"] = mid
                p["last_read_message_id"] = mid
                p["unread_count"] = 0
            else:
                p["unread_count"] += 1
    # The seller has read most conversations, and put some away.
    for cid, _ in mine_convs:
        p = part_by_key[(cid, me)]
        last = conv_by_id[cid]["last_message_id"] or 0
        if rng.random() < 0.85:
            p.update(last_read_message_id=last, unread_count=0)
        if rng.random() < 0.15:
            p["archived_message_id"] = last
    meta["mine"] = [cid for cid, _ in mine_convs]
    tables = {"users": users, "seller_profiles": profiles, "listings": listings, "conversations": convs,
              "participants": parts, "messages": msgs, "blocks": blocks}
    return tables, meta


def load(engine, tables, chunk=2_000):
    """Plain multi-row INSERTs in one transaction per table (the FTS triggers and the generated
    tsvector do their work row by row as in production)."""
    metadata = db.metadata
    for name, rows in tables.items():
        table = metadata.tables[name]
        with engine.begin() as conn:
            for i in range(0, len(rows), chunk):
                conn.execute(table.insert(), rows[i:i + chunk])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in ("users", "listings", "conversations", "messages"):
                conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"(SELECT max(id) FROM {name}))")
            conn.exec_driver_sql("VACUUM ANALYZE")


def make_app(url):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})


def prepare(backend, args, tables):
    if backend == "sqlite":
        path = Path(args.sqlite_path)
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + args.pg_database
        admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{args.pg_database}"'))
        admin.dispose()
    app = make_app(url)
    with app.app_context():
        from flask_migrate import upgrade

        started = time.perf_counter()
        upgrade()
        load(db.engine, tables)
        print(f"  {backend}: migrated and loaded {len(tables['messages']):,} messages in "
              f"{len(tables['conversations']):,} conversations in {time.perf_counter() - started:.1f} s", flush=True)
        db.engine.dispose()
    return url


def drop(backend, args):
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(args.sqlite_path + suffix).unlink(missing_ok=True)
    else:
        admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)'))
        admin.dispose()


def workload(meta):
    """[(kind, callable)]: what a busy seller does in the inbox, each run through the app's code."""
    from rentpe.chat import queries
    from rentpe.chat.search import search_conversations

    me, listing = meta["me"], meta["listings"][0]
    work = []
    for q in ("blue", "chairs", "mandap", "wedding", "fairy lights", "golden chandelier", "photos", "deliver noon"):
        work.append(("search: words", lambda q=q: search_conversations(me, q)))
    for q in ("proj", "lante", "chan"):
        work.append(("search: prefix", lambda q=q: search_conversations(me, q)))
    for q in ("lakshmi", "meena iyer", "golden tables"):
        work.append(("search: name / title", lambda q=q: search_conversations(me, q)))
    work.append(("search: page 5", lambda: search_conversations(me, "chairs", page=5)))
    work.append(("inbox: page 1", lambda: queries.inbox_page(me, per_page=30)))
    work.append(("inbox: page 40", lambda: queries.inbox_page(me, page=40, per_page=30)))
    cursor = {}

    def more():
        first = cursor.get("page") or queries.inbox_page(me, page=30, per_page=30)
        cursor["page"] = first
        return queries.inbox_page(me, after=first.query, per_page=30)
    work.append(("inbox: More", more))
    work.append(("inbox: unread", lambda: queries.inbox_page(me, filter="unread", per_page=30)))
    work.append(("inbox: archived", lambda: queries.inbox_page(me, filter="archived", per_page=30)))
    work.append(("inbox: by listing", lambda: queries.inbox_page(me, seller_only=True, listing_id=listing, per_page=30)))
    return work


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def run(url, meta, rounds):
    app = make_app(url)
    timings, cpu = defaultdict(list), []
    with app.app_context():
        work = workload(meta)
        for round_number in range(rounds + 1):
            for kind, call in work:
                started, cpu_started = time.perf_counter(), time.process_time()
                call()
                elapsed = (time.perf_counter() - started) * 1000
                db.session.remove()
                if round_number:
                    timings[kind].append(elapsed)
                    # This process's CPU (all of SQLite's work, only the client's with PostgreSQL):
                    # the figure a machine shared with other work does not inflate.
                    cpu.append((time.process_time() - cpu_started) * 1000)
        db.engine.dispose()
    return timings, cpu


def report(backend, measured):
    timings, cpu = measured
    every = [t for values in timings.values() for t in values]
    print(f"\n{backend}: {len(every)} timed calls  p50 {percentile(every, 50):.1f}  p95 {percentile(every, 95):.1f}"
          f"  p99 {percentile(every, 99):.1f}  max {max(every):.1f} ms"
          f"  (this process's CPU: p50 {percentile(cpu, 50):.1f}  p95 {percentile(cpu, 95):.1f} ms;"
          f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"  {'kind':24} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7}")
    for kind, values in timings.items():
        print(f"  {kind:24} {len(values):>4} {statistics.median(values):7.1f} {percentile(values, 95):7.1f}"
              f" {max(values):7.1f}")
    return percentile(every, 95)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--noise", type=int, default=NOISE_MESSAGES)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite-path", default=str(Path(tempfile.gettempdir()) / "rentpe-inbox-bench.db"))
    parser.add_argument("--pg-admin-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--pg-database", default="rentpe_inbox_bench")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases (to EXPLAIN)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    tables, meta = generate(args.seed, args.conversations, args.messages, args.noise)
    print(f"generated {len(tables['messages']):,} messages ({args.messages:,} in the seller's "
          f"{args.conversations:,} conversations) in {time.perf_counter() - started:.1f} s", flush=True)
    worst = {}
    for backend in ([args.only] if args.only else ["sqlite", "postgresql"]):
        try:
            url = prepare(backend, args, tables)
            worst[backend] = report(backend, run(url, meta, args.rounds))
        finally:
            if not args.keep:
                drop(backend, args)
    print("\np95 target 50 ms: " + ", ".join(f"{b} {'met' if p95 <= 50 else 'MISSED'} ({p95:.1f})"
                                             for b, p95 in worst.items()))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
