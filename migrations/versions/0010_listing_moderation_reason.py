"""listings: a moderator's pause or removal keeps its reason on the listing, for its seller to read

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("listings") as batch_op:
        batch_op.add_column(sa.Column("moderation_reason", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("listings") as batch_op:
        batch_op.drop_column("moderation_reason")
