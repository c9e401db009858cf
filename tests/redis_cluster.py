"""A real Redis Cluster on loopback ports: 3 primaries, 3 replicas (`redis-server --cluster-enabled
yes`, `redis-cli --cluster create`), for the realtime contract tests and the benchmarks.

A short `cluster-node-timeout` makes a killed primary's replica take over within a few seconds.
Nothing is persisted; the nodes' files live in a temporary directory removed at `stop()`.
"""
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

NODE_TIMEOUT_MS = 1000


def _free(port):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count):
    """Ports whose cluster bus port (port + 10000) is free too, below 55536 so it exists."""
    ports = []
    port = random.randrange(20000, 40000)
    while len(ports) < count:
        port += 1
        if _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


class LocalCluster:
    def __init__(self, size=6, replicas=1):
        self.size, self.replicas = size, replicas
        self.ports = []
        self.processes = {}
        self._dir = None

    @property
    def nodes(self):
        """The `REDIS_CLUSTER_NODES` value: every node, as an operator would list them."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, timeout=30):
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (bin/services installs redis-server)")
        self._dir = Path(tempfile.mkdtemp(prefix="rentpe-cluster-"))
        self.ports = _free_ports(self.size)
        for port in self.ports:
            self._start_node(port)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            self._wait_for(lambda: self.client(port).ping(), deadline)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout)
        self.wait_until_ok(deadline - time.monotonic())
        return self

    def _start_node(self, port):
        node_dir = self._dir / str(port)
        node_dir.mkdir(exist_ok=True)
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             "--save", "", "--appendonly", "no", "--dir", str(node_dir), "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @staticmethod
    def _wait_for(check, deadline):
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up in time")
            time.sleep(0.05)

    def client(self, port):
        return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=2)

    def live_ports(self):
        return [port for port, process in self.processes.items() if process.poll() is None]

    def wait_until_ok(self, timeout=30):
        """Every live node says the cluster is ok and agrees on 3 primaries covering every slot."""
        deadline = time.monotonic() + timeout

        def ok():
            for port in self.live_ports():
                with self.client(port) as node:
                    info = node.cluster("info")
                    if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
                        return False
            return len(self.primaries()) == self.size // (self.replicas + 1)

        self._wait_for(ok, deadline)

    def primaries(self):
        """{port: [slot ranges]} of the live primaries, as the first live node sees it."""
        with self.client(self.live_ports()[0]) as node:
            shards = node.execute_command("CLUSTER", "SLOTS")
        found = {}
        for start, end, primary, *_ in shards:
            port = int(primary[1])
            if port in self.live_ports():
                found.setdefault(port, []).append((int(start), int(end)))
        return found

    def primary_for(self, key):
        slot = redis.cluster.key_slot(key.encode() if isinstance(key, str) else key)
        for port, ranges in self.primaries().items():
            if any(start <= slot <= end for start, end in ranges):
                return port
        raise LookupError(f"no live primary serves slot {slot}")

    def kill(self, port):
        """SIGKILL one node, as a crashed host."""
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()

    def restart(self, port):
        """Bring a killed node back (it rejoins, as a replica if it was failed over)."""
        self._start_node(port)
        self._wait_for(lambda: self.client(port).ping(), time.monotonic() + 10)

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
