"""Chat: private buyer–seller conversations, live over `realtime`.

Depends on accounts and listings (a message can carry a listing card) and on `realtime` for
delivery; nothing below it imports chat.
"""
