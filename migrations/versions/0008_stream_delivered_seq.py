"""realtime: each user's delivery cursor, the last seq one of their streams has flushed

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stream_counters") as batch_op:
        batch_op.add_column(sa.Column("delivered_seq", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("stream_counters") as batch_op:
        batch_op.drop_column("delivered_seq")
