"""What deploy/gunicorn.conf.py does inside each worker, run as gunicorn runs it: in a fresh process."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The worker's order: post_fork, then the app is loaded, then post_worker_init. A full collection
# then walks only what was made after it; before it, the collector walked the whole app each time.
# Then gunicorn's TERM, as the arbiter sends it to stop the worker.
WORKER = """
import gc, json, os, runpy, signal, types
import gevent
conf = runpy.run_path("deploy/gunicorn.conf.py")
conf["post_fork"](None, None)
from app import app  # noqa: F401  (the application, as the worker loads it)
loaded = len(gc.get_objects())
told = []
worker = types.SimpleNamespace(wsgi=app, handle_exit=lambda sig, frame: told.append(sig))  # gunicorn's Worker
conf["post_worker_init"](worker)
counts = {"loaded": loaded, "frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}
os.kill(os.getpid(), signal.SIGTERM)
gevent.sleep(0.2)
print(json.dumps({**counts, "told": told, "streams": app.extensions["realtime"].hub.ended}))
"""


def test_a_worker_keeps_the_loaded_app_out_of_full_collections(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.db'}", "SECRET_KEY": "test-secret"}
    result = subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["frozen"] >= 0.8 * counts["loaded"], counts
    assert counts["walked"] <= 0.1 * counts["loaded"], counts
    # TERM still stops gunicorn's loop, and ends the worker's streams (every one from then on too).
    assert counts["told"] == [15] and counts["streams"] == "shutdown", counts
