"""Hardening: security headers and the CSP, templates the CSP can hold to, HSTS and secure cookies in
production, trusted proxies, CSRF on every state change, log-out by POST only, and sessions that
stop at once when an account is suspended or deleted."""
import re
from pathlib import Path

import pytest

from rentpe import config, create_app, security
from rentpe.accounts.models import User
from rentpe.extensions import db
from tests.url_map import STATE_CHANGING, build, plain_value, rules

ROOT = Path(__file__).resolve().parent.parent
# E-mail bodies (templates/mail/) are not pages: no page's policy applies to them, and mail
# clients drop stylesheets, so their styles are inline. They hold no script either (checked below).
MAIL_TEMPLATES = sorted((ROOT / "templates" / "mail").rglob("*.html"))
TEMPLATES = sorted(set((ROOT / "templates").rglob("*.html")) - set(MAIL_TEMPLATES))
SCRIPTS = sorted((ROOT / "static" / "js").rglob("*.js"))

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


# Headers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/login", "/listings/999999", "/static/css/app.css"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()  # static files are streamed from disk

    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Permissions-Policy"].startswith("camera=(), microphone=(), geolocation=()")
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # development is plain http


def test_error_answers_carry_the_headers_too(client):
    response = client.post("/login", {"email": "x"}, csrf=False)

    assert response.status_code == 400
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP


def test_the_policy_forbids_inline_script_eval_framing_and_plugins():
    directives = dict(d.split(" ", 1) for d in security.CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["form-action"] == "'self'"


def test_a_logged_in_page_states_its_viewer_in_the_one_style_its_policy_allows(client, buyer):
    """Live fragments are the same for every viewer; the page says who views it, in a `<style>`
    whose nonce (fresh per response) is the only inline style the policy allows."""
    client.login(buyer)
    nonces = []
    for _ in range(2):
        response = client.get("/inbox")
        page = response.get_data(as_text=True)
        [nonce] = re.findall(r'<style nonce="([^"]+)">', page)
        assert response.headers["Content-Security-Policy"] == EXPECTED_CSP.replace(
            "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'")
        assert f'<body data-viewer="{buyer.id}"' in page
        assert f'.msg[data-author="{buyer.id}"] {{' in page
        assert f'[data-author="{buyer.id}"] .for-others' in page and f'[data-person="{buyer.id}"]' in page
        nonces.append(nonce)
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 16
    client.logout()
    response = client.get("/")
    assert "<style" not in response.get_data(as_text=True) and "data-viewer" not in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == EXPECTED_CSP


# Production ------------------------------------------------------------------------------------


def production_settings(tmp_path):
    settings = config.from_environment(str(tmp_path), {"RENTPE_ENV": "production", "SECRET_KEY": "s" * 64})
    return {key: settings[key] for key in (
        "SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "HSTS_MAX_AGE", "PREFERRED_URL_SCHEME")}


def test_production_config_turns_on_hsts_and_secure_cookies(tmp_path):
    production = production_settings(tmp_path)
    development = config.from_environment(str(tmp_path), {})

    assert production == {"SESSION_COOKIE_SECURE": True, "REMEMBER_COOKIE_SECURE": True,
                          "HSTS_MAX_AGE": 63072000, "PREFERRED_URL_SCHEME": "https"}
    assert development["SESSION_COOKIE_SECURE"] is False and development["HSTS_MAX_AGE"] == 0


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.from_environment(str(tmp_path), {"RENTPE_ENV": "production"})


@pytest.fixture
def production_app(app, tmp_path):
    return create_app({**app.config, **production_settings(tmp_path)})


def test_in_production_pages_send_hsts_and_cookies_are_secure(production_app, buyer):
    client = production_app.test_client()
    page = client.get("/login", base_url="https://localhost")  # Secure cookies only come back over https
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)

    # Over https Flask-WTF also wants a same-origin Referer, which our Referrer-Policy lets browsers send.
    response = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                           data={"email": buyer.email, "password": "password123", "remember": "y", "csrf_token": token})

    assert page.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    for name in ("session=", "remember_token="):
        cookie = next(c for c in cookies if c.startswith(name))
        assert "Secure" in cookie and "HttpOnly" in cookie, cookie


def test_config_reads_the_proxy_hops_and_rejects_nonsense(tmp_path):
    assert config.from_environment(str(tmp_path), {})["PROXY_FIX_HOPS"] == 0
    assert config.from_environment(str(tmp_path), {"PROXY_FIX_HOPS": "1"})["PROXY_FIX_HOPS"] == 1
    with pytest.raises(config.ConfigError, match="PROXY_FIX_HOPS"):
        config.from_environment(str(tmp_path), {"PROXY_FIX_HOPS": "all"})


# Trusted proxies -------------------------------------------------------------------------------


def failed_logins_until_refused(client, forwarded_for, limit=40):
    """How many failed log-ins (from clients behind one proxy address) pass before a 429. The password
    is left empty: a form error counts as a failure too, and costs no password hashing."""
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    for n in range(limit):
        response = client.post("/login", data={"email": f"nobody{n}@example.test", "password": "", "csrf_token": token},
                               headers={"X-Forwarded-For": forwarded_for(n)}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        if response.status_code == 429:
            return n
    return None


def test_behind_a_trusted_proxy_each_client_address_is_counted_on_its_own(app):
    client = create_app({**app.config, "RATELIMIT_ENABLED": True, "PROXY_FIX_HOPS": 1}).test_client()

    # Forty people behind the proxy, one failed log-in each: nobody is refused.
    assert failed_logins_until_refused(client, lambda n: f"198.51.100.{n}") is None


def test_without_a_trusted_proxy_a_forged_forwarded_for_does_not_escape_the_limit(app):
    client = create_app({**app.config, "RATELIMIT_ENABLED": True}).test_client()

    assert failed_logins_until_refused(client, lambda n: f"198.51.100.{n}") == 30


# Templates and scripts the CSP can hold to -----------------------------------------------------

# A JSON-LD data block is not a script (the browser never runs it, so the CSP does not apply).
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/ld\+json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]*\s(on[a-z]+)\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.I)
HTMX_EVAL = re.compile(r"\s(hx-on[\w:-]*|data-hx-on[\w:-]*)\s*=|[\"']js:|javascript:", re.I)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_templates_have_no_inline_script_handlers_or_styles(template):
    text = template.read_text()

    assert not INLINE_SCRIPT.findall(text), "inline <script>: move it to static/js"
    assert not EVENT_HANDLER.findall(text), "inline event handler: use static/js or htmx attributes"
    assert not STYLE_ATTRIBUTE.findall(text), "style attribute: use a class in static/css"
    assert not HTMX_EVAL.findall(text), "hx-on / js: / javascript: need eval, which the CSP forbids"
    for src in re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", text):
        assert src.startswith("{{ url_for('static'"), f"script from elsewhere: {src}"


@pytest.mark.parametrize("template", MAIL_TEMPLATES, ids=lambda p: p.name)
def test_mail_templates_have_no_script(template):
    text = template.read_text()
    assert not re.search(r"<script|\son[a-z]+\s*=|javascript:", text, re.I)


def test_the_template_scan_sees_every_template():
    assert {p.name for p in TEMPLATES} >= {"base.html", "login.html", "_login_form.html", "error.html"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_our_scripts_do_not_evaluate_strings(script):
    text = script.read_text()
    assert not re.search(r"\beval\s*\(|new\s+Function\s*\(|setTimeout\s*\(\s*[\"']", text)


def test_htmx_is_configured_from_the_meta_tag_and_adds_no_stylesheet(client):
    page = client.get("/").get_data(as_text=True)

    config_tag = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page).group(1)
    assert '"includeIndicatorCSS": false' in config_tag
    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert ".htmx-request .htmx-indicator" in css  # the rules htmx would have added, in our stylesheet


# CSRF on every state change --------------------------------------------------------------------


def row_counts():
    with db.engine.connect() as conn:
        return {t.name: conn.execute(db.select(db.func.count()).select_from(t)).scalar() for t in db.metadata.sorted_tables}


# RFC 8058's one-click unsubscribe is POSTed by the mail client, which has no form token: the
# signed token in its URL is the proof (tests/test_notifications.py: a forged one gets a 400).
CSRF_EXEMPT = {"notifications.unsubscribe"}


@pytest.mark.parametrize("who", ["anonymous", "seller"])
def test_every_state_changing_route_refuses_a_request_without_csrf_token(app, client, seller, listing, who):
    if who == "seller":
        client.login(seller)
    before = row_counts()
    checked = []
    for rule in rules(app, STATE_CHANGING):
        if rule.endpoint in CSRF_EXEMPT:
            continue
        path = build(rule, plain_value)
        for method in sorted(STATE_CHANGING & rule.methods):
            for htmx in (False, True):
                headers = {"HX-Request": "true"} if htmx else {}
                response = client.open(method.lower(), path, data={"body": "hello", "email": seller.email},
                                       headers=headers)
                assert response.status_code == 400, f"{method} {path} (htmx={htmx}): {response.status_code}"
                text = response.get_data(as_text=True)
                assert "Your form expired or came from elsewhere." in text
                assert ("<html" in text) is not htmx
                checked.append(f"{method} {rule.rule}")

    assert "POST /login" in checked and "POST /logout" in checked and "POST /signup" in checked
    assert row_counts() == before
    if who == "seller":
        assert "Log out" in client.get("/").get_data(as_text=True)  # the token-less log-out did nothing


def test_a_wrong_token_is_refused_like_a_missing_one(client, buyer):
    client.login(buyer)

    response = client.post("/logout", {"csrf_token": "forged"})

    assert response.status_code == 400
    assert "Log out" in client.get("/").get_data(as_text=True)


def test_the_token_is_accepted_from_the_htmx_header(client, buyer):
    client.login(buyer)
    token = client.csrf_token()

    response = client.post("/logout", csrf=False, headers={"X-CSRFToken": token}, htmx=True)

    assert response.status_code == 302
    assert "Log out" not in client.get("/").get_data(as_text=True)


def test_logging_out_is_a_post_only(client, buyer):
    client.login(buyer)

    assert client.get("/logout").status_code == 405
    assert "Log out" in client.get("/").get_data(as_text=True)


# Sessions end at once --------------------------------------------------------------------------


def test_a_suspended_users_session_stops_working_on_the_next_request(client, buyer):
    client.login(buyer)
    buyer.is_suspended = True
    db.session.commit()

    response = client.get("/sell")

    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/login", {"email": buyer.email, "password": "password123"}).status_code == 422


def test_a_deleted_users_session_stops_working_on_the_next_request(client, buyer):
    client.login(buyer)
    db.session.delete(buyer)
    db.session.commit()

    response = client.get("/sell")

    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.scalar(db.select(User).where(User.email == "asha@example.test")) is None


# Caching of private pages ------------------------------------------------------------------------


@pytest.mark.parametrize("path, htmx", [("/", False), ("/inbox", False), ("/dashboard", False), ("/account", False),
                                        ("/search?q=hall", True)])
def test_a_logged_in_persons_pages_are_never_stored(client, seller, listing, path, htmx):
    client.login(seller)
    response = client.get(path, headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "private, no-store"


def test_public_pages_and_files_keep_their_own_caching(client, seller, listing):
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")  # anonymous
    client.login(seller)
    css = client.get("/static/css/app.css")
    css.close()
    assert "no-store" not in css.headers.get("Cache-Control", "")
