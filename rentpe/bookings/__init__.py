"""Bookings inside the conversation: a buyer asks for dates and a quantity of a listing, the seller
accepts, declines or quotes, and a confirmed booking takes the listing's units for those dates.

Sits above chat (a booking's card is a message of its own kind in the buyer–seller conversation,
and every change adds a line to the thread) and below moderation (which sees bookings in a
report's context and declines a suspended seller's pending requests). The availability of a
listing (its units and blocked dates) is kept here too, keyed by listing, so listings know
nothing of bookings.
"""
