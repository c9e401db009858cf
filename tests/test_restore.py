"""Restoring an older PostgreSQL dump (pg_dump / pg_restore, as the README says) under a running app:
clients that saw events the restored database never had get a `resync` instead of waiting forever,
and the events recorded afterwards carry seqs no client has seen. Both brokers."""
import subprocess
import time

import pytest
from flask_migrate import upgrade

from rentpe import create_app, realtime
from rentpe.extensions import db
from rentpe.realtime import eventlog

from .chat_helpers import contact, conversation_id_from
from .conftest import Client, _overrides, scratch_database
from .factories import ListingFactory, UserFactory
from .stream_helpers import Stream


@pytest.fixture
def running(_tmpdir, realtime_overrides):
    """An app on a PostgreSQL database of its own, a buyer and a seller logged in, a conversation."""
    with scratch_database("postgresql", _tmpdir, "restore") as url:
        app = create_app({**_overrides(url, _tmpdir), **realtime_overrides})
        with app.app_context():
            upgrade()
            listing = ListingFactory()
            buyer, seller = Client(app), Client(app)
            buyer.login(UserFactory())
            seller.login(listing.seller)
            conversation = conversation_id_from(contact(buyer, listing, "before the backup"))
            try:
                yield app, url, buyer, seller, listing.seller.id, conversation
            finally:
                realtime.shutdown(app)
                db.session.remove()
                db.engine.dispose()


def send(client, conversation, body):
    response = client.post(f"/conversations/{conversation}/messages",
                           {"body": body, "client_key": f"key-{body.replace(' ', '-')}-0001"}, htmx=True)
    assert response.status_code == 200


def dump(url, path):
    subprocess.run(["pg_dump", "--format=custom", f"--file={path}", url], check=True, timeout=60)


def restore(url, path):
    db.session.remove()
    db.engine.dispose()
    subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={url}", str(path)],
                   check=True, timeout=60)


def seqs_seen(stream):
    return max(stream.ids())


def test_an_open_stream_and_its_reconnect_resync_and_no_seq_is_reused(running, tmp_path):
    app, url, buyer, seller, seller_id, conversation = running
    stream = Stream(seller)
    assert stream.contains(": open")
    dump(url, tmp_path / "older.dump")
    before = eventlog.last_seq(seller_id)
    for n in range(3):
        send(buyer, conversation, f"after the backup {n}")
    assert stream.contains("after the backup 2")
    assert stream.read_until(lambda s: s.ids() and max(s.ids()) > before + 2)
    seen = seqs_seen(stream)

    restore(url, tmp_path / "older.dump")
    assert eventlog.last_seq(seller_id) == before < seen
    # The open stream has sent seqs the database no longer has: the watch ends it at once...
    started = time.monotonic()
    assert stream.read_until(lambda s: False, timeout=5) is False and time.monotonic() - started < 4.5
    stream.close()
    # ...and its client, reconnecting with its cursor, is told to reload instead of waiting.
    again = Stream(seller, headers={"Last-Event-ID": str(seen)})
    assert again.read_until(lambda s: any(e["event"] == "resync" for e in s.events()), timeout=2)
    assert [e for e in again.events() if e["event"] == "resync"] == [{"id": str(seen), "event": "resync",
                                                                       "data": str(seen)}]
    send(buyer, conversation, "after the restore")
    assert again.contains("after the restore")
    again.read_until(lambda s: max(s.ids()) > seen)
    assert max(again.ids()) > seen  # a seq it has never seen, so it is shown, not skipped
    again.close()


def test_after_restore_moves_every_counter_past_what_clients_saw(running, tmp_path):
    app, url, buyer, seller, seller_id, conversation = running
    dump(url, tmp_path / "older.dump")
    for n in range(3):
        send(buyer, conversation, f"after the backup {n}")
    seen = eventlog.last_seq(seller_id)  # what the seller's tab held
    restore(url, tmp_path / "older.dump")

    result = app.test_cli_runner().invoke(args=["events", "after-restore"])
    assert result.exit_code == 0 and result.output.startswith("Moved 2 counters 1000000 seqs forward"), result.output
    assert eventlog.last_seq(seller_id) > seen
    # Reconnecting with a cursor the restored database never had: a resync, not a wait or a replay.
    stream = Stream(seller, headers={"Last-Event-ID": str(seen)})
    assert stream.read_until(lambda s: any(e["event"] == "resync" for e in s.events()), timeout=2)
    [resync] = [e for e in stream.events() if e["event"] == "resync"]
    assert int(resync["id"]) == eventlog.last_seq(seller_id) > seen
    send(buyer, conversation, "after the restore")
    assert stream.contains("after the restore")
    assert stream.read_until(lambda s: max(s.ids()) > int(resync["id"]))
    stream.close()
