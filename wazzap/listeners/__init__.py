"""
The ways in: each listener is a connection class plus a renderer that turns
core events into the bytes its clients read.
"""
