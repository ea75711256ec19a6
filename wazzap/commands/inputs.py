"""
What a joined user's line asks for, as plain values: a command, a private
message or public text.

A listener turns its own grammar into one of these (the line listener's is
L{wazzap.listeners.line.grammar}) and hands it to
L{wazzap.commands.Commands.dispatch}, so every listener shares the commands
without sharing a grammar.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Invocation:
    """
    A command by name (lower case, an alias as typed) and the text after it.
    """

    name: str
    args: str


@dataclass(frozen=True)
class PrivateMessage:
    """
    Text for one person, named by nickname.
    """

    nickname: str
    text: str


@dataclass(frozen=True)
class PublicMessage:
    """
    Text for the room; text that shows nothing is refused with a notice.
    """

    text: str
