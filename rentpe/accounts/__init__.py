"""Accounts: sign-up, log-in, seller profiles, roles. Depends only on `realtime` and the core."""
