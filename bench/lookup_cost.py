"""CPU per call of the lookups every chat request starts with, on PostgreSQL, in one process.

    python bench/lookup_cost.py --calls 2000 --repeat 3

Each logged-in request loads its user (Flask-Login's loader, `load_user_from_session`) and every
conversation request passes the conversation guard (`get_conversation_for_participant`). Each is
called here as a request would, in a fresh session each time (so the identity map is empty and
every call queries), and timed in process CPU time; the figure is the median of the repeats.
Differences of a few percent between whole-message figures (bench/send_cost.py) drown in this
machine's variation; a lookup's own cost, measured this way, does not.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from servers import create_database, drop_database, prepare  # noqa: E402

PASSWORD = "bench-password"


def per_call_us(fn, calls, repeat, remove):
    for _ in range(calls // 10):  # warm the statement caches
        fn()
        remove()
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(calls):
            fn()
            remove()
        runs.append((time.process_time() - started) / calls * 1e6)
    return round(statistics.median(runs)), [round(r) for r in runs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rentpe-lookup-"))
    env = {"DATABASE_URL": create_database()}
    try:
        fixture = work / "fixture.json"
        prepare(env, 2, PASSWORD, fixture)
        conversation_id = next(iter(json.loads(fixture.read_text())["conversations"].values()))
        os.environ.update(env)
        from rentpe import create_app
        from rentpe.accounts.models import User
        from rentpe.accounts.services import load_user_from_session, open_session
        from rentpe.chat.queries import get_conversation_for_participant
        from rentpe.extensions import db

        app = create_app({"SECRET_KEY": "bench-secret", "REDIS_URL": None})
        report = {"calls": args.calls, "repeat": args.repeat}
        with app.test_request_context():
            user = db.session.scalar(db.select(User).where(User.email == "user0@bench.test"))
            open_session(user, None)  # a log-in for the loader to find
            token = user.get_id()
            member = SimpleNamespace(id=user.id, is_authenticated=True)  # the guard reads these two
            db.session.remove()
            report["user_loader_us"], report["user_loader_runs"] = per_call_us(
                lambda: load_user_from_session(token), args.calls, args.repeat, db.session.remove)
            report["conversation_guard_us"], report["conversation_guard_runs"] = per_call_us(
                lambda: get_conversation_for_participant(conversation_id, member),
                args.calls, args.repeat, db.session.remove)
    finally:
        drop_database(env["DATABASE_URL"])
    print(json.dumps(report))


if __name__ == "__main__":
    main()
