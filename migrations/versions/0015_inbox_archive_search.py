"""inbox: archived conversations per person, full-text index over message bodies

Revision ID: 0015
Revises: 0014

`participants.archived_message_id`: the conversation's last message id when its participant put
it away (None: never, or taken out again). A conversation is archived for them while no newer
message came: a new message brings it back without the send writing anything more.

Message search uses each database's full-text machinery, the same shape as listing search
(migration 0002):
- SQLite: `messages_fts`, an FTS5 external-content table over `messages.body` (Porter stemmer),
  kept in step by triggers on `messages`. A later `batch_alter_table("messages")` that recreates
  the table drops these triggers and must run `create_sqlite_triggers()` again.
- PostgreSQL: `messages.search_vector`, a stored generated tsvector (English) with a GIN index.
The objects are not in the models: autogenerate is told to ignore them
(`rentpe.chat.search.SEARCH_SCHEMA_NAMES`).
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
    END
    """,
    """
    CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END
    """,
    # Only an edit of the body re-indexes a message: hiding it or flagging it doesn't.
    """
    CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF body ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
        INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
    END
    """,
]


def create_sqlite_triggers():
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade():
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("archived_message_id", sa.Integer(), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            """
            CREATE VIRTUAL TABLE messages_fts USING fts5(
                body, content='messages', content_rowid='id',
                tokenize='porter unicode61 remove_diacritics 0'
            )
            """
        )
        create_sqlite_triggers()
        op.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
    elif dialect == "postgresql":
        op.execute(
            """
            ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
                to_tsvector('english'::regconfig, coalesce(body, ''))
            ) STORED
            """
        )
        op.execute("CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)")
    else:
        raise NotImplementedError(f"message search needs SQLite or PostgreSQL, not {dialect}")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("after_update", "after_delete", "after_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_search_vector")
        op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("archived_message_id")
