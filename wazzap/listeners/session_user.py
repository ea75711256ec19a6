"""
What every listener's connection shares once someone logs in: the session
API the commands use (who the user is, read from their session once joined
and changed only through C{identify}; their room; a notice), and the record
of their session in the login history (L{SessionLog}).
"""

from dataclasses import replace

from twisted.internet import defer
from twisted.logger import Logger

from wazzap import addresses


class SessionUser:
    """
    The session API of L{wazzap.commands}, for a connection that keeps
    C{_identity} while logging in and is given its C{session} at join, and
    has a C{factory} with the C{chat}.
    """

    __slots__ = ()

    @property
    def identity(self):
        session = self.session
        return self._identity if session is None else session.identity

    @property
    def nickname(self):
        return self.identity.nickname

    @property
    def account(self):
        return self.identity.account

    @property
    def is_admin(self):
        return self.identity.is_admin

    @property
    def color(self):
        return self.identity.color

    @property
    def room(self):
        session = self.session
        return None if session is None else session.room

    def identify(self, **fields):
        """
        Change who this user is (C{nickname}, C{account}, C{is_admin},
        C{color}): while logging in, or on its session once joined.
        """
        session = self.session
        if session is None:
            self._identity = replace(self._identity, **fields)
        else:
            session.change(**fields)

    def notice(self, message):
        self.factory.chat.tell(self, message)


class SessionLog:
    """
    One session's entry in the login history: its start is recorded at
    join, its end (with why) when it leaves.  A locked or full database must
    not stop the chat: the session then goes unrecorded, and the user stays.
    """

    log = Logger()

    __slots__ = ("_record", "_nickname")

    def __init__(self, store, nickname, peer, now):
        self._nickname = nickname
        self._record = store.session_started(nickname, peer, now)
        self._record.addCallbacks(self._started, self._not_recorded)

    def _started(self, session_id):
        # Keep the id, not the Deferred: an idle connection should cost little.
        self._record = session_id

    def _not_recorded(self, failure):
        self._record = None
        self._log_write_failure(failure, "the start of a session")

    def end(self, store, now, reason):
        """
        Record the end of this session, once its start has been recorded.
        """
        session = self._record
        if isinstance(session, defer.Deferred):
            # By the time this runs the start is recorded (an id) or given up
            # (None): never a Deferred again, so this cannot come back here.
            session.addCallback(lambda _: self.end(store, now, reason))
        elif session is not None:
            store.session_ended(session, now, reason).addErrback(
                self._log_write_failure, "the end of a session"
            )

    def _log_write_failure(self, failure, what):
        self.log.error(
            "could not record {what} of {nickname}: {error}",
            what=what,
            nickname=self._nickname,
            error=failure.getErrorMessage(),
        )


def address_of(address):
    """
    The host part of a peer's address, in standard form: the key for
    per-address limits and bans.
    """
    return addresses.normalise(getattr(address, "host", None) or "local")
