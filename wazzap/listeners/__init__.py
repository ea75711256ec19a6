"""
The ways in: each listener is a connection class plus a renderer that turns
core events into the bytes its clients read (L{line}, L{irc}); what their
connections share once someone logs in (the session API of the commands,
the login-history record) is L{session_user}.
"""
