"""Delivery under load: database + fixture + server, then the load generator, repeated; medians.

    python bench/run_load.py --server gunicorn --workers 1 --streams 3000 --rate 300 --duration 20 --repeat 3
    python bench/run_load.py --server embedded --streams 1000 --rate 100 --duration 20 --repeat 3

`gunicorn` runs `deploy/gunicorn.conf.py` on a scratch PostgreSQL database and a private
redis-server; `embedded` runs `python app.py` (SQLite file, in-process broker). The server is
restarted before each repetition (so RSS is measured from the same start); the fixture is made
once. Each run's report is printed as a JSON line; the last line is the medians.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import BIN, ROOT, AppServer, RedisServer, create_database, drop_database, prepare, raise_open_files  # noqa: E402

PASSWORD = "bench-password"


def run_loadgen(base, fixture, streams, rate, duration, server_pid, extra=()):
    command = [str(BIN / "python"), str(ROOT / "bench" / "loadgen.py"), "--base", base, "--fixture", str(fixture),
               "--password", PASSWORD, "--streams", str(streams), "--rate", str(rate), "--duration", str(duration),
               "--server-pid", str(server_pid), *extra]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def medians(reports):
    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "runs": len(reports),
        "sent": sum(r["sent"] for r in reports),
        "lost": sum(r["lost"] for r in reports),
        "duplicated": sum(r["duplicated"] for r in reports),
        "reordered": sum(r["reordered"] for r in reports),
        "latency_ms": {q: med([r["latency_ms"][q] for r in reports]) for q in ("p50", "p90", "p99", "max")},
        "post_ms": {q: med([r["post_ms"][q] for r in reports]) for q in ("p50", "p99")},
        "achieved_rate": med([r["achieved_rate"] for r in reports]),
        "server_cpu_s_per_1000": med([r["server_cpu_s_per_1000"] for r in reports]),
        "server_cpu_util": med([r["server_cpu_util"] for r in reports]),
        "rss_kib_per_stream": med([r["rss_kib_per_stream"] for r in reports]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["gunicorn", "embedded"], default="gunicorn")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", type=int, help="fixture size (default: --streams)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args, extra = parser.parse_known_args()
    raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="rentpe-bench-"))
    fixture = work / "fixture.json"
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
        prepare(env, args.users or args.streams, PASSWORD, fixture)
        for _ in range(args.repeat):
            server = AppServer(env, kind=args.server, workers=args.workers, log_path=work / "server.log").start()
            try:
                report = run_loadgen(server.base, fixture, args.streams, args.rate, args.duration, server.pid, extra)
            finally:
                server.stop()
            print(json.dumps(report), flush=True)
            reports.append(report)
    finally:
        if redis is not None:
            redis.stop()
            if not args.keep:
                drop_database(database)
    print(json.dumps({"server": args.server, "workers": args.workers, "streams": args.streams, "rate": args.rate,
                      "duration": args.duration, "medians": medians(reports)}), flush=True)


if __name__ == "__main__":
    main()
