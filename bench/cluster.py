"""Publish throughput and delivery latency: one Redis against a 3-shard Redis Cluster.

The realtime brokers as the app uses them (rentpe/realtime/broker.py, cluster.py), without HTTP:
`--users` user channels are subscribed by `--subscribers` processes (each one hub, as a gunicorn
worker is: one pub/sub connection, or one per shard), then `--publishers` processes publish
private-message-sized payloads to random online users for `--seconds`, each publish one call of
`publish_many` (as a send does). Every payload carries its send time; the subscribers report how
many arrived and the delivery latencies.

    .venv/bin/python bench/cluster.py                      # both, 10,000 users, 20 s each
    .venv/bin/python bench/cluster.py --only cluster --seconds 10

The single Redis is the one on 127.0.0.1:6379 (a prefix of its own); the cluster is started here
(tests/redis_cluster.py: 3 primaries, 3 replicas on loopback ports) and stopped afterwards.
"""
import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAYLOAD_BYTES = 600  # about a rendered chat message fragment


def make_broker(kind, target, prefix):
    from rentpe.realtime.broker import RedisBroker
    from rentpe.realtime.cluster import ClusterBroker

    if kind == "redis":
        return RedisBroker(target, prefix, subscribe_timeout=30)
    return ClusterBroker(target, prefix, subscribe_timeout=30)


def subscriber(kind, target, prefix, user_ids, ready, stop, results):
    latencies, count = [], [0]

    def deliver(user_id, payload):
        sent = float(payload[:payload.index(b" ")])
        latencies.append(time.time() - sent)
        count[0] += 1

    broker = make_broker(kind, target, prefix)
    broker.attach(deliver, lambda payload: None, lambda: None)
    for user_id in user_ids:
        broker.subscribe(user_id)
    ready.put(len(user_ids))
    stop.wait()
    time.sleep(1.0)  # the last payloads in flight
    broker.shutdown()
    results.put((count[0], latencies))


def publisher(kind, target, prefix, users, seconds, start, results):
    broker = make_broker(kind, target, prefix)
    broker.attach(lambda *a: None, lambda p: None, lambda: None)
    rng = random.Random(os.getpid())
    padding = b"x" * PAYLOAD_BYTES
    start.wait()
    sent, failed, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        payload = f"{time.time():.6f} ".encode() + padding
        try:
            broker.publish_many([(rng.randrange(users), payload)])
            sent += 1
        except Exception:
            failed += 1
    broker.client.close()
    results.put((sent, failed))


def redis_cpu(kind, target):
    """CPU seconds used so far by the Redis server(s) behind `target` (the primaries of a cluster)."""
    import redis

    if kind == "redis":
        nodes = [redis.Redis.from_url(target)]
    else:
        nodes = [redis.Redis(host=h, port=int(p)) for h, p in (n.split(":") for n in target.split(","))]
    total = 0.0
    for node in nodes:
        with node:
            if kind == "cluster" and node.info("replication")["role"] != "master":
                continue
            cpu = node.info("cpu")
            total += cpu["used_cpu_sys"] + cpu["used_cpu_user"]
    return total


def run(kind, target, args):
    prefix = f"rentpe-bench:{uuid.uuid4().hex[:8]}:"
    ctx = mp.get_context("fork")
    ready, results, pub_results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    stop, start = ctx.Event(), ctx.Event()
    slices = [list(range(i, args.users, args.subscribers)) for i in range(args.subscribers)]
    subs = [ctx.Process(target=subscriber, args=(kind, target, prefix, s, ready, stop, results)) for s in slices]
    for process in subs:
        process.start()
    began = time.monotonic()
    subscribed = sum(ready.get(timeout=120) for _ in subs)
    subscribe_seconds = time.monotonic() - began
    pubs = [ctx.Process(target=publisher, args=(kind, target, prefix, args.users, args.seconds, start, pub_results))
            for _ in range(args.publishers)]
    for process in pubs:
        process.start()
    cpu_before = redis_cpu(kind, target)
    start.set()
    sent = failed = 0
    for _ in pubs:
        s, f = pub_results.get(timeout=args.seconds + 60)
        sent, failed = sent + s, failed + f
    redis_cpu_s = redis_cpu(kind, target) - cpu_before
    stop.set()
    delivered, latencies = 0, []
    for _ in subs:
        count, found = results.get(timeout=60)
        delivered += count
        latencies += found
    for process in subs + pubs:
        process.join(timeout=10)
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "broker": kind, "users": subscribed, "redis_cpu_ms_per_1000": redis_cpu_s * 1000 / max(sent, 1) * 1000, "subscribe_s": subscribe_seconds, "published": sent, "failed": failed,
        "per_second": sent / args.seconds, "delivered": delivered,
        "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=2, help="hub processes (gunicorn workers)")
    parser.add_argument("--publishers", type=int, default=2, help="publishing processes")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--only", choices=["redis", "cluster"])
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    rows = []
    if args.only in (None, "redis"):
        rows.append(run("redis", args.redis_url, args))
    if args.only in (None, "cluster"):
        from tests.redis_cluster import LocalCluster

        cluster = LocalCluster().start()
        try:
            rows.append(run("cluster", cluster.nodes, args))
        finally:
            cluster.stop()
    print(f"{args.users} online users, {args.subscribers} hub processes, {args.publishers} publishers, "
          f"{args.seconds:.0f} s, {PAYLOAD_BYTES}-byte payloads")
    print("| broker | subscribe all (s) | publishes/s | failed | delivered | p50 ms | p99 ms | max ms "
          "| Redis CPU ms per 1,000 publishes (all primaries) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['broker']} | {row['subscribe_s']:.1f} | {row['per_second']:,.0f} | {row['failed']} | "
              f"{row['delivered']:,} of {row['published']:,} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
              f"{row['max_ms']:.1f} | {row['redis_cpu_ms_per_1000']:.0f} |")


if __name__ == "__main__":
    main()
