"""The durable side of the delivery contract: one row per (user, event) with a gap-free seq.

No foreign keys to feature tables: `realtime` sits below every feature and knows only user ids.
"""
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import JSON, BigInteger, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..models_base import utcnow


class StreamCounter(db.Model):
    """The last seq handed out per user. Incremented under its row lock, so on PostgreSQL two
    transactions writing to one user commit in seq order and a client cursor never skips.

    `delivered_seq`: the highest seq one of the user's streams has written to its client (the
    delivery cursor), moved forward in batches by each process's watch, never per event."""

    __tablename__ = "stream_counters"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class StreamEvent(db.Model):
    """One durable event of one user. `hints` is not stored: what the code that recorded the event
    knew as it committed (say, the state the event's fragment shows), which its renderer may use
    instead of reading it again when publishing live. A replayed event has none (nor a `batch`:
    see `eventlog.Recorded`, what `record` hands back)."""

    __tablename__ = "stream_events"
    __table_args__ = (PrimaryKeyConstraint("user_id", "seq", name="pk_stream_events"),)

    user_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    hints = MappingProxyType({})
    batch = None
