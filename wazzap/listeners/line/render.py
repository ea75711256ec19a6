"""
The line renderer: events as the text lines nc, telnet and the wazzap client
show, with ANSI colours (L{COLORED}) or without (L{PLAIN}, for C{/colors off}).

Colours arrive as names; this is the one place that knows what a name looks
like on a terminal.  Everything a user typed was sanitised before it became
an event, so the only controls in the output are the colours added here.
"""

import time

from colorama import Fore, Style
from zope.interface import implementer

from wazzap.core import events
from wazzap.core.interfaces import IRenderer

#: Each colour name of L{wazzap.text.USER_PALETTE} and
#: L{wazzap.text.NAMED_COLORS} as ANSI.
ANSI_COLORS = {
    "red": Fore.RED,
    "green": Fore.GREEN,
    "yellow": Fore.YELLOW,
    "blue": Fore.BLUE,
    "magenta": Fore.MAGENTA,
    "cyan": Fore.CYAN,
    "white": Fore.WHITE,
    "lightred": Fore.LIGHTRED_EX,
    "lightgreen": Fore.LIGHTGREEN_EX,
    "lightblue": Fore.LIGHTBLUE_EX,
    "lightcyan": Fore.LIGHTCYAN_EX,
}
SERVER_STYLE = Style.BRIGHT + Fore.YELLOW
PRIVATE_STYLE = Style.BRIGHT + Fore.MAGENTA
#: Lines told again from a room's history, which are not live.
HISTORY_STYLE = Style.DIM
RESET = Style.RESET_ALL


def _people(count):
    return "1 person" if count == 1 else "%d people" % (count,)


def presence_summary(joined, left, window_seconds):
    """
    C{"12 people joined, 11 left in the last 10 s"}, leaving out a zero.
    """
    if joined and left:
        what = "%s joined, %d left" % (_people(joined), left)
    else:
        what = "%s joined" % (_people(joined),) if joined else "%s left" % (_people(left),)
    return "%s in the last %d s" % (what, window_seconds)


def _notice_text(event):
    """
    The words of an event the server announces as C{[Server] ...}.
    """
    kind = type(event)
    if kind is events.Notice or kind is events.Announcement:
        return event.text
    if kind is events.Joined:
        return "%s joined %s" % (event.nickname, event.room or "the chat")
    if kind is events.Left:
        where = event.room or "the chat"
        if event.reason:
            return "%s left %s (%s)" % (event.nickname, where, event.reason)
        return "%s left %s" % (event.nickname, where)
    if kind is events.Renamed:
        return "%s is now known as %s" % (event.old, event.new)
    if kind is events.TopicSet:
        if event.topic:
            return "%s set the topic of %s: %s" % (event.nickname, event.room, event.topic)
        return "%s cleared the topic of %s" % (event.nickname, event.room)
    if kind is events.PresenceSummary:
        return presence_summary(event.joined, event.left, event.window_seconds)
    raise TypeError("no line for %r" % (event,))


@implementer(IRenderer)
class LineRenderer:
    """
    Events as CRLF-terminated UTF-8 lines, in colour or plain.
    """

    def __init__(self, colors):
        self.colors = colors

    def __repr__(self):
        return "<LineRenderer %s>" % ("colored" if self.colors else "plain",)

    def _styled(self, style, text):
        return style + text + RESET if style and self.colors else text

    def _line(self, event, recipient):
        kind = type(event)
        if kind is events.Said:
            if self.colors:
                return "%s: %s\r\n" % (
                    self._styled(ANSI_COLORS.get(event.color, ""), event.nickname),
                    self._styled(ANSI_COLORS.get(event.style, ""), event.text),
                )
            return "%s: %s\r\n" % (event.nickname, event.text)
        if kind is events.Emoted:
            return "* %s %s\r\n" % (
                self._styled(ANSI_COLORS.get(event.color, ""), event.nickname),
                event.action,
            )
        if kind is events.History:
            return self._history_line(event, recipient)
        if kind is events.Private:
            if recipient == event.sender_key:
                tag = "[PM to %s]" % (event.target,)
            else:
                tag = "[PM from %s]" % (event.sender,)
            return "%s %s\r\n" % (
                self._styled(PRIVATE_STYLE, tag),
                self._styled(ANSI_COLORS.get(event.style, ""), event.text),
            )
        return "%s %s\r\n" % (self._styled(SERVER_STYLE, "[Server]"), _notice_text(event))

    def _history_line(self, event, recipient):
        """
        C{[history #room 09:30] alice: hi}, dimmed, and in plain text within:
        its own colours would end the dimming part-way.
        """
        when = time.strftime(
            "%Y-%m-%d %H:%M" if event.dated else "%H:%M", time.gmtime(event.at)
        )
        line = "[history %s %s] %s" % (
            event.room, when, PLAIN._line(event.event, recipient)[:-2]
        )
        return self._styled(HISTORY_STYLE, line) + "\r\n"

    def render(self, batch, recipient, room=None):
        line = self._line
        if room is not None:
            lines = [_in_room(room, event, line(event, recipient)) for event in batch]
            return "".join(lines).encode("utf-8")
        if len(batch) == 1:
            return line(batch[0], recipient).encode("utf-8")
        return "".join([line(event, recipient) for event in batch]).encode("utf-8")


_HEARD_ONCE = (events.Renamed, events.Announcement)


def _in_room(room, event, line):
    """
    C{line} marked as from C{room}; but what is heard once, whichever room
    carried it (someone leaving the chat or changing nickname, a notice to
    everybody), is unmarked.
    """
    kind = type(event)
    if kind in _HEARD_ONCE or (kind is events.Left and not event.room):
        return line
    return "[%s] %s" % (room, line)


COLORED = LineRenderer(colors=True)
PLAIN = LineRenderer(colors=False)
