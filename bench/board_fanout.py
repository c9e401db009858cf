"""Board fan-out: one event board of N members, each message timed into every other member's stream.

    python bench/board_fanout.py --server gunicorn --workers 2 --members 500 --messages 10 --rate 0.1 --repeat 3
    python bench/board_fanout.py --server embedded --members 500 --messages 5 --rate 0.05 --repeat 2

`gunicorn` runs `deploy/gunicorn.conf.py` on a scratch PostgreSQL database and a private
redis-server; `embedded` runs `python app.py` (SQLite file, in-process broker). The fixture
(`flask bench-board-fixture`: users `user{i}@bench.test` and one board owned by user 0 with all of
them as members) is made once; the server is restarted before each repetition.

Each repetition, in one gevent process with the clients of `bench/loadgen.py`:

1. every member logs in (GET /login for the CSRF token, POST /login) and opens a page for its
   CSRF token and the `?after=` cursor rendered into it: `/inbox` (the board's row), or with
   `--page board` the board itself (which renders all N members, so N log-ins take minutes);
2. every member opens `GET /events?after=<cursor>` (reconnecting with `Last-Event-ID` if a stream
   ends); then the server is left to settle (the presence fan-out of N streams opening);
3. `--messages` messages are posted to the board at `--rate` per second, open loop, each by a
   random member (`POST /conversations/<id>/messages`, as htmx does: `HX-Request`, `X-CSRFToken`,
   a unique body and a fresh client key; a failed POST is retried with the same key);
4. it waits until every message reached every other member (or `--drain` seconds pass).

A delivery is the message's body arriving inside its message fragment (`<li id="msg-…">`) in a
member's stream; its latency runs from the start of the POST to that arrival. Per message, the
fan-out completes when the last of the N-1 other members got it. Lost = a (message, member) pair
that never arrived; duplicated = a pair that arrived in more than one frame carrying an `id:`;
reordered = in a stream's frames carrying an `id:`, a message id lower than an earlier one. The
sender's own stream (their other tabs) is not counted. Server CPU = user + system seconds of the
server's process tree (and of the private redis-server) from the first POST to the last delivery,
per message; and the same less what the open streams cost with nothing sent (measured over
`--hold` seconds just before the first POST: at 0.1 msg/s, 500 idle streams beside each message
for 10 s are much of its figure). `--py-spy FILE` records the server (all workers) with py-spy during that phase.

Each run's report is printed as a JSON line; the last line holds the medians over the runs.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import Client, Run, Stream, cpu_seconds, percentile, process_tree  # noqa: E402
from servers import BIN, AppServer, RedisServer, create_database, drop_database, flask, raise_open_files  # noqa: E402

PASSWORD = "bench-password"
QUANTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))


class BoardRun(Run):
    """One repetition against a running server. Reuses the load generator's clients, streams and
    sends; only what counts as a delivery differs (every member but the sender, not one peer)."""

    def __init__(self, args, base, board_id):
        super().__init__(argparse.Namespace(base=base, cut_streams=0, post_deadline=args.post_deadline))
        self.options = args
        self.board_id = board_id
        self.sender_of = {}  # token -> index of the member who posted it
        self.pairs = {}  # (token, member index) -> [first arrival, arrivals, arrivals in id frames]

    def arrived(self, stream, msg_id, token, has_id, now):
        sender = self.sender_of.get(token)
        if sender is None or token.split("-")[0] != self.tag:
            return
        member = stream.client.index
        if member == sender:
            self.echoes += 1
            return
        record = self.pairs.get((token, member))
        if record is None:
            record = self.pairs[(token, member)] = [now, 0, 0]
            if not has_id:
                self.ahead += 1
        if has_id and record[2] == 0:
            if msg_id < stream.max_msg_id:
                self.reordered += 1
            stream.max_msg_id = max(stream.max_msg_id, msg_id)
        record[1] += 1
        record[2] += 1 if has_id else 0

    def log_in_all(self):
        clients = {}
        pool = Pool(self.options.login_concurrency)

        def one(i):
            client = Client(self.target, i)
            client.log_in(PASSWORD, page_path=f"/boards/{self.board_id}" if self.options.page == "board" else "/inbox")
            clients[i] = client

        for i in range(self.options.members):
            pool.spawn(one, i)
        pool.join(raise_error=True)
        return clients

    def open_streams(self, clients):
        pool = Pool(self.options.open_concurrency)
        for i, client in clients.items():
            stream = self.streams[i] = Stream(self, client, None)

            def opener(stream=stream):
                stream.start()
                stream.opened.wait(120)

            pool.spawn(opener)
        pool.join()
        missing = [i for i, s in self.streams.items() if not s.opened.is_set()]
        if missing:
            raise SystemExit(f"{len(missing)} streams did not open (errors: {self.stream_errors})")

    def send_all(self, clients):
        rng = random.Random(self.options.seed)
        count, rate = self.options.messages, self.options.rate
        start = time.perf_counter()
        workers = []
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            sender = clients[rng.randrange(self.options.members)]
            self.sender_of[f"{self.tag}-{n}"] = sender.index
            # The load generator's send (retries with the same client key); its "recipient"
            # slot is unused here: `arrived` counts every member but the sender.
            workers.append(gevent.spawn(self._send, sender, sender, self.board_id, n, 1))
        send_seconds = time.perf_counter() - start
        gevent.joinall(workers)
        return send_seconds

    def expected(self):
        return len(self.sent) * (self.options.members - 1)

    def wait_for_deliveries(self):
        deadline = time.perf_counter() + self.options.drain
        while time.perf_counter() < deadline and len(self.pairs) < self.expected():
            gevent.sleep(0.05)

    def report(self):
        members = self.options.members
        latencies, completions, incomplete = [], [], 0
        for token, info in self.sent.items():
            arrivals = [self.pairs[(token, m)][0] - info[0] for m in range(members)
                        if m != self.sender_of[token] and (token, m) in self.pairs]
            latencies.extend(a * 1000 for a in arrivals)
            if len(arrivals) == members - 1:
                completions.append(max(arrivals) * 1000)
            else:
                incomplete += 1
        posts = [info[4] * 1000 for info in self.sent.values() if info[4] is not None]
        sent_tokens = set(self.sent)
        return {
            "sent": len(self.sent), "unsent": self.unsent, "expected_deliveries": self.expected(),
            "delivered": sum(1 for (t, _) in self.pairs if t in sent_tokens),
            "lost": self.expected() - sum(1 for (t, _) in self.pairs if t in sent_tokens),
            "duplicated": sum(1 for (t, _), r in self.pairs.items() if t in sent_tokens and r[2] > 1),
            "redelivered": sum(1 for (t, _), r in self.pairs.items() if t in sent_tokens and r[1] > 1),
            "reordered": self.reordered, "ahead_without_id": self.ahead, "echoes": self.echoes,
            "incomplete_messages": incomplete,
            "fanout_ms": quantiles(completions), "delivery_ms": quantiles(latencies), "post_ms": quantiles(posts),
            "post_errors": self.post_errors, "stream_errors": {str(k): v for k, v in self.stream_errors.items()},
            "reconnects": sum(s.reconnects for s in self.streams.values()),
        }


def quantiles(values):
    return {q: _round(percentile(values, p)) for q, p in QUANTILES}


def _round(value):
    return None if value is None else round(value, 2)


def settle(pids, quiet=0.15, longest=60):
    """Wait until the server uses less than `quiet` of a core over a second (or `longest` s)."""
    deadline = time.monotonic() + longest
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        gevent.sleep(1)
        if cpu_seconds(pids) - before < quiet:
            return


def run_once(args, server, redis_pid, board_id, work, repetition):
    run = BoardRun(args, server.base, board_id)
    load = {"start": round(os.getloadavg()[0], 2)}
    started = time.perf_counter()
    clients = run.log_in_all()
    login_s = time.perf_counter() - started
    started = time.perf_counter()
    run.open_streams(clients)
    open_s = time.perf_counter() - started
    pids = process_tree(server.pid)
    settle(pids)
    # What the open streams cost with nothing sent (heartbeats, presence, the watch): at 0.1 msg/s
    # each message spends 10 s beside them, so the figure per message is also given without it.
    idle_cpu, idle_wall = cpu_seconds(pids), time.perf_counter()
    gevent.sleep(args.hold)
    idle_rate = (cpu_seconds(pids) - idle_cpu) / (time.perf_counter() - idle_wall) if args.hold else 0.0
    profiler = profiler_log = None
    if args.py_spy:
        duration = int(args.messages / args.rate + 10)
        out = f"{args.py_spy}.{repetition}" if args.repeat > 1 else args.py_spy
        profiler_log = open(work / "py-spy.log", "ab")
        profiler = subprocess.Popen([str(BIN / "py-spy"), "record", "--subprocesses", "-p", str(server.pid), "-r", "50",
                                     "-d", str(duration), "-f", "raw", "-o", out, "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=profiler_log)
        gevent.sleep(1)
    cpu_server, cpu_redis, wall = cpu_seconds(pids), cpu_seconds([redis_pid]) if redis_pid else 0, time.perf_counter()
    load["sending"] = round(os.getloadavg()[0], 2)
    send_s = run.send_all(clients)
    run.wait_for_deliveries()
    wall = time.perf_counter() - wall
    cpu_server = cpu_seconds(pids) - cpu_server
    cpu_redis = (cpu_seconds([redis_pid]) - cpu_redis) if redis_pid else None
    load["end"] = round(os.getloadavg()[0], 2)
    run.stop_streams()
    if profiler is not None:
        profiler.wait()
        profiler_log.close()
    report = run.report()
    sent = report["sent"] or 1
    report.update({
        "members": args.members, "messages": args.messages, "rate": args.rate,
        # n sends are scheduled over (n - 1) / rate seconds.
        "achieved_rate": round((report["sent"] - 1) / send_s, 3) if send_s and report["sent"] > 1 else None,
        "server_cpu_s_per_message": _round(cpu_server / sent),
        "server_idle_cpu_util": round(idle_rate, 4),
        "server_cpu_ms_per_message_above_idle": _round(1000 * (cpu_server - idle_rate * wall) / sent),
        "redis_cpu_s_per_message": _round(cpu_redis / sent) if cpu_redis is not None else None,
        "server_cpu_util": _round(cpu_server / wall) if wall else None,
        "login_s": _round(login_s), "open_s": _round(open_s), "load_avg": load,
    })
    return report


def medians(reports):
    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 2) if values else None

    out = {"runs": len(reports)}
    for key in ("sent", "expected_deliveries", "delivered", "lost", "duplicated", "reordered", "incomplete_messages"):
        out[key] = sum(r[key] for r in reports)
    for key in ("fanout_ms", "delivery_ms", "post_ms"):
        out[key] = {q: med([r[key][q] for r in reports]) for q, _ in QUANTILES}
    for key in ("server_cpu_s_per_message", "server_cpu_ms_per_message_above_idle", "server_idle_cpu_util",
                "redis_cpu_s_per_message", "server_cpu_util", "achieved_rate",
                "login_s", "open_s"):
        out[key] = med([r[key] for r in reports])
    out["load_avg"] = {k: med([r["load_avg"][k] for r in reports]) for k in ("start", "sending", "end")}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["gunicorn", "embedded"], default="gunicorn")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (the embedded server is one process)")
    parser.add_argument("--members", type=int, default=500, help="board members, each with one open stream")
    parser.add_argument("--messages", type=int, default=10, help="messages posted per run")
    parser.add_argument("--rate", type=float, default=0.1, help="messages per second (open loop)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drain", type=float, default=120, help="seconds to wait for the last deliveries")
    parser.add_argument("--post-deadline", type=float, default=120, help="seconds a send keeps retrying")
    parser.add_argument("--page", choices=["inbox", "board"], default="inbox",
                        help="the page each member opens after logging in (its CSRF token and cursor)")
    parser.add_argument("--login-concurrency", type=int, default=16)
    parser.add_argument("--open-concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1, help="which members send")
    parser.add_argument("--hold", type=float, default=10,
                        help="seconds the streams stay open with nothing sent, to measure their own CPU first")
    parser.add_argument("--py-spy", metavar="FILE", help="record the server with py-spy while sending (raw format)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if args.members < 2 or args.messages < 1 or args.rate <= 0:
        parser.error("need at least 2 members, 1 message and a positive rate")
    raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="rentpe-bench-board-"))
    fixture = work / "board.json"
    redis = None
    if args.server == "gunicorn":
        redis = RedisServer().start()
        database = create_database()
        env = {"DATABASE_URL": database, "REDIS_URL": redis.url}
    else:
        database = f"sqlite:///{work / 'bench.db'}"
        env = {"DATABASE_URL": database}
    reports = []
    try:
        flask(env, "db", "upgrade")
        flask(env, "bench-board-fixture", "--users", str(args.members), "--password", PASSWORD, "--out", str(fixture))
        board_id = json.loads(fixture.read_text())["board"]
        for repetition in range(args.repeat):
            server = AppServer(env, kind=args.server, workers=args.workers, log_path=work / "server.log").start()
            try:
                report = run_once(args, server, redis.process.pid if redis else None, board_id, work, repetition)
            finally:
                server.stop()
            print(json.dumps(report), flush=True)
            reports.append(report)
    finally:
        if redis is not None:
            redis.stop()
            if not args.keep:
                drop_database(database)
    print(json.dumps({"server": args.server, "workers": args.workers if args.server == "gunicorn" else 1,
                      "members": args.members, "messages": args.messages, "rate": args.rate,
                      "medians": medians(reports)}), flush=True)


if __name__ == "__main__":
    main()
