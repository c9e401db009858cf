"""The notifications worker as its own process (`flask --app app notifications run`): killed with
-9 in the middle of a batch it loses no e-mail and sends at most one twice; two at once send
each e-mail once. Against a real SMTP server (aiosmtpd) that can hold a message unanswered."""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rentpe.chat.services import get_or_create_direct_conversation, send_message
from rentpe.extensions import db
from rentpe.models_base import utcnow
from rentpe.notifications import worker
from rentpe.notifications.models import SENDING, SENT, Notification
from tests.mail_helpers import smtp  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
LEASE = 120
pytestmark = pytest.mark.slow


@pytest.fixture
def app_overrides(smtp):
    return {"MAIL_URL": smtp.url, "NOTIFY_DELAY_S": 0, "NOTIFY_LEASE_S": LEASE}


def make_due(make_user, seller, count):
    """`count` pending e-mails to `seller`, due now: one conversation per buyer."""
    for n in range(count):
        buyer = make_user(display_name=f"Buyer {n}")
        conversation = get_or_create_direct_conversation(buyer.id, seller.id)
        db.session.commit()
        send_message(conversation, buyer, f"Message {n}", f"key-{n:08d}")
    ids = db.session.scalars(select(Notification.id).order_by(Notification.id)).all()
    assert len(ids) == count
    return ids


def start_worker(app, smtp, claim_size=5):
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "MAIL_URL": smtp.url,
           "SECRET_KEY": app.config["SECRET_KEY"], "NOTIFY_DELAY_S": "0", "NOTIFY_LEASE_S": str(LEASE),
           "NOTIFY_CLAIM_SIZE": str(claim_size), "REDIS_URL": ""}
    return subprocess.Popen([str(Path(sys.executable).parent / "flask"), "--app", "app", "notifications", "run",
                             "--once"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_until(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def statuses():
    db.session.expire_all()
    return Counter(db.session.scalars(select(Notification.status)).all())


@pytest.fixture
def seller_(make_seller):
    return make_seller(display_name="Ravi Kumar")


def test_a_worker_killed_with_9_mid_batch_sends_each_email_at_most_once_more_and_loses_none(
        app, smtp, make_user, seller_):
    ids = make_due(make_user, seller_, 20)
    smtp.inbox.hold_after(6)  # the 7th e-mail reaches the server, which never answers it
    process = start_worker(app, smtp)
    try:
        smtp.inbox.wait_for(7)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
    smtp.inbox.release()
    assert statuses()[SENT] == 6
    # Another worker, once the dead one's claim has lapsed.
    assert worker.run_once(now=utcnow() + timedelta(seconds=LEASE + 1), limit=100).sent == 14
    received = Counter(smtp.inbox.notification_ids())
    assert set(received) == set(ids)  # none lost
    assert sorted(received.values()) == [1] * 19 + [2]  # one sent twice: the one the server took as it died
    assert statuses() == {SENT: 20}


def test_two_workers_at_once_send_each_email_once(app, smtp, make_user, seller_):
    ids = make_due(make_user, seller_, 40)
    smtp.inbox.hold_after(0)  # every e-mail waits at the server until both workers hold a batch
    workers = [start_worker(app, smtp), start_worker(app, smtp)]
    try:
        def two_claims():
            db.session.expire_all()
            return db.session.scalar(select(func.count(func.distinct(Notification.claim)))
                                     .where(Notification.status == SENDING)) == 2
        wait_until(two_claims)
        smtp.inbox.release()
        outputs = [w.communicate(timeout=60)[0].decode() for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate(timeout=10)
    assert all(w.returncode == 0 for w in workers), outputs
    received = Counter(smtp.inbox.notification_ids())
    assert set(received) == set(ids) and set(received.values()) == {1}, received
    assert statuses() == {SENT: 40}


def test_the_embedded_server_runs_the_worker_too(app, smtp, make_user, seller_, tmp_path):
    """`./run` ends in `python app.py`: its process sends the e-mails (here as .eml files, MAIL_URL unset)."""
    make_due(make_user, seller_, 2)
    from tests.mail_helpers import free_port

    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "MAIL_URL": "",
           "MAIL_FILE_PATH": str(tmp_path / "mail"), "SECRET_KEY": "x", "NOTIFY_DELAY_S": "0",
           "PORT": str(free_port()), "REDIS_URL": ""}
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        # The file is written before its row is marked sent: wait for both rows, then count the files.
        wait_until(lambda: statuses() == {SENT: 2})
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 2
    finally:
        server.terminate()
        output = server.communicate(timeout=15)[0].decode()
    assert "Missed-message e-mail: the worker runs in this process" in output


def test_a_failing_job_in_a_round_is_logged_and_the_e_mails_still_go(app, smtp, make_user, seller_, monkeypatch,
                                                                      caplog):
    """One job's error (here the booking expiry, as if its query failed) never ends the worker
    nor keeps the round's other jobs from running."""
    from rentpe.bookings import services as bookings

    make_due(make_user, seller_, 2)

    def broken(now=None):
        db.session.execute(select(func.count()).select_from(Notification))  # a transaction is open
        raise RuntimeError("the expiry query failed")

    monkeypatch.setattr(bookings, "expire_due", broken)
    lines = []
    worker.run(once=True, echo=lines.append, handle_signals=False)
    assert "booking expiry round failed" in caplog.text and "the expiry query failed" in caplog.text
    assert any("2 sent" in line for line in lines), lines
    assert statuses() == {SENT: 2}
