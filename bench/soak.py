"""Soak: moderate load for a long time, watching the server's memory.

    python bench/soak.py --minutes 30 --streams 1000 --rate 10

gunicorn (`deploy/gunicorn.conf.py`, production stream timings: streams end and reconnect every
5-10 minutes) on a scratch PostgreSQL database and a private redis-server, driven by
`bench/loadgen.py`. The workers' RSS is sampled every `--every` seconds. Growth is measured from
the end of the first fifth of the run (pools, caches and streams warmed up) to the end; the
report also carries the generator's lost/duplicated counts and latencies, and every sample.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import rss_kib  # noqa: E402
from servers import BIN, ROOT, AppServer, RedisServer, create_database, drop_database, prepare, raise_open_files  # noqa: E402

PASSWORD = "bench-password"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--every", type=float, default=30, help="seconds between RSS samples")
    args = parser.parse_args()
    raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="rentpe-soak-"))
    redis = RedisServer().start()
    database = create_database()
    env = {"DATABASE_URL": database, "REDIS_URL": redis.url}
    server = None
    try:
        prepare(env, args.streams, PASSWORD, work / "fixture.json")
        server = AppServer(env, workers=args.workers, log_path=work / "server.log").start()
        samples, stop = [], threading.Event()
        started = time.monotonic()

        def sample():
            while not stop.wait(args.every):
                samples.append((round(time.monotonic() - started), rss_kib(server.worker_pids())))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        command = [str(BIN / "python"), str(ROOT / "bench" / "loadgen.py"), "--base", server.base,
                   "--fixture", str(work / "fixture.json"), "--password", PASSWORD, "--streams", str(args.streams),
                   "--rate", str(args.rate), "--duration", str(args.minutes * 60), "--server-pid", str(server.pid)]
        out = subprocess.run(command, capture_output=True, text=True)
        stop.set()
        sampler.join()
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        report = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if server is not None:
            server.stop()
        redis.stop()
        drop_database(database)
    warm = [kib for t, kib in samples if t >= args.minutes * 60 / 5] or [kib for _, kib in samples]
    tail = warm[-3:]
    result = {
        "minutes": args.minutes, "streams": args.streams, "rate": args.rate, "workers": args.workers,
        "rss_kib_after_warmup": warm[0] if warm else None, "rss_kib_end": statistics.median(tail) if tail else None,
        "rss_growth_kib": (statistics.median(tail) - warm[0]) if warm else None,
        "sent": report["sent"], "lost": report["lost"], "duplicated": report["duplicated"],
        "reordered": report["reordered"], "reconnects": report["reconnects"], "latency_ms": report["latency_ms"],
        "samples": samples,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
