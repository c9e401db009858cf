"""`flask bench-fixture`: bench users who can log in, one private conversation per pair."""
import json

from sqlalchemy import func, select

from rentpe.accounts.models import User
from rentpe.chat.models import Conversation, Participant
from rentpe.extensions import db


def run_fixture(app, tmp_path, *args):
    out = tmp_path / "fixture.json"
    result = app.test_cli_runner().invoke(args=["bench-fixture", *args, "--out", str(out)])
    return result, out


def test_creates_users_and_a_conversation_per_pair(app, client, tmp_path):
    result, out = run_fixture(app, tmp_path, "--users", "5", "--password", "bench-pass-1")

    assert result.exit_code == 0, result.output
    assert result.output == f"Created 5 users and 2 conversations; wrote {out}.\n"
    emails = db.session.scalars(select(User.email).order_by(User.id)).all()
    assert emails == [f"user{i}@bench.test" for i in range(5)]
    ids = {email: uid for email, uid in db.session.execute(select(User.email, User.id)).all()}
    conversations = json.loads(out.read_text())["conversations"]
    assert set(conversations) == {"0-1", "2-3"}
    for key, cid in conversations.items():
        a, b = (int(n) for n in key.split("-"))
        conversation = db.session.get(Conversation, cid)
        assert (conversation.buyer_id, conversation.seller_id) == (ids[f"user{a}@bench.test"], ids[f"user{b}@bench.test"])
        assert sorted((p.user_id, p.role) for p in conversation.participants) == [
            (ids[f"user{a}@bench.test"], "buyer"), (ids[f"user{b}@bench.test"], "seller")]
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 4

    # The accounts work over HTTP: log in, open the conversation, send into it.
    token = client.csrf_token()
    login = client.post("/login", {"email": "user2@bench.test", "password": "bench-pass-1", "csrf_token": token})
    assert login.status_code == 302
    client.reset_csrf()
    page = client.get(f"/conversations/{conversations['2-3']}")
    assert page.status_code == 200
    sent = client.post(f"/conversations/{conversations['2-3']}/messages",
                       {"body": "bench hello", "client_key": "benchkey0001"}, htmx=True)
    assert sent.status_code == 200 and "bench hello" in sent.get_data(as_text=True)
    assert client.get(f"/conversations/{conversations['0-1']}").status_code == 404


def test_refuses_a_database_that_already_has_bench_users(app, tmp_path):
    first, _ = run_fixture(app, tmp_path, "--users", "2", "--password", "bench-pass-1")
    assert first.exit_code == 0
    second, _ = run_fixture(app, tmp_path, "--users", "4", "--password", "bench-pass-1")

    assert second.exit_code == 1
    assert "2 bench users already exist (e.g. user0@bench.test): use an empty database" in second.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_needs_at_least_one_pair(app, tmp_path):
    result, out = run_fixture(app, tmp_path, "--users", "1", "--password", "bench-pass-1")
    assert result.exit_code == 2
    assert not out.exists()


def run_board_fixture(app, tmp_path, *args):
    out = tmp_path / "board.json"
    result = app.test_cli_runner().invoke(args=["bench-board-fixture", *args, "--out", str(out)])
    return result, out


def test_board_fixture_makes_one_board_with_every_user_a_member(app, client, tmp_path):
    result, out = run_board_fixture(app, tmp_path, "--users", "4", "--password", "bench-pass-1")

    assert result.exit_code == 0, result.output
    board_id = json.loads(out.read_text())["board"]
    assert result.output == f"Created 4 users and board {board_id} with all of them as members; wrote {out}.\n"
    ids = {email: uid for email, uid in db.session.execute(select(User.email, User.id)).all()}
    assert sorted(ids) == [f"user{i}@bench.test" for i in range(4)]
    board = db.session.get(Conversation, board_id)
    assert board.kind == "group" and board.owner_id == ids["user0@bench.test"] and board.closed_at is None
    assert sorted((p.user_id, p.role) for p in board.participants) == sorted(
        [(ids["user0@bench.test"], "owner")] + [(ids[f"user{i}@bench.test"], "seller") for i in (1, 2, 3)])
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1

    # A member logs in, opens the board and sends into it, as bench/board_fanout.py does.
    token = client.csrf_token()
    login = client.post("/login", {"email": "user3@bench.test", "password": "bench-pass-1", "csrf_token": token})
    assert login.status_code == 302
    client.reset_csrf()
    page = client.get(f"/boards/{board_id}")
    assert page.status_code == 200 and "/events?after=" in page.get_data(as_text=True)
    sent = client.post(f"/conversations/{board_id}/messages", {"body": "board hello", "client_key": "benchkey0002"},
                       htmx=True)
    assert sent.status_code == 200 and "board hello" in sent.get_data(as_text=True)


def test_board_fixture_stays_within_the_member_limit(app, tmp_path):
    from rentpe.chat.boards.services import MAX_MEMBERS

    result, out = run_board_fixture(app, tmp_path, "--users", str(MAX_MEMBERS + 1), "--password", "bench-pass-1")
    assert result.exit_code == 2
    assert not out.exists()
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
