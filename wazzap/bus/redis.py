"""
Several wazzap processes as one server, through Redis.

What every process must agree on lives in Redis or goes through it:
- each room is a pub/sub channel, to which a line is published once and
  which a process hears only while it has members in the room; each
  process has a channel of its own for what goes to one session (private
  messages, notices) and for requests about its sessions (a kick, an
  approval);
- a nickname is a key holding the session key of its holder, taken with
  C{SET NX} and an expiry that the holder's process renews (a lease), freed
  by compare-and-delete;
- presence (who holds which nickname, who is in which room, who waits for
  approval, room topics) is told on one channel and mirrored by every
  process in a L{MemoryPresence}, so that C{/who}, C{/names} and C{/rooms}
  are answered at once, from memory.

Every key and channel starts with a prefix: pub/sub ignores Redis's
database number, so two deployments on one Redis must not share names.

Faults.  A process says it is alive every L{HEARTBEAT_SECONDS}; one silent
for L{SILENT_SECONDS} is taken for dead: its sessions leave everyone's
mirror, their rooms are told, and their nicknames are freed.  While Redis
cannot be reached, each process goes on serving its own people (rooms
deliver locally) and tells them.  On every (re)connection a process
renews its nicknames' leases, tells its whole presence and asks the others
for theirs.  A nickname that another process took meanwhile (possible only
once the lease lapsed, or for one taken while Redis was away) stays with
the holder of the key in Redis: the session here that lost it is closed
with a notice saying why, since two people cannot both be called alice.
"""

import json
from collections import Counter
from itertools import count

from twisted.application import service
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from wazzap.core import events
from wazzap.core.identity import Identity, process_of
from wazzap.core.interfaces import IPresence, IRemoteMember, IRoomBus
from wazzap.core.presence import MemoryPresence
from wazzap.core.rooms import room_key
from wazzap.text import nickname_key

#: The default of --redis-prefix.
DEFAULT_PREFIX = "wazzap:"

#: How often a process says it is alive, and renews its nicknames' leases.
HEARTBEAT_SECONDS = 3

#: A process not heard from for this long is taken for dead.
SILENT_SECONDS = 15

#: How long a nickname stays held once its process stops renewing it.
LEASE_SECONDS = 30

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the new nickname's key, then the old one's (or none); ARGV: the
# session key, the lease in milliseconds.  1 if the session now holds the new
# nickname (and no longer the old), else 0.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] and KEYS[2] ~= KEYS[1] and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
"""

# KEYS: nicknames' keys; ARGV: the lease in milliseconds, then the session
# key for each.  Renews each lease held, takes each that is free, and
# returns the positions (from 1) of those another session holds.
_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if holder == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
  elseif not holder then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
  else
    table.insert(lost, i)
  end
end
return lost
"""


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _identity(record):
    nickname, account, is_admin, color, address = record
    return Identity(nickname, account, bool(is_admin), color, address)


def _record(identity):
    return [identity.nickname, identity.account, identity.is_admin, identity.color, identity.address]


class Cluster(service.MultiService):
    """
    This process among the others on one Redis: the link, the names of
    keys and channels, and the heartbeat; it hands what arrives to the
    L{RedisPresence} and the L{RedisBus}.
    """

    log = Logger()

    def __init__(self, link_factory, prefix, process, clock):
        """
        @param link_factory: called with (on_message, on_up, on_down),
            returns the L{wazzap.bus.redis_link.RedisLink} to use.
        @param prefix: of every key and channel (C{--redis-prefix}).
        @param process: called for this process's id, the first part of its
            session keys, as the service starts: twistd makes the services
            before it forks to become a daemon, and the child's id is not
            the parent's.
        """
        super().__init__()
        self.prefix = prefix
        self._process_id = process
        self.process = None
        self.clock = clock
        self.link = link_factory(self._received, self._up, self._down)
        self.link.setServiceParent(self)
        self.presence_channel = prefix + "presence"
        self.presence = None
        self.bus = None
        # Messages that arrived while one before them is still taking
        # effect (see L{IPresenceObserver.moderation_changed}), in order.
        self._backlog = None
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self.link.subscribe(self.presence_channel)

    def make_presence(self):
        """
        The L{RedisPresence} of this process.
        """
        return RedisPresence(self)

    def make_bus(self, local, presence):
        """
        The L{RedisBus} of this process, over its C{local} bus.
        """
        return RedisBus(self, local, presence)

    @property
    def up(self):
        return self.link.up

    def room_channel(self, room):
        return self.prefix + "room:" + room_key(room)

    def process_channel(self, process):
        return self.prefix + "process:" + process

    def nickname_key(self, nickname):
        return self.prefix + "nick:" + nickname_key(nickname)

    @property
    def rooms_key(self):
        return self.prefix + "rooms"

    def publish(self, channel, message):
        """
        Publish C{message} (JSON-able) on C{channel}; a Deferred (see
        L{RedisLink.execute}).
        """
        return self.link.publish(channel, _dumps(message))

    def to_process(self, process, message):
        return self.publish(self.process_channel(process), message)

    def startService(self):
        self.process = self._process_id()
        self.link.subscribe(self.process_channel(self.process))
        super().startService()
        self._beat.start(HEARTBEAT_SECONDS, now=False)

    def stopService(self):
        if self._beat.running:
            self._beat.stop()
        if self.link.up:
            # Gone on purpose: the others need not wait to notice.
            self.publish(self.presence_channel, ["bye", self.process]).addErrback(
                lambda _: None
            )
        return super().stopService()

    def _heartbeat(self):
        self.presence.heartbeat()

    def _received(self, channel, message):
        if self._backlog is not None:
            self._backlog.append((channel, message))
            return
        taking_effect = self._take(channel, message)
        if isinstance(taking_effect, defer.Deferred) and not taking_effect.called:
            self._backlog = []
            taking_effect.addBoth(self._took_effect)

    def _took_effect(self, result):
        backlog, self._backlog = self._backlog, None
        for position, (channel, message) in enumerate(backlog):
            self._received(channel, message)
            if self._backlog is not None:
                # Held again: what is left waits behind it.
                self._backlog.extend(backlog[position + 1 :])
                break

    def _take(self, channel, message):
        """
        Hand C{message} to the presence or the bus; what the presence
        returns (a Deferred when the message takes a moment to take effect).
        """
        try:
            value = json.loads(message)
            if channel == self.presence_channel:
                return self.presence.received(value)
            if channel.startswith(self.prefix + "process:"):
                if value[0] == "e":
                    self.bus.deliver_direct(value[1], events.unpack(value[2]), value[3])
                else:
                    self.presence.asked(value[1], value[2], value[3])
            else:
                room, exclude, heard_in, packed, process, line = value
                self.bus.deliver(
                    room, events.unpack(packed), exclude, tuple(heard_in), process, line
                )
        except (ValueError, TypeError, IndexError, KeyError, AttributeError):
            self.log.warn(
                "ignored a message on {channel} that is not wazzap's: {message!r}",
                channel=channel,
                message=message[:200],
            )
        except Exception:
            # A bug here, not in the message: logged, and the link (and
            # the other messages of this read) go on.
            self.log.failure("taking a message on {channel}", channel=channel)
        return None

    def _up(self):
        self.presence.connected()

    def _down(self):
        self.bus.link_lost()
        self.presence.disconnected()


@implementer(IRemoteMember)
class RemoteMember:
    """
    A session of another process, as this one sees it; what is done to it
    is carried to its process.
    """

    #: No renderer here: what it is told goes to its own process.
    renderer = None

    def __init__(self, presence, session_key, identity):
        self._presence = presence
        self.session_key = session_key
        self.identity = identity
        self.joined = False
        self.requires_consent = False

    nickname = property(lambda self: self.identity.nickname)
    account = property(lambda self: self.identity.account)
    is_admin = property(lambda self: self.identity.is_admin)
    color = property(lambda self: self.identity.color)
    peer = property(lambda self: self.identity.address)

    def notice(self, text):
        self._presence.bus.direct(self.session_key, events.Notice(text))

    def disconnect(self, reason, farewell=None):
        self._presence.ask(self.session_key, "close", [reason, farewell])

    def admit(self):
        self._presence.ask(self.session_key, "admit", None)

    def consent(self, change, session_key, *arguments):
        self._presence.ask(self.session_key, "consent", [change, session_key, *arguments])


@implementer(IPresence)
class RedisPresence:
    """
    L{IPresence} for every process on one Redis: a mirror of all of them
    in memory, kept by what each tells on the presence channel, with
    nicknames won in Redis.
    """

    log = Logger()

    def __init__(self, cluster):
        self._cluster = cluster
        cluster.presence = self
        self._mirror = MemoryPresence()
        self._observer = None
        self._remote = {}  # session key of another process -> RemoteMember
        self._identities = {}  # session key here -> Identity, once joined
        self._heard = {}  # process -> when it was last heard
        self._claims = count()
        self._claiming = {}  # session key here -> number of its claim in flight
        self._consenting = set()  # session keys here that set /consent on
        self._was_up = False
        self.bus = None

    # What this process asks

    def observe(self, observer):
        self._observer = observer

    def available(self, nickname, session_key=None):
        holder = self._mirror.locate(nickname)
        if not self._cluster.up:
            return defer.succeed(holder is None or holder == session_key)
        d = self._cluster.link.execute("GET", self._cluster.nickname_key(nickname))
        return d.addCallback(lambda held: held is None or held == session_key)

    def claim(self, session_key, nickname):
        return self._win(session_key, nickname, renaming=False)

    def rename(self, session_key, nickname):
        return self._win(session_key, nickname, renaming=True)

    def _win(self, session_key, nickname, renaming):
        mirror = self._mirror
        old = mirror.nickname_of(session_key)
        holder = mirror.locate(nickname)
        if (renaming and old is None) or (holder is not None and holder != session_key):
            return defer.succeed(False)
        if not self._cluster.up:
            # Taken here for now; the lease is asked for on reconnecting.
            return defer.succeed(self._held(session_key, nickname))
        number = self._claiming[session_key] = next(self._claims)
        cluster = self._cluster
        keys = [cluster.nickname_key(nickname)]
        if old is not None:
            keys.append(cluster.nickname_key(old))
        d = cluster.link.execute(
            "EVAL", _CLAIM, len(keys), *keys, session_key, LEASE_SECONDS * 1000
        )

        def answered(won):
            if self._claiming.get(session_key) != number:
                # Released while Redis answered: give it back.
                if won:
                    self._give_back(session_key, nickname)
                return False
            del self._claiming[session_key]
            return bool(won) and self._held(session_key, nickname)

        def failed(failure):
            self._claiming.pop(session_key, None)
            self.log.warn("could not ask Redis for {nickname}: {why}", nickname=nickname,
                          why=failure.getErrorMessage())
            return self._cluster.up is False and self._held(session_key, nickname)

        return d.addCallbacks(answered, failed)

    def _held(self, session_key, nickname):
        mirror = self._mirror
        holder = mirror.locate(nickname)
        if holder is not None and holder != session_key:
            # Redis says this session won it: the mirror heard late.
            mirror.release(holder)
        held = mirror.hold(session_key, nickname)
        self._tell(["claim", session_key, nickname])
        return held

    def _give_back(self, session_key, nickname):
        cluster = self._cluster
        cluster.link.execute(
            "EVAL", _RELEASE, 1, cluster.nickname_key(nickname), session_key
        ).addErrback(lambda _: None)

    def describe(self, session_key, identity):
        self._identities[session_key] = identity
        self._tell(["who", session_key, _record(identity)])

    def release(self, session_key):
        nickname = self._mirror.nickname_of(session_key)
        self._claiming.pop(session_key, None)
        self._identities.pop(session_key, None)
        self._forget(session_key)
        if nickname is not None and self._cluster.up:
            # A session of another process is released here when its owner
            # logs in on this one: its process closes it.
            self._give_back(session_key, nickname)
        self._tell(["release", session_key])

    def locate(self, nickname):
        return self._mirror.locate(nickname)

    def nickname_of(self, session_key):
        return self._mirror.nickname_of(session_key)

    def enter(self, room, session_key):
        self._mirror.enter(room, session_key)
        self._tell(["enter", room, session_key])

    def exit(self, room, session_key):
        self._mirror.exit(room, session_key)
        self._tell(["exit", room, session_key])

    def members_of(self, room):
        return self._mirror.members_of(room)

    def count(self, room):
        return self._mirror.count(room)

    def rooms_of(self, session_key):
        return self._mirror.rooms_of(session_key)

    def wait_for_approval(self, session_key, address):
        self._mirror.wait_for_approval(session_key, address)
        self._tell(["wait", session_key, self._mirror.nickname_of(session_key), address])

    def stop_waiting(self, session_key):
        waited = self._mirror.stop_waiting(session_key)
        if waited:
            self._tell(["unwait", session_key])
        return waited

    def waiting(self):
        return self._mirror.waiting()

    def waiting_from(self, address):
        return self._mirror.waiting_from(address)

    def remote(self, session_key):
        return self._remote.get(session_key)

    def remote_members(self):
        return [member for member in self._remote.values() if member.joined]

    def set_consent(self, session_key, required):
        if required:
            self._consenting.add(session_key)
        else:
            self._consenting.discard(session_key)
        self._tell(["consent", session_key, required])

    def describe_room(self, name, topic, locked):
        cluster = self._cluster
        if cluster.up:
            cluster.link.execute(
                "HSET", cluster.rooms_key, room_key(name), _dumps([name, topic, locked])
            ).addErrback(lambda _: None)
        self._tell(["room", name, topic, locked])

    def forget_room(self, name):
        cluster = self._cluster
        if cluster.up:
            cluster.link.execute("HDEL", cluster.rooms_key, room_key(name)).addErrback(
                lambda _: None
            )

    def moderation_changed(self, what):
        self._tell(["moderation", what])

    def ask(self, session_key, request, argument):
        """
        Ask the process of C{session_key} for C{request} about it (see
        L{IPresenceObserver.asked}).
        """
        asked = self._cluster.to_process(
            process_of(session_key), ["ask", session_key, request, argument]
        )
        asked.addErrback(
            lambda failure: self.log.warn(
                "could not ask for {request} of {session}: {why}",
                request=request,
                session=session_key,
                why=failure.getErrorMessage(),
            )
        )

    def _tell(self, message):
        """
        Tell the other processes a change of this one's presence, when they
        can be reached: on reconnecting, the whole of it is told again.
        """
        cluster = self._cluster
        if cluster.up:
            message.insert(1, cluster.process)
            cluster.publish(cluster.presence_channel, message).addErrback(lambda _: None)

    def _forget(self, session_key):
        """
        Take C{session_key} out of the mirror; the names of the rooms it
        was in.
        """
        rooms = self._mirror.rooms_of(session_key)
        self._mirror.release(session_key)
        self._consenting.discard(session_key)
        member = self._remote.pop(session_key, None)
        if member is not None and self._observer is not None:
            self._observer.remote_left(member)
        return rooms

    # What the other processes tell

    def received(self, message):
        """
        Take C{message}, told on the presence channel by some process.
        """
        op, process = message[0], message[1]
        cluster = self._cluster
        if process == cluster.process:
            return
        if op == "alive" and process not in self._heard:
            # Given up for dead, yet alive (slow, or this process was):
            # its presence was dropped, so ask for it again.
            self._tell(["hello"])
        self._heard[process] = cluster.clock.seconds()
        handler = getattr(self, "_on_" + op, None)
        if handler is not None:
            return handler(process, *message[2:])
        return None

    def _on_alive(self, process):
        pass

    def _on_hello(self, process):
        self._tell_state()

    def _on_bye(self, process):
        self._heard.pop(process, None)
        self._drop_process(process, told=False)

    def _on_claim(self, process, session_key, nickname):
        mirror = self._mirror
        holder = mirror.locate(nickname)
        if holder is not None and holder != session_key:
            if process_of(holder) == self._cluster.process:
                # Redis gave it to this process's session; the other's
                # process finds that out as it renews its leases.
                return
            mirror.release(holder)
        mirror.hold(session_key, nickname)
        member = self._remote.get(session_key)
        if member is None:
            self._remote[session_key] = RemoteMember(self, session_key, Identity(nickname))
        elif member.nickname != nickname:
            member.identity = Identity(
                nickname, member.account, member.is_admin, member.color, member.peer
            )

    def _on_who(self, process, session_key, identity):
        member = self._remote.get(session_key)
        if member is None:
            member = self._remote[session_key] = RemoteMember(self, session_key, None)
        member.identity = _identity(identity)
        member.joined = True

    def _on_release(self, process, session_key):
        rooms = self._forget(session_key)
        self._rooms_left(rooms)

    def _on_enter(self, process, room, session_key):
        self._mirror.enter(room, session_key)
        if self._observer is not None:
            self._observer.room_entered(room)

    def _on_exit(self, process, room, session_key):
        self._mirror.exit(room, session_key)
        self._rooms_left([room])

    def _on_wait(self, process, session_key, nickname, address):
        self._on_claim(process, session_key, nickname)
        member = self._remote[session_key]
        member.identity = Identity(nickname, address=address)
        self._mirror.wait_for_approval(session_key, address)

    def _on_unwait(self, process, session_key):
        self._mirror.stop_waiting(session_key)

    def _on_consent(self, process, session_key, required):
        member = self._remote.get(session_key)
        if member is not None:
            member.requires_consent = required

    def _on_room(self, process, name, topic, locked):
        if self._observer is not None:
            self._observer.room_described(name, topic, locked)

    def _on_moderation(self, process, what):
        if self._observer is not None:
            return self._observer.moderation_changed(what)
        return None

    def _on_state(self, process, sessions):
        known = {key for key in self._remote if process_of(key) == process}
        told = set()
        for session_key, nickname, identity, rooms, address, consenting in sessions:
            told.add(session_key)
            self._on_claim(process, session_key, nickname)
            if identity is not None:
                self._on_who(process, session_key, identity)
            self._on_consent(process, session_key, consenting)
            was_in = self._mirror.rooms_of(session_key)
            for room in rooms:
                if room not in was_in:
                    self._on_enter(process, room, session_key)
            for room in was_in:
                if room not in rooms:
                    self._on_exit(process, room, session_key)
            if address is not None:
                self._mirror.wait_for_approval(session_key, address)
            else:
                self._mirror.stop_waiting(session_key)
        for session_key in known - told:
            self._on_release(process, session_key)

    def _rooms_left(self, rooms):
        if self._observer is not None:
            for room in rooms:
                self._observer.room_exited(room)

    def asked(self, session_key, request, argument):
        """
        Another process asks for C{request} about C{session_key}, of this one.
        """
        if self._observer is not None:
            self._observer.asked(session_key, request, argument)

    # Keeping up with the others

    def connected(self):
        """
        Redis is reachable (again): renew every lease held here, tell the
        whole presence of this process and ask for the others'.
        """
        cluster = self._cluster
        now = cluster.clock.seconds()
        for process in self._heard:
            # Heard nothing while away; give them the time to answer.
            self._heard[process] = now
        # The leases first: what was lost meanwhile is not told as held.
        self._renew().addBoth(lambda _: (self._tell_state(), self._tell(["hello"])))
        cluster.link.execute("HGETALL", cluster.rooms_key).addCallbacks(
            self._rooms_described, lambda _: None
        )
        if self._was_up and self._observer is not None:
            self._observer.reachable(True)
        self._was_up = True

    def disconnected(self):
        if self._observer is not None:
            self._observer.reachable(False)

    def _rooms_described(self, rooms):
        if self._observer is None or not isinstance(rooms, dict):
            return
        for record in rooms.values():
            try:
                name, topic, locked = json.loads(record)
                room_key(name)
            except (ValueError, TypeError, AttributeError):
                self.log.warn("ignored a room in Redis that is not wazzap's: {record!r}",
                              record=record[:200])
                continue
            self._observer.room_described(name, topic, locked)

    def _local_sessions(self):
        """
        (session key, nickname) of every session of this process holding one.
        """
        process = self._cluster.process
        mirror = self._mirror
        return [
            (key, nickname)
            for key, nickname in mirror.held()
            if process_of(key) == process
        ]

    def _tell_state(self):
        mirror = self._mirror
        waiting = mirror.waiting_addresses()
        sessions = []
        for key, nickname in self._local_sessions():
            identity = self._identities.get(key)
            sessions.append(
                [
                    key,
                    nickname,
                    None if identity is None else _record(identity),
                    mirror.rooms_of(key),
                    waiting.get(key),
                    key in self._consenting,
                ]
            )
        self._tell(["state", sessions])

    def others_alive(self):
        """
        Whether another process is heard from.
        """
        return bool(self._heard)

    def heartbeat(self):
        """
        Say this process is alive, renew its leases, and take for dead the
        processes not heard from for L{SILENT_SECONDS}.
        """
        cluster = self._cluster
        if cluster.up:
            self._tell(["alive"])
            self._renew()
        silent_since = cluster.clock.seconds() - SILENT_SECONDS
        for process, heard in list(self._heard.items()):
            if heard < silent_since:
                del self._heard[process]
                self.log.info("process {process} stopped answering", process=process)
                self._drop_process(process, told=cluster.up)

    def _drop_process(self, process, told):
        """
        Forget every session of C{process}; with C{told}, tell the rooms
        they were in here, and free their nicknames in Redis.
        """
        for session_key in [key for key in self._remote if process_of(key) == process]:
            nickname = self._mirror.nickname_of(session_key)
            rooms = self._forget(session_key)
            if told and nickname is not None:
                self._give_back(session_key, nickname)
                if self._observer is not None:
                    self._observer.remote_gone(nickname, rooms)
            else:
                self._rooms_left(rooms)

    def _renew(self):
        """
        Renew the leases of this process's nicknames; a Deferred firing once
        Redis answered (and what was lost is dealt with), or failed to.
        """
        sessions = self._local_sessions()
        if not sessions:
            return defer.succeed(None)
        cluster = self._cluster
        keys = [cluster.nickname_key(nickname) for _, nickname in sessions]
        holders = [key for key, _ in sessions]
        return cluster.link.execute(
            "EVAL", _RENEW, len(keys), *keys, LEASE_SECONDS * 1000, *holders
        ).addCallbacks(self._renewed, lambda _: None, callbackArgs=(sessions,))

    def _renewed(self, lost, sessions):
        taken = False
        for position in lost or ():
            session_key, nickname = sessions[position - 1]
            if self._mirror.nickname_of(session_key) != nickname:
                continue  # renamed meanwhile
            self.log.info(
                "{nickname} was taken on another process while Redis was away",
                nickname=nickname,
            )
            # Its rooms stay until its session leaves them.
            self._mirror.drop_nickname(session_key)
            taken = True
            if self._observer is not None:
                self._observer.nickname_lost(session_key)
        if taken:
            # Who holds those nicknames now is told again by every process.
            self._tell(["hello"])


@implementer(IRoomBus)
class RedisBus:
    """
    L{IRoomBus} over Redis: what a room publishes goes through its channel,
    in the order Redis gives every process, to the processes subscribed to
    it (those with members there).  While no other process is there (or
    Redis cannot be reached) it is delivered here without Redis.

    Not when only the room's members seem to be here: this process's
    mirror of presence learns of a newcomer elsewhere a moment after the
    newcomer's process subscribed, and a line said in that moment would not
    reach them.  Redis itself never misses a subscriber it has taken.

    What this process published comes back to it through Redis too, so
    that its members hear a room in the same order as everyone else.  Until
    it has, what goes to one of them alone goes the same way (through this
    process's channel), so as not to overtake it; and a member who joins
    meanwhile does not hear what was published before it joined.
    """

    def __init__(self, cluster, local, presence):
        """
        @param local: the L{wazzap.bus.local.LocalBus} of this process's
            members, to which what arrives is given.
        @param presence: the L{RedisPresence}, which counts every
            process's members of a room.
        """
        self._cluster = cluster
        cluster.bus = self
        presence.bus = self
        self._local = local
        self._presence = presence
        # Room -> messages this process published there, not yet back; and
        # how many it sent its own sessions through Redis, not yet back.
        self._in_flight = Counter()
        self._directs_in_flight = 0
        # Room -> {session key of a newcomer: how many of those it skips}.
        self._late = {}
        self._listener = None

    @property
    def outbox(self):
        return self._local.outbox

    @property
    def in_flight(self):
        """
        How many messages this process published that have not come back.
        """
        return sum(self._in_flight.values()) + self._directs_in_flight

    def join(self, room, member):
        self._local.join(room, member)
        self._cluster.link.subscribe(self._cluster.room_channel(room))
        if self._in_flight[room]:
            self._late.setdefault(room, {})[member.session_key] = self._in_flight[room]

    def leave(self, room, session_key):
        self._local.leave(room, session_key)
        if not self._local.local_members(room):
            self._cluster.link.unsubscribe(self._cluster.room_channel(room))
            # What is still on its way there will not come back.
            self._in_flight.pop(room, None)
            self._late.pop(room, None)

    def local_members(self, room):
        return self._local.local_members(room)

    def hear(self, listener):
        self._listener = listener

    def publish(self, room, event, exclude=None, heard_in=(), line=None):
        cluster = self._cluster
        here = self._local.local_members(room)
        alone = not self._presence.others_alive() and self._presence.count(room) <= len(here)
        # Not while lines of the room are on their way back: this one
        # would overtake them.
        if not cluster.up or (alone and not self._in_flight[room]):
            self._local.publish(room, event, exclude, heard_in)
            return
        if here:
            self._in_flight[room] += 1
        message = [room, exclude, list(heard_in), events.pack(event), cluster.process, line]
        cluster.publish(cluster.room_channel(room), message).addErrback(
            self._not_published, room, event, exclude, heard_in, bool(here)
        )

    def _not_published(self, failure, room, event, exclude, heard_in, counted):
        if counted:
            self._came_back(room)
        self._local.publish(room, event, exclude, heard_in)

    def link_lost(self):
        """
        Redis is gone: what this process published and had not heard back
        will not come back, and nobody waits for it any more.
        """
        self._in_flight.clear()
        self._directs_in_flight = 0
        self._late.clear()

    def _came_back(self, room):
        """
        One of this process's lines of C{room} came back, or never will:
        the newcomers who skip it, which it counts down.
        """
        if self._in_flight[room] > 1:
            self._in_flight[room] -= 1
        else:
            self._in_flight.pop(room, None)
        late = self._late.get(room)
        if not late:
            return ()
        skipping = list(late)
        for key in skipping:
            late[key] -= 1
            if not late[key]:
                del late[key]
        if not late:
            del self._late[room]
        return skipping

    def direct(self, session_key, event):
        cluster = self._cluster
        process = process_of(session_key)
        if not cluster.up:
            self._local.direct(session_key, event)
            return
        if process == cluster.process:
            local_members = self._local.local_members
            if not any(session_key in local_members(room) for room in self._in_flight):
                self._local.direct(session_key, event)
                return
            self._directs_in_flight += 1
        message = ["e", session_key, events.pack(event), cluster.process]
        cluster.to_process(process, message).addErrback(self._not_sent, session_key, event)

    def _not_sent(self, failure, session_key, event):
        if process_of(session_key) == self._cluster.process:
            self._directs_in_flight -= 1
            self._local.direct(session_key, event)

    def deliver(self, room, event, exclude, heard_in, process, line):
        """
        What Redis gives: C{event}, published to C{room} by C{process},
        which gave it the history line C{line} (or L{None}).
        """
        if line is not None and process != self._cluster.process and self._listener is not None:
            self._listener(room, event, line)
        if process == self._cluster.process:
            skipping = self._came_back(room)
            if skipping:
                self._local.publish_except(room, event, (exclude, *skipping), heard_in)
                return
        self._local.publish(room, event, exclude, heard_in)

    def deliver_direct(self, session_key, event, process):
        """
        What Redis gives: C{event}, sent to C{session_key} by C{process}.
        """
        if process == self._cluster.process:
            self._directs_in_flight -= 1
        self._local.direct(session_key, event)
