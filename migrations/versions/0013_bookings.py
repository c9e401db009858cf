"""bookings: stock and blocked days per listing, bookings, and messages of other kinds (cards)

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), server_default="text", nullable=False))
        batch.add_column(sa.Column("card_id", sa.Integer(), nullable=True))
    op.create_index("ix_messages_card", "messages", ["kind", "card_id"])
    op.create_table(
        "booking_stock",
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.CheckConstraint("units >= 1", name=op.f("ck_booking_stock_units_positive")),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"], name=op.f("fk_booking_stock_listing_id_listings"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("listing_id", name=op.f("pk_booking_stock")),
    )
    op.create_table(
        "booking_blocked_days",
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"],
                                name=op.f("fk_booking_blocked_days_listing_id_listings"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("listing_id", "day", name=op.f("pk_booking_blocked_days")),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listing_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("guests", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("price_unit", sa.String(length=10), nullable=False),
        sa.Column("unit_price", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("deposit", sa.Integer(), nullable=False),
        sa.Column("asked_total", sa.Integer(), nullable=True),
        sa.Column("quote_note", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_bookings_quantity_positive")),
        sa.CheckConstraint("end_day >= start_day", name=op.f("ck_bookings_dates_in_order")),
        sa.CheckConstraint("total >= 0 AND deposit >= 0", name=op.f("ck_bookings_amounts_nonnegative")),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"], name=op.f("fk_bookings_listing_id_listings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_bookings_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["buyer_id"], ["users.id"], name=op.f("fk_bookings_buyer_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["seller_id"], ["users.id"], name=op.f("fk_bookings_seller_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["closed_by_id"], ["users.id"], name=op.f("fk_bookings_closed_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index("ix_bookings_listing_status_days", "bookings", ["listing_id", "status", "start_day", "end_day"])
    op.create_index("ix_bookings_seller_status", "bookings", ["seller_id", "status"])
    op.create_index("ix_bookings_buyer", "bookings", ["buyer_id"])
    op.create_index("ix_bookings_conversation", "bookings", ["conversation_id"])
    op.create_index("ix_bookings_pending_expiry", "bookings", ["status", "expires_at"])


def downgrade():
    for name in ("ix_bookings_pending_expiry", "ix_bookings_conversation", "ix_bookings_buyer",
                 "ix_bookings_seller_status", "ix_bookings_listing_status_days"):
        op.drop_index(name, table_name="bookings")
    op.drop_table("bookings")
    op.drop_table("booking_blocked_days")
    op.drop_table("booking_stock")
    op.drop_index("ix_messages_card", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("card_id")
        batch.drop_column("kind")
