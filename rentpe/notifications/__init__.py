"""Reaching the person who is away: missed-message e-mail (see models.py and worker.py),
preferences and one-click unsubscribe (routes.py), the mail itself (mail.py)."""
