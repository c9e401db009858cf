"""notifications: missed-message e-mails (pending rows written by the send), each person's
e-mail preference and each participant's mute

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
SENDING = sa.text("status = 'sending'")


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("notify_email", sa.String(length=10), nullable=False,
                                      server_default="immediate"))
    with op.batch_alter_table("participants") as batch_op:
        batch_op.add_column(sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("up_to_message_id", sa.Integer(), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_notifications_conversation_id_conversations"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("uq_notifications_pending", "notifications", ["user_id", "conversation_id"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_notifications_due", "notifications", ["due_at"],
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index("ix_notifications_lease", "notifications", ["lease_until"],
                    sqlite_where=SENDING, postgresql_where=SENDING)
    op.create_index("ix_notifications_history", "notifications", ["user_id", "conversation_id", "id"])


def downgrade():
    op.drop_table("notifications")
    with op.batch_alter_table("participants") as batch_op:
        batch_op.drop_column("muted")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("notify_email")
