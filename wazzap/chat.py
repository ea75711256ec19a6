"""
Who is online, in which rooms, and what each of them hears.

Everyone arrives in L{LOBBY} and may join more rooms (up to a limit), one
of which they read and talk in; the rules for names, topics and limits are
L{wazzap.core.rooms}.  What someone in several rooms must hear once (a quit,
a new nickname, a server-wide notice) is given once.

Nothing here knows about sockets or Twisted transports: what happens is
published as events (L{wazzap.core.events}) on a room bus, which reaches
members through the small L{wazzap.core.interfaces.IMember} contract;
nicknames, rooms and the approval queue are kept by a presence service.  The
same state can so be driven by unit tests directly, by the line protocol, and
later by other listeners or processes.

What is published in a reactor turn waits in the per-turn outbox
(L{wazzap.core.outbox}), which renders it once per renderer and hands the
same bytes to every member, so a line to N people costs one Python step per
person per turn, not per line.
"""

import random
from collections import Counter, deque
from itertools import islice

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from wazzap import text
from wazzap.bus.local import LocalBus
from wazzap.consent import PrivateChats
from wazzap.core import events
from wazzap.core.identity import Identity
from wazzap.core.interfaces import IPresenceObserver
from wazzap.core.outbox import Outbox
from wazzap.core.presence import MemoryPresence
from wazzap.core.replay import REPLAY_LINES, Replay
from wazzap.core.session import Session
from wazzap.core.rooms import (
    LOBBY,
    MAX_ROOMS,
    MAX_ROOMS_PER_USER,
    room_key,
    room_name_problem,
    topic_problem,
)
from wazzap.failures import log_failure
from wazzap.flow import TurnFlusher

log = Logger()

#: Requests to join (--approve-joins) told to admins one by one; beyond
#: these, admins get one summary per APPROVAL_SUMMARY_SECONDS.
APPROVAL_NOTICES_IN_FULL = 3
APPROVAL_SUMMARY_SECONDS = 5

#: The window over which a room's leave notices are counted, and how often
#: a summary replaces its join and leave notices while people churn.
PRESENCE_WINDOW_SECONDS = 10

#: Leave notices a room gets one by one within the window; past that, its
#: joins and leaves are summarised until a window has no more than this.
MAX_LEAVE_NOTICES = 10

#: What the sender of a private message is told when it is empty, and when
#: its recipient takes them only in a private chat (twice their nickname):
#: the same for one online and one offline (L{wazzap.persist.memos}).
EMPTY_PRIVATE_MESSAGE = "the message is empty: say something after the nickname"
PRIVATE_CHAT_NEEDED = "%s takes private messages only in a private chat: ask with /request %s"


class Room:
    """
    A set of members who all see each other's public messages: a name on
    the bus, and the commands' way of talking to it.

    @ivar name: as it was first written (C{#Maths}); on the bus and in
        presence the room is known by it.
    @ivar permanent: kept when empty (C{#lobby}, and those of C{--room}).
    @ivar topic: shown by C{/topic} and C{/rooms}, or C{""}.
    @ivar locked: only admins may post (C{/lock}).
    """

    def __init__(self, name, chat, clock, permanent=False):
        """
        @param chat: the L{Chat} whose bus, presence and identities this
            room uses.
        @param clock: the L{IReactorTime} that paces join and leave notices.
        """
        self.name = name
        self.permanent = permanent
        self.topic = ""
        self.locked = False
        self._chat = chat
        self._history = chat.history
        self.presence = PresenceNotices(self, clock)

    def __len__(self):
        return self._chat.presence.count(self.name)

    def members(self):
        """
        The members connected to this process, in the order they joined.
        """
        return self._chat.bus.local_members(self.name).values()

    def some_nicknames(self, most, but):
        """
        At most C{most} nicknames of members other than the session C{but}:
        of this process first, then of others, without listing everyone.
        """
        here = self._chat.bus.local_members(self.name)
        names = [m.nickname for m in islice(here.values(), most + 1) if m.session_key != but]
        if len(names) < most and len(self) > len(here):
            presence = self._chat.presence
            for key in presence.members_of(self.name):
                if len(names) >= most:
                    break
                if key not in here and key != but:
                    names.append(presence.nickname_of(key))
        return names[:most]

    def nicknames(self):
        """
        The nicknames in this room, sorted case-insensitively.
        """
        presence = self._chat.presence
        nicknames = [presence.nickname_of(key) for key in presence.members_of(self.name)]
        return sorted(nicknames, key=text.nickname_key)

    def __contains__(self, member):
        return self.name in self._chat.presence.rooms_of(member.session_key)

    def publish(self, event, exclude=None, heard_in=()):
        """
        Give C{event} to everyone in the room but the session key C{exclude}
        and those in the rooms named C{heard_in}.
        """
        line = None if self._history is None else self._history.record(self.name, event)
        self._chat.bus.publish(self.name, event, exclude, heard_in, line)

    def publish_once(self, event, told):
        """
        Give C{event} to everyone here who is not in a room of C{told} (names
        of the rooms it went to before, to which this one is then added), or
        to everyone when C{told} is L{None}: what a person in several rooms
        hears once, such as a quit or a new nickname.
        """
        if told is None:
            self.publish(event)
            return
        self.publish(event, heard_in=tuple(told))
        told.append(self.name)

    def announce(self, notice, exclude=None):
        """
        Deliver a C{[Server]} notice to the room.
        """
        self.publish(events.Notice(notice), exclude)

    def say(self, sender, message, text_style=""):
        """
        Relay a public message from C{sender} to everyone else in the room;
        C{text_style} is a colour name or C{""}.
        """
        identity = self._chat.identity(sender)
        self.publish(
            events.Said(identity.nickname, identity.color, message, text_style or ""),
            sender.session_key,
        )

    def emote(self, sender, action):
        """
        Relay a C{/me} action to everyone in the room, the sender included
        unless its client shows its own actions (C{shows_own_actions}: IRC).
        """
        identity = self._chat.identity(sender)
        exclude = sender.session_key if getattr(sender, "shows_own_actions", False) else None
        self.publish(events.Emoted(identity.nickname, identity.color, action), exclude)


class PresenceNotices:
    """
    A room's "joined" and "left" notices: one per person while the room is
    calm, but one summary per L{PRESENCE_WINDOW_SECONDS} while more than
    L{MAX_LEAVE_NOTICES} people leave in that window, so that reconnect
    churn cannot flood everybody.  Leaves decide, not joins: a crowd that
    arrives together (after a restart, say) and stays is announced in full,
    and it is bounded by the connection limits anyway.
    """

    def __init__(self, room, clock):
        self._room = room
        self._clock = clock
        self._recent_leaves = deque()
        self._summary = None
        self._joined = 0
        self._left = 0

    def joined(self, nickname, session_key, room=""):
        """
        C{nickname} came in: to the chat, or with C{room} (its name) from
        elsewhere in the chat.
        """
        if self._summary is None:
            self._room.publish(events.Joined(nickname, room), exclude=session_key)
        else:
            self._joined += 1

    def left(self, nickname, reason=None, room="", told=None):
        """
        C{nickname} left: the chat, or with C{room} only this room; C{told}
        as for L{Room.publish_once}.
        """
        if self._summary is None and self._leave_alone():
            self._room.publish_once(events.Left(nickname, reason or None, room), told)
        else:
            self._left += 1

    def _leave_alone(self):
        """
        Whether this leave may have a notice of its own; if not, start
        summarising.
        """
        now = self._clock.seconds()
        recent = self._recent_leaves
        while recent and recent[0] <= now - PRESENCE_WINDOW_SECONDS:
            recent.popleft()
        if len(recent) < MAX_LEAVE_NOTICES:
            recent.append(now)
            return True
        self._summary = self._clock.callLater(PRESENCE_WINDOW_SECONDS, self._summarise)
        return False

    def stop(self):
        """
        The room is gone: summarise no more.
        """
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None

    def _summarise(self):
        joined, left = self._joined, self._left
        self._joined = self._left = 0
        if joined or left:
            self._room.publish(events.PresenceSummary(joined, left, PRESENCE_WINDOW_SECONDS))
        if left > MAX_LEAVE_NOTICES:
            self._summary = self._clock.callLater(PRESENCE_WINDOW_SECONDS, self._summarise)
        else:
            self._summary = None
            self._recent_leaves.clear()


class SharedPrivateChats(PrivateChats):
    """
    L{PrivateChats} whose members may be of other processes: a change with
    one of them is told to its process, which keeps the same pair for its
    own member (L{mirror}), and whether one wants consent is theirs to say.
    """

    def __init__(self, clock, consent_by_default, presence):
        super().__init__(clock, consent_by_default)
        self._presence = presence

    def add_member(self, member):
        super().add_member(member)
        if self.consent_by_default:
            self._presence.set_consent(member.session_key, True)

    def set_requires_consent(self, member, required):
        super().set_requires_consent(member, required)
        self._presence.set_consent(member.session_key, required)

    def requires_consent(self, member):
        if member.renderer is None:
            return member.requires_consent
        return super().requires_consent(member)

    def may_message(self, sender, target):
        return not self.requires_consent(target) or self.is_open(sender, target)

    def request(self, requester, target):
        super().request(requester, target)
        _tell_remote(target, "request", requester)

    def withdraw(self, requester, target):
        withdrawn = super().withdraw(requester, target)
        if withdrawn:
            _tell_remote(target, "withdraw", requester)
        return withdrawn

    def answer(self, target, requester, accepted):
        answered = super().answer(target, requester, accepted)
        if answered:
            _tell_remote(requester, "answer", target, accepted)
        return answered

    def end(self, first, second):
        ended = super().end(first, second)
        if ended:
            _tell_remote(second, "end", first)
        return ended

    def mirror(self, change, other, member, *arguments):
        """
        Make the C{change} that C{other}, of another process, made with
        C{member}, of this one, as it was told (see L{IRemoteMember.consent}).
        """
        if change == "request":
            PrivateChats.request(self, other, member)
        elif change == "withdraw":
            PrivateChats.withdraw(self, other, member)
        elif change == "answer":
            PrivateChats.answer(self, other, member, *arguments)
        elif change == "end":
            PrivateChats.end(self, other, member)


def _tell_remote(other, change, member, *arguments):
    if other.renderer is None:
        other.consent(change, member.session_key, *arguments)


@implementer(IPresenceObserver)
class Chat:
    """
    Everybody online in this process, by session key, and the rooms they are in.

    A nickname is held (in L{presence}) from L{join}, or L{wait_for_approval},
    until L{leave}; it is compared case-insensitively
    (L{wazzap.text.nickname_key}).  Each member's L{Session} (its
    L{Identity} and current room) is kept here, and its connection reads
    who it is from that session.
    """

    def __init__(
        self,
        clock,
        rng=None,
        consent_by_default=False,
        presence=None,
        bus=None,
        rooms=(),
        user_rooms=True,
        max_rooms=MAX_ROOMS,
        max_rooms_per_user=MAX_ROOMS_PER_USER,
        history=None,
        replay_lines=REPLAY_LINES,
    ):
        """
        @param presence: the L{IPresence} shared with other processes; by
            default one in this process's memory.
        @param bus: called with this process's L{LocalBus} and the presence,
            returns the L{IRoomBus} shared with other processes; by default
            the local bus is the bus.
        @param history: the L{wazzap.persist.history.HistoryLog} that keeps
            what rooms publish, or L{None} to keep nothing.
        @param replay_lines: lines of its history a room replays to someone
            joining it (0: none).
        @param rooms: names of the permanent rooms besides L{LOBBY}.
        @param user_rooms: whether anyone may create a room, or only admins.
        @param max_rooms: rooms the server holds at most, permanent ones
            included.
        @param max_rooms_per_user: rooms one person may be in at once.
        """
        self._clock = clock
        self._rng = rng or random.Random()
        self.flusher = TurnFlusher(clock)
        # session key -> name of the room it reads, only for those in more
        # than one room: someone in one room reads it, and costs no entry.
        self._focus = {}
        self.outbox = Outbox(self.flusher, self._focus)
        self.presence = presence or MemoryPresence()
        self.bus = LocalBus(self.outbox)
        if bus is not None:
            self.bus = bus(self.bus, self.presence)
        if history is not None:
            self.bus.hear(history.remember)
        self.user_rooms = user_rooms
        self.max_rooms = max_rooms
        self.max_rooms_per_user = max_rooms_per_user
        self.history = history
        self.replay = None if history is None else Replay(self, history, clock, replay_lines)
        self._rooms = {}  # room_key(name) -> Room
        for name in (LOBBY,) + tuple(rooms):
            if room_key(name) not in self._rooms:
                self._rooms[room_key(name)] = Room(name, self, clock, permanent=True)
        self._sessions = {}  # session key -> Session, once joined
        self._waiting = {}  # session key -> member waiting for approval
        self._colors_in_use = Counter()
        self._asks_told = 0
        self._asks_untold = 0
        self._asks_timer = None
        #: Callables given each notice admins get about the approval queue
        #: (a request to join, a summary of them): the operator's console
        #: (L{wazzap.app.control}), which is asked as an admin is.
        self.approval_listeners = []
        self.private_chats = SharedPrivateChats(clock, consent_by_default, self.presence)
        #: Callables given C{"bans"} or C{"mutes"} when another process
        #: changed them in the database (L{moderation_changed}).
        self.moderation_listeners = []
        self.presence.observe(self)

    def __len__(self):
        return len(self._sessions)

    def identity(self, member):
        """
        The L{Identity} of a member who joined, here or elsewhere.
        """
        session = self._sessions.get(member.session_key)
        return member.identity if session is None else session.identity

    def session_of(self, member):
        """
        The L{Session} of a member who joined, or L{None}.
        """
        return self._sessions.get(member.session_key)

    def tell(self, member, notice):
        """
        Give C{member} (joined or not, or of another process) a C{[Server]}
        notice, in order with what its rooms publish.
        """
        if member.renderer is None:
            self.bus.direct(member.session_key, events.Notice(notice))
        else:
            self.outbox.direct(member, events.Notice(notice))

    def nickname_problem(self, nickname, member=None):
        """
        Return why C{nickname} cannot be taken (by C{member}, who may already
        hold it in another case), or L{None}.
        """
        problem = text.nickname_problem(nickname)
        if problem is not None:
            return problem
        holder = self.presence.locate(nickname)
        if holder is not None and (member is None or holder != member.session_key):
            return "%s is already online" % (self.presence.nickname_of(holder),)
        return None

    def claim(self, member, nickname):
        """
        Hold C{nickname} for C{member}, before it joins: a Deferred firing
        with why it cannot, or L{None}.  L{leave} frees it.
        """
        return self.presence.claim(member.session_key, nickname).addCallback(
            lambda claimed: None if claimed else self.nickname_problem(nickname, member)
            or "%s is already online" % (nickname,)
        )

    def _hold_nickname(self, member):
        """
        Hold the member's nickname, unless admission did (L{claim}): the
        answer is not waited for, so this is for callers that checked it.
        """
        if self.presence.nickname_of(member.session_key) != member.nickname:
            self.presence.claim(member.session_key, member.nickname)

    def find(self, nickname):
        """
        The member online under C{nickname} (any case), here or, as an
        L{IRemoteMember}, on another process; or L{None}.
        """
        key = self.presence.locate(nickname)
        if key is None:
            return None
        session = self._sessions.get(key)
        if session is not None:
            return session.member
        remote = self.presence.remote(key)
        # Not yet joined there (logging in, or waiting for approval): not online.
        return remote if remote is not None and remote.joined else None

    def members(self):
        """
        Everyone who joined, here and (as L{IRemoteMember}s) elsewhere.
        """
        local = [session.member for session in self._sessions.values()]
        return local + self.presence.remote_members()

    def admins(self):
        return [member for member in self.members() if member.is_admin]

    def _tell_admins(self, notice):
        event = events.Notice(notice)
        for admin in self.admins():
            self.bus.direct(admin.session_key, event)
        for listener in self.approval_listeners:
            listener(notice)

    def wait_for_approval(self, member):
        """
        Hold C{member}'s nickname while an admin decides whether it may join,
        and ask every admin online: the first L{APPROVAL_NOTICES_IN_FULL} in
        full, and when more arrive, one summary each
        L{APPROVAL_SUMMARY_SECONDS}.  Return how many admins (and
        L{approval_listeners}) were asked.
        """
        key = member.session_key
        self._hold_nickname(member)
        self.presence.wait_for_approval(key, member.peer)
        self._waiting[key] = member
        asked = len(self.admins()) + len(self.approval_listeners)
        if self._asks_told < APPROVAL_NOTICES_IN_FULL:
            self._asks_told += 1
            self._tell_admins(_approval_request(member))
        else:
            self._asks_untold += 1
        if self._asks_timer is None:
            self._asks_timer = self._clock.callLater(
                APPROVAL_SUMMARY_SECONDS, self._summarise_asks
            )
        return asked

    def _summarise_asks(self):
        self._asks_timer = None
        untold, self._asks_untold = self._asks_untold, 0
        if not untold:
            self._asks_told = 0
            return
        self._tell_admins("%d more asked to join: /pending" % (untold,))
        # Still busy: go on summarising rather than start a new run in full.
        self._asks_timer = self._clock.callLater(APPROVAL_SUMMARY_SECONDS, self._summarise_asks)

    def waiting(self):
        """
        The members waiting for approval, here and elsewhere, longest-waiting
        first.
        """
        waiting = []
        for key in self.presence.waiting():
            member = self._waiting.get(key) or self.presence.remote(key)
            if member is not None:
                waiting.append(member)
        return waiting

    def waiting_from(self, address):
        """
        How many members from C{address} wait for approval.
        """
        return self.presence.waiting_from(address)

    def stop_waiting(self, nickname):
        """
        Take the member called C{nickname} off the approval queue, free its
        nickname and return it, or L{None} if nobody by that name is waiting.
        """
        key = self.presence.locate(nickname)
        if key is None:
            return None
        member = self._waiting.pop(key, None)
        if member is not None:
            self.presence.release(key)
        elif key in self.presence.waiting():
            # Its own process frees the nickname, as it admits or closes it.
            member = self.presence.remote(key)
            self.presence.stop_waiting(key)
        return member

    def room_of(self, member):
        """
        The L{Room} C{member} is reading (where its plain text goes), or L{None}.
        """
        session = self._sessions.get(member.session_key)
        return None if session is None else session.room

    def change_identity(self, session, **fields):
        """
        Change who the joined C{session} is (see L{Identity}), for this
        process and the others.
        """
        session.change(**fields)
        self.presence.describe(session.key, session.identity)

    def rooms_of(self, member):
        """
        The L{Room}s C{member} is in, in the order it joined them.
        """
        rooms = self._rooms
        keys = [room_key(name) for name in self.presence.rooms_of(member.session_key)]
        # A room another process just made may not be known here yet.
        return [rooms[key] for key in keys if key in rooms]

    def find_room(self, name):
        """
        The L{Room} called C{name} (any case), or L{None}.
        """
        return self._rooms.get(room_key(name))

    def room_count(self):
        """
        How many rooms there are, without sorting them as L{rooms} does.
        """
        return len(self._rooms)

    def rooms(self):
        """
        Every room, busiest first, then by name.
        """
        self._forget_empty_rooms()
        return sorted(self._rooms.values(), key=lambda room: (-len(room), room_key(room.name)))

    def _forget_empty_rooms(self):
        """
        Forget the rooms nobody is in: those another process described (a
        topic kept in Redis) whose members never came, or left unheard.
        """
        for room in list(self._rooms.values()):
            self._forget_if_empty(room, told=False)

    def _read(self, member, room):
        """
        Make C{room} the one C{member}'s plain text goes to and whose lines it
        sees unmarked.
        """
        key = member.session_key
        self._sessions[key].room = room
        if len(self.presence.rooms_of(key)) > 1:
            self._focus[key] = room.name
        else:
            self._focus.pop(key, None)

    def enter(self, member, name):
        """
        Bring C{member} into the room called C{name}, creating it if there is
        none, and make it the room C{member} reads; return why it cannot, or
        L{None}.  Entering a room one is in just makes it the one read.
        """
        problem = room_name_problem(name)
        if problem is not None:
            return problem
        key = member.session_key
        room = self.find_room(name)
        if room is not None and member in room:
            self._read(member, room)
            return None
        if len(self.presence.rooms_of(key)) >= self.max_rooms_per_user:
            return "you are in %s, the most one may be in: /part one first" % (
                _rooms(self.max_rooms_per_user),
            )
        if room is None:
            if not self.user_rooms and not member.is_admin:
                return "only admins create rooms here: /rooms lists those there are"
            self._forget_empty_rooms()
            if len(self._rooms) >= self.max_rooms:
                return "the server holds %s, its most: /rooms lists them" % (
                    _rooms(self.max_rooms),
                )
            room = self._rooms[room_key(name)] = Room(name, self, self._clock)
        if self.replay is not None:
            # A room with people only elsewhere was not heard here: what
            # they said is in the database, not in this process's memory.
            unheard = len(room) and not self.bus.local_members(room.name)
            self.replay.arriving(key, room.name if unheard else None)
        self._enter(member, room, room.name)
        return None

    def _enter(self, member, room, announced_as=""):
        key = member.session_key
        self.bus.join(room.name, member)
        # Counted before the room is told: someone who answers the notice
        # on another process then finds the newcomer among the members.
        self.presence.enter(room.name, key)
        room.presence.joined(self._sessions[key].identity.nickname, key, announced_as)
        self._read(member, room)

    def part(self, member, room, reason=None):
        """
        Take C{member} out of C{room} (a L{Room}) and tell the room; return
        why it cannot, or L{None}.  Someone parting the room they read then
        reads the one they joined last of those left, and someone parting
        their last room is back in L{LOBBY}.
        """
        if member not in room:
            return "you are not in %s" % (room.name,)
        key = member.session_key
        others = [other for other in self.rooms_of(member) if other is not room]
        lobby = self._rooms[room_key(LOBBY)]
        if not others and room is lobby:
            return "you are only in %s: /join another room first" % (LOBBY,)
        self.bus.leave(room.name, key)
        self.presence.exit(room.name, key)
        room.presence.left(self._sessions[key].identity.nickname, reason, room.name)
        self._forget_if_empty(room)
        if not others:
            self._enter(member, lobby, lobby.name)
        elif self._sessions[key].room is room:
            self._read(member, others[-1])
        else:
            self._read(member, self._sessions[key].room)
        return None

    def _forget_if_empty(self, room, told=True):
        """
        Forget C{room} if it is empty everywhere and not permanent; unless
        C{told} otherwise, it emptied here, and other processes forget its
        topic and lock.
        """
        if not room.permanent and not len(room):
            del self._rooms[room_key(room.name)]
            room.presence.stop()
            if told:
                self.presence.forget_room(room.name)
            if self.history is not None:
                self.history.room_gone(room.name)

    def set_topic(self, member, room, topic):
        """
        Give C{room} the topic C{topic} (C{""} clears it) and tell the room;
        return why it cannot, or L{None}.
        """
        problem = topic_problem(topic)
        if problem is not None:
            return problem
        room.topic = topic
        self.presence.describe_room(room.name, topic, room.locked)
        nickname = self._sessions[member.session_key].identity.nickname
        room.publish(events.TopicSet(nickname, room.name, topic))
        return None

    def lock(self, member, room, locked):
        """
        Let only admins post in C{room} (C{locked}), or everyone again, and
        tell the room.
        """
        room.locked = locked
        self.presence.describe_room(room.name, room.topic, locked)
        nickname = self._sessions[member.session_key].identity.nickname
        if locked:
            room.announce("%s locked %s: only admins post here" % (nickname, room.name))
        else:
            room.announce("%s unlocked %s: everyone may post" % (nickname, room.name))

    def pick_color(self):
        """
        A colour name from the palette, preferring those fewest people online
        have (none, while some are free); counted as people come and go, so
        that a join costs the same in a room of ten thousand as in a room of ten.
        """
        in_use = self._colors_in_use
        fewest = min(in_use[color] for color in text.USER_PALETTE)
        return self._rng.choice([color for color in text.USER_PALETTE if in_use[color] == fewest])

    def join(self, member, room_name=LOBBY):
        """
        Bring C{member}, whose nickname L{nickname_problem} accepted, into the
        chat in a room, and tell the room; return the room.
        """
        room = self._rooms[room_key(room_name)]
        key = member.session_key
        presence = self.presence
        if self._waiting.pop(key, None) is not None:
            presence.stop_waiting(key)
        self._hold_nickname(member)
        identity = Identity(
            member.nickname, member.account, member.is_admin, member.color, member.peer
        )
        session = self._sessions[key] = Session(key, identity, member)
        self._colors_in_use[identity.color] += 1
        presence.describe(key, identity)
        self.private_chats.add_member(member)
        if self.replay is not None:
            self.replay.arriving(key)
        self._enter(member, room)
        # The member reads who it is from here on (see ChatProtocol).
        member.session = session
        return room

    def leave(self, member, reason=None):
        """
        Take C{member} out of the chat, free its nickname at once, and tell its
        rooms why it left.  Leaving twice is harmless.
        """
        key = member.session_key
        session = self._sessions.pop(key, None)
        if session is None:
            # Waiting for approval, or holding a nickname claimed to log in.
            self._waiting.pop(key, None)
            self.presence.release(key)
            return
        identity = session.identity
        self._colors_in_use[identity.color] -= 1
        reading = session.room
        session.room = None
        self._focus.pop(key, None)
        rooms = self.rooms_of(member)
        self.presence.release(key)
        # Someone in several of these rooms hears of it once.
        told = [] if len(rooms) > 1 else None
        for room in rooms:
            self.bus.leave(room.name, key)
            room.presence.left(identity.nickname, reason, told=told)
            self._forget_if_empty(room)
        if self.replay is not None:
            self.replay.left(key, identity, rooms, reading)
        partners, asked_it, it_asked = self.private_chats.remove_member(member)
        nickname = identity.nickname
        for others, notice in (
            (partners, "your private chat with %s ended: they left"),
            (asked_it, "your request to %s was cancelled: they left"),
            (it_asked, "%s withdrew their private chat request: they left"),
        ):
            event = events.Notice(notice % (nickname,))
            for other in others:
                self.bus.direct(other.session_key, event)

    def rename(self, member, nickname):
        """
        Give C{member} a new nickname and tell its rooms: a Deferred firing
        with why it cannot, or L{None}.
        """
        problem = self.nickname_problem(nickname, member)
        if problem is not None:
            return defer.succeed(problem)
        key = member.session_key
        if key not in self._sessions:
            return defer.succeed("only someone in the chat can change nickname")
        return self.presence.rename(key, nickname).addCallback(self._renamed, key, nickname)

    def _renamed(self, renamed, key, nickname):
        session = self._sessions.get(key)
        if session is None:
            return "only someone in the chat can change nickname"
        if not renamed:
            return "%s is already online" % (nickname,)
        old = session.identity.nickname
        self.change_identity(session, nickname=nickname)
        event = events.Renamed(old, nickname)
        rooms = self.rooms_of(session.member)
        told = [] if len(rooms) > 1 else None
        for room in rooms:
            room.publish_once(event, told)
        return None

    def send_private(self, sender, nickname, message, text_style=""):
        """
        Deliver a private message to the member called C{nickname} and confirm
        it to C{sender}; return why it cannot be sent, or L{None}.
        """
        target = self.find(nickname)
        if target is None:
            return "nobody called %s is online" % (nickname,)
        if target is sender:
            return "that is you: a private message needs someone else"
        if not message:
            return EMPTY_PRIVATE_MESSAGE
        if not self.private_chats.may_message(sender, target):
            return PRIVATE_CHAT_NEEDED % (target.nickname, target.nickname)
        event = events.Private(
            self.identity(sender).nickname,
            sender.session_key,
            self.identity(target).nickname,
            message,
            text_style or "",
        )
        self.bus.direct(target.session_key, event)
        self.bus.direct(sender.session_key, event)
        return None

    def announce(self, notice, rooms=None):
        """
        Tell everybody in C{rooms} (by default every room) something, once each.
        """
        event = events.Announcement(notice)
        rooms = [room for room in rooms or self._rooms.values() if len(room)]
        told = [] if len(rooms) > 1 else None
        for room in rooms:
            room.publish_once(event, told)

    # What other processes did (IPresenceObserver)

    def _room_known(self, name):
        room = self.find_room(name)
        if room is None:
            room = self._rooms[room_key(name)] = Room(name, self, self._clock)
        return room

    def room_entered(self, name):
        self._room_known(name)

    def room_exited(self, name):
        room = self.find_room(name)
        if room is not None:
            self._forget_if_empty(room, told=False)

    def room_described(self, name, topic, locked):
        room = self._room_known(name)
        room.topic, room.locked = topic, locked

    def remote_gone(self, nickname, rooms):
        # Each process tells its own members: the process that would have
        # published the notice is gone.
        event = events.Left(nickname, "their server stopped answering", "")
        told = set()
        for name in rooms:
            members = self.bus.local_members(name)
            for key, member in members.items():
                if key not in told:
                    told.add(key)
                    self.outbox.direct(member, event)
            room = self.find_room(name)
            if room is not None:
                # Its process cannot forget the room's topic: the others do.
                self._forget_if_empty(room)

    def nickname_lost(self, session_key):
        session = self._sessions.get(session_key)
        if session is not None:
            session.member.disconnect(
                "nickname taken elsewhere",
                "While this server could not reach the others, someone on another server "
                "took the nickname %s: please connect again and choose another"
                % (session.identity.nickname,),
            )

    def reachable(self, others):
        # Each process tells its own people: every one of them sees this.
        if others:
            notice = "This server reaches the others again: you are chatting with everyone."
        else:
            notice = (
                "The other servers cannot be reached just now: you are chatting with the "
                "people on this one until they are back."
            )
        event = events.Announcement(notice)
        for session in self._sessions.values():
            self.outbox.direct(session.member, event)

    def moderation_changed(self, what):
        reread = defer.gatherResults(
            [defer.maybeDeferred(listener, what) for listener in self.moderation_listeners],
            consumeErrors=True,
        )
        return reread.addErrback(log_failure, log, "reading the %s again" % (what,))

    def asked(self, session_key, request, argument):
        session = self._sessions.get(session_key)
        member = session.member if session is not None else self._waiting.get(session_key)
        if member is None:
            return
        if request == "close":
            reason, farewell = argument
            member.disconnect(reason, farewell)
        elif request == "admit" and self._waiting.get(session_key) is member:
            member.admit()
        elif request == "consent" and session is not None:
            change, other_key, *arguments = argument
            other = self.presence.remote(other_key)
            if other is not None:
                self.private_chats.mirror(change, other, member, *arguments)

    def remote_left(self, member):
        # Its own process tells the partners and the askers.
        self.private_chats.remove_member(member)


def _approval_request(member):
    return "%s (%s) asks to join: /approve %s or /deny %s" % (
        member.nickname,
        member.peer,
        member.nickname,
        member.nickname,
    )


def _rooms(count):
    """
    C{count} rooms in words, for limits as low as one: "1 room", "3 rooms".
    """
    return "%d room%s" % (count, "" if count == 1 else "s")
