"""What an open stream costs on the proxy path: Debian's nginx with deploy/nginx.conf (TLS,
`proxy_buffering off`) in front of one gunicorn worker.

`--streams` clients (each its own TLS connection, as separate browsers are) open `/events` through
nginx; then the streams sit idle for `--idle` seconds with the production heartbeat (25 s). Reported:
the time to open them all, nginx's worker memory per stream, and nginx's CPU per stream while idle.

    .venv/bin/python bench/proxy_streams.py --streams 1000 --idle 30
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import httpx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from servers import AppServer, prepare, raise_open_files  # noqa: E402
from tests.nginx_proxy import Nginx  # noqa: E402

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
PASSWORD = "bench-password"


def rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def login(base, email):
    with httpx.Client(base_url=base, verify=False, timeout=10, headers={"Referer": base + "/"}) as client:
        page = client.get("/login").text
        response = client.post("/login", data={"email": email, "password": PASSWORD,
                                               "csrf_token": CSRF.search(page).group(1)})
        assert response.status_code == 302, response.status_code
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def open_stream(port, cookie, context, held):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    tls = context.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(f"GET /events HTTP/1.1\r\nHost: localhost:{port}\r\nCookie: {cookie}\r\n"
                f"Accept: text/event-stream\r\n\r\n".encode())
    seen = b""
    while b": open" not in seen:
        chunk = tls.recv(65536)
        if not chunk:
            raise RuntimeError(f"stream closed: {seen[:200]!r}")
        seen += chunk
    held.append(tls)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    raise_open_files()
    work = Path(tempfile.mkdtemp(prefix="rentpe-proxy-bench-"))
    env = {"DATABASE_URL": f"sqlite:///{work / 'bench.db'}", "REDIS_URL": args.redis_url,
           "REALTIME_CHANNEL_PREFIX": f"rentpe-bench-{uuid.uuid4().hex[:8]}:", "STREAM_MAX_PER_USER": "1000000"}
    prepare(env, 2, PASSWORD, work / "fixture.json")
    from rentpe.bench import email_for

    email = email_for(0)
    server = AppServer(env, workers=1, log_path=work / "gunicorn.log").start()
    nginx = Nginx([f"127.0.0.1:{server.port}"], work).start()
    held = []
    try:
        cookie = login(nginx.url, email)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        [worker] = nginx.worker_pids()
        time.sleep(1)
        rss_before = rss_kb(worker)
        started = time.monotonic()
        for start in range(0, args.streams, 100):  # in waves, as tabs come and go
            jobs = [gevent.spawn(open_stream, nginx.port, cookie, context, held)
                    for _ in range(start, min(start + 100, args.streams))]
            gevent.joinall(jobs, raise_error=True)
        opened = time.monotonic() - started
        gevent.sleep(2)
        rss_after = rss_kb(worker)
        cpu_before = cpu_seconds(worker)
        gevent.sleep(args.idle)
        cpu_idle = cpu_seconds(worker) - cpu_before
        print(f"{len(held)} streams through nginx (TLS, HTTP/1.1 per client) to 1 gunicorn worker")
        print(f"opened in {opened:.1f} s ({len(held) / opened:,.0f}/s)")
        print(f"nginx worker RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB: "
              f"{(rss_after - rss_before) / len(held):.1f} KB per stream")
        print(f"nginx worker CPU while idle {args.idle:.0f} s: {cpu_idle * 1000:.0f} ms "
              f"({cpu_idle / args.idle * 100:.2f} % of a core, "
              f"{cpu_idle * 1000 / len(held) / (args.idle / 60):.3f} ms per stream-minute)")
    finally:
        for tls in held:
            tls.close()
        nginx.stop()
        server.stop()


if __name__ == "__main__":
    main()
