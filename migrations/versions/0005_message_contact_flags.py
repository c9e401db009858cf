"""contact-information guard: what off-platform contact details a message carries

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("contact_flags", sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("contact_flags")
