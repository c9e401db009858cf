"""Delivery under load: database + fixture + server, then the load generator, repeated; medians.

    python bench/run_load.py --server gunicorn --workers 1 --streams 3000 --rate 300 --duration 20 --repeat 3
    python bench/run_load.py --server embedded --streams 1000 --rate 100 --duration 20 --repeat 3
    python bench/run_load.py --server gunicorn,peer --workers 1 --streams 200 --rate 20 --duration 15 --repeat 2

`gunicorn` runs `deploy/gunicorn.conf.py` on a scratch PostgreSQL database and a private
redis-server; `embedded` runs `python app.py` (SQLite file, in-process broker); `peer` runs the
python-socketio peer (`bench/peers/socketio_peer.py`, gunicorn's gevent worker, the same number of
workers) on its own scratch PostgreSQL database, made the same way, and the same redis-server,
driven by the same generator with `--transport socketio`; `gunicorn-no-receipts` and
`gunicorn-bare` are `gunicorn` with features taken away, to measure what they cost
(`bench/stripped.py`). Several servers, comma-separated, take turns within each repetition, so
they meet the same machine load. The server is restarted before each run (so RSS is measured from
the same start); each fixture is made once. Each run's report is printed as a JSON line (with the
load average at its start and end); the last line (one per server) is the medians.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import (  # noqa: E402
    AppServer, RedisServer, create_database, drop_database, prepare, raise_open_files, run_loadgen)

PASSWORD = "bench-password"


SERVERS = ("gunicorn", "embedded", "peer", *AppServer.STRIPPED)


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
        "idle_cpu_us_per_stream_s": med([r.get("idle_cpu_us_per_stream_s") for r in reports]),
        "loadgen_cpu_s_per_1000": med([r.get("loadgen_cpu_s_per_1000") for r in reports]),
        "load_avg": med([r["load_avg"]["start"] for r in reports if "load_avg" in r]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="gunicorn",
                        help=f"{', '.join(SERVERS)}, or several comma-separated (e.g. gunicorn,peer)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", type=int, help="fixture size (default: --streams)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args, extra = parser.parse_known_args()
    kinds = [k.strip() for k in args.server.split(",") if k.strip()]
    if not kinds or any(k not in SERVERS for k in kinds) or len(set(kinds)) != len(kinds):
        parser.error(f"--server: one or more of {', '.join(SERVERS)}, comma-separated")
    raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="rentpe-bench-"))
    redis = None
    setups = {}  # kind -> (env, fixture path)
    reports = {kind: [] for kind in kinds}
    try:
        if any(k != "embedded" for k in kinds):
            redis = RedisServer().start()
        for kind in kinds:
            fixture = work / f"fixture-{kind}.json"
            if kind == "embedded":
                env = {"DATABASE_URL": f"sqlite:///{work / 'bench.db'}"}
            else:
                env = {"DATABASE_URL": create_database(), "REDIS_URL": redis.url}
            setups[kind] = (env, fixture)
            prepare(env, args.users or args.streams, PASSWORD, fixture)
        for _ in range(args.repeat):
            for kind in kinds:
                env, fixture = setups[kind]
                server = AppServer(env, kind=kind, workers=args.workers, log_path=work / f"server-{kind}.log").start()
                load_start = os.getloadavg()[0]
                try:
                    report = run_loadgen(server.base, fixture, PASSWORD, args.streams, args.rate, args.duration,
                                         server.pid, extra, transport="socketio" if kind == "peer" else "sse")
                finally:
                    server.stop()
                report = {"server": kind, **report,
                          "load_avg": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}}
                print(json.dumps(report), flush=True)
                reports[kind].append(report)
    finally:
        if redis is not None:
            redis.stop()
        if not args.keep:
            for kind, (env, _) in setups.items():
                if kind != "embedded":
                    drop_database(env["DATABASE_URL"])
    for kind in kinds:
        print(json.dumps({"server": kind, "workers": args.workers, "streams": args.streams, "rate": args.rate,
                          "duration": args.duration, "medians": medians(reports[kind])}), flush=True)


if __name__ == "__main__":
    main()
