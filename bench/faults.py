"""Fault scenarios: break RentPe on purpose while the load generator runs, then count.

    python bench/faults.py kill-worker --streams 1000 --rate 50 --duration 20
    python bench/faults.py all --streams 40 --rate 10 --duration 6      (what CI runs, smaller)

Every scenario runs gunicorn (`deploy/gunicorn.conf.py`, 2 gevent workers) on a scratch
PostgreSQL database and a private redis-server (never the machine's shared one: scenarios kill
and restart it), drives it with `bench/loadgen.py` and acts when sending has begun. Each must end
with nothing lost, nothing duplicated and every conversation in order:

- kill-worker: `kill -9` one worker holding streams; its clients reconnect (to the survivor or
  the replacement) with Last-Event-ID, POSTs cut off are retried with the same client key;
- cut-streams: clients drop their streams part-way through a frame, over and over;
- race: a message sent between a page render (its `?after=` cursor) and its stream's connect;
- duplicate-submits: half the sends are posted twice at once with one client key.

Redis faults strike during a last round in which every user gets one last message and nothing
after it (`loadgen.py --last-round`), so a lost publish has no later message to reveal it. Each
last message must reach its recipient's open stream within `BOUND_SECONDS` of whichever is later,
the answer to its POST (the message was committed before it) or the end of the fault; `late`
counts those that did not (or never arrived):

- restart-redis: Redis killed with -9 and started again at once;
- redis-down: Redis unreachable for `--down-for` seconds (3 by default) while messages are sent:
  every POST still answers 200 with the stored message;
- pubsub-cut: Redis closes every worker's pub/sub connection (`CLIENT KILL TYPE pubsub`);
- publish-fails: PUBLISH is refused for 2 seconds (an ACL) while the subscriptions survive.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import BIN, ROOT, AppServer, RedisServer, create_database, drop_database, prepare, raise_open_files  # noqa: E402

PASSWORD = "bench-password"

# How late a committed message may reach an open stream after a Redis fault is over.
BOUND_SECONDS = 5.0
# The last round is spread over this long; Redis faults strike this far into it.
LAST_ROUND_SECONDS, STRIKE_AFTER = 2.0, 0.5

# Short stream timings so that recovery happens within a test's time.
FAULT_SETTINGS = {
    "STREAM_HEARTBEAT_SECONDS": "1",
    "STREAM_GAP_SECONDS": "2",
    "REALTIME_SUBSCRIBE_TIMEOUT_SECONDS": "1",
    "REALTIME_HUB_PING_SECONDS": "1",
}


class Setup:
    """A database with the bench fixture, a private Redis, and servers started on demand."""

    def __init__(self, users):
        raise_open_files()
        self.work = Path(tempfile.mkdtemp(prefix="rentpe-faults-"))
        self.fixture = self.work / "fixture.json"
        self.redis = RedisServer().start()
        self.database = create_database()
        self.env = {"DATABASE_URL": self.database, "REDIS_URL": self.redis.url, **FAULT_SETTINGS}
        prepare(self.env, users, PASSWORD, self.fixture)
        self.servers = []
        self.down_for = 3.0
        self.recovered_at = None  # wall clock: when the last fault was over

    def redis_client(self):
        import redis

        return redis.Redis.from_url(self.redis.url)

    def server(self, workers=2):
        server = AppServer(self.env, workers=workers, worker_connections=2000,
                           log_path=self.work / f"server-{len(self.servers)}.log").start()
        self.servers.append(server)
        return server

    def close(self):
        for server in self.servers:
            server.stop()
        self.redis.stop()
        drop_database(self.database)


def run_loadgen(server, fixture, streams, rate, duration, extra=(), on_phase=None, drain=40):
    """Run the generator; call `on_phase[name]()` in a thread once it reaches that phase; its report."""
    command = [str(BIN / "python"), str(ROOT / "bench" / "loadgen.py"), "--base", server.base, "--fixture", str(fixture),
               "--password", PASSWORD, "--streams", str(streams), "--rate", str(rate), "--duration", str(duration),
               "--server-pid", str(server.pid), "--drain", str(drain), "--login-concurrency", "8", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors, actions = [], []
    for line in process.stderr:
        errors.append(line)
        name = line.strip().removeprefix("phase: ")
        if line.startswith("phase: ") and name in (on_phase or {}):
            action = threading.Thread(target=on_phase[name], daemon=True)
            action.start()
            actions.append(action)
    out, _ = process.communicate()
    for action in actions:
        action.join()
    if process.returncode != 0:
        raise RuntimeError("".join(errors)[-3000:])
    return json.loads(out.strip().splitlines()[-1])


def kill_worker(setup, server, after=2.0):
    def act():
        time.sleep(after)
        os.kill(server.worker_pids()[0], signal.SIGKILL)
    return act


def restart_redis(setup, down_for=0.0):
    setup.redis.restart(down_for=down_for)
    setup.recovered_at = time.time()


def cut_pubsub(setup):
    with setup.redis_client() as client:
        setup.recovered_at = time.time()  # Redis itself never went away
        client.client_kill_filter(_type="pubsub")


def refuse_publish(setup, seconds=2.0):
    with setup.redis_client() as client:
        client.acl_setuser("default", enabled=True, commands=["-publish"], reset_keys=False)
        time.sleep(seconds)
        client.acl_setuser("default", enabled=True, commands=["+publish"], reset_keys=False)
        setup.recovered_at = time.time()


def in_last_round(fault):
    """`fault(setup)` STRIKE_AFTER seconds into the last round."""
    def scenario(setup, server):
        def act():
            time.sleep(STRIKE_AFTER)
            fault(setup)
        return {"on_phase": {"last-round": act}, "drain": BOUND_SECONDS + 3}, ["--last-round", str(LAST_ROUND_SECONDS)]
    return scenario


SCENARIOS = {
    "kill-worker": lambda s, srv: ({"on_phase": {"sending": kill_worker(s, srv)}}, []),
    "restart-redis": in_last_round(restart_redis),
    "redis-down": in_last_round(lambda s: restart_redis(s, down_for=s.down_for)),
    "pubsub-cut": in_last_round(cut_pubsub),
    "publish-fails": in_last_round(refuse_publish),
    "cut-streams": lambda s, srv: ({}, ["--cut-streams", "1.5"]),
    "race": lambda s, srv: ({}, ["--race"]),
    "duplicate-submits": lambda s, srv: ({}, ["--duplicate-submits", "0.5"]),
}


def run_scenario(setup, name, streams, rate, duration, workers=2):
    server = setup.server(workers=workers)
    setup.recovered_at = None
    try:
        kwargs, extra = SCENARIOS[name](setup, server)
        report = run_loadgen(server, setup.fixture, streams, rate, duration, extra=extra, **kwargs)
    finally:
        server.stop()
    report["late"] = late(report, setup.recovered_at)
    return report


def late(report, recovered_at):
    """Last-round messages that reached their open stream more than BOUND_SECONDS after both
    their POST's answer and the end of the fault, or never."""
    return sum(1 for answered, arrived in report.get("last_round", [])
               if arrived is None or arrived - max(answered, recovered_at or 0) > BOUND_SECONDS)


def intact(report):
    """What every scenario must end with."""
    return (report["lost"], report["duplicated"], report["reordered"], report["unsent"], report["late"]) == (0, 0, 0, 0, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--down-for", type=float, default=3.0, help="seconds Redis stays down in redis-down")
    args = parser.parse_args()
    setup = Setup(args.streams)
    setup.down_for = args.down_for
    ok = True
    try:
        for name in SCENARIOS if args.scenario == "all" else [args.scenario]:
            for _ in range(args.repeat):
                report = run_scenario(setup, name, args.streams, args.rate, args.duration, args.workers)
                ok = ok and intact(report)
                report.pop("last_round", None)
                print(json.dumps({"scenario": name, "intact": intact(report), **report}), flush=True)
    finally:
        setup.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
