"""
The per-turn outbox: what rooms publish and what is sent to single sessions
during a reactor turn, handed out at the end of it.

Each room's batch is rendered once per renderer, and every member with that
renderer gets the same bytes; only a member with something of its own in
the turn (a line it sent, which it does not hear back, a notice or private
message, a join part-way through) gets a rendering of its own, assembled
from the same per-event bytes in the order things happened.  Either way a
member gets one C{send()} per turn, and nothing on a connection calls back
in to keep that order.

A member in several rooms reads one of them (its focus); what its other
rooms publish is rendered once more per renderer, naming the room, and
shared by every member who reads elsewhere.

What several members are each given alone, alike (a room's replay to those
who join it), is a L{Told}: rendered once per renderer, not once per member.
"""

from itertools import islice
from operator import itemgetter

from twisted.logger import Logger

_log = Logger()
_by_order = itemgetter(0)


class Told:
    """
    Events given alike to members one by one (L{Outbox.direct}), such as a
    room's replay to everyone who joins it in a turn: rendered once per
    renderer, for no recipient in particular, so only events that render
    the same for anyone (what rooms publish) belong in it.
    """

    __slots__ = ("events", "_rendered", "__weakref__")

    def __init__(self, told):
        self.events = tuple(told)
        self._rendered = {}

    def rendered(self, renderer):
        data = self._rendered.get(renderer)
        if data is None:
            data = self._rendered[renderer] = renderer.render(self.events, None)
        return data


class _Batch:
    """
    A room's events of this turn: C{entries} of (order, event, excluded
    session key), C{members} the room's session key -> member (read at the
    end of the turn), C{starts} the entry each newcomer hears from.
    """

    __slots__ = ("members", "entries", "starts", "odd")

    def __init__(self, members):
        self.members = members
        self.entries = []
        self.starts = {}
        # Keys for which the shared bytes are not right: those excluded
        # from an entry or who joined part-way.
        self.odd = set()


class Outbox:
    """
    Events of one turn, by room and by member, until L{flush_output}.
    """

    def __init__(self, flusher, focus=None):
        """
        @param flusher: the L{wazzap.flow.TurnFlusher} that calls
            L{flush_output} at the end of the turn.
        @param focus: session key -> the room its member is reading, kept by
            the chat for members in several rooms (one in a single room
            reads it); what comes from the member's other rooms is rendered
            naming its room.  Without it every room renders unnamed.
        """
        self._flusher = flusher
        self._focus = {} if focus is None else focus
        self._batches = {}
        self._directs = {}
        self._order = 0
        self._scheduled = False
        #: Events handed to members since the start, one line each on a
        #: line connection: counted per member and turn, never per line.
        self.delivered = 0

    def _next(self):
        """
        The place of the next event in this turn, which it makes sure ends
        with a flush.
        """
        if not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)
        self._order += 1
        return self._order

    def publish(self, room, members, event, exclude=None):
        """
        Give C{event} to C{members} (session key -> L{IMember}, the room's
        own mapping, looked at when the turn ends) but C{exclude}.
        """
        batch = self._batches.get(room)
        if batch is None:
            batch = self._batches[room] = _Batch(members)
        batch.entries.append((self._next(), event, exclude))
        if exclude is not None:
            batch.odd.add(exclude)

    def started(self, room, session_key):
        """
        The session just joined C{room}: it hears only what is published from
        now on.
        """
        batch = self._batches.get(room)
        if batch is not None and batch.entries:
            batch.starts[session_key] = len(batch.entries)
            batch.odd.add(session_key)

    def direct(self, member, event):
        """
        Give C{event} (or the events of a L{Told}) to C{member} alone, after
        what its rooms published so far.
        """
        order = self._next()
        pending = self._directs.get(member)
        if pending is None:
            self._directs[member] = [(order, event)]
        else:
            pending.append((order, event))

    def flush_member(self, member):
        """
        Send C{member} now what it has been given this turn: before it closes,
        or writes bytes of its own that must come after those.
        """
        key = member.session_key
        renderer = member.renderer
        mine = self._render_own(member, self._directs.pop(member, ()))
        focus = self._focus.get(key)
        for room, batch in self._batches.items():
            if batch.members.get(key) is member:
                entries = batch.entries
                start = batch.starts.get(key, 0)
                mine.extend(
                    (order, _render_from(renderer, event, room, focus))
                    for order, event, exclude in entries[start:]
                    if exclude != key
                )
                batch.starts[key] = len(entries)
                batch.odd.add(key)
        if mine:
            mine.sort(key=_by_order)
            self.delivered += len(mine)
            member.send(b"".join([data for _, data in mine]))

    def flush_output(self):
        """
        Hand out this turn's events: called by the L{TurnFlusher}.

        A member with events of its own gets everything in the order it
        happened; one in several rooms with nothing of its own gets each
        room's shared bytes one room after another (rooms are separate
        conversations), still in one send.
        """
        self._scheduled = False
        batches, self._batches = self._batches, {}
        # Those with a rendering of their own (what they were given alone)
        # get it at the end, one member at a time, with their share of each
        # room's renderings (C{heard}: [(entries, bytes of each, start)]):
        # a crowd joining in one turn would otherwise hold all its welcomes
        # and a piece per newcomer per join at once.
        directs, self._directs = self._directs, {}
        heard = {}
        gathered = {} if len(batches) > 1 else None
        focus = self._focus
        delivered = 0
        for room, batch in batches.items():
            entries = batch.entries
            count = len(entries)
            odd = batch.odd
            rendered = {}  # renderer -> (bytes of each entry, of them all)
            elsewhere = {}  # the same, for members reading another room
            for key, member in list(batch.members.items()):
                renderer = member.renderer
                if focus.get(key, room) == room:
                    parts = rendered.get(renderer)
                    if parts is None:
                        named = room if getattr(renderer, "names_every_room", False) else None
                        each = [renderer.render((event,), None, named) for _, event, _ in entries]
                        parts = rendered[renderer] = (each, b"".join(each))
                else:
                    parts = elsewhere.get(renderer)
                    if parts is None:
                        each = [renderer.render((event,), None, room) for _, event, _ in entries]
                        parts = elsewhere[renderer] = (each, b"".join(each))
                if member in directs:
                    rooms = heard.get(member)
                    if rooms is None:
                        rooms = heard[member] = []
                    rooms.append((entries, parts[0], batch.starts.get(key, 0)))
                    continue
                if key in odd:
                    start = batch.starts.get(key, 0)
                    mine = [
                        part
                        for entry, part in zip(entries[start:], parts[0][start:])
                        if entry[2] != key
                    ]
                    delivered += len(mine)
                    data = b"".join(mine)
                else:
                    delivered += count
                    data = parts[1]
                if gathered is not None:
                    gathered[member] = gathered.get(member, b"") + data
                elif data:
                    _send(member, data)
        for member in list(directs):
            pieces = self._render_own(member, directs.pop(member))
            key = member.session_key
            for entries, each, start in heard.pop(member, ()):
                pieces.extend(
                    (entry[0], part)
                    for entry, part in zip(islice(entries, start, None), islice(each, start, None))
                    if entry[2] != key
                )
            delivered += len(pieces)
            pieces.sort(key=_by_order)
            data = b"".join([data for _, data in pieces])
            if data:
                _send(member, data)
        if gathered:
            for member, data in gathered.items():
                _send(member, data)
        self.delivered += delivered

    def _render_own(self, member, pending):
        """
        What C{member} was given alone, as (order, bytes), each event
        rendered for it and each L{Told} as its shared bytes.
        """
        renderer, key = member.renderer, member.session_key
        mine = []
        for order, event in pending:
            if isinstance(event, Told):
                # Counted here beyond the one piece every entry counts as.
                self.delivered += len(event.events) - 1
                mine.append((order, event.rendered(renderer)))
            else:
                mine.append((order, renderer.render((event,), key)))
        return mine


def _render_from(renderer, event, room, focus):
    """
    C{event} of C{room} for a member reading the room C{focus}.
    """
    if (focus is None or focus == room) and not getattr(renderer, "names_every_room", False):
        return renderer.render((event,), None)
    return renderer.render((event,), None, room)


def _send(member, data):
    try:
        member.send(data)
    except Exception:
        # One member's failure must not keep the others' output back.
        _log.failure("sending output to {member}", member=member)
