"""
What a member is told from the history of rooms (L{wazzap.persist.history}):
a room's last lines on joining it, what was said since they left when a
registered user comes back, and C{/history}'s pages.

Each line is told as a L{wazzap.core.events.History} event, and a replay or
"since you left" ends with L{NOW}, so that what follows is live.  A room's
history only goes to its members, who are in it when they are told.

A crowd joining a room at once (a restart, a reconnecting network) is told
the same replay: it is made and rendered once, and shared by everyone who
joins the room in that turn while its tail is the same.
"""

from weakref import WeakValueDictionary

from twisted.internet import defer
from twisted.logger import Logger

from wazzap.core import events
from wazzap.core.outbox import Told
from wazzap.core.rooms import LOBBY, room_key
from wazzap.failures import log_failure

log = Logger()

#: Lines of its history a room replays to someone joining it (--replay).
REPLAY_LINES = 20
#: The line between history and what is said from then on.
NOW = "--- now ---"
#: Lines of each room told to someone coming back; past that a line says
#: how many more there were.
SINCE_LEFT_LINES = 100
#: What /history shows by default, and at most.
HISTORY_LINES = 50
MAX_HISTORY_LINES = 1000
#: Lines of /history given at once, and the pause before the next: each
#: page is one write to the member's output queue, whose limits apply to
#: it as to any output, and a slow reader gets time between them.
HISTORY_PAGE_LINES = 50
HISTORY_PAGE_SECONDS = 0.05
DAY = 24 * 60 * 60


class _Replay(Told):
    """
    A room's replay, known by the C{span} of lines it tells: (the first
    and last line's ids, the day it is told on).
    """

    __slots__ = ("span",)


class Replay:
    """
    The history of a L{wazzap.chat.Chat}'s rooms as its members are told it.
    """

    def __init__(self, chat, history, clock, lines):
        """
        @param history: the L{wazzap.persist.history.HistoryLog} of the chat.
        @param lines: how many lines joining a room replays (--replay; 0: none).
        """
        self._chat = chat
        self.history = history
        self._clock = clock
        self.lines = lines
        # session key -> the last line before it joined the chat, until
        # its welcome: what it hears from then on reaches it live.
        self._arrivals = {}
        # room name -> the replay being told to its newcomers, until the
        # outbox has handed it to all of them (weakly held: no more).
        self._replays = WeakValueDictionary()
        # session key -> the room it is entering that was not heard here.
        self._unheard = {}

    def arriving(self, session_key, unheard=None):
        """
        The session is about to join the chat or a room: what is published
        from now on reaches it live.  C{unheard} names a room it joins whose
        lines this process did not hear (its people were all elsewhere).
        """
        self._arrivals[session_key] = self.history.mark()
        if unheard is not None:
            self._unheard[session_key] = unheard

    def entered(self, member, room):
        """
        C{member} just joined C{room} (and was told so): replay the last of
        the lines it did not hear.
        """
        up_to = self._arrivals.pop(member.session_key, self.history.mark())
        if self._unheard.pop(member.session_key, None) != room.name:
            self._replay(member, room, up_to)
        elif self.lines:
            read = self.history.read([(room.name, self.lines, 0, None)])
            read.addCallback(self._read_elsewhere, member, room)
            read.addErrback(log_failure, log, "replaying %s" % (room.name,))

    def _read_elsewhere(self, results, member, room):
        (_, lines), = results
        self.history.refill(room.name, lines)
        if lines and member in room:
            self._tell(member, room, lines)

    def _replay(self, member, room, up_to):
        lines = self.history.tail(room.name, up_to, self.lines)
        if lines:
            self._tell(member, room, lines)

    def _tell(self, member, room, lines):
        """
        Tell C{member} the replay of C{lines} of C{room}, shared with
        whoever joins it with the same lines today.
        """
        today = self._clock.seconds() // DAY
        span = (lines[0][0], lines[-1][0], today)
        replay = self._replays.get(room.name)
        if replay is None or replay.span != span:
            replay = self._replays[room.name] = _Replay(_told(lines, today))
            replay.span = span
        chat = self._chat
        chat.outbox.direct(member, replay)
        # Its own: a notice addressed to one person may name them (IRC).
        chat.tell(member, NOW)

    def welcome(self, member):
        """
        Tell C{member}, who just joined the chat, its history: a registered
        user who left from some rooms is taken back into them and told
        what was said since; anyone else gets the replay of the room it is
        in.  Return a Deferred that fires once it has been told.
        """
        up_to = self._arrivals.pop(member.session_key, self.history.mark())
        lobby = self._chat.room_of(member)
        account = member.account
        if account is None:
            self._replay(member, lobby, up_to)
            return defer.succeed(None)
        positions = self.history.positions(account)
        positions.addCallback(self._came_back, member, lobby, up_to)
        return positions.addErrback(log_failure, log, "telling %s what they missed" % (account,))

    def _came_back(self, rows, member, lobby, up_to):
        if self._chat.session_of(member) is None:
            return None
        if not rows:
            self._replay(member, lobby, up_to)
            return None
        # Forgotten at once: after a crash while this session is online, the
        # next login is replayed to, not told these lines a second time.
        self.history.left(member.account, ())
        lobby_key = room_key(lobby.name)
        queries = [
            (room, SINCE_LEFT_LINES, last_line, up_to if room_key(room) == lobby_key else None)
            for room, last_line, _ in rows
        ]
        return self.history.read(queries).addCallback(self._since_left, member, rows)

    def _since_left(self, results, member, rows):
        chat = self._chat
        if chat.session_of(member) is None:
            return
        back = []  # (room, how many lines since, the last of them)
        reading = None
        for (name, _, read), (count, lines) in zip(rows, results):
            room = chat.find_room(name)
            if room is None or member not in room:
                problem = chat.enter(member, name)
                # Its lines up to now are told here: no replay to come.
                self._arrivals.pop(member.session_key, None)
                if problem is not None:
                    chat.tell(member, "you are not back in %s: %s" % (name, problem))
                    continue
                room = chat.find_room(name)
            back.append((room, count, lines))
            if read:
                reading = room
        if reading is not None:
            chat.enter(member, reading.name)
        rejoined = [room.name for room, _, _ in back if room is not chat.find_room(LOBBY)]
        if rejoined:
            chat.tell(
                member,
                "you are back in %s; you talk in %s"
                % (", ".join(rejoined), chat.room_of(member).name),
            )
        told = False
        for room, count, lines in back:
            if count > len(lines):
                chat.tell(
                    member,
                    "%s: %d earlier lines since you left are not shown: /history %s %d"
                    % (room.name, count - len(lines), room.name, min(count, MAX_HISTORY_LINES)),
                )
            if lines:
                self._tell_lines(member, lines)
                told = True
        if told:
            chat.tell(member, NOW)

    def left(self, session_key, identity, rooms, reading):
        """
        Someone left the chat from C{rooms}, reading C{reading}: a registered
        user is told what they missed when they come back.
        """
        self._arrivals.pop(session_key, None)
        self._unheard.pop(session_key, None)
        if identity.account is not None:
            last_line = self.history.mark()
            self.history.left(
                identity.account, [(room.name, last_line, room is reading) for room in rooms]
            )

    def show_history(self, member, room, count):
        """
        Show C{member} the last C{count} lines of C{room}, a page a turn;
        a Deferred that fires once all are given.
        """
        read = self.history.read([(room.name, count, 0, self.history.mark())])
        return read.addCallback(self._page_out, member, room)

    def _page_out(self, results, member, room):
        chat = self._chat
        _, lines = results[0]
        if chat.session_of(member) is None or member not in room:
            return None
        if not lines:
            chat.tell(member, "%s has no history yet" % (room.name,))
            return None
        chat.tell(member, "the last %d lines of %s:" % (len(lines), room.name))
        done = defer.Deferred()
        self._page(member, room, lines, 0, done)
        return done

    def _page(self, member, room, lines, start, done):
        chat = self._chat
        if chat.session_of(member) is None:
            done.callback(None)
            return
        end = start + HISTORY_PAGE_LINES
        self._tell_lines(member, lines[start:end])
        if end < len(lines):
            self._clock.callLater(
                HISTORY_PAGE_SECONDS, self._page, member, room, lines, end, done
            )
        else:
            chat.tell(member, "end of the history of %s" % (room.name,))
            done.callback(None)

    def _tell_lines(self, member, lines):
        self._chat.outbox.direct(member, Told(_told(lines, self._clock.seconds() // DAY)))


def _told(lines, today):
    """
    History C{lines} as the events that tell them on the day C{today}.
    """
    return [events.History(room, at, at // DAY != today, event) for _, room, at, event in lines]
