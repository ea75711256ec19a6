"""
The browser listener (C{--web}): one static page, and a WebSocket endpoint
on the same port over which the page speaks JSON with the chat.
"""
