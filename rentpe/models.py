"""Imports every model so Alembic's autogenerate and the app see the whole schema."""
from .accounts.models import SellerProfile, User  # noqa: F401
from .listings.models import Favourite, Listing, ListingPhoto  # noqa: F401
from .realtime.models import StreamCounter, StreamEvent  # noqa: F401
from .chat.models import Conversation, Message, Participant  # noqa: F401
from .chat.blocks import Block  # noqa: F401
from .moderation.models import ModerationAction, Report  # noqa: F401
