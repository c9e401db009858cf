"""Chat: private buyer–seller conversations, live over `realtime`.

Depends on accounts and listings (a message can carry a listing card) and on `realtime` for
delivery; nothing below it imports chat.

Private conversations and boards (`chat.boards`) are two kinds over one conversation core: the
modules here hold the rows, the guard, sending, reads, receipts, hiding and the stream's renderers
for both kinds; boards add what only boards have, above them. Imports only go up that order
(models, queries, services, hiding, events, routes, then boards), never in a circle: where the
core needs a board's own page it looks it up by kind (`routes.PAGES`). `.importlinter` checks it.
"""
