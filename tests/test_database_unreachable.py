"""A DATABASE_URL that can't be used ends `./run`'s steps with one line saying what to do.

`./run` is `flask db upgrade`, `flask demo seed`, then `python app.py`; each is run here as
`./run` runs it, in a fresh process, against a PostgreSQL database that does not exist and
against an address where no server listens. Each must exit non-zero with the message, and
without a traceback.
"""
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[1]
FLASK = [sys.executable, "-m", "flask", "--app", "app"]
STEPS = {
    "db upgrade": [*FLASK, "db", "upgrade"],
    "demo seed": [*FLASK, "demo", "seed"],
    "python app.py": [sys.executable, "app.py"],
}


def run(command, database_url, tmp_path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DATABASE_URL": database_url,
           "SECRET_KEY": "test-secret", "UPLOAD_FOLDER": str(tmp_path / "uploads"),
           "HOST": "127.0.0.1", "PORT": str(free_port())}
    # A server that started anyway would never exit: the timeout fails the test then.
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_line_error(result, expected):
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == [f"Error: {expected}"], output


@pytest.mark.parametrize("step", STEPS)
def test_a_missing_postgresql_database_is_named_with_the_command_that_creates_it(step, tmp_path):
    name = f"rentpe_missing_{uuid.uuid4().hex[:12]}"
    url = make_url(PG_ADMIN_URL).set(database=name)
    result = run(STEPS[step], url.render_as_string(hide_password=False), tmp_path)
    options = [f"-h {url.host}"] + ([f"-p {url.port}"] if url.port not in (None, 5432) else []) \
        + ([f"-U {url.username}"] if url.username else [])
    assert_one_line_error(result, f'database "{name}" does not exist: create it first with: '
                                  f'createdb {" ".join(options)} {name}')


@pytest.mark.parametrize("step", STEPS)
def test_an_address_without_a_server_says_it_cannot_reach_it(step, tmp_path):
    url = f"postgresql://127.0.0.1:{free_port()}/rentpe"
    result = run(STEPS[step], url, tmp_path)
    assert_one_line_error(result, f"cannot reach the database at {url}: Connection refused "
                                  "(is PostgreSQL running there? check DATABASE_URL)")
