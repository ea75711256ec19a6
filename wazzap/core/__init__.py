"""
The chat itself, apart from any connection: who someone is (identity),
what happens (events, as plain data), rooms, the directory of who is
online, consent, admission and the per-turn outbox.  It knows no sockets
and of Twisted only the clock (C{IReactorTime}).
"""
