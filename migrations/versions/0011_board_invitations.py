"""event boards: invitations the invited person accepts or declines

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "board_invitations",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_board_invitations_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_board_invitations_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"], name=op.f("fk_board_invitations_invited_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name=op.f("pk_board_invitations")),
    )
    op.create_index(op.f("ix_board_invitations_user_id"), "board_invitations", ["user_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_board_invitations_user_id"), table_name="board_invitations")
    op.drop_table("board_invitations")
