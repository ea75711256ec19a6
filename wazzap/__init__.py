"""
wazzap: a chat server for the terminal, on Twisted.

A regular package (not a namespace package), so that a stale installed copy
cannot keep modules importable that this checkout deleted.
"""

__version__ = "0.2.0"
