"""No route answers 500 to bad input.

The walker takes every rule in `app.url_map` (so routes added by any blueprint are covered the day
they land; only `static` and the `/events` streams are skipped) and requests it with every method it
allows, as an anonymous visitor, a buyer, a seller who owns listings and a moderator: with garbage
in each path segment (huge and negative numbers, words, long strings, NUL bytes, invalid UTF-8
percent-escapes), garbage query strings, and garbage form bodies posted with a valid CSRF token so
they reach the view. Any 5xx or exception is collected and reported with the request that caused it.
"""
import io
import re
import traceback
from urllib.parse import quote

import pytest

from rentpe.listings import services
from tests.factories import SellerProfileFactory, UserFactory
from tests.helpers import jpeg

SKIP_ENDPOINTS = {"static"}
SKIP_PREFIXES = ("/events",)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

GARBAGE_SEGMENTS = [
    "99999999999999999999", "2147483648", "-1", "0", "abc", "1.5", "x" * 3000,
    "%00", "%FF%FE", "%C3%28", "..%2F..%2Fsecret_key", "%E2%80%AE1",
]
GARBAGE_QUERIES = [
    "page=-1&page=abc&q=%FF%FE&next=//evil.example&category=%C3%28&city=" + "x" * 3000
    + "&sort=drop&after=99999999999999999999&status=%FF&min_price=-5&max_price=99999999999999999999&before=-1",
    "page=99999999999999999999&q=%00&after=%00",
]
GARBAGE_VALUES = ["99999999999999999999", "-1", "x" * 5000, "%FF%FE%C3%28", "0", "%00"]
COMMON_FIELDS = [
    "title", "category", "description", "city", "area", "price", "price_unit", "deposit", "capacity", "saved",
    "next", "page", "q", "email", "password", "confirm", "display_name", "shop_name", "bio", "phone", "remember",
    "body", "text", "message", "reason", "status", "listing_id", "user_id", "conversation_id", "after",
]
FILE_FIELDS = ["photos", "photo", "file", "image", "attachment"]
PLACEHOLDER = re.compile(r"<(?:([a-z_]+)(?:\(([^)]*)\))?:)?([a-z_]+)>")
FORM_FIELD = re.compile(r'<(?:input|textarea|select)[^>]*\sname="([^"]+)"')


class World:
    """The people and things the walker uses; real ids make some requests reach deep into views."""

    def __init__(self):
        self.owner = SellerProfileFactory(user=UserFactory()).user
        self.listing = services.create_listing(
            self.owner, photos=[jpeg((64, 48)), jpeg((64, 48))], publish=True, title="Banquet hall in Andheri",
            category="venues", description="A hall for birthdays and weddings.", city="Mumbai", area="Andheri",
            price=25000, price_unit="day", deposit=5000, capacity=200,
        )
        # Plain values: the walk may delete these rows, and an expired ORM object can't reload them.
        self.ids = {"listing": self.listing.id, "photo": self.listing.photos[0].id, "user": self.owner.id}
        self.photo_key = self.listing.photos[0].key

    def real_value(self, converter, args, name):
        if converter == "any":
            return args.split(",")[0].strip().strip("'\"")
        if converter in ("int", "float"):
            if "photo" in name:
                return str(self.ids["photo"])
            if "user" in name or "seller" in name:
                return str(self.ids["user"])
            return str(self.ids["listing"])
        return {"size": "large", "key": self.photo_key}.get(name, "sample")


def rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS or rule.rule.startswith(SKIP_PREFIXES):
            continue
        yield rule


def build(rule, value_for):
    return PLACEHOLDER.sub(lambda m: value_for(m.group(1) or "default", m.group(2) or "", m.group(3)), rule.rule)


def urls_for(rule, world):
    real = build(rule, world.real_value)
    if not rule.arguments:
        return real, [real]
    return real, [real] + [build(rule, lambda *_, g=garbage: g) for garbage in GARBAGE_SEGMENTS]


def form_bodies(client, field_names):
    token = quote(client.csrf_token())
    for value in GARBAGE_VALUES:
        yield "&".join(f"{name}={value}" for name in field_names) + f"&csrf_token={token}"


def multipart_body(client, field_names):
    data = {name: "99999999999999999999" for name in field_names}
    data.update({name: (io.BytesIO(b"\x00\xffnot an image" * 50), "x.jpg") for name in FILE_FIELDS})
    data["csrf_token"] = client.csrf_token()
    return data


class Walker:
    def __init__(self, app, make_client, world):
        self.app, self.make_client, self.world = app, make_client, world
        self.failures, self.requests = [], 0

    def client_for(self, role):
        client = self.make_client()
        if role == "buyer":
            client.login(UserFactory())
        elif role == "owner":
            client.login(self.world.owner)
        elif role == "moderator":
            client.login(UserFactory(is_moderator=True))
        return client

    def request(self, role, client, method, url, **kwargs):
        self.requests += 1
        try:
            response = client.open(method.lower(), url, **kwargs)
            response.get_data()
            response.close()
        except Exception:  # the point of the walker: record it with the request that caused it
            self.failures.append(f"{role} {method} {url[:120]} raised:\n{traceback.format_exc(limit=-3)}")
            return None
        if response.status_code >= 500:
            self.failures.append(f"{role} {method} {url[:120]} answered {response.status_code}")
        return response

    def field_names(self, role, client, url):
        response = self.request(role, client, "GET", url)
        html = response is not None and response.status_code == 200 and response.mimetype == "text/html"
        found = FORM_FIELD.findall(response.get_data(as_text=True)) if html else []
        return sorted((set(found) | set(COMMON_FIELDS)) - {"csrf_token"} - set(FILE_FIELDS))

    def still_logged_in(self, client):
        with client.raw.session_transaction() as session:
            return "_user_id" in session

    def walk(self, role):
        client = self.client_for(role)
        for rule in rules(self.app):
            real, urls = urls_for(rule, self.world)
            methods = [m for m in METHODS if m in rule.methods]
            names = self.field_names(role, client, real) if "GET" in methods else list(COMMON_FIELDS)
            for method in methods:
                for url in urls:
                    self.request(role, client, method, url)
                for query in GARBAGE_QUERIES:
                    self.request(role, client, method, f"{real}?{query}")
                if method != "GET":
                    for body in form_bodies(client, names):
                        self.request(role, client, method, real, data=body,
                                     content_type="application/x-www-form-urlencoded")
                    self.request(role, client, method, real, data=multipart_body(client, names),
                                 content_type="multipart/form-data", headers={"HX-Request": "true"})
            if role != "anonymous" and not self.still_logged_in(client):
                client = self.client_for(role)  # the rule logged us out (or ended the account): carry on


@pytest.mark.parametrize("role", ["anonymous", "buyer", "owner", "moderator"])
def test_no_route_answers_500_to_garbage(app, make_client, role):
    walker = Walker(app, make_client, World())
    walker.walk(role)
    assert walker.requests > 100
    assert not walker.failures, f"{len(walker.failures)} bad answers:\n" + "\n".join(walker.failures[:20])


def test_the_walker_sees_routes_from_every_blueprint(app):
    endpoints = {rule.endpoint for rule in rules(app)}
    assert {"listings.show", "listings.photo", "listings.favourite", "accounts.login", "accounts.logout"} <= endpoints
    assert "static" not in endpoints
