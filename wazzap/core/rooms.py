"""
What a room name and a topic may be, and the limits on rooms: the rules the
chat and the room commands share, apart from any room.
"""

import re

#: The room everybody is in on arriving, and back in after parting the last.
LOBBY = "#lobby"

#: Rooms one person may be in at once, and rooms the server holds, by default
#: (--max-rooms-per-user, --max-rooms).
MAX_ROOMS_PER_USER = 10
MAX_ROOMS = 1000

#: The longest topic, in UTF-8 bytes: what fits in a line after its prefix.
MAX_TOPIC_BYTES = 390

MAX_ROOM_NAME_CHARACTERS = 30
_ROOM_NAME = re.compile(r"#[A-Za-z0-9_-]{1,%d}\Z" % (MAX_ROOM_NAME_CHARACTERS,))


def room_name_problem(name):
    """
    Why C{name} cannot name a room, or L{None}.
    """
    if _ROOM_NAME.match(name):
        return None
    if len(name) > MAX_ROOM_NAME_CHARACTERS + 1:
        name = name[: MAX_ROOM_NAME_CHARACTERS + 1] + "..."
    return (
        "%r is not a room name: a room is # and 1 to %d letters, digits, _ or -, like #maths"
        % (name, MAX_ROOM_NAME_CHARACTERS)
    )


def room_key(name):
    """
    C{name} as compared: room names are unique ignoring case.
    """
    return name.lower()


def as_room_name(name):
    """
    C{name} with its C{#}, for an operator who may leave it out.
    """
    return name if name.startswith("#") else "#" + name


def topic_problem(topic):
    """
    Why C{topic} cannot be a topic, or L{None}.
    """
    size = len(topic.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        return "that topic is %d bytes: at most %d fit" % (size, MAX_TOPIC_BYTES)
    return None


def others_in(room, member, most, more_hint):
    """
    Who else is in C{room}: at most C{most} names, then how many more and
    C{more_hint} (the command that lists them), so that joining a room of
    thousands costs no more than joining a small one.
    """
    others = len(room) - 1
    if not others:
        return "You are the first one here."
    names = room.some_nicknames(most, member.session_key)
    if others > len(names):
        return "Also here: %s and %d more (%s)." % (", ".join(names), others - len(names), more_hint)
    return "Also here: %s." % (", ".join(names),)
