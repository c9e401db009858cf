"""Debian's nginx running deploy/nginx.conf on this machine, for the proxy tests and benchmarks.

The configuration is the shipped one with only what a machine changes: the upstream hosts, the
port (and so the Host header's port), the certificate's paths (a self-signed certificate made
here with openssl), the static directory, and on nginx before 1.25.1 `http2 on;` spelled as the
`listen` flag it was then.
"""
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _nginx_binary():
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is not installed: bin/services installs Debian's nginx")
    return found


def _nginx_version(binary):
    out = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    return tuple(int(part) for part in re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out).groups())


def _self_signed(directory):
    key, cert = directory / "privkey.pem", directory / "fullchain.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


def adapt(conf, binary, hosts, port, key, cert):
    """deploy/nginx.conf's `http` content for this machine: only addresses and paths change."""
    upstreams = "".join(f"    server {host} max_fails=0;\n" for host in hosts)
    conf = re.sub(r"(upstream rentpe \{\n)(?:.*\n)*?(    keepalive)", lambda m: m.group(1) + upstreams + m.group(2), conf)
    listen = f"listen 127.0.0.1:{port} ssl;\n    http2 on;"
    if _nginx_version(binary) < (1, 25, 1):  # `http2 on;` is nginx 1.25.1's; before it, a listen flag
        listen = f"listen 127.0.0.1:{port} ssl http2;"
    conf = conf.replace("listen 443 ssl;\n    http2 on;", listen)
    conf = conf.replace("/etc/ssl/rentpe/fullchain.pem", str(cert)).replace("/etc/ssl/rentpe/privkey.pem", str(key))
    conf = conf.replace("alias /srv/rentpe/static/;", f"alias {ROOT / 'static'}/;")
    # On 443 the Host needs no port; on this test port the app must see it (the CSRF check compares
    # the Referer's origin with the host).
    conf = conf.replace("proxy_set_header Host $host;", "proxy_set_header Host $host:$server_port;")
    conf = re.sub(r"server \{\n    listen 80;.*?\n\}\n", "", conf, flags=re.S)  # no port 80 here
    if f"127.0.0.1:{port}" not in conf or str(cert) not in conf or not all(host in conf for host in hosts):
        raise RuntimeError("deploy/nginx.conf no longer has the lines this adapts:\n" + conf)
    return conf


class Nginx:
    def __init__(self, hosts, directory):
        self.hosts, self.dir = hosts, Path(directory)
        self.binary = _nginx_binary()
        self.process = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"https://localhost:{self.port}"
        self.error_log = self.dir / "error.log"

    def start(self):
        key, cert = _self_signed(self.dir)
        site = adapt((ROOT / "deploy" / "nginx.conf").read_text(), self.binary, self.hosts, self.port, key, cert)
        temp_paths = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        for name in temp_paths:
            (self.dir / name).mkdir(exist_ok=True)
        conf = self.dir / "nginx.conf"
        conf.write_text(
            f"daemon off;\nworker_processes 1;\npid {self.dir / 'nginx.pid'};\nerror_log {self.error_log} warn;\n"
            "worker_rlimit_nofile 65536;\nevents { worker_connections 20000; }\n"
            "http {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
            f"  access_log off;\n"
            + "".join(f"  {name}_temp_path {self.dir / name};\n" for name in temp_paths)
            + site + "\n}\n")
        subprocess.run([self.binary, "-t", "-p", str(self.dir), "-c", str(conf)], check=True, capture_output=True)
        self.process = subprocess.Popen([self.binary, "-p", str(self.dir), "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen in time")
                time.sleep(0.05)

    def worker_pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
