"""Search my conversations: by the other person's name, a board's title, the listing asked about,
and the text of the messages, across my private conversations and the boards I am a member of.

Words are cleaned as listing search cleans them (`listings.search.search_terms`: the same words,
stop words and prefix rule on both databases). Message text is matched with each database's
full-text index (migration 0015, the shape of listing search's 0002): FTS5 `messages_fts` on
SQLite, the generated `messages.search_vector` with a GIN index on PostgreSQL. Names and titles
are few per person (one row per conversation) and are matched by substring.

What a person can't read is never found: conversations they are not a current participant of
(a board they left or were removed from), hidden messages, cards (not text anyone wrote), and the
messages someone wrote after a block came to stand between them and the searcher (a board both
stay in goes on, but nothing new from that person is quoted: see blocks.py).

A page of message hits is found in one statement (ids only, newest first), then its snippets in
a second one for those ids alone: a snippet per match of a common word would cost more than the
search itself.
"""
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy import Boolean, Integer, and_, exists, func, literal_column, or_, select, text, union
from sqlalchemy.orm import aliased, lazyload

from ..accounts.models import User
from ..database import is_postgresql
from ..extensions import db
from ..listings.models import Listing
from ..listings.search import MIN_PREFIX_CHARS, CrossJoin, clean_text, postgres_tsquery, search_terms
from ..paging import Page
from .blocks import Block
from .models import GROUP, Conversation, Message, Participant

PER_PAGE = 20
# Conversations found by a name or a title: a few, above the messages, on the first page only.
MAX_CONVERSATION_HITS = 10
MAX_SEARCH_PAGE = 500
MAX_QUERY_CHARS = 200
# Snippet markers: control characters a message body never holds (services.clean_body drops them),
# turned into <mark> after the text around them is escaped.
_START, _STOP, _LT = "\x01", "\x02", "\x03"
SNIPPET_WORDS = 16
# Fewer matches than this in all messages: a rare word (PostgreSQL plans it apart, see _Postgres).
RARE = 500

# Made by hand in migration 0015 (not in the models): autogenerate leaves them alone.
SEARCH_SCHEMA_NAMES = frozenset({
    "messages_fts", "messages_fts_data", "messages_fts_idx", "messages_fts_content", "messages_fts_docsize",
    "messages_fts_config", "ix_messages_search_vector",
})


@dataclass
class Hit:
    """A conversation found by its name or title (`message` None), or one of its messages."""

    conversation: Conversation
    title: str
    snippet: Markup
    message: Message | None = None


@dataclass
class Results:
    q: str
    terms: tuple
    conversations: list
    messages: Page


def search_conversations(user_id, q, page=1):
    q = clean_text(q, MAX_QUERY_CHARS)
    terms, prefix = search_terms(q)
    page = min(max(page, 1), MAX_SEARCH_PAGE)
    if not terms:
        return Results(q, terms, [], Page([], 1, False))
    conversations = _conversation_hits(user_id, terms) if page == 1 else []
    dialect = _Postgres(terms, prefix) if is_postgresql(db.session) else _Sqlite(terms, prefix)
    rows = db.session.execute(
        dialect.newest_first(select(Message.id, Message.conversation_id))
        .join(Participant, and_(Participant.conversation_id == Message.conversation_id,
                                Participant.user_id == user_id, Participant.left_at.is_(None)))
        .where(*_readable(user_id))
        .limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)
    ).all()
    found = Page.of_rows(rows, page, PER_PAGE)
    found.items = _message_hits(user_id, [row.id for row in found.items], dialect)
    return Results(q, terms, conversations, found)


def _readable(user_id):
    """Conditions on `Message` for what `user_id` may read (the participant join does the rest)."""
    block = exists().where(
        or_(and_(Block.blocker_id == user_id, Block.blocked_id == Message.sender_id),
            and_(Block.blocker_id == Message.sender_id, Block.blocked_id == user_id)),
        Block.created_at <= Message.created_at)
    return [Message.hidden_at.is_(None), Message.deleted_at.is_(None), Message.kind == "text", ~block]


def _message_hits(user_id, ids, dialect):
    if not ids:
        return []
    statement = dialect.snippets(ids)
    messages = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}
    snippets = (dict(db.session.execute(statement).all()) if statement is not None
                else {i: window(m.body, dialect.terms) for i, m in messages.items()})
    conversations = {c.id: c for c in db.session.scalars(
        select(Conversation).options(lazyload(Conversation.participants)).where(Conversation.id.in_({m.conversation_id for m in messages.values()})))}
    titles = _titles(user_id, conversations.values())
    return [Hit(conversations[messages[i].conversation_id], titles[messages[i].conversation_id],
                _marked(snippets.get(i) or messages[i].body[:200]), messages[i]) for i in ids if i in messages]


def _titles(user_id, conversations):
    """{conversation id: what a result calls it}: a board's title, else the other person's name."""
    ids = [c.id for c in conversations if c.kind != GROUP]
    names = dict(db.session.execute(
        select(Participant.conversation_id, User.display_name).join(User, User.id == Participant.user_id)
        .where(Participant.conversation_id.in_(ids), Participant.user_id != user_id)).all()) if ids else {}
    return {c.id: c.title if c.kind == GROUP else names.get(c.id, "Deleted user") for c in conversations}


def _conversation_hits(user_id, terms):
    """My conversations whose other person's name, board title or listing asked about holds every
    word (substring, case-insensitive), newest activity first."""
    other = aliased(Participant)
    other_user = aliased(User)
    listing = aliased(Listing)
    mine = (select(Conversation, other_user.display_name, listing.title)
            .join(Participant, and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id,
                                    Participant.left_at.is_(None)))
            .outerjoin(other, and_(other.conversation_id == Conversation.id, other.user_id != user_id,
                                   Conversation.kind != GROUP))
            .outerjoin(other_user, other_user.id == other.user_id)
            .outerjoin(listing, listing.id == Conversation.last_listing_id)
            .where(or_(Conversation.message_count > 0, Conversation.kind == GROUP))
            .options(lazyload(Conversation.participants)))
    patterns = ["%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for term in terms]
    for pattern in patterns:
        mine = mine.where(or_(*(func.lower(column).like(pattern, escape="\\")
                                for column in (other_user.display_name, listing.title, Conversation.title))))
    # The conversations the longest word can be in, found from the few names and titles it
    # matches: the join above then reads those, not every conversation of the person.
    pattern = max(patterns, key=len)
    candidates = union(
        select(Participant.conversation_id).join(User, User.id == Participant.user_id)
        .where(func.lower(User.display_name).like(pattern, escape="\\"), Participant.user_id != user_id),
        select(Conversation.id).join(Listing, Listing.id == Conversation.last_listing_id)
        .where(func.lower(Listing.title).like(pattern, escape="\\")),
        select(Conversation.id).where(func.lower(Conversation.title).like(pattern, escape="\\")))
    mine = mine.where(Conversation.id.in_(candidates))
    rows = db.session.execute(mine.order_by(func.coalesce(Conversation.last_message_id, 0).desc())
                              .limit(MAX_CONVERSATION_HITS)).all()
    hits = []
    for conversation, name, listing_title in rows:
        title = conversation.title if conversation.is_board else (name or "Deleted user")
        about = listing_title or ""
        hits.append(Hit(conversation, title, Markup(" · ").join(
            [highlight(title, terms)] + ([highlight(about, terms)] if about else []))))
    return hits


def highlight(value, terms):
    """`value` escaped, with the words' occurrences (substrings, any case) in <mark>."""
    lower, marks = value.lower(), [False] * len(value)
    for term in terms:
        start = lower.find(term)
        while start >= 0:
            marks[start:start + len(term)] = [True] * len(term)
            start = lower.find(term, start + 1)
    out, inside = [], False
    for ch, marked in zip(value, marks):
        if marked != inside:
            out.append(_START if marked else _STOP)
            inside = marked
        out.append(ch)
    if inside:
        out.append(_STOP)
    return _marked("".join(out))


def window(body, terms, words=SNIPPET_WORDS):
    """Up to `words` words of `body` around the first word starting with one of `terms`, those
    words between the markers `_marked` turns into <mark>."""
    tokens = body.split()
    hits = [i for i, token in enumerate(tokens)
            if any(_word(token).startswith(term) for term in terms)]
    start = max(0, min(hits[0] - words // 3, len(tokens) - words)) if hits else 0
    shown = []
    for i in range(start, min(start + words, len(tokens))):
        token = tokens[i]
        if i in hits:
            core = _word(token)
            at = token.lower().find(core)
            token = (token[:at] + _START + token[at:at + len(core)] + _STOP + token[at + len(core):] if at >= 0
                     else _START + token + _STOP)  # a word with marks inside ("o'clock"): all of it
        shown.append(token)
    return ("… " if start else "") + " ".join(shown) + (" …" if start + words < len(tokens) else "")


def _word(token):
    """A whitespace-separated token as a word: lower-case, without the punctuation around it."""
    return "".join(ch for ch in token.lower() if ch.isalnum()) if not token.isalnum() else token.lower()


def _marked(snippet):
    """A snippet with the database's markers as <mark> (everything else escaped)."""
    html = str(escape(snippet.replace(_LT, "<")))
    return Markup(html.replace(_START, "<mark>").replace(_STOP, "</mark>"))


class _Sqlite:
    """FTS5 MATCH over messages_fts (as listing search: every term a quoted string, the last a
    prefix when long enough)."""

    def __init__(self, terms, prefix):
        self.terms = terms
        phrases = ['"' + term.replace('"', '""') + '"' for term in terms]
        if prefix:
            phrases[-1] += "*"
        self.match = " ".join(phrases)

    def newest_first(self, stmt):
        # The matches drive the join, newest first from the index itself (FTS5 walks its rowids
        # in either order): a common word stops after a page of readable ones, a rare one has few
        # matches to look up. Without the CROSS JOIN SQLite starts from the person's
        # participations and checks every message of every conversation against the match.
        matches = (text("SELECT rowid AS message_id FROM messages_fts WHERE messages_fts MATCH :match")
                   .bindparams(match=self.match).columns(message_id=Integer).subquery("matches"))
        return (stmt.select_from(CrossJoin(matches, Message.__table__, matches.c.message_id == Message.id))
                .order_by(matches.c.message_id.desc()))

    def snippets(self, ids):
        # FTS5's snippet() re-runs the MATCH for these rows (10 ms for a common prefix at 150,000
        # messages): the window is cut here instead, from the bodies already read, around the
        # first word that starts with a searched term (the index stems; this marks prefixes).
        return None


class _Postgres:
    """messages.search_vector @@ (websearch_to_tsquery(words) && prefix tsquery), as listing search."""

    def __init__(self, terms, prefix):
        self.tsquery = postgres_tsquery(terms, prefix and len(terms[-1]) >= MIN_PREFIX_CHARS)
        self.config = literal_column("'english'")

    def newest_first(self, stmt):
        matches = literal_column("messages.search_vector").op("@@", return_type=Boolean)(self.tsquery)
        # PostgreSQL walks the primary key backwards, checking each message, when it expects
        # many matches: a common word stops after a page, but a word in no message (a name, a
        # typo) reads them all (80 ms at 150,000 messages). Whether the word is rare is asked of
        # the GIN index first (at most RARE matches read); a rare word's matches are collected
        # from the index, then sorted (bench/README.md, "Inbox and conversation search").
        found = db.session.scalar(select(func.count()).select_from(
            select(Message.id).where(matches).limit(RARE).subquery()))
        if found >= RARE:
            return stmt.where(matches).order_by(Message.id.desc())
        rare = select(Message.id).where(matches).cte("rare_matches").prefix_with("MATERIALIZED")
        return stmt.where(Message.id.in_(select(rare.c.id))).order_by(Message.id.desc())

    def snippets(self, ids):
        options = f"StartSel={_START}, StopSel={_STOP}, MaxWords={SNIPPET_WORDS}, MinWords=6, MaxFragments=2"
        # ts_headline drops what looks like an HTML tag: a "<" is kept out of its sight (as a
        # control character no body holds) and put back before the snippet is escaped.
        body = func.replace(Message.body, "<", _LT)
        return select(Message.id, func.ts_headline(self.config, body, self.tsquery, options)).where(
            Message.id.in_(ids))
