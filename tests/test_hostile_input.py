"""A corpus of hostile input, sent for real to every route in `app.url_map` (so routes added later
are covered the day they land), as an anonymous visitor and as a logged-in seller who is a stranger
to the things the ids point at.

Every path segment gets garbage ids and hostile text; every GET gets the hostile values in every
query field we know of; every POST gets them in every form field we know of (the fields are read
from the forms on our own pages, plus common names), with a valid CSRF token so they reach the view;
plus invalid UTF-8 bodies and a body over the 1 MB form limit. Then:

- never a 5xx;
- nothing executed: no HTML response carries a hostile value unescaped (a live `<script`, an
  event-handler attribute, an htmx attribute, a `javascript:` URL), during the walk or on any page
  afterwards; no redirect leaves the site; no header is injected;
- nothing stored that shouldn't be: no NUL byte, no control character, no huge value in any column;
- nothing lost that should be: the other seller's account and listing are still there, unchanged.
"""
import re
from html.parser import HTMLParser
from urllib.parse import quote, urlencode, urlsplit

import pytest
import sqlalchemy as sa

from rentpe.accounts.models import User
from rentpe.extensions import db
from rentpe.listings.models import Listing
from tests.url_map import STATE_CHANGING, build, rules

MARK = "rpx"  # every executable payload carries it, so a hit in a page is ours and not the template's
HOSTILE = {
    "script": f'<script>alert("{MARK}1")</script>',
    "img_onerror": f'<img src=x onerror=alert("{MARK}2")>',
    "attribute_breakout": f'"><svg onload=alert("{MARK}3")>',
    "single_quote_breakout": f"' autofocus onfocus='alert(\"{MARK}4\")",
    "javascript_url": f'javascript:alert("{MARK}5")',
    "htmx_attribute": f'<div hx-get="/logout" hx-trigger="load">{MARK}6</div>',
    "template_syntax": "{{ 7*191919 }}{% raw %}{{ config }}${7*191919}",
    "sse_injection": f"hello\n\ndata: <b>{MARK}7</b>\n\nevent: resync\nid: 999999\n\n",
    "header_injection": f"x\r\nSet-Cookie: {MARK}=1\r\nLocation: https://evil.example/",
    "nul": f"{MARK}\x00after-nul",
    "control_chars": f"{MARK}\x01\x07\x1b[31m\x7f",
    "rtl_override": "\u202etxt.exe\u202c\u2066isolated\u2069",
    "zero_width": "r\u200bp\u200cx\u200d\ufeff",
    "lone_surrogate_escape": "\\ud800\\udfff",
    "open_redirect": "//evil.example/steal",
    "absolute_url": "https://evil.example/steal",
    "path_traversal": "../../../../etc/passwd",
    "sql": "1' OR '1'='1'; DROP TABLE users; --",
    "numbers": "99999999999999999999",
    "negative": "-1",
    "float": "1e309",
    "huge_field": "x" * 200_000,  # under the 1 MB form limit: the forms' own length checks must say no
}
# The markup payloads also go in as htmx requests (fragments are rendered by other templates).
MARKUP = ("script", "img_onerror", "attribute_breakout", "single_quote_breakout", "javascript_url", "htmx_attribute",
          "sse_injection")
MEGABYTE_BODY = "y" * (1024 * 1024 + 1)
INVALID_UTF8_BODIES = [b"body=%FF%FE%C3%28&email=%C0%AF", b"body=\xff\xfe\xc3\x28&title=\xed\xa0\x80"]
GARBAGE_IDS = ["0", "-1", "99999999999999999999", "2147483648", "abc", "1.5", "%00", "%FF%FE", "%E2%80%AE1",
               "1%0D%0ASet-Cookie:x=1"]
COMMON_FIELDS = {
    "body", "text", "message", "note", "reason", "kind", "q", "next", "after", "page", "email", "password",
    "confirm", "display_name", "shop_name", "city", "bio", "phone", "title", "description", "category",
    "price", "price_unit", "deposit", "capacity", "area", "status", "client_key", "listing_id", "user_id",
}
UNESCAPED = [
    re.compile(r"<script>alert\(\"" + MARK),
    re.compile(r"<img src=x onerror", re.I),
    re.compile(r"<svg onload", re.I),
    re.compile(r"onfocus='alert"),
    re.compile(r"<div hx-get=\"/logout\""),
    re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I),
    re.compile(r"<b>" + MARK + "7</b>"),
    re.compile(r"1343433"),  # 7*191919: user input evaluated as a template
    re.compile(r"test-secret"),  # the tests' SECRET_KEY, e.g. from a rendered `config`
]
SKIP_ENDPOINTS = {"static"}
ENDS_SESSION = {"accounts.logout"}


class FieldNames(HTMLParser):
    def __init__(self):
        super().__init__()
        self.names = set()

    def handle_starttag(self, tag, attrs):
        name = dict(attrs).get("name")
        if tag in ("input", "textarea", "select") and name:
            self.names.add(name)


class World:
    """The people and things of the walk. The ids point at things the walker does not own."""

    def __init__(self, make_seller, make_listing):
        self.victim = make_seller(display_name="Meera Iyer", email="meera@example.test")
        self.victim_listing = make_listing(seller=self.victim, title="Mirror work mandap")
        self.walker = make_seller(display_name="Walker", email="walker@example.test")
        self.own_listing = make_listing(seller=self.walker, title="Walker's fairy lights")
        self.snapshot = self.things_that_must_survive()

    def things_that_must_survive(self):
        victim = db.session.get(User, self.victim.id)
        listing = db.session.get(Listing, self.victim_listing.id)
        return {
            "victim": (victim.email, victim.display_name, victim.is_suspended, victim.seller_profile.shop_name),
            "listing": (listing.title, listing.description, listing.price, listing.status),
        }

    def real_value(self, converter, args, name):
        if converter == "any":
            return args.split(",")[0].strip().strip("'\"")
        if converter in ("int", "float"):
            return str(self.victim.id if ("user" in name or "seller" in name) else self.victim_listing.id)
        return "x"


class Walk:
    def __init__(self, app, client, world, login=None):
        self.app = app
        self.client = client
        self.world = world
        self.login = login
        self.failures = []
        self.requests = 0

    # sending

    def send(self, rule, method, path, **kwargs):
        self.requests += 1
        try:
            response = self.client.open(method.lower(), path, **kwargs)
        except Exception as exc:  # the app raised: as bad as a 500
            self.failures.append(f"{method} {path[:120]!r}: raised {exc!r}")
            return None
        try:
            self.judge(method, path, response)
        finally:
            response.close()
        if self.login and rule.endpoint in ENDS_SESSION:
            self.login()
        return response

    def post(self, rule, path, data, **kwargs):
        data = {**data, "csrf_token": self.client.csrf_token()}
        return self.send(rule, "POST", path, data=data, **kwargs)

    # judging one answer

    def judge(self, method, path, response):
        where = f"{method} {path[:120]!r} -> {response.status_code}"
        if response.status_code >= 500:
            self.failures.append(where)
            return
        location = response.headers.get("Location", "")
        if location:
            parts = urlsplit(location)
            if parts.netloc not in ("", "localhost") or location.startswith("//"):
                self.failures.append(f"{where}: redirects off-site to {location[:120]!r}")
        # A cookie of the payload's own (a signed session cookie may contain "rpx" by chance: it is base64).
        if any(value.split("=", 1)[0].strip() == MARK for name, value in response.headers.items()
               if name.lower() == "set-cookie"):
            self.failures.append(f"{where}: a header was injected")
        if response.mimetype == "text/event-stream":
            return  # an endless stream: its first bytes are all we wait for
        if response.mimetype == "text/html":
            self.failures.extend(f"{where}: {problem}" for problem in unescaped(response.get_data(as_text=True)))

    # the walk

    def run(self, fields):
        for rule in rules(self.app, skip_endpoints=SKIP_ENDPOINTS):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for path in self.paths(rule):
                    self.send_plain(rule, method, path, fields)
                real = build(rule, self.world.real_value)
                for name, value in HOSTILE.items():
                    self.send_hostile(rule, method, real, fields, value, htmx=name in MARKUP)
                if method in STATE_CHANGING:
                    self.send_bodies(rule, method, real)

    def paths(self, rule):
        """The rule's path with each placeholder in turn set to garbage, and hostile text."""
        names = re.findall(r"<(?:[^:<>]+:)?([a-z_]+)>", rule.rule)
        for target in names:
            for garbage in GARBAGE_IDS + [quote(HOSTILE["script"], safe=""), quote(HOSTILE["path_traversal"], safe="")]:
                def value(converter, args, name, target=target, garbage=garbage):
                    return garbage if name == target else self.world.real_value(converter, args, name)

                yield build(rule, value)

    def send_plain(self, rule, method, path, fields):
        if method == "GET":
            self.send(rule, method, path)
        elif method in STATE_CHANGING:
            data = {"csrf_token": self.client.csrf_token(), **{field: "1" for field in fields}}
            self.send(rule, method, path, data=data)

    def send_hostile(self, rule, method, path, fields, value, htmx):
        if method == "GET":
            query = urlencode({field: value[:4000] for field in fields})
            self.send(rule, method, f"{path}?{query}")
            if htmx:
                # Headers can't carry a line break over HTTP: the rest of the value can.
                header = re.sub(r"[\r\n]", " ", value)
                self.send(rule, method, f"{path}?{query}",
                          headers={"Last-Event-ID": header, "HX-Request": "true", "HX-Current-URL": header})
        elif method in STATE_CHANGING:
            data = {field: value for field in fields}
            self.send(rule, method, path, data={**data, "csrf_token": self.client.csrf_token()})
            if htmx:
                self.send(rule, method, path, data={**data, "csrf_token": self.client.csrf_token()},
                          headers={"HX-Request": "true"})

    def send_bodies(self, rule, method, path):
        token = self.client.csrf_token().encode()
        for body in INVALID_UTF8_BODIES:
            self.send(rule, method, path, data=body + b"&csrf_token=" + token,
                      content_type="application/x-www-form-urlencoded")
        self.send(rule, method, path, data={"body": MEGABYTE_BODY, "csrf_token": self.client.csrf_token()})


def unescaped(html):
    return [f"unescaped {pattern.pattern!r} near {html[max(0, m.start() - 60):m.end() + 40]!r}"
            for pattern in UNESCAPED for m in [pattern.search(html)] if m]


def form_fields(app, client, world):
    """Every form field name on every page we can reach without ids going astray, plus common ones."""
    parser = FieldNames()
    for rule in rules(app, methods={"GET"}, skip_endpoints=SKIP_ENDPOINTS):
        response = client.get(build(rule, world.real_value))
        if response.mimetype == "text/html":
            parser.feed(response.get_data(as_text=True))
        response.close()
    return (parser.names | COMMON_FIELDS) - {"csrf_token"}


def stored_problems():
    """NUL bytes, control characters, huge values or a hostile payload's 1 MB in any text column."""
    problems = []
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, (sa.String, sa.Text, sa.JSON)):
                    continue
                for (value,) in conn.execute(sa.select(column)):
                    text = value if isinstance(value, str) else repr(value)
                    if control.search(text):
                        problems.append(f"{table.name}.{column.name}: control character in {text[:80]!r}")
                    if len(text) > 50_000:
                        problems.append(f"{table.name}.{column.name}: {len(text)} characters stored")
    return problems


@pytest.fixture
def world(make_seller, make_listing):
    return World(make_seller, make_listing)


@pytest.mark.parametrize("who", ["anonymous", "seller"])
def test_hostile_input_to_every_route_is_refused_safely(app, client, world, who):
    login = None
    if who == "seller":
        def login():
            client.login(world.walker)

        login()
    fields = form_fields(app, client, world)
    assert {"email", "password", "display_name", "shop_name"} <= fields  # the forms were found

    walk = Walk(app, client, world, login)
    walk.run(fields)

    assert walk.requests > 400
    assert walk.failures == [], f"{len(walk.failures)} of {walk.requests} requests failed:\n" + "\n".join(walk.failures[:40])
    assert stored_problems() == []
    assert world.things_that_must_survive() == world.snapshot
    # Afterwards every page, for everyone, is still free of anything the walk sent.
    for rule in rules(app, methods={"GET"}, skip_endpoints=SKIP_ENDPOINTS):
        response = client.get(build(rule, world.real_value))
        if response.mimetype == "text/html":
            assert unescaped(response.get_data(as_text=True)) == [], rule.rule
        assert response.status_code < 500
        response.close()
