"""
The IRC renderer: core events as the lines an IRC client reads.

Every line names its channel, since an IRC client shows each channel in a
window of its own: the outbox gives this renderer the room of every room
event (L{IrcRenderer.names_every_room}), so a line to a room is rendered
once and the same bytes go to every IRC member in it.  People are written
as C{nick!nick@HOST}, never with their address.  An IRC client shows what
it sent itself, so the copy of a private message its sender gets renders as
nothing.
"""

import time

from zope.interface import implementer

from wazzap.core import events
from wazzap.core.interfaces import IRenderer
from wazzap.listeners.irc import wire
from wazzap.listeners.line.render import PLAIN, presence_summary

#: The host part of every user's prefix: one for all, so no address shows.
USER_HOST = "wazzap"


def prefix(nickname):
    """
    How a user is named as the source of a message.
    """
    return ":%s!%s@%s" % (nickname, nickname, USER_HOST)


@implementer(IRenderer)
class IrcRenderer:
    """
    Events as IRC lines from C{server_name}, with mIRC colours or without.
    """

    #: Read by the outbox: give this renderer the room of every room event.
    names_every_room = True

    def __init__(self, server_name, nickname_of, colors=True):
        """
        @param nickname_of: session key -> its nickname or L{None} (the
            presence's C{nickname_of}), to address a notice to one person.
        """
        self.server_name = server_name
        self._nickname_of = nickname_of
        self.colors = colors

    def __repr__(self):
        return "<IrcRenderer %s>" % ("colored" if self.colors else "plain",)

    def _notice(self, target, text):
        return wire.lines(":%s NOTICE %s :" % (self.server_name, target), text)

    def _target(self, recipient, room):
        if room:
            return room
        return (recipient is not None and self._nickname_of(recipient)) or "*"

    def _color(self, text, color):
        return wire.colored(text, color) if self.colors else text

    def _event(self, event, recipient, room):
        kind = type(event)
        if kind is events.Said:
            return wire.lines(
                "%s PRIVMSG %s :" % (prefix(event.nickname), room),
                self._color(event.text, event.style),
            )
        if kind is events.Emoted:
            return wire.lines(
                "%s PRIVMSG %s :%s" % (prefix(event.nickname), room, wire.ACTION_START),
                event.action + wire.CTCP,
            )
        if kind is events.Private:
            if recipient == event.sender_key:
                return b""
            return wire.lines(
                "%s PRIVMSG %s :" % (prefix(event.sender), event.target),
                self._color(event.text, event.style),
            )
        if kind is events.Joined:
            return ("%s JOIN %s\r\n" % (prefix(event.nickname), event.room or room)).encode("utf-8")
        if kind is events.Left:
            if event.room:
                head = "%s PART %s" % (prefix(event.nickname), event.room)
            else:
                head = "%s QUIT" % (prefix(event.nickname),)
            return wire.lines(head, " :" + event.reason if event.reason else "")
        if kind is events.Renamed:
            return ("%s NICK :%s\r\n" % (prefix(event.old), event.new)).encode("utf-8")
        if kind is events.TopicSet:
            return wire.lines("%s TOPIC %s :" % (prefix(event.nickname), event.room), event.topic)
        if kind is events.PresenceSummary:
            return self._notice(
                self._target(recipient, room),
                presence_summary(event.joined, event.left, event.window_seconds),
            )
        if kind is events.History:
            return self._history(event, recipient)
        return self._notice(self._target(recipient, room), event.text)

    def _history(self, event, recipient):
        """
        A line of a room's history as a notice in its channel:
        C{[history 09:30] alice: hi}.
        """
        when = time.strftime("%Y-%m-%d %H:%M" if event.dated else "%H:%M", time.gmtime(event.at))
        told = event.event
        kind = type(told)
        if kind is events.Said:
            what = "%s: %s" % (told.nickname, told.text)
        elif kind is events.Emoted:
            what = "* %s %s" % (told.nickname, told.action)
        else:
            what = _plain_words(told)
        return self._notice(event.room, "[history %s] %s" % (when, what))

    def render(self, batch, recipient, room=None):
        if len(batch) == 1:
            return self._event(batch[0], recipient, room)
        return b"".join([self._event(event, recipient, room) for event in batch])


def _plain_words(event):
    """
    What the line listener says of an event other than a message, without
    its C{[Server]} tag.
    """
    return PLAIN.render((event,), None).decode("utf-8").rstrip("\r\n").partition(" ")[2]
