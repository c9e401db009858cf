"""Event boards: group conversations for one event (a buyer, co-organisers and several sellers).

A board is a `Conversation` of kind `group` and uses chat's rows, services and delivery contract
as they are: messages go through `chat.services.send_message` (client keys, body rules, per-board
order, one durable event per current member, publish after commit), reads through `mark_read`,
history, typing and the stream through the same routes and the same guard. This package adds what
only boards have: creating one, its members and their roles, renaming and closing it, the owner
removing messages, and the fragments of the board page.

Membership is the one rule everything depends on: only current members are participants (see
`chat.models`), and every membership change takes the board's row lock, the lock a send takes.
"""
