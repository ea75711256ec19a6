"""
The line listener's login dialog: over a connection on a StringTransport,
and over a user that offers only the names the dialog may use.
"""

from tests.doubles import Connection, add_account, make_factory
from wazzap.core.identity import new_session_key
from wazzap.listeners.line.dialog import NICKNAME_PROMPT, LoginDialog


def test_many_bad_nicknames_at_once_are_each_answered():
    """A burst of bad nicknames in one read is answered line by line, not a stack frame deeper each."""
    guest = Connection(make_factory())
    guest.lines()
    guest.protocol.dataReceived(b"no way\n" * 2000)
    guest.settle()
    lines = guest.lines()
    assert len(lines) == 4000 and lines[-1] == "[Server] " + NICKNAME_PROMPT
    assert not guest.transport.disconnecting


class DialogUser:
    """
    Only what the dialog may use of its connection, recording what it is told.
    """

    __slots__ = (
        "peer", "nickname", "account", "is_admin", "told", "answer", "closed", "admitted",
        "clear_text", "session_key",
    )

    def __init__(self, clear_text=None):
        self.session_key = new_session_key()
        self.peer = "192.0.2.9"
        self.clear_text = clear_text
        self.nickname = self.account = self.answer = self.closed = None
        self.is_admin = self.admitted = False
        self.told = []

    def notice(self, message):
        self.told.append(message)

    def ask(self, prompt, answer, secret=False):
        assert secret
        self.told.append(prompt)
        self.answer = answer

    def hold_input_until(self, deferred):
        pass

    def identify(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)

    def disconnect(self, reason, farewell):
        self.told.append(farewell)
        self.closed = reason

    def quit(self):
        self.closed = "quit"

    def refuse(self, message):
        self.told.append(message)
        self.closed = "refused"

    def admit(self):
        self.admitted = True


def dialog_for(factory, user):
    dialog = LoginDialog(user, factory.admission, factory.clock, factory.limits)
    dialog.start()
    return dialog


def test_dialog_admits_through_its_user():
    """The dialog greets, takes a password in secret, and admits the user with its identity."""
    factory = make_factory()
    add_account(factory, "alice", "correct horse", admin=True)
    user = DialogUser()
    dialog = dialog_for(factory, user)
    dialog.line_received("Alice")
    assert user.told == [
        "Welcome to wazzap, the terminal chat.",
        NICKNAME_PROMPT,
        "alice is registered. Password:",
    ]
    user.answer("correct horse")
    assert user.admitted and (user.nickname, user.account, user.is_admin) == ("Alice", "alice", True)
    dialog.end()
    factory.clock.advance(factory.limits.login_timeout_seconds)
    assert user.closed is None


def test_dialog_counts_wrong_passwords_and_times_out():
    """Three wrong passwords on one connection close it; a silent one closes at the login timeout."""
    factory = make_factory()
    add_account(factory, "alice", "correct horse")
    user = DialogUser()
    dialog = dialog_for(factory, user)
    for _ in range(3):
        dialog.line_received("alice")
        user.answer("wrong horse")
    assert user.told[-1] == "wrong nickname or password: goodbye"
    assert user.closed == "too many wrong passwords"
    silent = DialogUser()
    dialog_for(factory, silent)
    factory.clock.advance(factory.limits.login_timeout_seconds)
    assert silent.closed == "login timeout"
    assert silent.told[-1] == "no nickname chosen in time: goodbye"


def test_dialog_refuses_tls_and_http():
    """A TLS handshake or an HTTP request is refused with a plain text, not taken as a nickname."""
    factory = make_factory()
    tls, http = DialogUser(), DialogUser()
    assert dialog_for(factory, tls).refuses_bytes(b"\x16\x03\x01\x02\x00")
    assert tls.closed == "refused" and "not a web or TLS server" in tls.told[-1]
    dialog = dialog_for(factory, http)
    assert not dialog.refuses_bytes(b"GET / HTTP/1.1\r\n")
    dialog.line_received("GET / HTTP/1.1")
    assert http.told[-1].startswith("HTTP/1.0 400 Bad Request\r\n")
