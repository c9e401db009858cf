"""The seller dashboard's live totals: a `listings.totals` event (recorded by every change of a
listing's status, the seller's or a moderator's: services.record_totals_changed) renders the
totals and tab counts as they are now, out of band, into each of the seller's open pages."""
from flask import render_template

from .. import realtime
from .queries import seller_stats
from .services import TOTALS_CHANGED


def render_totals_event(event):
    return render_template("listings/_dashboard_totals.html", stats=seller_stats(event.user_id), oob=True)


def init_app(app):
    realtime.register_renderer(TOTALS_CHANGED, render_totals_event)
