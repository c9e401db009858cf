"""Fault scenarios: break RentPe on purpose while the load generator runs, then count.

    python bench/faults.py kill-worker --streams 1000 --rate 50 --duration 20
    python bench/faults.py all --streams 40 --rate 10 --duration 6      (what CI runs, smaller)

Every scenario runs gunicorn (`deploy/gunicorn.conf.py`, 2 gevent workers) on a scratch
PostgreSQL database and a private redis-server (never the machine's shared one: scenarios kill
and restart it), drives it with `bench/loadgen.py` and acts when sending has begun. Each must end
with nothing lost, nothing duplicated and every conversation in order:

- kill-worker: `kill -9` one worker holding streams; its clients reconnect (to the survivor or
  the replacement) with Last-Event-ID, POSTs cut off are retried with the same client key;
- restart-redis: Redis killed and restarted at once: every hub ends its streams, clients replay;
- redis-down: Redis unreachable for a few seconds while messages are sent: every POST still
  answers 200 with the stored message; recipients get it once Redis is back (replay on reconnect);
- cut-streams: clients drop their streams part-way through a frame, over and over;
- race: a message sent between a page render (its `?after=` cursor) and its stream's connect;
- duplicate-submits: half the sends are posted twice at once with one client key.
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


def run_loadgen(server, fixture, streams, rate, duration, extra=(), on_sending=None, drain=40):
    """Run the generator; call `on_sending()` in a thread once it starts sending; its report."""
    command = [str(BIN / "python"), str(ROOT / "bench" / "loadgen.py"), "--base", server.base, "--fixture", str(fixture),
               "--password", PASSWORD, "--streams", str(streams), "--rate", str(rate), "--duration", str(duration),
               "--server-pid", str(server.pid), "--drain", str(drain), "--login-concurrency", "8", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors, actions = [], []
    for line in process.stderr:
        errors.append(line)
        if line.strip() == "phase: sending" and on_sending is not None:
            action = threading.Thread(target=on_sending, daemon=True)
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


def restart_redis(setup, server, after=2.0, down_for=0.0):
    def act():
        time.sleep(after)
        setup.redis.restart(down_for=down_for)
    return act


SCENARIOS = {
    "kill-worker": lambda s, srv: ({"on_sending": kill_worker(s, srv)}, []),
    "restart-redis": lambda s, srv: ({"on_sending": restart_redis(s, srv)}, []),
    "redis-down": lambda s, srv: ({"on_sending": restart_redis(s, srv, after=1.0, down_for=3.0)}, []),
    "cut-streams": lambda s, srv: ({}, ["--cut-streams", "1.5"]),
    "race": lambda s, srv: ({}, ["--race"]),
    "duplicate-submits": lambda s, srv: ({}, ["--duplicate-submits", "0.5"]),
}


def run_scenario(setup, name, streams, rate, duration, workers=2):
    server = setup.server(workers=workers)
    try:
        kwargs, extra = SCENARIOS[name](setup, server)
        return run_loadgen(server, setup.fixture, streams, rate, duration, extra=extra, **kwargs)
    finally:
        server.stop()


def intact(report):
    """What every scenario must end with."""
    return (report["lost"], report["duplicated"], report["reordered"], report["unsent"]) == (0, 0, 0, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    setup = Setup(args.streams)
    ok = True
    try:
        for name in SCENARIOS if args.scenario == "all" else [args.scenario]:
            for _ in range(args.repeat):
                report = run_scenario(setup, name, args.streams, args.rate, args.duration, args.workers)
                ok = ok and intact(report)
                print(json.dumps({"scenario": name, "intact": intact(report), **report}), flush=True)
    finally:
        setup.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
