"""Browse and search live listings: one query function for SQLite and PostgreSQL.

`search_listings(q, category, city, price_min, price_max, sort, page, per_page)` takes what a
visitor typed, cleans it (nothing a visitor types can break the SQL or raise: quotes, operators,
NUL bytes, 10k characters, page=10**20…), and returns a `Page` of live listings.

Keywords use each database's own full-text index, created by migration 0002:
- SQLite: an FTS5 external-content table `listings_fts` (title, city, area, description) kept in
  sync by triggers on `listings`, ranked by bm25 with the title weighted over the place and the
  description.
- PostgreSQL: a generated `listings.search_vector` (title A, city + area B, description C) with a
  GIN index, matched with websearch_to_tsquery and ranked with ts_rank.

Both sides see the same query: the words of `q` (letters, digits and combining marks; everything
else separates words), lower-cased, English stop words dropped (PostgreSQL's list, so both
databases ignore the same words), at most MAX_TERMS of them, all required. Words are stemmed by
the index (Porter on SQLite, Snowball English on PostgreSQL: "weddings" finds "wedding"). The last
word also matches as a prefix, as results update while it is typed ("chai" finds "chairs"), unless
it is shorter than three characters.
"""
import itertools
import math
import re
import time
import unicodedata
from dataclasses import dataclass, field, replace

from flask import current_app
from sqlalchemy import Boolean, Float, Integer, asc, desc, func, literal_column, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import selectinload
from sqlalchemy.sql.selectable import Join

from ..database import is_postgresql
from ..extensions import db
from ..http import is_htmx
from ..paging import Page
from .models import CATEGORIES, LIVE, Listing

RELEVANCE, NEWEST, PRICE_ASC, PRICE_DESC = "relevance", "newest", "price_asc", "price_desc"
SORTS = {
    RELEVANCE: "Best match",
    NEWEST: "Newest",
    PRICE_ASC: "Price: low to high",
    PRICE_DESC: "Price: high to low",
}
PARAMS = ("q", "category", "city", "price_min", "price_max", "sort", "page")

# A search box is for a few words; anything longer is cut before it is looked at.
MAX_QUERY_CHARS = 200
MAX_TERMS = 8
MAX_TERM_CHARS = 40
# One letter or two match too many words to be a useful prefix, and cost the most to expand.
MIN_PREFIX_CHARS = 3
MAX_CITY_CHARS = 60
# Above any real rental price, and inside PostgreSQL's integer.
MAX_PRICE = 1_000_000_000
MAX_PER_PAGE = 100
# Past the last page of any catalogue we will hold (a page further is shown as the last page), and
# small enough that (page - 1) * MAX_PER_PAGE stays a valid SQL OFFSET (PostgreSQL bigint).
MAX_PAGE = 1_000_000

# SQLite bm25 column weights, in the FTS table's column order (title, city, area, description):
# the same order of importance as PostgreSQL's setweight A / B / B / C.
BM25_WEIGHTS = (10.0, 4.0, 4.0, 1.0)

# PostgreSQL's english.stop, so SQLite ignores exactly the words PostgreSQL's parser drops.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that these
those am is are was were be been being have has had having do does did doing a an the and but if or
because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don should now
""".split())

# Database objects migration 0002 makes by hand, per dialect. They are not in the models, so
# autogenerate must leave them alone (see `include_in_autogenerate`).
SEARCH_SCHEMA_NAMES = frozenset({
    "listings_fts", "listings_fts_data", "listings_fts_idx", "listings_fts_content",
    "listings_fts_docsize", "listings_fts_config", "search_vector", "ix_listings_search_vector",
    "ix_listings_search_lookup", "ix_listings_search_newest", "ix_listings_search_price",
    "ix_listings_search_category_newest", "ix_listings_search_category_price",
    "ix_listings_search_city_newest", "ix_listings_search_city_price",
})


# ---------------------------------------------------------------------------------------------
# Cleaning what visitors type

def clean_text(value, limit):
    """Printable text, whitespace collapsed, at most `limit` characters; never raises."""
    if not isinstance(value, str):
        return ""
    value = value[: limit * 4]
    value = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in value)
    return " ".join(value.split())[:limit]


def _is_word_char(ch):
    # Letters, digits and combining marks: what FTS5's unicode61 tokenizer and PostgreSQL's parser
    # both treat as part of a word. Everything else (punctuation, symbols, spaces) separates words.
    return unicodedata.category(ch)[0] in "LNM"


def _words(text_):
    words, current = [], []
    for ch in text_:
        if _is_word_char(ch):
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def search_terms(q):
    """(terms, prefix): the words of `q` that are searched for, and whether the last is a prefix."""
    q = clean_text(q, MAX_QUERY_CHARS)
    terms = []
    for word in _words(q):
        word = word.lower()[:MAX_TERM_CHARS]
        has_letter_or_digit = any(unicodedata.category(ch)[0] in "LN" for ch in word)
        if has_letter_or_digit and word not in STOP_WORDS and word not in terms:
            terms.append(word)
    terms = terms[:MAX_TERMS]
    # Results update while the visitor types, so the last word may be unfinished.
    prefix = bool(terms) and len(terms[-1]) >= MIN_PREFIX_CHARS
    return tuple(terms), prefix


def clean_int(value, maximum):
    """A whole number from a form field ("1,500", " ₹2000 "), or None; clamped to 0..maximum."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return min(max(value, 0), maximum)
    if not isinstance(value, str):
        return None
    digits = re.sub(r"[\s,₹]", "", value[:40])
    if not digits.isascii() or not digits.isdigit():
        return None
    return min(int(digits[:12]), maximum)


def clean_page(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return min(max(value, 1), MAX_PAGE)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        digits = value.strip()
        # Anything longer is past the last page anyway; int() of 5,000 digits would raise.
        return min(max(int(digits[:18]), 1), MAX_PAGE)
    return 1


@dataclass(frozen=True)
class SearchQuery:
    """A cleaned search: what the form shows, what the URL carries, what the SQL uses."""

    q: str = ""
    category: str | None = None
    city: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    sort: str | None = None  # as chosen; None = the default for this query
    page: int = 1
    terms: tuple = field(default=(), compare=False)
    prefix: bool = field(default=False, compare=False)

    @classmethod
    def clean(cls, q="", category=None, city=None, price_min=None, price_max=None, sort=None, page=1):
        q = clean_text(q, MAX_QUERY_CHARS)
        terms, prefix = search_terms(q)
        price_min, price_max = clean_int(price_min, MAX_PRICE), clean_int(price_max, MAX_PRICE)
        if price_min is not None and price_max is not None and price_min > price_max:
            price_min, price_max = price_max, price_min
        return cls(
            q=q,
            category=category if isinstance(category, str) and category in CATEGORIES else None,
            city=clean_text(city, MAX_CITY_CHARS) or None,
            price_min=price_min,
            price_max=price_max,
            sort=sort if isinstance(sort, str) and sort in SORTS else None,
            page=clean_page(page),
            terms=terms,
            prefix=prefix,
        )

    @property
    def effective_sort(self):
        """Relevance needs keywords; without any, the newest listings come first."""
        if self.sort is None:
            return RELEVANCE if self.terms else NEWEST
        if self.sort == RELEVANCE and not self.terms:
            return NEWEST
        return self.sort

    @property
    def default_sort(self):
        return RELEVANCE if self.terms else NEWEST

    def url_args(self, **changes):
        """Query-string arguments for this search (defaults left out), with `changes` applied."""
        query = replace(self, **changes) if changes else self
        args = {
            "q": query.q or None,
            "category": query.category,
            "city": query.city,
            "price_min": query.price_min,
            "price_max": query.price_max,
            "sort": query.sort if query.sort and query.sort != query.default_sort else None,
            "page": query.page if query.page > 1 else None,
        }
        return {key: value for key, value in args.items() if value is not None}

    @property
    def is_filtered(self):
        return bool(self.q or self.category or self.city or self.price_min is not None or self.price_max is not None)

    def active_filters(self):
        """The filters in force, each with the arguments of this search without it."""
        filters = []
        if self.q:
            filters.append(Filter("q", self.q, self.url_args(q="", terms=(), prefix=False, page=1)))
        if self.category:
            filters.append(Filter("category", CATEGORIES[self.category], self.url_args(category=None, page=1)))
        if self.city:
            filters.append(Filter("city", self.city, self.url_args(city=None, page=1)))
        if self.price_min is not None or self.price_max is not None:
            without = self.url_args(price_min=None, price_max=None, page=1)
            filters.append(Filter("price", (self.price_min, self.price_max), without))
        return filters


@dataclass(frozen=True)
class Filter:
    kind: str
    value: object
    url_args_without: dict


def args_from(mapping):
    """The search arguments of a request's query string (unknown ones are ignored)."""
    return {name: mapping.get(name) for name in PARAMS if mapping.get(name) is not None}


# ---------------------------------------------------------------------------------------------
# Results

def search_listings(q="", category=None, city=None, price_min=None, price_max=None, sort=None, page=1,
                    per_page=None):
    """One page of live listings matching the search, best first, and how many match in all."""
    query = SearchQuery.clean(q, category, city, price_min, price_max, sort, page)
    if per_page is None:
        per_page = current_app.config["SEARCH_PAGE_SIZE"]
    per_page = min(max(int(per_page), 1), MAX_PER_PAGE)
    dialect = _POSTGRESQL if is_postgresql(db.session) else _SQLITE
    keywords = dialect.keywords(query.terms, query.prefix) if query.terms else None

    if keywords is None:
        ids, total, query = _browse(query, dialect, per_page)
    else:
        ids, total, query = _keyword_search(query, dialect, keywords, per_page)
    return Page.counted(_load(ids), query.page, per_page, total, query=query)


def _browse(query, dialect, per_page):
    """Without keywords: count from an index, then read one page down an index in the chosen order,
    stopping after it."""
    total = db.session.scalar(_matching(select(func.count()), query, dialect, None, ranked=False))
    query = replace(query, page=min(query.page, max(math.ceil(total / per_page), 1)))
    order = [direction(getattr(Listing, name)) for name, direction in _ordering(query)]
    stmt = (
        _matching(select(Listing.id), query, dialect, None, ranked=False)
        .order_by(*order, Listing.id.desc())
        .limit(per_page)
        .offset((query.page - 1) * per_page)
    )
    return (db.session.scalars(stmt).all() if total else []), total, query


def _keyword_search(query, dialect, keywords, per_page):
    """With keywords: one pass over the matches finds the page and, with count(*) OVER (), how many
    match in all; ranking has to look at every match anyway, so a separate count would double it."""
    keywords.before()
    rows = db.session.execute(_ranked_page(query, dialect, keywords, per_page)).all()
    total = rows[0].total if rows else 0
    if not rows and query.page > 1:
        # Past the last page (an old link, or a hand-made URL): count, then show the last page.
        total = db.session.scalar(_matching(select(func.count()), query, dialect, keywords, ranked=False))
        query = replace(query, page=max(math.ceil(total / per_page), 1))
        rows = db.session.execute(_ranked_page(query, dialect, keywords, per_page)).all() if total else []
    keywords.after()
    return [row.id for row in rows], total, query


def _ranked_page(query, dialect, keywords, per_page):
    sort_keys = _sort_keys(query, keywords)
    # The matches are collected first (MATERIALIZED): otherwise PostgreSQL plans the outer LIMIT as
    # if it could stop early and walks a sort-order index past every live row, re-checking each
    # against the keywords; count(*) OVER () needs every match anyway.
    matches = (
        _matching(select(Listing.id, *sort_keys.values()), query, dialect, keywords, ranked=True)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    order = [direction(matches.c[name]) for name, direction in _ordering(query)]
    return (
        select(matches.c.id, func.count().over().label("total"))
        .order_by(*order, matches.c.id.desc())
        .limit(per_page)
        .offset((query.page - 1) * per_page)
    )


def _load(ids):
    """The listings with these ids, in this order, with their photos (for the cards)."""
    ids = list(ids)
    if not ids:
        return []
    listings = db.session.scalars(select(Listing).where(Listing.id.in_(ids)).options(selectinload(Listing.photos)))
    by_id = {listing.id: listing for listing in listings}
    return [by_id[i] for i in ids if i in by_id]


def _matching(stmt, query, dialect, keywords, ranked):
    if keywords is None:
        stmt = stmt.select_from(Listing)
    else:
        stmt = keywords.restrict(stmt, ranked)
    stmt = stmt.where(Listing.status == LIVE)
    if query.category:
        stmt = stmt.where(Listing.category == query.category)
    if query.city:
        stmt = stmt.where(dialect.city_is(query.city))
    if query.price_min is not None:
        stmt = stmt.where(Listing.price >= query.price_min)
    if query.price_max is not None:
        stmt = stmt.where(Listing.price <= query.price_max)
    return stmt


def _sort_keys(query, keywords):
    """The columns the chosen order needs, by name."""
    keys = {"created_at": Listing.created_at.label("created_at")}
    if query.effective_sort == RELEVANCE:
        keys["score"] = keywords.score.label("score")
    if query.effective_sort in (PRICE_ASC, PRICE_DESC):
        keys["price"] = Listing.price.label("price")
    return keys


def _ordering(query):
    """[(column name, direction)]: the best first, then the newest (the id breaks ties)."""
    newest = [("created_at", desc)]
    sort = query.effective_sort
    if sort == RELEVANCE:
        return [("score", asc), *newest]
    if sort == PRICE_ASC:
        return [("price", asc), *newest]
    if sort == PRICE_DESC:
        return [("price", desc), *newest]
    return newest


class _SqliteKeywords:
    """FTS5 MATCH over listings_fts; `score` is bm25 (lower is better)."""

    def __init__(self, terms, prefix):
        # Every term is a quoted FTS5 string, so no word can act as an operator (AND, NEAR, NOT…).
        phrases = ['"' + term.replace('"', '""') + '"' for term in terms]
        if prefix:
            phrases[-1] += "*"
        self.match = " ".join(phrases)
        weights = ", ".join(str(w) for w in BM25_WEIGHTS)
        self.ranked = (
            text(f"SELECT rowid AS listing_id, bm25(listings_fts, {weights}) AS score "
                 "FROM listings_fts WHERE listings_fts MATCH :match")
            .bindparams(match=self.match)
            .columns(listing_id=Integer, score=Float)
            .subquery("matches")
        )
        self.matched = (
            text("SELECT rowid AS listing_id FROM listings_fts WHERE listings_fts MATCH :match")
            .bindparams(match=self.match)
            .columns(listing_id=Integer)
            .subquery("matches")
        )
        # bm25 is lower for a better match.
        self.score = self.ranked.c.score

    def before(self):
        pass

    after = before

    def restrict(self, stmt, ranked):
        matches = self.ranked if ranked else self.matched
        # The full-text matches drive the join, always: without ANALYZE statistics SQLite thinks
        # `status = 'live'` picks a few listings and would run the MATCH once per live listing.
        return stmt.select_from(CrossJoin(matches, Listing.__table__, matches.c.listing_id == Listing.id))


class CrossJoin(Join):
    """An inner join that SQLite must run left table first (its documented CROSS JOIN rule)."""

    inherit_cache = True


@compiles(CrossJoin, "sqlite")
def _compile_cross_join(join, compiler, asfrom=False, from_linter=None, **kw):
    # As SQLAlchemy's own visit_join, with CROSS JOIN for JOIN.
    if from_linter:
        from_linter.edges.update(itertools.product(join.left._from_objects, join.right._from_objects))
    left = join.left._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw)
    right = join.right._compiler_dispatch(compiler, asfrom=True, from_linter=from_linter, **kw)
    on = join.onclause._compiler_dispatch(compiler, from_linter=from_linter, **kw)
    return f"{left} CROSS JOIN {right} ON {on}"


def postgres_tsquery(terms, prefix):
    """websearch_to_tsquery(words) && to_tsquery('last':*): every term must match, the last one
    as a prefix when `prefix`. The terms come from `search_terms` (plain words: no quotes, no
    '-', no backslash, stop words such as "or" removed), so websearch_to_tsquery reads them as
    words that must all be present and the last is safe to quote as a lexeme."""
    config = literal_column("'english'")
    complete, last = (terms[:-1], terms[-1]) if prefix else (terms, None)
    parts = []
    if complete:
        parts.append(func.websearch_to_tsquery(config, " ".join(complete)))
    if last:
        parts.append(func.to_tsquery(config, f"'{last}':*"))
    tsquery = parts[0]
    for part in parts[1:]:
        tsquery = tsquery.op("&&")(part)
    return tsquery


class _PostgresKeywords:
    """search_vector @@ (websearch_to_tsquery(words) && prefix tsquery); `score` is ts_rank."""

    def __init__(self, terms, prefix):
        tsquery = postgres_tsquery(terms, prefix)
        vector = literal_column("listings.search_vector")
        self.condition = vector.op("@@", return_type=Boolean)(tsquery)
        # ts_rank is higher for a better match; negated so that both databases sort it ascending.
        self.score = -func.ts_rank(vector, tsquery)

    def restrict(self, stmt, ranked):
        return stmt.select_from(Listing).where(self.condition)

    # PostgreSQL's planner prices a GIN prefix search high and `@@` on every row low, so for
    # words in more than a few percent of listings it reads the whole table instead of the index:
    # 3 to 5 times slower at 100,000 listings (bench/README.md). The index is never the worse way
    # in for a full-text match, so sequential scans are off for these statements only. SET LOCAL
    # ends with the transaction at the latest (also on an error).
    def before(self):
        db.session.execute(text("SET LOCAL enable_seqscan = off"))

    def after(self):
        db.session.execute(text("SET LOCAL enable_seqscan = DEFAULT"))


class _Dialect:
    def __init__(self, keywords, city_is):
        self.keywords = keywords
        self.city_is = city_is


# City names compare case-insensitively, in the form each database's city index holds
# (migration 0002): a NOCASE column on SQLite, lower(city) on PostgreSQL.
_SQLITE = _Dialect(_SqliteKeywords, lambda city: Listing.city.collate("NOCASE") == city)
_POSTGRESQL = _Dialect(_PostgresKeywords, lambda city: func.lower(Listing.city) == func.lower(city))


# ---------------------------------------------------------------------------------------------
# The page around the results

def wants_results_fragment(headers):
    """True for htmx requests that swap only #search-results.

    htmx 4 sends `HX-Request: true` on every request it makes, including a history restore (the
    back button), which re-fetches the URL with `HX-History-Restore-Request: true` and swaps the
    whole <body> (`HX-Request-Type: full`). Those get the full page.
    """
    return (
        is_htmx(headers)
        and headers.get("HX-History-Restore-Request") != "true"
        and headers.get("HX-Request-Type", "partial") == "partial"
    )


# The request headers that decide between page and fragment: caches must key on them.
FRAGMENT_HEADERS = ("HX-Request", "HX-Request-Type", "HX-History-Restore-Request")


# Counting listings per city reads every live listing (~20 ms at 100,000); the list changes slowly
# and only feeds suggestions, so each app process keeps it for a few minutes.
CITY_SUGGESTIONS_SECONDS = 300


def known_cities(limit=40):
    """Cities with live listings, the busiest first, for the city field's suggestions."""
    cache = current_app.extensions.setdefault("rentpe.search", {})
    expires, cities = cache.get("cities", (0, []))
    if time.monotonic() < expires:
        return cities
    cities = db.session.scalars(
        select(Listing.city)
        .where(Listing.status == LIVE)
        .group_by(Listing.city)
        .order_by(func.count().desc(), Listing.city)
        .limit(limit)
    ).all()
    cache["cities"] = (time.monotonic() + CITY_SUGGESTIONS_SECONDS, cities)
    return cities


def include_in_autogenerate(name, type_, parent_names):
    """Alembic `include_name` hook: the search index objects are made by hand in migration 0002."""
    return name not in SEARCH_SCHEMA_NAMES
