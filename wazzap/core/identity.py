"""
Who someone in the chat is, as a value: what the rooms, events and renderers
need to know of a person, held by their session rather than written onto
their connection.
"""

import itertools
import os
import secrets
from dataclasses import dataclass

_session_numbers = itertools.count(1)
_process = (None, None)  # (pid, id) of this process, made at its first session


def process_id():
    """
    A name for this process, unique among the processes (on any machine)
    that share rooms: random, and made anew in a forked child.
    """
    global _process
    pid = os.getpid()
    if _process[0] != pid:
        _process = (pid, secrets.token_hex(4))
    return _process[1]


def new_session_key():
    """
    A key for a new session, unique in this process and, through the
    process's id, across the processes that share rooms:
    C{"<process id>.<n>"}.
    """
    return "%s.%d" % (process_id(), next(_session_numbers))


def process_of(session_key):
    """
    The id of the process whose session C{session_key} is.
    """
    return session_key.partition(".")[0]


@dataclass(frozen=True, slots=True)
class Identity:
    """
    A person in the chat: C{nickname} as typed, the C{account} it is logged
    in to (or L{None}), whether that account is an admin's, the colour
    I{name} of the nickname (see L{wazzap.listeners.line.render}) and the
    address it connects from, shown to admins.
    """

    nickname: str
    account: str | None = None
    is_admin: bool = False
    color: str | None = None
    address: str | None = None
