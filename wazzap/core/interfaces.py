"""
The contracts between the core and what it talks to: members (connections,
test recorders), renderers, the room bus and presence.  Small on purpose, so
that another listener (IRC, WebSocket) or another process (through Redis)
can stand on the other side.
"""

from zope.interface import Attribute, Interface


class IMember(Interface):
    """
    Someone online, as the outbox reaches them.
    """

    session_key = Attribute(
        "A str naming this session, unique in the process and across processes "
        "(see wazzap.core.identity.new_session_key)."
    )
    renderer = Attribute("The IRenderer that turns this member's events into bytes.")

    def send(data):
        """
        Queue C{data} (bytes) for the client; the outbox calls this at most
        once per member per reactor turn.
        """

    def close(reason, farewell):
        """
        Tell the user C{farewell} as a server notice, record C{reason} as why
        they left, and close the connection.
        """


class IRenderer(Interface):
    """
    How one kind of client sees events.
    """

    def render(events, recipient, room=None):
        """
        The bytes that show C{events}, in order, to the session whose key is
        C{recipient} (L{None} for anyone in a room: events published to a
        room render the same for every member); C{room} names the room they
        come from when it is not the one the recipient is reading (and
        always, for a renderer whose C{names_every_room} is true, such as
        IRC's, whose every line names its channel).  Pure, and the bytes of a
        batch are those of its events one after another, so the outbox may
        render each event once and share the result.
        """


class IRoomBus(Interface):
    """
    Carries events to the members of rooms and to single sessions; what is
    published in a turn reaches each member in one send at the end of it.
    """

    def join(room, member):
        """
        Let the L{IMember} C{member} hear what is published to C{room} from
        now on, and what is sent to its session key.
        """

    def leave(room, session_key):
        """
        Stop the session C{session_key} hearing C{room}; leaving a room one
        is not in is harmless.
        """

    def local_members(room):
        """
        The members of C{room} connected to this process: session key ->
        L{IMember}, in the order they joined.
        """

    def publish(room, event, exclude=None, heard_in=(), line=None):
        """
        Give C{event} to every member of C{room} but the session C{exclude}
        and those also in a room of C{heard_in} (names of rooms the same
        event was published to before): what a person in several rooms
        hears once, such as a quit or a new nickname.  C{line} is the id
        room history gave the event, if it keeps it.
        """

    def hear(listener):
        """
        Call C{listener} with (room, event, line) for each event that
        another process published, with a line id, to a room with members
        here: its history, which that process writes, is told here too.
        """

    def direct(session_key, event):
        """
        Give C{event} to one session, in order with what its rooms publish.
        """


class IRemoteMember(Interface):
    """
    A session of another process, as the commands of this one see it: who
    it is, and what they may do to it, carried to its process.
    """

    session_key = Attribute("The session's key.")
    nickname = Attribute("Its nickname, as typed.")
    account = Attribute("The account it is logged in to, or None.")
    is_admin = Attribute("Whether it is an admin's.")
    color = Attribute("The colour name of its nickname.")
    peer = Attribute("The address it connects from, shown to admins.")
    joined = Attribute("Whether it joined the chat (rather than logs in, or waits).")
    requires_consent = Attribute(
        "Whether private messages reach it only in a private chat it accepted (/consent)."
    )

    def notice(text):
        """
        Give the session a C{[Server]} notice.
        """

    def disconnect(reason, farewell=None):
        """
        Close the session on its process, as a kick does.
        """

    def admit():
        """
        Let the session, waiting for approval on its process, join.
        """

    def consent(change, session_key, *arguments):
        """
        Tell its process that the session C{session_key} of this one made
        the private chat C{change} (C{"request"}, C{"withdraw"}, C{"answer"}
        with whether it accepted, C{"end"}) with it.
        """


class IPresence(Interface):
    """
    What must be one across every process: who holds which nickname, where a
    session is, who is in which room, and who waits for approval.  Nicknames
    are compared ignoring case; the syntax of a nickname is checked before
    (L{wazzap.text.nickname_problem}), synchronously.
    """

    def available(nickname, session_key=None):
        """
        A Deferred firing with whether C{nickname} is free for
        C{session_key} (free, or held by that session in any case).
        """

    def claim(session_key, nickname):
        """
        Hold C{nickname} for C{session_key}: a Deferred firing with False if
        another session holds it, else True.
        """

    def rename(session_key, nickname):
        """
        Move C{session_key} from its nickname to C{nickname}: a Deferred
        firing with False (the old one kept) if another session holds it or
        the session holds none, else True.
        """

    def describe(session_key, identity):
        """
        Show the session, which holds its nickname, to other processes as
        the L{wazzap.core.identity.Identity} C{identity}.
        """

    def remote(session_key):
        """
        The L{IRemoteMember} of a session of another process, or L{None}
        (for a session of this process, or one unknown).
        """

    def remote_members():
        """
        The L{IRemoteMember}s of every session of other processes that
        joined, in no particular order.
        """

    def set_consent(session_key, required):
        """
        Tell other processes whether the session takes private messages only
        in a private chat (C{/consent}).
        """

    def describe_room(name, topic, locked):
        """
        Tell every process the topic and lock of the room C{name}.
        """

    def forget_room(name):
        """
        The room C{name} is gone everywhere: forget its topic and lock.
        """

    def observe(observer):
        """
        Tell C{observer}, an L{IPresenceObserver}, what other processes do.
        """

    def moderation_changed(what):
        """
        Tell every other process that C{what} (C{"bans"} or C{"mutes"})
        changed in the database, which they then read again.
        """

    def release(session_key):
        """
        Free the session's nickname, rooms and place in the approval queue.
        """

    def locate(nickname):
        """
        The key of the session holding C{nickname}, or L{None}.
        """

    def nickname_of(session_key):
        """
        The nickname (as typed) the session holds, or L{None}.
        """

    def enter(room, session_key):
        """
        Count C{session_key} among C{room}'s members.
        """

    def exit(room, session_key):
        """
        Count C{session_key} out of C{room}; harmless if it was not in it.
        """

    def members_of(room):
        """
        The session keys in C{room}, in the order they entered.
        """

    def count(room):
        """
        How many sessions are in C{room}, without listing them.
        """

    def rooms_of(session_key):
        """
        The rooms the session is in.
        """

    def wait_for_approval(session_key, address):
        """
        Queue the session (which claimed its nickname) for an admin's
        approval; C{address} counts toward L{waiting_from}.
        """

    def stop_waiting(session_key):
        """
        Take the session off the approval queue; return whether it was on it.
        """

    def waiting():
        """
        The session keys waiting for approval, longest-waiting first.
        """

    def waiting_from(address):
        """
        How many sessions from C{address} wait for approval.
        """


class IPresenceObserver(Interface):
    """
    What a presence shared with other processes tells the chat of this one
    (L{wazzap.chat.Chat}): what they changed that this process keeps too.
    """

    def room_entered(name):
        """
        A session of another process entered the room C{name}.
        """

    def room_exited(name):
        """
        A session of another process left the room C{name}.
        """

    def room_described(name, topic, locked):
        """
        Another process set the topic or lock of the room C{name}.
        """

    def remote_left(member):
        """
        The L{IRemoteMember} C{member} left (its process said so, or stopped
        answering).
        """

    def remote_gone(nickname, rooms):
        """
        A session of another process is gone without a word: its process
        stopped answering.  C{rooms} are the names of the rooms it was in.
        """

    def nickname_lost(session_key):
        """
        The nickname of the session C{session_key} of this process was taken
        elsewhere while this process could not reach the others.
        """

    def reachable(others):
        """
        The other processes can be reached (C{others} true), or cannot.
        """

    def moderation_changed(what):
        """
        Another process changed C{what} (C{"bans"} or C{"mutes"}) in the
        database: a Deferred firing once the change is in force here, or
        L{None}.  What the other processes tell after it waits for it, so
        that a mute announced is a mute kept.
        """

    def asked(session_key, request, argument):
        """
        Another process asks for C{request} (C{"close"}, C{"admit"},
        C{"consent"}) about the session C{session_key} of this one.
        """
