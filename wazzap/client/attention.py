"""
What makes a line stand out on the interactive client: a line that mentions
the user's nickname, and every private message, is highlighted (reverse
video) and rings the terminal's bell (C{--bell mentions|all|off}); and
C{--timestamps} puts the time before every line.

Screens here wrap another screen (anything with C{show(text)}), so the pipe
client can have timestamps without the rest.
"""

import re
import time

from wazzap.text import strip_styles

BELL_MODES = ("mentions", "all", "off")
DEFAULT_BELL = "mentions"

#: Reverse video, and its end; a colour reset inside the line ends it too,
#: so it is put back after each.
HIGHLIGHT = "\x1b[7m"
HIGHLIGHT_END = "\x1b[27m"
RESET = "\x1b[0m"

# What kind of line it is.
PRIVATE = "private"
MENTION = "mention"
MESSAGE = "message"

_NICKNAME = r"[A-Za-z0-9_-]{1,16}"
_IN_ROOM = re.compile(r"\[#[A-Za-z0-9_-]{1,30}\] ")
_FROM_SOMEONE = re.compile(
    r"(?:\[PM from (?P<private>%s)\] |\* (?P<actor>%s) |(?P<speaker>%s): )(?P<text>.*)\Z"
    % ((_NICKNAME,) * 3),
    re.DOTALL,
)


def mentions(text, nickname):
    """
    Whether C{text} has C{nickname} as a word of its own, ignoring case:
    C{@carol}, C{carol:} and C{Carol!} do, C{carolyn} does not.
    """
    return re.search(r"(?<![\w-])%s(?![\w-])" % (re.escape(nickname),), text, re.I) is not None


def kind_of(plain, me):
    """
    L{PRIVATE}, L{MENTION} or L{MESSAGE} for a line someone else sent (C{me}
    the user's nickname, or L{None} before joining); L{None} for the server's
    lines and the user's own.
    """
    plain = _IN_ROOM.sub("", plain, count=1)
    match = _FROM_SOMEONE.match(plain)
    if match is None:
        return None
    if match.group("private"):
        return PRIVATE
    sender = match.group("actor") or match.group("speaker")
    if me is None:
        return MESSAGE
    if sender.lower() == me.lower():
        return None
    return MENTION if mentions(match.group("text"), me) else MESSAGE


def highlighted(line):
    """
    C{line} in reverse video, its colours kept.
    """
    return HIGHLIGHT + line.replace(RESET, RESET + HIGHLIGHT) + HIGHLIGHT_END


class Attention:
    """
    A screen that highlights mentions and private messages and rings the
    bell as C{bell} says.
    """

    def __init__(self, screen, ring, me, bell=DEFAULT_BELL):
        """
        @param ring: rings the terminal's bell.
        @param me: returns the user's nickname, or L{None} before joining.
        """
        self._screen = screen
        self._ring = ring
        self._me = me
        self._bell = bell

    def show(self, text):
        kind = kind_of(strip_styles(text), self._me())
        if kind in (PRIVATE, MENTION):
            text = highlighted(text)
        self._screen.show(text)
        if kind is not None and self._rings_for(kind):
            self._ring()

    def _rings_for(self, kind):
        if self._bell == "all":
            return True
        return self._bell == "mentions" and kind in (PRIVATE, MENTION)


class Timestamped:
    """
    A screen that puts the local time (hours and minutes) before each line.
    """

    def __init__(self, screen, clock):
        self._screen = screen
        self._clock = clock

    def show(self, text):
        self._screen.show(time.strftime("%H:%M ", time.localtime(self._clock.seconds())) + text)
