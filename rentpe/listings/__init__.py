"""Listings: what sellers rent out, their photos, search and favourites."""
