"""event boards: group conversations (title, event date, city, owner, closed), former members,
hidden messages

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("title", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("event_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("city", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_conversations_owner_id_users"), "users", ["owner_id"], ["id"],
                                    ondelete="SET NULL")

    with op.batch_alter_table("participants") as batch_op:
        batch_op.add_column(sa.Column("left_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("left_reason", sa.String(length=10), nullable=True))

    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("hidden_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("hidden_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hidden_reason", sa.String(length=20), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_messages_hidden_by_id_users"), "users", ["hidden_by_id"], ["id"],
                                    ondelete="SET NULL")


def downgrade():
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_hidden_by_id_users"), type_="foreignkey")
        batch_op.drop_column("hidden_reason")
        batch_op.drop_column("hidden_by_id")
        batch_op.drop_column("hidden_at")

    with op.batch_alter_table("participants") as batch_op:
        batch_op.drop_column("left_reason")
        batch_op.drop_column("left_at")

    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_owner_id_users"), type_="foreignkey")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("owner_id")
        batch_op.drop_column("city")
        batch_op.drop_column("event_date")
        batch_op.drop_column("title")
