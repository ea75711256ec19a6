"""
The browser renderer: events as JSON objects, one a line (newline-delimited
JSON), so the bytes of a batch are those of its events one after another
and one WebSocket message carries a whole turn.

Text stays text: the page inserts every field as a text node, never as
HTML, so nothing here escapes for markup.
"""

import json
from dataclasses import fields

from zope.interface import implementer

from wazzap.core import events
from wazzap.core.interfaces import IRenderer

#: The JSON "type" of each kind of event.
TYPES = {
    events.Said: "said",
    events.Emoted: "emoted",
    events.Joined: "joined",
    events.Left: "left",
    events.Renamed: "renamed",
    events.TopicSet: "topic",
    events.PresenceSummary: "presence",
    events.Notice: "notice",
    events.Announcement: "announcement",
    events.Private: "private",
    events.History: "history",
}


def record(event, recipient):
    """
    C{event} as the JSON object the page reads, for the session C{recipient}.
    """
    kind = type(event)
    if kind is events.Private:
        # The page needs whom it is with and which way it went, not the
        # sender's session key.
        sent = recipient == event.sender_key
        return {
            "type": "private",
            "direction": "to" if sent else "from",
            "nickname": event.target if sent else event.sender,
            "text": event.text,
            "style": event.style,
        }
    result = {"type": TYPES[kind]}
    for field in fields(event):
        result[field.name] = getattr(event, field.name)
    if kind is events.History:
        result["event"] = record(event.event, recipient)
    return result


def encode(message):
    """
    One JSON object as a line of UTF-8.
    """
    return (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


@implementer(IRenderer)
class JsonRenderer:
    """
    Events as newline-delimited JSON objects.
    """

    def __repr__(self):
        return "<JsonRenderer>"

    def render(self, batch, recipient, room=None):
        parts = []
        for event in batch:
            message = record(event, recipient)
            if room is not None:
                message["from_room"] = room
            parts.append(encode(message))
        return b"".join(parts)


JSON = JsonRenderer()
