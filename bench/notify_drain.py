"""How long the missed-message e-mail worker takes to drain a backlog of due e-mails.

A scratch database (migrated like production) gets `--rows` (10,000) due notifications: that many
private conversations between 2,000 buyers and 5 sellers, each with 1 to 3 unread messages about
a listing, and the sellers' pending rows due a minute ago. Then `--workers` processes of
`flask --app app notifications run --once` (the production command) send them to a real SMTP
server in this process (aiosmtpd, which only counts what it accepts), and the time from their
start until every row is `sent` is measured, as are the e-mails per second. Each round starts
from the same data again.

    .venv/bin/python bench/notify_drain.py                       # PostgreSQL, 1 then 2 workers
    .venv/bin/python bench/notify_drain.py --backend sqlite --workers 1
"""
import argparse
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rentpe import create_app  # noqa: E402
from rentpe.extensions import db  # noqa: E402
from rentpe.models_base import utcnow  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/test")
PG_DATABASE = "rentpe_bench_notify"
BUYERS, SELLERS = 2000, 5


class Counting:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


def scratch_url(backend, tmp):
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'notify.db'}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{PG_DATABASE}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_DATABASE


def drop(backend):
    if backend == "postgresql":
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        admin.dispose()


def load(rows, seed=7):
    """Users, listings, conversations, messages and the due notifications, in bulk."""
    rng = random.Random(seed)
    now = utcnow()
    t = sa.table
    c = sa.column
    users = [{"id": i, "email": f"person{i}@bench.test", "display_name": f"Person {i}", "password_hash": "x",
              "is_moderator": False, "is_suspended": False, "session_generation": 0, "created_at": now,
              "notify_email": "immediate"} for i in range(1, BUYERS + SELLERS + 1)]
    sellers = list(range(BUYERS + 1, BUYERS + SELLERS + 1))
    listings = [{"id": n + 1, "seller_id": sellers[n % SELLERS], "title": f"Banquet hall {n}", "category": "venue",
                 "description": "A hall.", "city": "Mumbai", "area": "", "price": 50000, "price_unit": "day",
                 "deposit": 0, "status": "live", "view_count": 0, "favourite_count": 0, "created_at": now,
                 "updated_at": now} for n in range(50)]
    conversations, participants, messages, notifications = [], [], [], []
    message_id = 0
    for n in range(rows):
        buyer, seller = n % BUYERS + 1, sellers[n // BUYERS % SELLERS]
        listing = listings[rng.randrange(len(listings))]["id"]
        cid = n + 1
        first = message_id + 1
        for k in range(rng.randint(1, 3)):
            message_id += 1
            messages.append({"id": message_id, "conversation_id": cid, "sender_id": buyer,
                             "body": f"Is the hall free on {k + 10} December? We are {rng.randint(50, 400)} guests.",
                             "client_key": f"k{message_id:012d}", "listing_id": listing,
                             "created_at": now - timedelta(minutes=10)})
        conversations.append({"id": cid, "kind": "direct", "buyer_id": buyer, "seller_id": seller, "created_at": now,
                              "last_message_at": now, "last_message_id": message_id,
                              "message_count": message_id - first + 1, "last_listing_id": listing})
        for user, role, read in ((buyer, "buyer", message_id), (seller, "seller", 0)):
            participants.append({"conversation_id": cid, "user_id": user, "role": role, "last_read_message_id": read,
                                 "delivered_message_id": 0, "last_sent_message_id": read,
                                 "unread_count": 0 if read else message_id - first + 1, "joined_at": now,
                                 "muted": False})
        notifications.append({"user_id": seller, "conversation_id": cid, "message_id": first, "status": "pending",
                              "due_at": now - timedelta(minutes=1), "created_at": now, "attempts": 0})
    with db.engine.begin() as conn:
        for name, data in (("users", users), ("listings", listings), ("conversations", conversations),
                           ("participants", participants), ("messages", messages),
                           ("notifications", notifications)):
            conn.execute(t(name, *[c(k) for k in data[0]]).insert(), data)
        if db.engine.dialect.name == "postgresql":
            for name in ("users", "listings", "conversations", "messages", "notifications"):
                conn.execute(sa.text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))"))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    return len(messages)


def drain(url, smtp_port, workers, rows, claim_size):
    env = {**os.environ, "DATABASE_URL": url, "MAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "SECRET_KEY": "bench",
           "NOTIFY_DELAY_S": "0", "NOTIFY_CLAIM_SIZE": str(claim_size), "REDIS_URL": ""}
    command = [str(Path(sys.executable).parent / "flask"), "--app", "app", "notifications", "run", "--once"]
    started, cpu_before = time.perf_counter(), _children_cpu()
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    for process in processes:
        assert process.wait(timeout=1800) == 0
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    with db.engine.connect() as conn:
        sent = conn.execute(sa.text("SELECT count(*) FROM notifications WHERE status = 'sent'")).scalar()
    return elapsed, sent, cpu


def _children_cpu():
    """CPU seconds (user + system) of the finished worker processes, start-up included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--claim-size", type=int, default=50)
    args = parser.parse_args(argv)

    handler = Counting()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    results = []
    with tempfile.TemporaryDirectory(prefix="rentpe-bench-notify-") as tmp:
        try:
            for workers in args.workers:
                url = scratch_url(args.backend, Path(tmp))
                if args.backend == "sqlite":
                    Path(tmp, "notify.db").unlink(missing_ok=True)
                app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
                with app.app_context():
                    from flask_migrate import upgrade

                    upgrade()
                    messages = load(args.rows)
                    before = handler.count
                    elapsed, sent, cpu = drain(url, port, workers, args.rows, args.claim_size)
                    received = handler.count - before
                    db.engine.dispose()
                assert sent == args.rows == received, (sent, received)
                results.append((workers, elapsed))
                print(f"{args.backend}: {workers} worker(s) drained {args.rows:,} e-mails ({messages:,} messages)"
                      f" in {elapsed:.1f} s: {args.rows / elapsed:,.0f} e-mails/s; workers' CPU {cpu:.1f} s"
                      f" ({cpu / args.rows * 1000:.1f} ms per e-mail); SMTP server received {received:,};"
                      f" load average {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            controller.stop()
            drop(args.backend)
    return results


if __name__ == "__main__":
    main()
