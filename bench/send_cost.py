"""What one private message costs the server, in one process: CPU per message and SQL statements.

    python bench/send_cost.py --messages 400                 # PostgreSQL + a private redis-server
    python bench/send_cost.py --messages 400 --embedded      # SQLite + the in-process broker
    python bench/send_cost.py --messages 400 --py-spy cost.txt   # plus where the time goes

The whole cycle of a message through the real app (`create_app`, real templates, real SQL, real
broker), without HTTP sockets or a load generator in the way: pairs of users with their streams
open (`GET /events`, each read by a thread as a WSGI server would), then messages posted one at a
time (`POST /conversations/<id>/messages` as htmx sends it), each one waited for until the
recipient's stream has shown it and the sender's stream has shown the "delivered" receipt the
recipient's stream triggered. So a message's cost holds the POST, the publish, both streams'
frames and the delivery receipt with its own publish. CPU is this process's user + system time
(PostgreSQL's and Redis's are not counted); statements are every statement sent to the database.

`--py-spy FILE` samples this process with py-spy while the messages are sent and writes the
functions where the time went (own time and time including callees) to FILE.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers import BIN, RedisServer, create_database, drop_database, prepare  # noqa: E402

PASSWORD = "bench-password"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Person:
    def __init__(self, app, index):
        self.app = app
        self.client = app.test_client()
        self.index = index
        self.text = ""
        self.changed = threading.Condition()
        self.response = None
        self.error = None

    def login(self):
        page = self.client.get("/login").get_data(as_text=True)
        token = CSRF_META.search(page).group(1)
        response = self.client.post("/login", data={"email": f"user{self.index}@bench.test", "password": PASSWORD,
                                                    "csrf_token": token})
        assert response.status_code == 302, response.status_code

    def open_page(self, conversation_id):
        page = self.client.get(f"/conversations/{conversation_id}").get_data(as_text=True)
        self.token = CSRF_META.search(page).group(1)
        self.after = int(re.search(r"/events\?after=(\d+)", page).group(1))

    def open_stream(self):
        self.response = self.client.get(f"/events?after={self.after}", buffered=False)
        assert self.response.status_code == 200
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        # As a WSGI server does: write out what the stream yields, until it ends. A stream that
        # failed is reported by the next `wait_for` timing out, with the error kept here.
        try:
            for chunk in self.response.iter_encoded():
                with self.changed:
                    self.text += chunk.decode()
                    self.changed.notify_all()
        except Exception as exc:
            self.error = exc

    def wait_for(self, needle, timeout=10):
        with self.changed:
            if not self.changed.wait_for(lambda: needle in self.text, timeout):
                raise TimeoutError(f"user{self.index}'s stream never showed {needle!r} (stream error: {self.error!r})")
            self.text = ""  # what was read is done with

    def send(self, conversation_id, body, key):
        response = self.client.post(f"/conversations/{conversation_id}/messages",
                                    data={"body": body, "client_key": key, "csrf_token": self.token},
                                    headers={"HX-Request": "true", "X-CSRFToken": self.token})
        assert response.status_code == 200, response.status_code


def summarise_py_spy(raw_path, out_path, top=45):
    """Collapsed stacks -> the functions with the most samples, own and cumulative."""
    own, total, samples = {}, {}, 0
    for line in Path(raw_path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        count = int(count)
        samples += count
        frames = stack.split(";")
        for name in set(frames):
            total[name] = total.get(name, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"{samples} samples", "", "cumulative:"]
    lines += [f"{100 * n / samples:5.1f} %  {name}" for name, n in sorted(total.items(), key=lambda kv: -kv[1])[:top]]
    lines += ["", "own:"]
    lines += [f"{100 * n / samples:5.1f} %  {name}" for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    Path(out_path).write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--embedded", action="store_true", help="SQLite and the in-process broker")
    parser.add_argument("--py-spy", dest="py_spy", help="write a profile summary here")
    parser.add_argument("--cprofile", help="cProfile the POSTs (this thread only) into this file")
    parser.add_argument("--statements", action="store_true", help="print the statements of the last message")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rentpe-cost-"))
    redis = None
    if args.embedded:
        env = {"DATABASE_URL": f"sqlite:///{work / 'cost.db'}"}
    else:
        redis = RedisServer().start()
        env = {"DATABASE_URL": create_database(), "REDIS_URL": redis.url}
    try:
        fixture = work / "fixture.json"
        prepare(env, 2 * args.pairs, PASSWORD, fixture)
        conversations = json.loads(fixture.read_text())["conversations"]
        report = measure(env, conversations, args)
    finally:
        if redis is not None:
            redis.stop()
            drop_database(env["DATABASE_URL"])
    print(json.dumps(report))


def measure(env, conversations, args):
    os.environ.update({"SECRET_KEY": "bench-secret", "RATELIMIT_ENABLED": "false", **env})
    from sqlalchemy import event

    from rentpe import create_app
    from rentpe.extensions import db

    # Each message waits for its own "Delivered", which the watch records in its next round: rounds
    # every 0.1 s (not every second) keep the run short, and streams that outlive it (a stream
    # that ended would leave the next wait to time out).
    app = create_app({"REDIS_URL": env.get("REDIS_URL"), "STREAM_CHECK_SECONDS": 0.1,
                      "STREAM_LIFETIME_SECONDS": 3600})
    pairs = []
    for k in range(args.pairs):
        a, b = Person(app, 2 * k), Person(app, 2 * k + 1)
        cid = conversations[f"{2 * k}-{2 * k + 1}"]
        for person in (a, b):
            person.login()
            person.open_page(cid)
            person.open_stream()
        pairs.append((cid, a, b))
    time.sleep(0.5)

    statements = [0]
    texts = []

    def seen(conn, cursor, statement, *args):
        statements[0] += 1
        texts.append(" ".join(statement.split())[:160])

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", seen)

    post_cpu = [0.0]

    def send(n, tag):
        cid, a, b = pairs[n % len(pairs)]
        sender, recipient = (a, b) if (n // len(pairs)) % 2 == 0 else (b, a)
        body = f"{tag} message {n} about the mandap"
        started = time.thread_time()
        sender.send(cid, body, f"{tag}{n:012d}")
        post_cpu[0] += time.thread_time() - started
        recipient.wait_for(body)
        sender.wait_for("Delivered")

    for n in range(args.warmup):
        send(n, "warm")
    spy = None
    if args.py_spy:
        raw = Path(args.py_spy).with_suffix(".raw")
        spy = subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(os.getpid()), "--rate", "250", "--gil", "--format",
                                "raw", "--output", str(raw), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    statements[0] = 0
    post_cpu[0] = 0.0
    profile = None
    if args.cprofile:
        import cProfile

        profile = cProfile.Profile(time.thread_time)
        profile.enable()
    started_cpu, started = time.process_time(), time.perf_counter()
    for n in range(args.messages):
        texts.clear()
        send(n, "cost")
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    sent_statements = statements[0]
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.cprofile)
    if spy is not None:
        spy.send_signal(2)
        spy.wait(timeout=30)
        summarise_py_spy(raw, args.py_spy)
    if args.statements:
        print("\n".join(texts), file=sys.stderr)
    return {
        "database": "sqlite" if args.embedded else "postgresql",
        "messages": args.messages,
        "cpu_ms_per_message": round(1000 * cpu / args.messages, 2),
        "post_cpu_ms_per_message": round(1000 * post_cpu[0] / args.messages, 2),
        "wall_ms_per_message": round(1000 * wall / args.messages, 2),
        "statements_per_message": round(sent_statements / args.messages, 1),
    }


if __name__ == "__main__":
    main()
