"""
What happens in the chat, as plain data: frozen values that rooms publish,
renderers turn into bytes, and a bus may carry between processes as JSON.

Colours are names (C{"red"}), never terminal codes: each renderer decides
what a colour looks like.  An event names people by nickname as it was when
the event happened, so rendering it later needs nothing else.
"""

import json
from dataclasses import dataclass, fields
from operator import attrgetter


@dataclass(frozen=True, slots=True)
class Said:
    """
    A public message; C{style} is the colour name it was sent in with
    C{/color}, or C{""}.
    """

    nickname: str
    color: str | None
    text: str
    style: str = ""


@dataclass(frozen=True, slots=True)
class Emoted:
    """
    A C{/me} action: C{* alice waves}.
    """

    nickname: str
    color: str | None
    action: str


@dataclass(frozen=True, slots=True)
class Joined:
    """
    Someone came in: to the chat, or (with C{room}) to one more room.
    """

    nickname: str
    room: str = ""


@dataclass(frozen=True, slots=True)
class Left:
    """
    Someone left: the chat, or (with C{room}) one room; C{reason} is shown
    when there is one.
    """

    nickname: str
    reason: str | None = None
    room: str = ""


@dataclass(frozen=True, slots=True)
class Renamed:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class TopicSet:
    """
    C{nickname} gave C{room} the topic C{topic}, or cleared it (C{""}): an
    event of its own, so that each listener says it its own way (an IRC
    client shows it in its topic bar).
    """

    nickname: str
    room: str
    topic: str


@dataclass(frozen=True, slots=True)
class PresenceSummary:
    """
    How many joined and left over a window in which they were too many to
    announce one by one.
    """

    joined: int
    left: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class Notice:
    """
    A notice from the server itself, to a room or to one person.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Announcement:
    """
    A notice from the server to everybody online, whatever their rooms.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Private:
    """
    A private message, sent to both ends: the sender sees it as sent to
    C{target}, the target as received from C{sender} (the renderer tells the
    two apart by the recipient's session key).
    """

    sender: str
    sender_key: str
    target: str
    text: str
    style: str = ""


@dataclass(frozen=True, slots=True)
class History:
    """
    A room's C{event} as it was stored at C{at} (unix seconds), told again
    later (a replay, C{/history}): C{dated} when it happened on another day
    than the one it is told on, so the time alone would mislead.
    """

    room: str
    at: float
    dated: bool
    event: object


#: Every kind of event, by the name L{to_json} records.
EVENT_TYPES = {
    cls.__name__: cls
    for cls in (
        Said, Emoted, Joined, Left, Renamed, TopicSet, PresenceSummary, Notice, Announcement,
        Private, History,
    )
}


def to_json(event):
    """
    C{event} as a JSON object with its type under C{"type"}.
    """
    return json.dumps(_record(event), ensure_ascii=False, separators=(",", ":"))


def _record(event):
    # Field by field rather than asdict, which deep-copies every value: the
    # history writer encodes each line a room publishes.
    record = {field.name: getattr(event, field.name) for field in fields(event)}
    if type(event) is History:
        record["event"] = _record(event.event)
    record["type"] = type(event).__name__
    return record


def _field_getter(cls):
    names = [field.name for field in fields(cls)]
    if len(names) == 1:
        (name,) = names
        get = attrgetter(name)
        return lambda event: (get(event),)
    return attrgetter(*names)


_PACKERS = {cls: (name, _field_getter(cls)) for name, cls in EVENT_TYPES.items()}


def pack(event):
    """
    C{event} as a short tuple, its type's name then its fields in order:
    the compact form room history stores, cheaper to make than L{to_json}.
    """
    name, values = _PACKERS[type(event)]
    return (name,) + values(event)


def unpack(values):
    """
    The event that L{pack} gave C{values} for (as a tuple, or a list after
    a trip through JSON); L{ValueError} for anything else.
    """
    if not isinstance(values, (list, tuple)) or not values:
        raise ValueError("a packed event is a list")
    cls = EVENT_TYPES.get(values[0]) if isinstance(values[0], str) else None
    if cls is None or cls is History:
        raise ValueError("not a packed event: %r" % (values,))
    try:
        return cls(*values[1:])
    except TypeError as e:
        raise ValueError("not a packed event: %s" % (e,)) from None


def from_json(data):
    """
    The event that L{to_json} gave C{data} for; L{ValueError} for anything
    else, so a bad message from another process is refused, not half-read.
    """
    return _event(json.loads(data), data)


def _event(record, data):
    if not isinstance(record, dict):
        raise ValueError("an event is a JSON object")
    cls = EVENT_TYPES.get(record.pop("type", None))
    if cls is None or set(record) - {field.name for field in fields(cls)}:
        raise ValueError("not an event: %r" % (data,))
    if cls is History and "event" in record:
        record["event"] = _event(record["event"], data)
    try:
        return cls(**record)
    except TypeError as e:
        raise ValueError("not an event: %s" % (e,)) from None
