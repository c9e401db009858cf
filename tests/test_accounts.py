"""Accounts: sign-up, log-in, sessions, becoming a seller, the users CLI."""
from rentpe.accounts.models import User
from rentpe.extensions import db


def test_signup_logs_in_and_hashes_password(client):
    response = client.post("/signup", {
        "display_name": "Asha Verma", "email": "Asha@Example.test",
        "password": "long-enough-pw", "confirm": "long-enough-pw",
    })
    assert response.status_code == 302
    user = db.session.scalars(db.select(User)).one()
    assert user.email == "asha@example.test"
    assert user.password_hash.startswith("scrypt:")
    assert "Log out" in client.get("/").get_data(as_text=True)


def test_signup_rejects_duplicate_email_with_form_error(client, buyer):
    response = client.post("/signup", {
        "display_name": "Other", "email": buyer.email, "password": "long-enough-pw", "confirm": "long-enough-pw",
    })
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


def test_login_wrong_password_is_a_form_error(client, buyer):
    response = client.post("/login", {"email": buyer.email, "password": "nope"})
    assert response.status_code == 422
    assert "Wrong e-mail or password" in response.get_data(as_text=True)


def test_login_changes_the_session_and_sets_safe_cookie_flags(client, buyer):
    client.get("/login")
    before = client.raw.get_cookie("session").value
    response = client.login(buyer)
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.raw.get_cookie("session").value != before


def test_login_without_csrf_token_is_refused(client, buyer):
    response = client.post("/login", {"email": buyer.email, "password": "password123"}, csrf=False)
    assert response.status_code == 400


def test_next_only_follows_local_paths(client, buyer):
    client.reset_csrf()
    response = client.post("/login?next=//evil.example/x", {"email": buyer.email, "password": "password123"})
    assert response.headers["Location"] == "/"


def test_bumping_session_generation_logs_out_everywhere(client, buyer):
    from rentpe.accounts.services import end_all_sessions

    client.login(buyer)
    assert "Log out" in client.get("/").get_data(as_text=True)
    end_all_sessions(buyer)
    assert "Log out" not in client.get("/").get_data(as_text=True)


def test_become_seller_opens_dashboard(client, buyer):
    client.login(buyer)
    response = client.post("/sell", {"shop_name": "Asha Lights", "city": "Pune", "bio": "", "phone": ""})
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200


def test_users_create_cli(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "mod@x.test", "--password", "secret123", "--moderator", "--seller"])
    assert result.exit_code == 0, result.output
    user = db.session.scalars(db.select(User).where(User.email == "mod@x.test")).one()
    assert user.is_moderator and user.is_seller
