"""Processes for benchmarks and fault tests: a private redis-server, a scratch database, RentPe,
and the Socket.IO peer it is compared with (`bench/peers/`).

Used by `bench/run_load.py`, `bench/faults.py`, `tests/test_faults.py`, `tests/test_bench_peer.py`
and `tests/test_bench_stripped.py`. Nothing here imports the application: servers run as
subprocesses, exactly as they are deployed.
"""
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/test")


def raise_open_files():
    """Streams are sockets: lift the soft limit to the hard one for us and our children."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, timeout=15, process=None):
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class RedisServer:
    """A redis-server of our own (the machine's shared Redis is never restarted by a test)."""

    def __init__(self, port=None, workdir=None):
        self.port = port or free_port()
        self.workdir = workdir or tempfile.mkdtemp(prefix="rentpe-redis-")
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.workdir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, down_for=0.0):
        self.stop()
        time.sleep(down_for)
        self.start()


def create_database(name=None):
    """A fresh PostgreSQL database; returns its URL."""
    import sqlalchemy as sa

    name = name or f"rentpe_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(url):
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def flask(env, *args):
    subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL)


def prepare(env, users, password, fixture_path):
    """Migrate the database in `env` and write the bench fixture."""
    flask(env, "db", "upgrade")
    flask(env, "bench-fixture", "--users", str(users), "--password", password, "--out", str(fixture_path))


def run_loadgen(base, fixture, password, streams, rate, duration, server_pid, extra=(), transport="sse",
                timeout=None):
    """One `bench/loadgen.py` run against the server at `base`: its report."""
    command = [str(BIN / "python"), str(ROOT / "bench" / "loadgen.py"), "--base", base, "--fixture", str(fixture),
               "--password", password, "--streams", str(streams), "--rate", str(rate), "--duration", str(duration),
               "--server-pid", str(server_pid), "--transport", transport, *extra]
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


class AppServer:
    """RentPe as deployed: `gunicorn -c deploy/gunicorn.conf.py` (kind "gunicorn") or the
    embedded default `python app.py` (kind "embedded"); or the python-socketio peer under
    gunicorn's gevent worker (kind "peer", `bench/peers/socketio_peer.py`), which needs
    `DATABASE_URL` (PostgreSQL) and `REDIS_URL` in `env`. Kinds "gunicorn-no-receipts" and
    "gunicorn-bare" are the deployed app with features taken away (`bench/stripped.py`): without
    delivery receipts, and without receipts or HTML templates."""

    PEER_APP = "bench.peers.socketio_peer:app"
    STRIPPED = {"gunicorn-no-receipts": "receipts", "gunicorn-bare": "receipts,html"}

    def __init__(self, env, kind="gunicorn", workers=1, worker_connections=12000, log_path=None, port=None):
        self.env = dict(env)
        self.kind = kind
        self.workers = workers
        self.worker_connections = worker_connections
        self.port = port or free_port()
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="rentpe-server-", suffix=".log")[1])
        self.process = None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.process.pid

    def start(self):
        # One load generator on one address sends as hundreds of users at once: the per-user and
        # per-address limits would refuse most of it, and they are not what is being measured.
        env = {**os.environ, "SECRET_KEY": "bench-secret", "RATELIMIT_ENABLED": "false", **self.env}
        if self.kind == "gunicorn" or self.kind in self.STRIPPED:
            env.update(GUNICORN_BIND=f"127.0.0.1:{self.port}", WEB_CONCURRENCY=str(self.workers),
                       GUNICORN_WORKER_CONNECTIONS=str(self.worker_connections))
            app = "app:app"
            if self.kind in self.STRIPPED:
                env["RENTPE_BENCH_WITHOUT"], app = self.STRIPPED[self.kind], "bench.stripped:app"
            command = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", app]
        elif self.kind == "peer":
            # python-socketio's gevent deployment: gunicorn's gevent worker, WebSocket by
            # simple-websocket. Clients use the websocket transport only, so no request of a
            # session ever lands on another worker and several workers need no sticky sessions;
            # the Redis manager carries emits between them. The same timeouts as RentPe's config.
            command = [str(BIN / "gunicorn"), "-k", "gevent", "-w", str(self.workers),
                       "--worker-connections", str(self.worker_connections), "--bind", f"127.0.0.1:{self.port}",
                       "--timeout", "30", "--graceful-timeout", "8", "--keep-alive", "5", "--no-control-socket",
                       self.PEER_APP]
        else:
            env.update(HOST="127.0.0.1", PORT=str(self.port))
            env.pop("REDIS_URL", None)
            command = [sys.executable, "app.py"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    @property
    def ready_path(self):
        return "/health" if self.kind == "peer" else "/login"

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log_path).read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready: {Path(self.log_path).read_text()[-2000:]}")
            time.sleep(0.1)

    def worker_pids(self):
        """gunicorn's workers (the embedded server is its own worker)."""
        if self.kind == "embedded":
            return [self.pid]
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
