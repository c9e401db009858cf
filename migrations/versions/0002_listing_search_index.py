"""listing full-text search index (FTS5 on SQLite, tsvector on PostgreSQL)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 01:10:00

SQLite: `listings_fts`, an FTS5 external-content table over listings (title, city, area,
description) with the Porter stemmer. Triggers on `listings` keep it in step with every insert,
update of an indexed column, and delete (cascades included). Note for later migrations: a
`batch_alter_table("listings")` that has to recreate the table on SQLite drops these triggers;
such a migration must run `create_sqlite_triggers()`'s statements again.

PostgreSQL: `listings.search_vector`, a stored generated tsvector (title weight A, city and area B,
description C, English configuration) with a GIN index.

Both: covering indexes for the filters and sorts of the search page.

Both are filled from the rows already there. The objects are not in the models: autogenerate is
told to ignore them (`rentpe.listings.search.include_in_autogenerate`).
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

FTS_COLUMNS = "title, city, area, description"

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER listings_fts_after_insert AFTER INSERT ON listings BEGIN
        INSERT INTO listings_fts (rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.city, new.area, new.description);
    END
    """,
    # An external-content FTS5 table is told what to remove with the 'delete' command and the
    # values that were indexed.
    f"""
    CREATE TRIGGER listings_fts_after_delete AFTER DELETE ON listings BEGIN
        INSERT INTO listings_fts (listings_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.city, old.area, old.description);
    END
    """,
    # Only edits of indexed text re-index a row: view counts and status changes don't touch it.
    f"""
    CREATE TRIGGER listings_fts_after_update AFTER UPDATE OF {FTS_COLUMNS} ON listings BEGIN
        INSERT INTO listings_fts (listings_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.city, old.area, old.description);
        INSERT INTO listings_fts (rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.city, new.area, new.description);
    END
    """,
]


# Covering indexes for searches, filters and sorts (all of them start with `status`: only live
# listings are searched). Each lets a page be read in order from one index and stop after it, and a
# count be made from the index alone. bench/README.md has the query plans and figures behind them.
SQLITE_INDEXES = {
    # Full-text matches are looked up here by id: much smaller than the listings rows.
    "ix_listings_search_lookup": "id, status, created_at, price, category, city",
    "ix_listings_search_newest": "status, created_at, price, category, city",
    "ix_listings_search_price": "status, price, created_at, category, city",
    "ix_listings_search_category_newest": "status, category, created_at, price, city",
    "ix_listings_search_category_price": "status, category, price, created_at, city",
    # City filters compare case-insensitively: `city = ? COLLATE NOCASE`.
    "ix_listings_search_city_newest": "status, city COLLATE NOCASE, created_at, price, category",
    "ix_listings_search_city_price": "status, city COLLATE NOCASE, price, created_at, category",
}
POSTGRESQL_INDEXES = {
    "ix_listings_search_newest": "(status, created_at, id) INCLUDE (price, category, city)",
    "ix_listings_search_price": "(status, price, created_at, id) INCLUDE (category, city)",
    "ix_listings_search_category_newest": "(status, category, created_at, id) INCLUDE (price, city)",
    "ix_listings_search_category_price": "(status, category, price, created_at, id) INCLUDE (city)",
    # City filters compare lower(city); `city` itself is included so that counts can be answered
    # from the index alone (an index-only scan needs the column under the expression).
    "ix_listings_search_city_newest": "(status, lower(city), created_at, id) INCLUDE (price, category, city)",
    "ix_listings_search_city_price": "(status, lower(city), price, created_at, id) INCLUDE (category, city)",
}


def create_sqlite_triggers():
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            f"""
            CREATE VIRTUAL TABLE listings_fts USING fts5(
                {FTS_COLUMNS},
                content='listings', content_rowid='id',
                tokenize='porter unicode61 remove_diacritics 0'
            )
            """
        )
        create_sqlite_triggers()
        op.execute("INSERT INTO listings_fts (listings_fts) VALUES ('rebuild')")
        for name, columns in SQLITE_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON listings ({columns})")
    elif dialect == "postgresql":
        # Adding a stored generated column computes it for every existing row.
        op.execute(
            """
            ALTER TABLE listings ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
                || setweight(to_tsvector('english'::regconfig, coalesce(city, '') || ' ' || coalesce(area, '')), 'B')
                || setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'C')
            ) STORED
            """
        )
        op.execute("CREATE INDEX ix_listings_search_vector ON listings USING gin (search_vector)")
        for name, columns in POSTGRESQL_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON listings {columns}")
    else:
        raise NotImplementedError(f"listing search needs SQLite or PostgreSQL, not {dialect}")


def downgrade():
    dialect = op.get_bind().dialect.name
    for name in (SQLITE_INDEXES if dialect == "sqlite" else POSTGRESQL_INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    if dialect == "sqlite":
        for name in ("after_update", "after_delete", "after_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS listings_fts_{name}")
        op.execute("DROP TABLE IF EXISTS listings_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_listings_search_vector")
        op.execute("ALTER TABLE listings DROP COLUMN IF EXISTS search_vector")
