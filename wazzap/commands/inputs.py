"""
What a joined user's line asks for, as plain values: a command, a private
message or public text.

A listener turns its own grammar into one of these (the line listener's is
L{wazzap.listeners.line.grammar}) and hands it to
L{wazzap.commands.Commands.dispatch}, so every listener shares the commands
without sharing a grammar.

They are made for every line, so they are plain dataclasses: a frozen one
costs twice as much to make, a few per cent of a public line's path.
"""

from dataclasses import dataclass


@dataclass
class Invocation:
    """
    A command by name (lower case, an alias as typed) and the text after it.
    """

    name: str
    args: str


@dataclass
class PrivateMessage:
    """
    Text for one person, named by nickname.
    """

    nickname: str
    text: str


@dataclass
class PublicMessage:
    """
    Text for the room; text that shows nothing is refused with a notice.
    """

    text: str
