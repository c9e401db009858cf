"""Search latency over 100,000 listings, on SQLite and on PostgreSQL.

Builds a scratch database per backend with the Alembic migrations, bulk-loads generated listings
(a marketplace's vocabulary across categories and cities: titles, descriptions, prices, statuses,
photos), then runs a fixed mix of realistic searches through `search_listings` itself: 1–3
keywords or none, with and without category / city / price filters, every sort, page 1 and deeper
pages. One warm-up pass, then ROUNDS timed passes; prints p50 / p95 / p99 per database and per
kind of query, and the slowest searches.

    .venv/bin/python bench/search_bench.py                    # both databases, 100,000 listings
    .venv/bin/python bench/search_bench.py --only sqlite --rows 20000
    .venv/bin/python bench/search_bench.py --explain          # also print the plans of a few queries

SQLite gets no ANALYZE (the app never runs it) unless --sqlite-analyze; PostgreSQL gets the VACUUM
ANALYZE autovacuum would soon run. The PostgreSQL database --pg-database is created on the server
of --pg-admin-url and dropped at the end (--keep keeps both scratch databases; --reuse runs against
kept ones).
"""
import argparse
import csv
import io
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rentpe import create_app  # noqa: E402
from rentpe.extensions import db  # noqa: E402
from rentpe.listings import search as search_module  # noqa: E402
from rentpe.listings.search import search_listings  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Vocabulary

ITEMS = {
    "venues": ["banquet hall", "lawn", "rooftop terrace", "farmhouse", "party hall", "conference room", "resort",
               "garden", "poolside deck", "community hall", "marriage hall", "studio", "villa", "club house"],
    "furniture": ["chiavari chairs", "folding chairs", "round tables", "sofa set", "lounge sofa", "bar stools",
                  "cocktail tables", "stage platform", "throne chairs", "buffet counter", "swing", "dining set"],
    "decoration": ["flower arch", "backdrop", "balloon arch", "mandap", "marigold garlands", "table centrepieces",
                   "fabric drapes", "neon sign", "photo booth", "floral wall", "rangoli kit", "welcome board"],
    "lighting": ["fairy lights", "string lights", "par lights", "chandelier", "uplighters", "lanterns",
                 "moving heads", "spotlight", "marquee letters", "diya set", "led curtain", "laser light"],
    "electronics": ["dj console", "pa system", "speakers", "projector", "led wall", "microphone", "generator",
                    "smoke machine", "karaoke set", "projector screen", "dhol", "live camera"],
    "other": ["tent", "canopy", "crockery set", "catering utensils", "cooler", "carpet", "umbrella",
              "portable toilet", "coffee machine", "ice box", "costume", "palanquin"],
}
CATEGORY_WEIGHTS = {"venues": 18, "furniture": 22, "decoration": 22, "lighting": 16, "electronics": 14, "other": 8}
ADJECTIVES = ["elegant", "royal", "vintage", "modern", "rustic", "golden", "white", "premium", "classic",
              "compact", "grand", "luxury", "budget", "outdoor", "indoor", "wooden", "crystal", "colourful",
              "warm", "portable", "traditional", "designer", "heritage", "minimal", "pastel"]
EVENTS = ["weddings", "birthdays", "receptions", "engagements", "sangeet", "mehendi", "haldi", "corporate events",
          "baby showers", "anniversaries", "house parties", "festivals", "product launches", "diwali parties",
          "kitty parties", "pool parties", "conferences", "photo shoots", "naming ceremonies", "farewells"]
CITIES = {
    "Mumbai": ["Andheri", "Bandra", "Powai", "Juhu", "Thane", "Borivali"],
    "Delhi": ["Saket", "Dwarka", "Karol Bagh", "Vasant Kunj", "Rohini"],
    "Bengaluru": ["Indiranagar", "Koramangala", "Whitefield", "Jayanagar", "HSR Layout"],
    "Pune": ["Baner", "Kothrud", "Viman Nagar", "Hinjewadi"],
    "Hyderabad": ["Gachibowli", "Banjara Hills", "Madhapur"],
    "Chennai": ["Adyar", "T Nagar", "Velachery"],
    "Kolkata": ["Salt Lake", "Park Street", "Ballygunge"],
    "Ahmedabad": ["Navrangpura", "Satellite"],
    "Jaipur": ["Malviya Nagar", "Vaishali Nagar"],
    "Kochi": ["Kakkanad", "Fort Kochi"],
    "Lucknow": ["Gomti Nagar", "Hazratganj"],
    "Goa": ["Panjim", "Calangute"],
}
CITY_WEIGHTS = [20, 18, 16, 10, 9, 8, 6, 4, 3, 2, 2, 2]
FEATURES = {
    "venues": ["Seats {n} guests with {x}.", "Air conditioned, with {x} and power backup.",
               "Includes {x}; outside caterers allowed."],
    "furniture": ["{n} pieces in stock, cushions in {colour}.", "Sturdy frames, cleaned after every event.",
                  "Available in {colour} and ivory."],
    "decoration": ["Made with {material} and fresh flowers.", "Themes in {colour}, set up in two hours.",
                   "Custom names and dates on request."],
    "lighting": ["{n} metres long, warm white, with spare bulbs.", "Runs on mains or our generator.",
                 "Dimmable, with a remote and extension cords."],
    "electronics": ["Includes {n} speakers, mixer and wireless microphones.", "Technician stays through the event.",
                    "Tested before every booking; backup unit on call."],
    "other": ["Cleaned and sanitised after each use.", "{n} units available in {colour}.",
              "Weatherproof and quick to set up."],
}
AMENITIES = ["valet parking", "a catering kitchen", "a bridal room", "a dance floor", "a stage", "a lawn",
             "a swimming pool", "rooms for guests"]
COLOURS = ["gold", "silver", "white", "red", "maroon", "peach", "teal", "black", "pink", "blue"]
MATERIALS = ["silk", "velvet", "bamboo", "paper", "jute", "satin", "wood", "brass"]
GENERIC = ["Delivery and setup included within {city}.", "Security deposit refunded after the event.",
           "Discounts on bookings of three days or more.", "Our team handles pickup after the event.",
           "Book early for the wedding season.", "Photos show a recent {event} we did.",
           "Call us to check availability on your date.", "Serving {area} and nearby areas for ten years."]
PRICES = {"venues": (15000, 400000, "event"), "furniture": (30, 6000, "day"), "decoration": (1500, 150000, "event"),
          "lighting": (300, 40000, "event"), "electronics": (1500, 80000, "day"), "other": (200, 30000, "day")}
STATUS_WEIGHTS = {"live": 90, "paused": 5, "draft": 3, "removed": 2}


def make_listing(rng, seller_id, now):
    category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
    city = rng.choices(list(CITIES), weights=CITY_WEIGHTS)[0]
    area = rng.choice(CITIES[city])
    item = rng.choice(ITEMS[category])
    title = f"{rng.choice(ADJECTIVES).title()} {item}"
    if rng.random() < 0.5:
        title += f" for {rng.choice(EVENTS)}"
    elif rng.random() < 0.3:
        title += f" in {area}"
    fill = dict(n=rng.choice([8, 20, 50, 100, 150, 300, 500]), x=rng.choice(AMENITIES), colour=rng.choice(COLOURS),
                material=rng.choice(MATERIALS), city=city, area=area, event=rng.choice(EVENTS).rstrip("s"))
    sentences = [f"{rng.choice(ADJECTIVES).title()} {item} for {rng.choice(EVENTS)} and {rng.choice(EVENTS)}."]
    sentences += [s.format(**fill) for s in rng.sample(FEATURES[category], 2)]
    sentences += [s.format(**fill) for s in rng.sample(GENERIC, rng.randint(1, 3))]
    low, high, unit = PRICES[category]
    price = int(round(low * (high / low) ** rng.random(), -1 if low < 1000 else -2))
    created = now - timedelta(seconds=rng.randint(0, 2 * 365 * 86400))
    return {
        "seller_id": seller_id, "title": title[:120], "category": category, "description": " ".join(sentences),
        "city": city, "area": area, "price": price, "price_unit": unit, "deposit": price // 5,
        "capacity": fill["n"] if category == "venues" else None,
        "status": rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0],
        "view_count": rng.randint(0, 5000), "favourite_count": rng.randint(0, 200),
        "created_at": created, "updated_at": created,
    }


def make_queries(rng, count):
    """A fixed, realistic mix: what people type and click on a marketplace's search page."""
    words_by_category = {
        category: sorted({w for item in items for w in item.split()} | {item for item in items})
        for category, items in ITEMS.items()
    }
    events = [e.split()[0] for e in EVENTS]
    queries = []
    for _ in range(count):
        category = rng.choices(list(CATEGORY_WEIGHTS), weights=list(CATEGORY_WEIGHTS.values()))[0]
        kind = rng.random()
        if kind < 0.2:
            q = ""  # browsing: category links, city, price
        elif kind < 0.5:
            q = rng.choice(words_by_category[category])  # "chairs", "banquet hall"
        elif kind < 0.7:
            q = f"{rng.choice(words_by_category[category])} {rng.choice(events)}"  # "tent wedding"
        elif kind < 0.8:
            q = f"{rng.choice(ADJECTIVES)} {rng.choice(words_by_category[category])}"  # "royal mandap"
        elif kind < 0.88:
            word = rng.choice(words_by_category[category]).split()[-1]
            q = word[: max(3, len(word) - rng.randint(1, 3))]  # still typing: "chand"
        elif kind < 0.94:
            q = f"{rng.choice(ITEMS[category])} {rng.choice(list(CITIES)).lower()}"  # "dj console pune"
        else:
            q = rng.choice(["helicopter", "bouncy castle", "snow machine", "vintage car", "elephant"])
        query = {"q": q}
        if rng.random() < (0.7 if not q else 0.25):
            query["category"] = category
        if rng.random() < 0.4:
            query["city"] = rng.choices(list(CITIES), weights=CITY_WEIGHTS)[0].lower()
        if rng.random() < 0.25:
            low, high, _ = PRICES[category]
            query["price_min"] = str(int(low * rng.uniform(1, 3)))
            if rng.random() < 0.7:
                query["price_max"] = str(int(high * rng.uniform(0.1, 0.6)))
        query["sort"] = rng.choices([None, "newest", "price_asc", "price_desc"], weights=[60, 15, 15, 10])[0]
        page = rng.random()
        query["page"] = 1 if page < 0.75 else rng.randint(2, 5) if page < 0.9 else rng.randint(6, 40)
        queries.append(query)
    return queries


def describe(query):
    parts = [f"q={query['q']!r}"] + [f"{k}={v}" for k, v in query.items() if k != "q" and v not in (None, 1)]
    return " ".join(parts)


def kind_of(query):
    keywords = "keywords" if query["q"] else "browse"
    sort = query["sort"] or ("relevance" if query["q"] else "newest")
    page = "page 1" if query["page"] == 1 else "pages 2-5" if query["page"] <= 5 else "pages 6-40"
    filtered = "filtered" if any(query.get(k) for k in ("category", "city", "price_min", "price_max")) else "unfiltered"
    return [keywords, f"sort {sort}", page, filtered]


# ---------------------------------------------------------------------------------------------
# Building the databases

LISTING_COLUMNS = ["seller_id", "title", "category", "description", "city", "area", "price", "price_unit",
                   "deposit", "capacity", "status", "view_count", "favourite_count", "created_at", "updated_at"]


def generate(rows, sellers, seed):
    rng = random.Random(seed)
    now = datetime(2026, 11, 1)
    users = [
        {"id": n, "email": f"seller{n}@bench.rentpe.test", "display_name": f"Seller {n}", "password_hash": "-",
         "is_moderator": False, "is_suspended": False, "session_generation": 0, "created_at": now}
        for n in range(1, sellers + 1)
    ]
    profiles = [{"user_id": n, "shop_name": f"Shop {n}", "city": rng.choice(list(CITIES)), "bio": "Rentals.",
                 "phone": None, "created_at": now} for n in range(1, sellers + 1)]
    listings = [make_listing(rng, rng.randint(1, sellers), now) for _ in range(rows)]
    photos = []
    for listing_id in range(1, rows + 1):
        for position in range(rng.choice([0, 0, 1, 1, 2, 3])):
            photos.append({"listing_id": listing_id, "position": position, "key": f"{listing_id:06d}{position}",
                           "width": 1200, "height": 900, "created_at": now})
    return users, profiles, listings, photos


def _sqlite_value(value):
    # The text form SQLAlchemy's SQLite DateTime type writes and reads.
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def load_sqlite(engine, users, profiles, listings, photos, analyze):
    with engine.begin() as conn:
        for table, rows in (("users", users), ("seller_profiles", profiles), ("listings", listings),
                            ("listing_photos", photos)):
            columns = list(rows[0])
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                [tuple(_sqlite_value(row[c]) for c in columns) for row in rows],
            )
    if analyze:
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")


def load_postgresql(engine, users, profiles, listings, photos, analyze=True):
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, rows in (("users", users), ("seller_profiles", profiles), ("listings", listings),
                            ("listing_photos", photos)):
            columns = list(rows[0])
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for row in rows:
                writer.writerow(["\\N" if row[c] is None else row[c] for c in columns])
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
        cursor.execute("SELECT setval(pg_get_serial_sequence('listings', 'id'), (SELECT max(id) FROM listings))")
        raw.commit()
    finally:
        raw.close()
    # What autovacuum does shortly after a bulk load anyway.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def make_app(url):
    # The production engine options (and its idle-connection ping): one search = one request's work.
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})


def prepare(backend, args, data):
    """The URL of a migrated, loaded database for `backend`."""
    if backend == "sqlite":
        path = Path(args.sqlite_path)
        url = f"sqlite:///{path}"
        if args.reuse and path.exists():
            return url
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + args.pg_database
        admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": args.pg_database}).first()
            if args.reuse and exists:
                admin.dispose()
                return url
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{args.pg_database}"'))
        admin.dispose()

    app = make_app(url)
    with app.app_context():
        from flask_migrate import upgrade

        started = time.perf_counter()
        upgrade()
        users, profiles, listings, photos = data()
        load = load_sqlite if backend == "sqlite" else load_postgresql
        load(db.engine, users, profiles, listings, photos, analyze=args.sqlite_analyze or backend != "sqlite")
        print(f"  {backend}: migrated and loaded {len(listings):,} listings, {len(photos):,} photos "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        db.engine.dispose()
    return url


def drop(backend, args):
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(args.sqlite_path + suffix).unlink(missing_ok=True)
    else:
        admin = sa.create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)'))
        admin.dispose()


# ---------------------------------------------------------------------------------------------
# Measuring

def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def run(url, queries, rounds):
    app = make_app(url)
    timings = []  # (ms, query index)
    with app.app_context():
        for round_number in range(rounds + 1):  # round 0 warms caches and is not counted
            for index, query in enumerate(queries):
                started = time.perf_counter()
                results = search_listings(**query)
                elapsed = (time.perf_counter() - started) * 1000
                assert len(results.items) <= results.per_page
                db.session.remove()
                if round_number:
                    timings.append((elapsed, index))
        started = time.perf_counter()
        for _ in range(20):
            app.extensions.pop("rentpe.search", None)  # the uncached query
            search_module.known_cities()
            db.session.remove()
        cities_ms = (time.perf_counter() - started) * 1000 / 20
        db.engine.dispose()
    return timings, cities_ms


def report(backend, timings, queries, cities_ms, slowest):
    values = sorted(ms for ms, _ in timings)
    print(f"\n{backend}: {len(values)} searches ({len(queries)} queries x {len(values) // len(queries)} rounds)")
    print(f"  all                    p50 {percentile(values, 50):6.1f} ms   p95 {percentile(values, 95):6.1f} ms"
          f"   p99 {percentile(values, 99):6.1f} ms   max {values[-1]:6.1f} ms   mean {statistics.mean(values):5.1f} ms")
    groups = defaultdict(list)
    for ms, index in timings:
        for kind in kind_of(queries[index]):
            groups[kind].append(ms)
    for kind in sorted(groups):
        group = sorted(groups[kind])
        print(f"  {kind:<22} p50 {percentile(group, 50):6.1f} ms   p95 {percentile(group, 95):6.1f} ms"
              f"   n={len(group)}")
    print(f"  known_cities() (city suggestions, cached per process): {cities_ms:.1f} ms uncached")
    worst = defaultdict(list)
    for ms, index in timings:
        worst[index].append(ms)
    print(f"  slowest queries (median of rounds):")
    for index in sorted(worst, key=lambda i: -statistics.median(worst[i]))[:slowest]:
        print(f"    {statistics.median(worst[index]):6.1f} ms  {describe(queries[index])}")
    return percentile(values, 50), percentile(values, 95), percentile(values, 99)


def explain(url, backend, queries):
    """Print the database's plan for the SQL `search_listings` runs for a few queries."""
    app = make_app(url)
    with app.app_context():
        captured = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            captured.append((statement, parameters))

        sa.event.listen(db.engine, "before_cursor_execute", capture)
        for query in queries:
            captured.clear()
            search_listings(**query)
            db.session.remove()
            print(f"\n--- {backend}: {describe(query)}")
            sa.event.remove(db.engine, "before_cursor_execute", capture)
            prefix = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
            with db.engine.begin() as conn:
                # The ids of the page (and the count); loading the page's rows and photos is by id.
                for statement, parameters in captured:
                    if "listings.id IN" in statement or "FROM listing_photos" in statement:
                        continue
                    if statement.startswith("SET"):
                        conn.exec_driver_sql(statement, parameters)
                        continue
                    print("  " + " ".join(statement.split())[:150])
                    for row in conn.exec_driver_sql(prefix + statement, parameters).fetchall():
                        print("    " + (" ".join(str(c) for c in row[1:]) if backend == "sqlite" else row[0]))
            sa.event.listen(db.engine, "before_cursor_execute", capture)
        sa.event.remove(db.engine, "before_cursor_execute", capture)
        db.engine.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--sellers", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--sqlite-path", default=os.path.join(tempfile.gettempdir(), "rentpe_bench_search.db"))
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL",
                                                                 "postgresql://127.0.0.1:5432/test"))
    parser.add_argument("--pg-database", default="rentpe_bench_search")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases afterwards")
    parser.add_argument("--reuse", action="store_true", help="use kept scratch databases instead of rebuilding")
    parser.add_argument("--explain", action="store_true", help="print query plans for a few searches")
    # The app never runs ANALYZE on SQLite, so by default neither does the benchmark.
    parser.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE on SQLite after loading")
    parser.add_argument("--slowest", type=int, default=5)
    args = parser.parse_args(argv)

    backends = [args.only] if args.only else ["sqlite", "postgresql"]
    queries = make_queries(random.Random(args.seed + 1), args.queries)
    cache = {}

    def data():
        if "rows" not in cache:
            cache["rows"] = generate(args.rows, args.sellers, args.seed)
        return cache["rows"]

    print(f"search benchmark: {args.rows:,} listings, {len(queries)} queries, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    summary = {}
    for backend in backends:
        url = prepare(backend, args, data)
        try:
            timings, cities_ms = run(url, queries, args.rounds)
            summary[backend] = report(backend, timings, queries, cities_ms, args.slowest)
            if args.explain:
                samples = [{"q": "chairs"}, {"q": "wedding"}, {"q": "lights", "city": "mumbai", "sort": "price_asc"},
                           {"q": "", "category": "furniture", "page": 20}, {"q": "", "city": "pune"},
                           {"q": "chand"}]
                explain(url, backend, samples)
        finally:
            if not args.keep:
                drop(backend, args)

    print("\nsummary (ms)            p50      p95      p99")
    for backend, (p50, p95, p99) in summary.items():
        print(f"  {backend:<20} {p50:7.1f}  {p95:7.1f}  {p99:7.1f}")


if __name__ == "__main__":
    main()
