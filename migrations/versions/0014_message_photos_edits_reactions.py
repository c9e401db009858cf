"""chat: photos in messages, edits (with the previous texts kept) and deletion, reactions

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
    op.create_index("ix_messages_deleted_at", "messages", ["deleted_at"])
    op.create_table(
        "message_edits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("edited_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_edits_message_id", "message_edits", ["message_id", "id"])
    op.create_table(
        "message_reactions",
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("emoji", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji"),
    )
    op.create_table(
        "message_photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_message_photos_key"),
    )
    op.create_index("ix_message_photos_message_id", "message_photos", ["message_id", "position"])


def downgrade():
    op.drop_table("message_photos")
    op.drop_table("message_reactions")
    op.drop_table("message_edits")
    op.drop_index("ix_messages_deleted_at", table_name="messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("edited_at")
