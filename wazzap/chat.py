"""
Who is online, in which room, and where each message goes.

Nothing here knows about sockets or Twisted transports: people are reached only
through the small L{IMember} contract, so the same state can be driven by unit
tests directly, by the line protocol, and later by other transports or nodes.

Public lines are batched per room and reactor turn: at the end of the turn the
room joins them once and hands the same bytes to every member, so a line to N
people costs one Python step per person per turn, not per line.
"""

import random
from collections import Counter, deque

from zope.interface import Attribute, Interface

from wazzap import text
from wazzap.consent import PrivateChats
from wazzap.flow import TurnFlusher

#: The room everybody joins until there are more rooms to choose from.
LOBBY = "lobby"

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


class IMember(Interface):
    """
    Someone online, as the rooms see them.
    """

    nickname = Attribute("The nickname shown to others, as the user typed it.")
    color = Attribute("The colour (an ANSI style string) of this member's nickname.")
    is_admin = Attribute("True once the member logged in to an admin account.")
    peer = Attribute("The address the member connects from, shown to admins.")
    room = Attribute("The L{Room} the member is in, set by L{Chat}; None outside.")

    def deliver(line):
        """
        Queue a L{wazzap.text.Line} for this member alone; it is written at the
        end of the current reactor turn, after every line it was given before.
        The member calls L{Room.catch_up} on its room first, so lines broadcast
        earlier in the turn come before it.
        """

    def write(line):
        """
        Write a L{wazzap.text.Line} now, after anything already queued: the
        room hands over its batched lines this way.
        """

    def disconnect(reason, notice=None):
        """
        End this member's connection, telling them C{notice} (by default,
        that they were disconnected for C{reason}).  The member's session
        reports the departure, with C{reason}, through L{Chat.leave}.
        """

    def admit():
        """
        Let a member who was waiting for approval join.
        """


class Room:
    """
    A set of members who all see each other's public messages.

    Lines broadcast during a reactor turn wait in C{_batch} until the end of
    the turn (L{flush_output}).  A member who is given a line of its own in the
    meantime first catches up on the batch (L{catch_up}), and C{_caught_up}
    remembers how far, so every member sees every line in the order it was
    sent.
    """

    def __init__(self, name, schedule, clock):
        """
        @param schedule: called with the room when it has lines to hand out at
            the end of this turn (L{TurnFlusher.schedule}).
        @param clock: the L{IReactorTime} that paces join and leave notices.
        """
        self.name = name
        self._schedule = schedule
        self._members = {}
        self._batch = None
        self._caught_up = {}
        self.presence = PresenceNotices(self, clock)

    def __len__(self):
        return len(self._members)

    def members(self):
        """
        The members, in the order they joined.
        """
        return self._members.values()

    def nicknames(self):
        """
        The nicknames in this room, sorted case-insensitively.
        """
        return sorted((m.nickname for m in self._members.values()), key=text.nickname_key)

    def add(self, key, member):
        """
        Let C{member}, whose nickname key is C{key}, in; it hears what is
        broadcast from now on.
        """
        self._members[key] = member
        if self._batch is not None:
            self._caught_up[member] = len(self._batch)

    def remove(self, key):
        self._members.pop(key, None)

    def rekey(self, old_key, new_key):
        """
        Keep the member known as C{old_key} under C{new_key}.
        """
        self._members[new_key] = self._members.pop(old_key)

    def broadcast(self, line, exclude=None):
        """
        Deliver the same L{wazzap.text.Line} to every member but C{exclude}, at
        the end of this turn.
        """
        batch = self._batch
        if batch is None:
            batch = self._batch = []
            self._schedule(self)
        batch.append((line, exclude))

    def catch_up(self, member):
        """
        Write to C{member} now what was broadcast this turn and it has not been
        given yet, so that a line for it alone comes after those.
        """
        batch = self._batch
        if batch is not None:
            start = self._caught_up.get(member, 0)
            if start < len(batch):
                self._caught_up[member] = len(batch)
                _write_lines(member, [line for line, exclude in batch[start:] if exclude is not member])

    def flush_output(self):
        """
        Hand this turn's lines to every member: one joined L{text.Line}, the
        same object for all but those who sent some of them or caught up.
        """
        batch, self._batch = self._batch, None
        caught_up, self._caught_up = self._caught_up, {}
        if not batch:
            return
        everyone = batch[0][0] if len(batch) == 1 else text.joined([line for line, _ in batch])
        different = {exclude for _, exclude in batch}
        different.update(caught_up)
        for member in list(self._members.values()):
            if member not in different:
                member.write(everyone)
            else:
                start = caught_up.get(member, 0)
                _write_lines(member, [line for line, exclude in batch[start:] if exclude is not member])

    def announce(self, notice, exclude=None):
        """
        Deliver a C{[Server]} notice to the room.
        """
        self.broadcast(text.server_line(notice), exclude)

    def say(self, sender, message, text_style=""):
        """
        Relay a public message from C{sender} to everyone else in the room.
        """
        self.broadcast(text.chat_line(sender.nickname, sender.color, message, text_style), sender)

    def emote(self, sender, action):
        """
        Relay a C{/me} action to everyone in the room, the sender included.
        """
        self.broadcast(text.action_line(sender.nickname, sender.color, action))


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

    def joined(self, member):
        if self._summary is None:
            self._room.announce("%s joined the chat" % (member.nickname,), exclude=member)
        else:
            self._joined += 1

    def left(self, member, reason=None):
        if self._summary is None and self._leave_alone():
            notice = "%s left the chat" % (member.nickname,)
            if reason:
                notice += " (%s)" % (reason,)
            self._room.announce(notice)
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

    def _summarise(self):
        joined, left = self._joined, self._left
        self._joined = self._left = 0
        if joined or left:
            self._room.announce(_presence_summary(joined, left))
        if left > MAX_LEAVE_NOTICES:
            self._summary = self._clock.callLater(PRESENCE_WINDOW_SECONDS, self._summarise)
        else:
            self._summary = None
            self._recent_leaves.clear()


class Chat:
    """
    Everybody online, by nickname, and the rooms they are in.

    A nickname is held from L{join} until L{leave}; it is compared
    case-insensitively (L{wazzap.text.nickname_key}).
    """

    def __init__(self, clock, rng=None, consent_by_default=False):
        self._clock = clock
        self._rng = rng or random.Random()
        self._members = {}
        self.flusher = TurnFlusher(clock)
        self._rooms = {LOBBY: Room(LOBBY, self.flusher.schedule, clock)}
        self._waiting = {}
        self._colors_in_use = Counter()
        self._waiting_from = Counter()
        self._asks_told = 0
        self._asks_untold = 0
        self._asks_timer = None
        self.private_chats = PrivateChats(clock, consent_by_default)

    def __len__(self):
        return len(self._members)

    def nickname_problem(self, nickname, member=None):
        """
        Return why C{nickname} cannot be taken (by C{member}, who may already
        hold it in another case), or L{None}.
        """
        problem = text.nickname_problem(nickname)
        if problem is not None:
            return problem
        key = text.nickname_key(nickname)
        holder = self._members.get(key) or self._waiting.get(key)
        if holder is not None and holder is not member:
            return "%s is already online" % (holder.nickname,)
        return None

    def find(self, nickname):
        """
        The member online under C{nickname} (any case), or L{None}.
        """
        return self._members.get(text.nickname_key(nickname))

    def members(self):
        return list(self._members.values())

    def admins(self):
        return [member for member in self._members.values() if member.is_admin]

    def wait_for_approval(self, member):
        """
        Hold C{member}'s nickname while an admin decides whether it may join,
        and ask every admin online: the first L{APPROVAL_NOTICES_IN_FULL} in
        full, and when more arrive, one summary each
        L{APPROVAL_SUMMARY_SECONDS}.  Return how many admins were asked.
        """
        self._waiting[text.nickname_key(member.nickname)] = member
        self._waiting_from[member.peer] += 1
        admins = self.admins()
        if self._asks_told < APPROVAL_NOTICES_IN_FULL:
            self._asks_told += 1
            for admin in admins:
                admin.deliver(text.server_line(_approval_request(member)))
        else:
            self._asks_untold += 1
        if self._asks_timer is None:
            self._asks_timer = self._clock.callLater(
                APPROVAL_SUMMARY_SECONDS, self._summarise_asks
            )
        return len(admins)

    def _summarise_asks(self):
        self._asks_timer = None
        untold, self._asks_untold = self._asks_untold, 0
        if not untold:
            self._asks_told = 0
            return
        notice = text.server_line("%d more asked to join: /pending" % (untold,))
        for admin in self.admins():
            admin.deliver(notice)
        # Still busy: go on summarising rather than start a new run in full.
        self._asks_timer = self._clock.callLater(APPROVAL_SUMMARY_SECONDS, self._summarise_asks)

    def waiting(self):
        """
        The members waiting for approval, longest-waiting first.
        """
        return list(self._waiting.values())

    def waiting_from(self, address):
        """
        How many members from C{address} wait for approval.
        """
        return self._waiting_from[address]

    def stop_waiting(self, nickname):
        """
        Take the member called C{nickname} off the approval queue and return it,
        or L{None} if nobody by that name is waiting.
        """
        member = self._waiting.pop(text.nickname_key(nickname), None)
        if member is not None:
            self._stopped_waiting(member)
        return member

    def _stopped_waiting(self, member):
        self._waiting_from[member.peer] -= 1
        if not self._waiting_from[member.peer]:
            del self._waiting_from[member.peer]

    def room_of(self, member):
        return member.room

    def pick_color(self):
        """
        A colour from the palette, preferring those fewest people online have
        (none, while some are free); counted as people come and go, so that a
        join costs the same in a room of ten thousand as in a room of ten.
        """
        in_use = self._colors_in_use
        fewest = min(in_use[color] for color in text.USER_PALETTE)
        return self._rng.choice([color for color in text.USER_PALETTE if in_use[color] == fewest])

    def join(self, member, room_name=LOBBY):
        """
        Bring C{member}, whose nickname L{nickname_problem} accepted, into a
        room and tell the room; return the room.
        """
        room = self._rooms[room_name]
        key = text.nickname_key(member.nickname)
        if self._waiting.pop(key, None) is not None:
            self._stopped_waiting(member)
        self._members[key] = member
        self._colors_in_use[member.color] += 1
        member.room = room
        self.private_chats.add_member(member)
        room.presence.joined(member)
        room.add(key, member)
        return room

    def leave(self, member, reason=None):
        """
        Take C{member} out of the chat, free its nickname at once, and tell the
        room why it left.  Leaving twice is harmless.
        """
        if member.nickname is None:
            return
        key = text.nickname_key(member.nickname)
        if self._waiting.get(key) is member:
            del self._waiting[key]
            self._stopped_waiting(member)
        room = member.room
        if room is None:
            return
        member.room = None
        del self._members[key]
        self._colors_in_use[member.color] -= 1
        room.remove(key)
        room.presence.left(member, reason)
        partners, asked_it, it_asked = self.private_chats.remove_member(member)
        for partner in partners:
            partner.deliver(
                text.server_line("your private chat with %s ended: they left" % (member.nickname,))
            )
        for other in asked_it:
            other.deliver(
                text.server_line("your request to %s was cancelled: they left" % (member.nickname,))
            )
        for other in it_asked:
            other.deliver(
                text.server_line("%s withdrew their private chat request: they left" % (member.nickname,))
            )

    def rename(self, member, nickname):
        """
        Give C{member} a new nickname and tell its room; return why it cannot,
        or L{None}.
        """
        problem = self.nickname_problem(nickname, member)
        if problem is not None:
            return problem
        if member.room is None:
            return "only someone in the chat can change nickname"
        old_nickname = member.nickname
        old_key = text.nickname_key(old_nickname)
        new_key = text.nickname_key(nickname)
        del self._members[old_key]
        member.nickname = nickname
        self._members[new_key] = member
        room = member.room
        room.rekey(old_key, new_key)
        room.announce("%s is now known as %s" % (old_nickname, nickname))
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
            return "the message is empty: say something after the nickname"
        if not self.private_chats.may_message(sender, target):
            return (
                "%s takes private messages only in a private chat: ask with /request %s"
                % (target.nickname, target.nickname)
            )
        target.deliver(text.private_line("from", sender.nickname, message, text_style))
        sender.deliver(text.private_line("to", target.nickname, message, text_style))
        return None

    def announce(self, notice):
        """
        Tell every room something.
        """
        for room in self._rooms.values():
            room.announce(notice)


def _write_lines(member, lines):
    if lines:
        member.write(lines[0] if len(lines) == 1 else text.joined(lines))


def _presence_summary(joined, left):
    """
    C{"12 people joined, 11 left in the last 10 s"}, leaving out a zero.
    """
    if joined and left:
        what = "%s joined, %d left" % (_people(joined), left)
    else:
        what = "%s joined" % (_people(joined),) if joined else "%s left" % (_people(left),)
    return "%s in the last %d s" % (what, PRESENCE_WINDOW_SECONDS)


def _people(count):
    return "1 person" if count == 1 else "%d people" % (count,)


def _approval_request(member):
    return "%s (%s) asks to join: /approve %s or /deny %s" % (
        member.nickname,
        member.peer,
        member.nickname,
        member.nickname,
    )
