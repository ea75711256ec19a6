"""
The IRC connection: registration (CAP, PASS, NICK, USER) through the
admission of L{wazzap.core.admission}, channels that are the chat's rooms,
and IRC's commands turned into the chat's (L{wazzap.commands}).

It composes the same mechanics as the line connection: the output queue
(L{wazzap.net.output}) and the input gate (framing at 512 bytes, flood
pacing and holds, L{wazzap.net.input}).  Lines are decoded leniently, so a
client's invalid UTF-8 never raises.

Someone registered is in the chat, in C{#lobby} (the server joins them
there, as some networks auto-join a channel), and may JOIN and PART the
other rooms.  Every wazzap command is reachable as a raw command
(C{/quote BAN bob 1h}), or as a line sent to the service nick L{SERVICE_NICK}
(C{/msg wazzap /ban bob 1h}); an admin's KICK is a server kick.
"""

import socket

from twisted.internet import error
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from zope.interface import implementer

from wazzap import text
from wazzap.commands.inputs import Invocation, PrivateMessage, PublicMessage
from wazzap.core.admission import Admitted, NeedsPassword, Waiting, WrongPassword
from wazzap.core.identity import Identity, new_session_key
from wazzap.core.interfaces import IMember
from wazzap.core.rooms import MAX_TOPIC_BYTES, room_name_problem
from wazzap.flow import cancel
from wazzap.listeners.irc import wire
from wazzap.listeners.irc.render import IrcRenderer, prefix
from wazzap.listeners.line import grammar
from wazzap.listeners.session_user import SessionUser, address_of
from wazzap.net import tls
from wazzap.net.counts import REFUSED_REASON
from wazzap.net.input import IInputOwner, InputGate
from wazzap.net.limits import ConnectionRules
from wazzap.net.output import IOutputOwner, OutputQueue
from wazzap.failures import log_failure

#: The nick that runs what it is sent as a wazzap line (C{/help}, C{/ban ...}).
SERVICE_NICK = "wazzap"

#: Silence after which the server pings a client, and after which it drops it.
PING_AFTER_SECONDS = 90
DROP_AFTER_SECONDS = 150

#: Nicknames per 353 line: 20 of at most 16 characters keep it within 512 bytes.
NAMES_PER_LINE = 20

#: The name IRC clients show for the network (ISUPPORT NETWORK).
NETWORK = "wazzap"

#: ISUPPORT tokens (005) besides NETWORK.
ISUPPORT = (
    "CHANTYPES=#",
    "NICKLEN=16",
    "CHANNELLEN=31",
    "TOPICLEN=%d" % (MAX_TOPIC_BYTES,),
    "CASEMAPPING=ascii",
    "PREFIX=()",
    "CHANMODES=,,,t",
)

#: Commands a client may send before it is registered.
_BEFORE_REGISTRATION = {"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"}
#: What IRC clients send by themselves, which is no sign of the user: it
#: does not end their silence for --idle-timeout.
_KEEPALIVES = {"PING", "PONG", "AWAY", "ISON", "USERHOST", "WHO", "MODE", "CAP"}


class IrcLimits:
    """
    The server's limits (read live: a reload changes them in place), but
    IRC's line length.
    """

    max_line_bytes = wire.MAX_LINE_BYTES

    def __init__(self, limits):
        self._limits = limits

    def __getattr__(self, name):
        return getattr(self._limits, name)


@implementer(IMember, IOutputOwner, IInputOwner)
class IrcConnection(SessionUser, Protocol):
    """
    One IRC client: from CAP and NICK, through the channels, to QUIT.
    """

    log = Logger()

    #: The chat leaves out the echo of this client's own /me (Room.emote).
    shows_own_actions = True

    def __init__(self):
        self._identity = Identity(None)
        self.session = None
        self.peer = None
        self.session_key = new_session_key()
        self.renderer = None
        self.clear_text = None
        self._output = None
        self._input = None
        self._wanted_nickname = None
        self._user_given = False
        self._password = None
        self._negotiating = False
        self._deciding = False
        self._registered = False
        self._joined = False
        self._gone = False
        self._leave_reason = None
        self._record = None
        self._answer = None
        self._exact = b""
        self._login_timer = None
        self._ping_timer = None
        self._last_heard = None
        self._pinged = False
        self._idle_timer = None
        self._last_spoke = None

    # Protocol API

    def connectionMade(self):
        factory = self.factory
        self.renderer = factory.colored
        self.peer = address_of(self.transport.getPeer())
        if not tls.is_private(self.transport):
            self.clear_text = factory.clear_text
        self._output = OutputQueue(self, factory.rules)
        refusal = factory.connection_opened(self)
        if refusal is not None:
            self._leave_reason = REFUSED_REASON
            self._error(refusal.strip())
            return
        self._input = InputGate(self, factory.rules, factory.addresses.line_allowance(self.peer))
        self.log.info("IRC connection from {peer}", peer=self.peer)
        clock = factory.clock
        self._login_timer = clock.callLater(
            factory.limits.login_timeout_seconds, self._login_timed_out
        )
        self._last_heard = clock.seconds()
        self._ping_timer = clock.callLater(PING_AFTER_SECONDS, self._check_alive)
        self._when(factory.admission.check_address(self.peer), self._address_checked)

    def dataReceived(self, data):
        if self._input is None:
            return  # refused: nothing it sends is read
        self._last_heard = self.factory.clock.seconds()
        self._pinged = False
        self._input.feed(data)

    def connectionLost(self, reason=error.ConnectionDone):
        self._gone = True
        self._login_timer = cancel(self._login_timer)
        self._ping_timer = cancel(self._ping_timer)
        self._left(reason)

    # IInputOwner

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        command, params = wire.parse(line.decode("utf-8", "replace"))
        if not command:
            return
        if not self._registered and command not in _BEFORE_REGISTRATION:
            self._reply("451", command, "You have not registered")
            return
        if command not in _KEEPALIVES:
            self._spoke()
        handler = _HANDLERS.get(command)
        if handler is not None:
            self._exact = line
            handler(self, params)
            self._exact = b""
        elif self._registered and self.factory.commands.registry.find(command.lower()):
            # A wazzap command as a raw command: /quote BAN bob 1h.
            self._exact = line
            self._run_line(Invocation(command.lower(), " ".join(params)))
            self._exact = b""
        else:
            self._reply("421", command, "Unknown command")

    def lineLengthExceeded(self, line):
        self._reply("417", "Input line was too long (at most %d bytes)" % (wire.MAX_LINE_BYTES,))

    # IMember and the user API of wazzap.commands (with SessionUser's)

    def send(self, data):
        self._output.send(data)

    def close(self, reason, farewell):
        self._leave_reason = reason
        self._error(farewell)

    def quit(self, reason=None):
        self._leave_reason = "quit: " + reason if reason else "quit"
        self._error("Goodbye!")

    def ask(self, prompt, answer, secret=False):
        """
        Show C{prompt}; the text of the next PRIVMSG or NOTICE (to any
        target) is handed to C{answer}.
        """
        self.notice(prompt + " (send it as a message to %s)" % (SERVICE_NICK,))
        self._answer = answer

    def set_colors(self, on):
        self.renderer = self.factory.colored if on else self.factory.plain

    def admit(self):
        """
        Join the chat: admission, or an admin's /approve, let this user in.
        """
        self._login_timer = cancel(self._login_timer)
        self._join()

    # Writing

    def _write(self, data):
        """
        Send C{data} after whatever the outbox holds for this connection.
        """
        self.flush_output()
        self.send(data)

    def _reply(self, numeric, *params):
        """
        A numeric reply to this client; its last parameter is the trailing one.
        """
        head = ":%s %s %s" % (self.factory.server_name, numeric, self.nickname or "*")
        middle = " ".join(params[:-1])
        self._write(wire.lines("%s %s%s:" % (head, middle, " " if middle else ""), params[-1]))

    def _from_me(self, command, *params):
        """
        A message with this user as its source: the echo of its own JOIN, PART.
        """
        self._write(("%s %s %s\r\n" % (prefix(self.nickname), command, " ".join(params))).encode())

    def _error(self, message):
        """
        Tell the client ERROR C{message} and close, once.
        """
        if self.transport.disconnecting:
            return
        self._answer = None
        self._write(wire.lines("ERROR :", message))
        self._output.close()
        self.transport.loseConnection()

    # Timers

    def _check_alive(self):
        """
        Ping a client silent for L{PING_AFTER_SECONDS}; drop one silent for
        L{DROP_AFTER_SECONDS}.
        """
        clock = self.factory.clock
        silent = clock.seconds() - self._last_heard
        if silent >= DROP_AFTER_SECONDS:
            self._ping_timer = None
            self.disconnect("ping timeout: %d seconds" % (silent,))
            return
        if silent >= PING_AFTER_SECONDS and not self._pinged:
            self._pinged = True
            self._write(("PING :%s\r\n" % (self.factory.server_name,)).encode("utf-8"))
            wait = DROP_AFTER_SECONDS - silent
        elif self._pinged:
            wait = DROP_AFTER_SECONDS - silent
        else:
            wait = PING_AFTER_SECONDS - silent
        self._ping_timer = clock.callLater(wait, self._check_alive)

    def _login_timed_out(self):
        self._login_timer = None
        self.disconnect("login timeout", "no registration in time: goodbye")

    def _approval_timed_out(self):
        self._login_timer = None
        self.factory.admission.stop_waiting(self.nickname)
        self.disconnect("no approval in time", "no admin approved you in time: goodbye")

    # Registration

    def _when(self, deferred, then, *args):
        """
        Hold input until C{deferred} fires, then call C{then(result, *args)}
        if still connected; a failure is logged and ends the connection
        with an apology.
        """
        deferred.addCallback(self._unless_gone, then, args).addErrback(self._broke)
        self.hold_input_until(deferred)

    def _unless_gone(self, result, then, args):
        if not self._gone:
            then(result, *args)

    def _broke(self, failure):
        log_failure(failure, self.log, "serving " + (self.nickname or self.peer))
        if not self._gone:
            self.disconnect("server error", "sorry, something went wrong on the server")

    def _address_checked(self, refusal):
        if refusal is not None:
            self._leave_reason = refusal.reason
            self._error(refusal.why)

    def irc_CAP(self, params):
        """
        CAP LS, REQ, LIST and END: no capabilities yet, so every request is refused.
        """
        subcommand = params[0].upper() if params else ""
        if subcommand == "LS":
            self._negotiating = not self._registered
            self._reply("CAP", "LS", "")
        elif subcommand == "LIST":
            self._reply("CAP", "LIST", "")
        elif subcommand == "REQ":
            self._negotiating = not self._registered
            self._reply("CAP", "NAK", params[-1] if len(params) > 1 else "")
        elif subcommand == "END":
            self._negotiating = False
            self._register_when_ready()
        else:
            self._reply("410", subcommand or "*", "Invalid CAP command")

    def irc_PASS(self, params):
        if self._registered:
            self._reply("462", "You may not reregister")
        elif not params:
            self._reply("461", "PASS", "Not enough parameters")
        else:
            self._password = params[-1]

    def irc_NICK(self, params):
        if not params or not params[0]:
            self._reply("431", "No nickname given")
            return
        nickname = params[0]
        if self._registered:
            self._run_line(Invocation("nick", nickname))
            return
        problem = text.nickname_problem(nickname)
        if problem is not None:
            self._reply("432", nickname, "Erroneous nickname: " + problem)
            return
        self._wanted_nickname = nickname
        self._register_when_ready()

    def irc_USER(self, params):
        if self._registered:
            self._reply("462", "You may not reregister")
        elif len(params) < 4:
            self._reply("461", "USER", "Not enough parameters")
        else:
            self._user_given = True
            self._register_when_ready()

    def _register_when_ready(self):
        if (
            self._registered
            or self._deciding
            or self._negotiating
            or not self._user_given
            or self._wanted_nickname is None
        ):
            return
        nickname, password = self._wanted_nickname, self._password
        account, colon, secret = (password or "").partition(":")
        if colon and text.nickname_problem(account) is None:
            nickname, password = account, secret  # PASS nick:password
        self._deciding = True
        admission = self.factory.admission
        self._when(admission.choose_nickname(nickname, self.peer, self), self._decided, password)

    def _decided(self, outcome, password=None):
        self._deciding = False
        if isinstance(outcome, Admitted):
            self.identify(
                nickname=outcome.nickname, account=outcome.account, is_admin=outcome.is_admin
            )
            self.admit()
        elif isinstance(outcome, NeedsPassword):
            self._password_needed(outcome, password)
        elif isinstance(outcome, WrongPassword):
            self._reply("464", "Password incorrect")
            self.disconnect("wrong password", "wrong nickname or password: goodbye")
        elif isinstance(outcome, Waiting):
            self.identify(nickname=outcome.nickname, account=outcome.account)
            self._wait_for_approval()
        elif outcome.close:
            self.disconnect(outcome.reason, outcome.why)
        else:
            self._reply("433", self._wanted_nickname, outcome.why)

    def _password_needed(self, outcome, password):
        nickname = outcome.nickname
        registered = "%s is registered: " % (outcome.account.nickname,)
        if password is None:
            self._reply(
                "433", nickname, registered + "connect with its password (PASS), or choose another"
            )
            return
        if self.clear_text is not None and not self.clear_text.allows_password(self, registered):
            self._reply("433", nickname, registered + "choose another nickname")
            return
        self._deciding = True
        checked = self.factory.admission.check_password(
            nickname, password, self.peer, self
        )
        self._when(checked, self._decided)

    def _wait_for_approval(self):
        self._deciding = True  # by an admin now: another NICK changes nothing
        self._login_timer = cancel(self._login_timer)
        admins = self.factory.admission.wait_for_approval(self)
        self.notice("This room needs an admin's approval to join; please wait.")
        if not admins:
            self.notice("No admin is online right now: you will be let in or turned away "
                        "when one decides.")
        self._login_timer = self.factory.clock.callLater(
            self.factory.limits.approval_timeout_seconds, self._approval_timed_out
        )

    def _join(self):
        factory = self.factory
        chat = factory.chat
        self.identify(color=chat.pick_color())
        room = chat.join(self)
        self._identity = None  # the session holds it now
        self._registered = self._joined = True
        nickname = self.nickname
        self._record_session()
        self.log.info("{peer} joined as {nickname} over IRC", peer=self.peer, nickname=nickname)
        self._welcome()
        self._joined_room(room)
        self._time_idleness()
        if self.is_admin:
            self.notice("You are an admin: /msg %s /help lists your commands." % (SERVICE_NICK,))
            waiting = chat.waiting()
            if waiting:
                self.notice("%d waiting to join: /msg %s /pending" % (len(waiting), SERVICE_NICK))
        before = set(chat.presence.rooms_of(self.session_key))
        self._tell_what_waited(lambda: self._rooms_entered(before))

    def _welcome(self):
        factory = self.factory
        server = factory.server_name
        nickname = self.nickname
        self._reply("001", "Welcome to the %s IRC network, %s" % (NETWORK, nickname))
        self._reply("002", "Your host is %s, running wazzap" % (server,))
        self._reply("003", "This server is wazzap, the terminal chat")
        self._reply("004", server, "wazzap", "i", "t", "")
        self._reply("005", *ISUPPORT, "NETWORK=" + NETWORK, "are supported by this server")
        motd = factory.motd_lines
        if not motd:
            self._reply("422", "MOTD File is missing")
            return
        self._reply("375", "- %s Message of the day -" % (server,))
        for line in motd:
            self._reply("372", "- " + line)
        self._reply("376", "End of /MOTD command.")

    def _rooms_entered(self, before):
        """
        Tell the client of the rooms it is in now and was not in C{before}.
        """
        chat = self.factory.chat
        for name in chat.presence.rooms_of(self.session_key):
            if name not in before:
                self._joined_room(chat.find_room(name))

    def _joined_room(self, room):
        self._from_me("JOIN", room.name)
        self._topic(room)
        self._names(room)

    def _topic(self, room):
        if room.topic:
            self._reply("332", room.name, room.topic)
        else:
            self._reply("331", room.name, "No topic is set")

    def _names(self, room):
        nicknames = room.nicknames()
        # Several 353 lines for a big room, each within 512 bytes.
        line, lines = [], []
        for nickname in nicknames:
            line.append(nickname)
            if len(line) == NAMES_PER_LINE:
                lines.append(line)
                line = []
        if line or not lines:
            lines.append(line)
        for names in lines:
            self._reply("353", "=", room.name, " ".join(names))
        self._reply("366", room.name, "End of /NAMES list.")

    # After registration

    def _run_line(self, parsed):
        self.factory.commands.dispatch(self, parsed)

    def _room_named(self, name):
        """
        The room called C{name}, or L{None} after telling the client 403.
        """
        room = self.factory.chat.find_room(name)
        if room is None:
            self._reply("403", name, "No such channel")
        return room

    def irc_PING(self, params):
        token = params[-1] if params else self.factory.server_name
        server = self.factory.server_name
        self._write(wire.lines(":%s PONG %s :" % (server, server), token))

    def irc_PONG(self, params):
        pass  # any line shows the client is alive: dataReceived noted it

    def irc_QUIT(self, params):
        reason = params[-1] if params else ""
        muted = self._registered and self.factory.bans.mutes.muted_for(self)
        self.quit(None if muted else text.short_reason(text.sanitize(wire.strip_formatting(reason))))

    def irc_JOIN(self, params):
        if not params:
            self._reply("461", "JOIN", "Not enough parameters")
            return
        chat = self.factory.chat
        for name in params[0].split(","):
            if name == "0":
                continue  # "part every channel": one is always in #lobby here
            room = chat.find_room(name)
            if room is not None and self in room:
                continue
            problem = room_name_problem(name)
            if problem is not None:
                self._reply("403", name, "No such channel: " + problem)
                continue
            problem = chat.enter(self, name)
            if problem is not None:
                self._reply("405", name, "Cannot join: " + problem)
                continue
            room = chat.find_room(name)
            self._joined_room(room)
            if chat.replay is not None:
                chat.replay.entered(self, room)

    def irc_PART(self, params):
        if not params:
            self._reply("461", "PART", "Not enough parameters")
            return
        chat = self.factory.chat
        reason = params[1] if len(params) > 1 else ""
        if self.factory.bans.mutes.muted_for(self):
            reason = ""  # shown to the room: a muted user parts without one
        reason = text.short_reason(text.sanitize(wire.strip_formatting(reason)))
        for name in params[0].split(","):
            room = self._room_named(name)
            if room is None:
                continue
            if self not in room:
                self._reply("442", room.name, "You're not on that channel")
                continue
            before = set(chat.presence.rooms_of(self.session_key))
            problem = chat.part(self, room, reason)
            if problem is not None:
                self._reply("442", room.name, "Cannot part: " + problem)
                continue
            self._from_me("PART", room.name)
            self._rooms_entered(before)

    def irc_PRIVMSG(self, params, notice=False):
        if len(params) < 2 or not params[1]:
            if not notice:
                self._reply("412" if len(params) == 1 else "411", "No text to send")
            return
        message = params[1]
        self._exact = message.encode("utf-8")  # a password is read exactly as sent
        if self._answer is not None:
            answer, self._answer = self._answer, None
            answer(message)
            return
        action = wire.action_of(message)
        if action is None and wire.is_ctcp(message):
            return  # VERSION, PING and the like: nobody here answers them
        said = text.sanitize(wire.strip_formatting(message if action is None else action)).strip()
        if not said:
            return
        for target in params[0].split(","):
            self._message(target, said, action is not None, notice)

    def irc_NOTICE(self, params):
        self.irc_PRIVMSG(params, notice=True)

    def _message(self, target, said, is_action, notice):
        chat = self.factory.chat
        if target.startswith("#"):
            room = chat.find_room(target)
            if room is None or self not in room:
                if not notice:
                    self._reply("404" if room else "403", target, "Cannot send to channel")
                return
            chat.enter(self, room.name)  # where plain text goes: this room
            self._run_line(Invocation("me", said) if is_action else PublicMessage(said))
        elif target.lower() == SERVICE_NICK:
            self._run_line(grammar.parse(said))
        elif is_action:
            self._run_line(PrivateMessage(target, "* %s %s" % (self.nickname, said)))
        else:
            self._run_line(PrivateMessage(target, said))

    def irc_TOPIC(self, params):
        if not params:
            self._reply("461", "TOPIC", "Not enough parameters")
            return
        room = self._room_named(params[0])
        if room is None:
            return
        if len(params) == 1:
            self._topic(room)
            return
        topic = text.sanitize(wire.strip_formatting(params[1])).strip()
        self._run_line(Invocation("topic", "%s %s" % (room.name, topic or "-")))

    def irc_NAMES(self, params):
        if not params:
            self._reply("366", "*", "End of /NAMES list.")
            return
        for name in params[0].split(","):
            room = self.factory.chat.find_room(name)
            if room is None:
                self._reply("366", name, "End of /NAMES list.")
            else:
                self._names(room)

    def irc_LIST(self, params):
        self._reply("321", "Channel", "Users  Name")
        for room in self.factory.chat.rooms():
            self._reply("322", room.name, str(len(room)), room.topic)
        self._reply("323", "End of /LIST")

    def irc_WHO(self, params):
        mask = params[0] if params else "*"
        chat = self.factory.chat
        room = chat.find_room(mask) if mask.startswith("#") else None
        if room is not None:
            people = [(room.name, nickname) for nickname in room.nicknames()]
        else:
            member = chat.find(mask)
            people = [("*", member.nickname)] if member is not None else []
        server = self.factory.server_name
        for channel, nickname in people:
            self._reply(
                "352", channel, nickname, "wazzap", server, nickname, "H", "0 " + nickname
            )
        self._reply("315", mask, "End of /WHO list.")

    def irc_WHOIS(self, params):
        if not params:
            self._reply("431", "No nickname given")
            return
        nickname = params[-1]
        member = self.factory.chat.find(nickname)
        if member is None:
            self._reply("401", nickname, "No such nick/channel")
            self._reply("318", nickname, "End of /WHOIS list.")
            return
        nickname = member.nickname
        rooms = " ".join(room.name for room in self.factory.chat.rooms_of(member))
        self._reply("311", nickname, nickname, "wazzap", "*", nickname)
        if rooms:
            self._reply("319", nickname, rooms)
        self._reply("312", nickname, self.factory.server_name, "wazzap")
        if member.is_admin:
            self._reply("313", nickname, "is an admin")
        self._reply("318", nickname, "End of /WHOIS list.")

    def irc_MODE(self, params):
        if not params:
            self._reply("461", "MODE", "Not enough parameters")
            return
        target = params[0]
        if target.startswith("#"):
            room = self._room_named(target)
            if room is None:
                return
            if len(params) == 1:
                self._reply("324", room.name, "+t", "")
            elif params[1].lstrip("+") == "b":
                self._reply("368", room.name, "End of channel ban list")
            else:
                self._reply("482", room.name, "Channel modes are not set here")
        elif target.lower() == (self.nickname or "").lower():
            self._reply("221", "+i")
        else:
            self._reply("502", "Cannot change mode for other users")

    def irc_KICK(self, params):
        if len(params) < 2:
            self._reply("461", "KICK", "Not enough parameters")
            return
        room = self._room_named(params[0])
        if room is None:
            return
        if not self.is_admin:
            self._reply("482", room.name, "You're not an admin: only admins kick")
            return
        if self.factory.chat.find(params[1]) is None:
            self._reply("401", params[1], "No such nick/channel")
            return
        reason = params[2] if len(params) > 2 else ""
        self._run_line(Invocation("kick", "%s %s" % (params[1], reason)))

    def irc_AWAY(self, params):
        self._reply("306" if params and params[0] else "305", "Away is not kept here")

    def irc_ISON(self, params):
        chat = self.factory.chat
        online = [member.nickname for member in map(chat.find, " ".join(params).split()) if member]
        self._reply("303", " ".join(online))

    def irc_USERHOST(self, params):
        chat = self.factory.chat
        found = [chat.find(nickname) for nickname in params[:5]]
        self._reply(
            "302", " ".join("%s=+%s@wazzap" % (m.nickname, m.nickname) for m in found if m)
        )


_HANDLERS = {
    name[len("irc_") :]: method
    for name, method in vars(IrcConnection).items()
    if name.startswith("irc_")
}


class IrcFactory(ServerFactory):
    """
    The IRC listener's factory, around the server's L{wazzap.server.ChatFactory}
    (C{chat_factory}): the same chat, commands, accounts, admission, per-address
    limits and counts, and its connections among the server's, so a
    shutdown or a reload reaches them too.
    """

    protocol = IrcConnection

    def __init__(self, chat_factory, server_name=None):
        self.chat_factory = chat_factory
        self.server_name = server_name or socket.gethostname()
        self.chat = chat_factory.chat
        self.commands = chat_factory.commands
        self.accounts = chat_factory.accounts
        self.bans = chat_factory.bans
        self.admission = chat_factory.admission
        self.addresses = chat_factory.addresses
        self.clock = chat_factory.clock
        self.limits = chat_factory.limits
        self.rules = ConnectionRules(
            chat_factory.clock,
            IrcLimits(chat_factory.limits),
            chat_factory.congestion,
            chat_factory.counts,
        )
        nickname_of = self.chat.presence.nickname_of
        self.colored = IrcRenderer(self.server_name, nickname_of, colors=True)
        self.plain = IrcRenderer(self.server_name, nickname_of, colors=False)

    @property
    def motd_lines(self):
        return self.chat_factory.motd_lines

    @property
    def clear_text(self):
        return self.chat_factory.clear_text

    def connection_opened(self, connection):
        return self.chat_factory.connection_opened(connection)

    def connection_closed(self, connection, reason):
        self.chat_factory.connection_closed(connection, reason)
