"""Jinja filters and globals shared by every template."""
from datetime import datetime

from flask_wtf.csrf import generate_csrf

from .models_base import utcnow


def rupees(amount):
    """Indian digit grouping: 125000 -> ₹1,25,000."""
    if amount is None:
        return ""
    amount = int(amount)
    sign, digits = ("-", str(-amount)) if amount < 0 else ("", str(amount))
    if len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        digits = ",".join(groups + [tail])
    return f"{sign}₹{digits}"


def timeago(moment, now=None):
    if moment is None:
        return ""
    seconds = int(((now or utcnow()) - moment).total_seconds())
    if seconds < 45:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{max(minutes, 1)} min ago"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h ago"
    days = hours // 24
    if days < 7:
        return f"{days} d ago"
    return moment.strftime("%-d %b %Y")


def isoformat(moment):
    return moment.isoformat(timespec="seconds") + "Z" if isinstance(moment, datetime) else ""


def init_app(app):
    app.jinja_env.filters.update(rupees=rupees, timeago=timeago, isoformat=isoformat)
    app.jinja_env.globals.update(csrf_token=generate_csrf)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
