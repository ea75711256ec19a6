"""
Who someone in the chat is, as a value: what the rooms, events and renderers
need to know of a person, held by their session rather than written onto
their connection.
"""

import itertools
import os
from dataclasses import dataclass

_session_numbers = itertools.count(1)


def new_session_key():
    """
    A key for a new session, unique in this process and, through the process
    id, across the processes that may one day share rooms: C{"<pid>.<n>"}.
    """
    return "%d.%d" % (os.getpid(), next(_session_numbers))


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
