"""What the event log costs on PostgreSQL, and what its prune costs.

    python bench/event_retention.py                      # 1,000 messages, 500 users x 1,000 old events
    python bench/event_retention.py --users 200 --events 1000

1. Rows and bytes of `stream_events` (table, TOAST and its primary key) per 1,000 private
   messages sent through `chat.services.send_message`, alone, and with the recipient reading each
   one (`mark_read`), as a conversation normally goes.
2. The prune (`realtime/retention.py`): `--users` users with `--events` events each, all older
   than the retention window, inserted in bulk with the data a message event carries; the prune
   keeps each user's newest `STREAM_REPLAY_LIMIT` (500). Reported: rows removed, seconds, rows a
   second, and the longest batch (how long one transaction of the prune holds its locks).

A fresh database of its own, dropped afterwards. Figures go to bench/README.md.
"""
import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench.servers import create_database, drop_database, flask  # noqa: E402


def relation_bytes(connection):
    return connection.execute(text("SELECT pg_total_relation_size('stream_events')")).scalar()


def row_count(connection):
    return connection.execute(text("SELECT count(*) FROM stream_events")).scalar()


def measure_messages(messages, read_each):
    from rentpe.chat import services
    from rentpe.chat.models import Conversation
    from rentpe.extensions import db
    from tests.factories import ListingFactory, UserFactory

    listing = ListingFactory()
    buyer = UserFactory()
    message, _ = services.contact_seller(buyer, listing, "Hello", services.new_client_key())
    conversation = db.session.get(Conversation, message.conversation_id)
    seller = listing.seller
    db.session.commit()
    with db.engine.connect() as connection:
        rows0, bytes0 = row_count(connection), relation_bytes(connection)
    for n in range(messages):
        sender, reader = (buyer, seller) if n % 2 == 0 else (seller, buyer)
        message, _ = services.send_message(conversation, sender, f"Message {n}: is the hall free on the 12th?",
                                        services.new_client_key())
        if read_each:
            services.mark_read(conversation, reader, message.id)
    db.session.remove()
    with db.engine.connect() as connection:
        rows1, bytes1 = row_count(connection), relation_bytes(connection)
    return {"rows": rows1 - rows0, "bytes": bytes1 - bytes0}


def measure_prune(users, events, keep):
    from rentpe.extensions import db
    from rentpe.models_base import utcnow
    from rentpe.realtime import retention

    old = utcnow() - timedelta(days=30)
    data = json.dumps({"conversation_id": 123456, "message_id": 12345678, "sender_id": 123456})
    with db.engine.begin() as connection:
        base = connection.execute(text("SELECT coalesce(max(user_id), 0) FROM stream_counters")).scalar() + 1000
        connection.execute(text(
            "INSERT INTO stream_counters (user_id, seq, delivered_seq)"
            " SELECT :base + u, :events, :events FROM generate_series(1, :users) AS u"),
            {"base": base, "users": users, "events": events})
        connection.execute(text(
            "INSERT INTO stream_events (user_id, seq, kind, data, created_at)"
            " SELECT :base + u, s, 'chat.message', CAST(:data AS JSON), :old"
            " FROM generate_series(1, :users) AS u, generate_series(1, :events) AS s"),
            {"base": base, "users": users, "events": events, "data": data, "old": old})
    with db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE stream_events"))
        rows_before, bytes_before = row_count(connection), relation_bytes(connection)

    batches = []
    original = db.session.execute

    def timed(statement, *args, **kwargs):
        started = time.perf_counter()
        result = original(statement, *args, **kwargs)
        if statement is retention._DELETE:
            batches.append(time.perf_counter() - started)
        return result

    db.session.execute = timed
    started = time.perf_counter()
    removed = retention.prune(7, keep)
    seconds = time.perf_counter() - started
    db.session.execute = original
    db.session.remove()
    with db.engine.connect() as connection:
        rows_after = row_count(connection)
    batches.sort()
    return {"rows_before": rows_before, "mib_before": round(bytes_before / 2**20, 1), "removed": removed,
            "rows_after": rows_after, "seconds": round(seconds, 2), "rows_per_second": round(removed / seconds),
            "batches": len(batches), "batch_ms_median": round(batches[len(batches) // 2] * 1000, 1),
            "batch_ms_max": round(batches[-1] * 1000, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    url = create_database()
    env = {"DATABASE_URL": url, "SECRET_KEY": "bench-secret"}
    try:
        flask(env, "db", "upgrade")
        os.environ.update(env)
        from rentpe import create_app

        app = create_app({"RATELIMIT_ENABLED": False, "REDIS_URL": None, "SERVER_NAME": "localhost"})
        with app.app_context(), app.test_request_context():
            report = {"per_1000_messages": measure_messages(args.messages, read_each=False),
                      "per_1000_messages_each_read": measure_messages(args.messages, read_each=True)}
            for key in ("per_1000_messages", "per_1000_messages_each_read"):
                figures = report[key]
                figures["rows"] = round(figures["rows"] * 1000 / args.messages)
                figures["kib"] = round(figures.pop("bytes") * 1000 / args.messages / 1024)
            report["prune"] = measure_prune(args.users, args.events, app.config["STREAM_REPLAY_LIMIT"])
            from rentpe.extensions import db

            db.engine.dispose()
        print(json.dumps(report, indent=2))
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
