"""Imports every model so Alembic's autogenerate and the app see the whole schema."""
from .accounts.models import SellerProfile, User, UserSession  # noqa: F401
from .listings.models import Favourite, Listing, ListingPhoto  # noqa: F401
from .realtime.models import StreamCounter, StreamEvent  # noqa: F401
from .chat.models import Conversation, Message, Participant  # noqa: F401
from .chat.blocks import Block  # noqa: F401
from .chat.boards.models import BoardInvitation  # noqa: F401
from .moderation.models import ModerationAction, Report  # noqa: F401
from .bookings.models import BlockedDay, Booking, BookingStock  # noqa: F401
from .notifications.models import Notification  # noqa: F401


def include_in_autogenerate(name, type_, parent_names):
    """Alembic `include_name` hook: the full-text objects made by hand in migrations (0002 for
    listings, 0015 for messages) are not in the models, and autogenerate leaves them alone."""
    from .chat.search import SEARCH_SCHEMA_NAMES as message_search
    from .listings.search import include_in_autogenerate as listing_search

    return listing_search(name, type_, parent_names) and name not in message_search
