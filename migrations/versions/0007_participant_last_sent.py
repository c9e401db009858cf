"""chat: each participant's last sent message and each conversation's last asked-about listing,
kept by the send itself, so a new message's receipts and inbox thumbnail need no extra query

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("participants") as batch_op:
        batch_op.add_column(sa.Column("last_sent_message_id", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("last_listing_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f("fk_conversations_last_listing_id_listings"), "listings",
                                    ["last_listing_id"], ["id"], ondelete="SET NULL")
    op.execute(
        "UPDATE participants SET last_sent_message_id = COALESCE((SELECT max(messages.id) FROM messages"
        " WHERE messages.conversation_id = participants.conversation_id"
        " AND messages.sender_id = participants.user_id), 0)"
    )
    op.execute(
        "UPDATE conversations SET last_listing_id = (SELECT messages.listing_id FROM messages"
        " WHERE messages.conversation_id = conversations.id AND messages.listing_id IS NOT NULL"
        " ORDER BY messages.id DESC LIMIT 1)"
    )


def downgrade():
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_constraint(op.f("fk_conversations_last_listing_id_listings"), type_="foreignkey")
        batch_op.drop_column("last_listing_id")
    with op.batch_alter_table("participants") as batch_op:
        batch_op.drop_column("last_sent_message_id")
