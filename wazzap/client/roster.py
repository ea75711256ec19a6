"""
What the interactive client knows of the chat, for completion and the prompt:
who is online, the rooms, the commands, and the user's own nickname and room.

All of it is read from the lines the server sends anyway; the server has no
mode for clients.  Once joined, the client asks C{/who}, C{/rooms} and
C{/help} and hides those three answers (answers come in the order asked, so
the first of each kind after asking is the client's).  In between it learns
from what passes: joins, leaves and renames, everyone who speaks, and the
answers to C{/who}, C{/names}, C{/rooms} and C{/help} the user asks for.

Join notices reach only a room's members, so it asks C{/who} and C{/rooms}
again now and then: after the user sends a public line, at most every
L{ASK_AGAIN_SECONDS}.  Only then, because a line the client slipped in at
any moment could land as the answer to a password prompt the user's last
command has just opened (C{/register}); public text opens none.  Names it
learns late or keeps too long only make a completion miss.
"""

import re
from collections import deque

LOBBY = "#lobby"
#: The client's own questions, asked once joined, each hidden from the user.
QUESTIONS = ("/who", "/rooms", "/help")
#: What it asks again, and how often at most.
AGAIN = ("/who", "/rooms")
ASK_AGAIN_SECONDS = 60

_NICKNAME = r"[A-Za-z0-9_-]{1,16}"
_ROOM = r"#[A-Za-z0-9_-]{1,30}"
_SERVER = "[Server] "

_IN_ROOM = re.compile(r"\[(%s)\] (.*)\Z" % (_ROOM,), re.DOTALL)
_WELCOME = re.compile(r"Welcome, (%s)!" % (_NICKNAME,))
_WHO = re.compile(r"\d+ online: (.*)\Z")
_WHO_ENTRY = re.compile(r"(%s)(?: \(([^)]*)\))?\Z" % (_NICKNAME,))
_ROOMS = re.compile(r"(\d+) rooms?:\Z")
_ROOMS_ENTRY = re.compile(r"  (%s) \(\d+\)" % (_ROOM,))
_HELP = "Commands (type /help COMMAND for more):"
_HELP_ENTRY = re.compile(r"  (\S.*)\Z")
_HELP_END = "Anything else goes to everyone in the room."
_COMMAND = re.compile(r"/([a-z]+)")
_NAMES = re.compile(r"(%s), \d+: (.*)\Z" % (_ROOM,))
_JOINED = re.compile(r"(%s) joined (?:the chat|(%s))\Z" % (_NICKNAME, _ROOM))
_LEFT_THE_CHAT = re.compile(r"(%s) left the chat(?: |\Z)" % (_NICKNAME,))
_RENAMED = re.compile(r"(%s) is now known as (%s)\Z" % (_NICKNAME, _NICKNAME))
_TALKING_IN = re.compile(r"(?:you joined (%s)\.|(?:you left %s; )?you are talking in (%s)\Z)"
                         % (_ROOM, _ROOM, _ROOM))
#: A registered user's login, back in the rooms they left from.
_BACK_IN = re.compile(r"you are back in (%s(?:, %s)*); you talk in (%s)\Z" % ((_ROOM,) * 3))
_SPEAKER = re.compile(r"(?:\[PM from (%s)\] |\* (%s) |(%s): )" % ((_NICKNAME,) * 3))


def _key(name):
    return name.lower()


class Roster:
    """
    Names learned from the server's lines (colours stripped), spelt as the
    server spells them and unique ignoring case, as the server has them.
    """

    def __init__(self, clock, on_change=lambda: None):
        """
        @param clock: an L{IReactorTime}, to ask again only now and then.
        @param on_change: called when the user's nickname or room changes,
            so the prompt can show them.
        """
        self._clock = clock
        self._asked_at = None
        self.me = None
        self.room = LOBBY
        self._nicknames = {}
        self._rooms = {_key(LOBBY): LOBBY}
        self._commands = set()
        self._on_change = on_change
        #: The kinds of the client's questions not answered yet, in order.
        self._asked = deque()
        #: The multi-line answer being read: its kind, whether it is hidden,
        #: what it has gathered, and (for /rooms) how many lines are to come.
        self._reading = None

    @property
    def nicknames(self):
        """
        Everyone known to be online but the user, sorted ignoring case.
        """
        me = _key(self.me or "")
        return sorted((name for key, name in self._nicknames.items() if key != me), key=_key)

    @property
    def rooms(self):
        return sorted(self._rooms.values(), key=_key)

    @property
    def commands(self):
        return sorted(self._commands)

    def ask(self):
        """
        The lines to send once joined, whose answers L{hear} will hide.
        """
        return self._questions(QUESTIONS)

    def ask_again(self):
        """
        The lines to send after a public line, if it is time to ask again.
        """
        if self._asked_at is None or self._clock.seconds() - self._asked_at < ASK_AGAIN_SECONDS:
            return []
        return self._questions(AGAIN)

    def _questions(self, questions):
        self._asked_at = self._clock.seconds()
        self._asked.extend(questions)
        return list(questions)

    def hear(self, plain):
        """
        Learn from one line of the server; return whether it answers one of
        the client's own questions, and so is not for the user to see.
        """
        if self._reading is not None:
            hidden = self._read_on(plain)
            if hidden is not None:
                return hidden
        match = _IN_ROOM.match(plain)
        if match is not None:
            room, plain = match.groups()
            self._add_room(room)
        if plain.startswith(_SERVER):
            return self._notice(plain[len(_SERVER):])
        match = _SPEAKER.match(plain)
        if match is not None:
            self._add_nickname(next(name for name in match.groups() if name))
        return False

    def _notice(self, words):
        match = _WHO.match(words)
        if match is not None:
            self._who(match.group(1))
            return self._answered("/who")
        match = _ROOMS.match(words)
        if match is not None:
            return self._start_reading("/rooms", int(match.group(1)))
        if words == _HELP:
            return self._start_reading("/help", None)
        self._learn(words)
        return False

    def _learn(self, words):
        """
        Keep up with a notice that is no answer to a question.
        """
        match = _JOINED.match(words)
        if match is not None:
            self._add_nickname(match.group(1))
            if match.group(2):
                self._add_room(match.group(2))
            return
        match = _LEFT_THE_CHAT.match(words)
        if match is not None:
            self._nicknames.pop(_key(match.group(1)), None)
            return
        match = _RENAMED.match(words)
        if match is not None:
            self._renamed(*match.groups())
            return
        match = _TALKING_IN.match(words)
        if match is not None:
            self._talk_in(match.group(1) or match.group(2))
            return
        match = _BACK_IN.match(words)
        if match is not None:
            for room in match.group(1).split(", "):
                self._add_room(room)
            self._talk_in(match.group(2))
            return
        match = _NAMES.match(words)
        if match is not None:
            self._add_room(match.group(1))
            for nickname in match.group(2).split(", "):
                self._add_nickname(nickname)
            return
        match = _WELCOME.match(words)
        if match is not None:
            self.me = match.group(1)
            self._add_nickname(self.me)
            self._on_change()

    def _answered(self, kind):
        """
        Whether this answer is the one to the client's oldest question.
        """
        if self._asked and self._asked[0] == kind:
            self._asked.popleft()
            return True
        return False

    def _start_reading(self, kind, count):
        self._reading = [kind, self._answered(kind), [], count]
        if count == 0:
            return self._finish_reading()
        return self._reading[1]

    def _read_on(self, plain):
        """
        Take a line of the answer being read; L{None} if it is none of it.
        """
        kind, hidden, gathered, count = self._reading
        if not plain.startswith(_SERVER):
            return None
        words = plain[len(_SERVER):]
        if kind == "/rooms":
            match = _ROOMS_ENTRY.match(words)
            if match is None:
                return None
            gathered.append(match.group(1))
            self._reading[3] = count - 1
            if count == 1:
                return self._finish_reading()
            return hidden
        if words == _HELP_END:
            return self._finish_reading()
        match = _HELP_ENTRY.match(words)
        if match is None:
            return None
        summary = match.group(1)
        if summary.startswith("/"):
            usage, _, rest = summary.partition(" -- ")
            also = rest.rpartition("(also ")[2] if "(also " in rest else ""
            gathered.extend(_COMMAND.findall(usage.split(" ", 1)[0] + " " + also))
        return hidden

    def _finish_reading(self):
        kind, hidden, gathered, _ = self._reading
        self._reading = None
        if kind == "/rooms":
            self._rooms = {_key(name): name for name in gathered}
            self._add_room(self.room)
        else:
            self._commands = set(gathered)
        return hidden

    def _who(self, entries):
        self._nicknames = {}
        for entry in _split_who(entries):
            match = _WHO_ENTRY.match(entry)
            if match is None:
                continue
            nickname, rooms = match.groups()
            self._add_nickname(nickname)
            for room in (rooms or "").split(", "):
                if room:
                    self._add_room(room)
        if self.me:
            self._add_nickname(self.me)

    def _renamed(self, old, new):
        self._nicknames.pop(_key(old), None)
        self._add_nickname(new)
        if self.me is not None and _key(old) == _key(self.me):
            self.me = new
            self._on_change()

    def _talk_in(self, room):
        self._add_room(room)
        self.room = room
        self._on_change()

    def _add_nickname(self, nickname):
        self._nicknames[_key(nickname)] = nickname

    def _add_room(self, room):
        self._rooms[_key(room)] = room


def _split_who(entries):
    """
    The entries of a C{/who} answer: C{alice (#lobby, #maths), carol} has two,
    though its commas are three.
    """
    return re.findall(r"%s(?: \([^)]*\))?" % (_NICKNAME,), entries)
