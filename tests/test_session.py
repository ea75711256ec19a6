"""
The session as the one owner of who someone is: what the commands change
is what the chat, and everyone it tells, sees.
"""

from tests.doubles import Connection, admin_logged_in, make_factory, registered
from wazzap.core.identity import Identity
from wazzap.core.session import Session


def test_register_changes_the_account_the_chat_knows():
    """After /register the chat's identity of the user names the new account."""
    factory = make_factory()
    alice = registered(factory, "alice")
    assert factory.chat.identity(alice.protocol).account == "alice"
    assert alice.protocol.account == "alice"


def test_a_new_nickname_is_read_from_the_session():
    """After /nick the connection and the chat name the user alike."""
    factory = make_factory()
    alice = Connection(factory, port=40500).join("alice")
    alice.send("/nick alicia")
    assert alice.protocol.nickname == "alicia"
    assert factory.chat.identity(alice.protocol).nickname == "alicia"
    assert factory.chat.session_of(alice.protocol) is alice.protocol.session


def test_revoked_admin_is_no_admin_to_the_chat():
    """Rights revoked while online are gone from the chat's identity at the next admin command."""
    factory = make_factory()
    admin = admin_logged_in(factory, "root1", port=40510)
    factory.accounts.store.database.set_admin("root1", False)
    admin.send("/kick nobody")
    assert factory.chat.identity(admin.protocol).is_admin is False
    assert factory.chat.admins() == []


def test_one_room_person_keeps_no_focus_entry():
    """Someone in one room reads it without an entry of their own; a second room makes one."""
    factory = make_factory()
    alice = Connection(factory, port=40520).join("alice")
    chat = factory.chat
    key = alice.protocol.session_key
    assert key not in chat._focus
    alice.send("/join #maths")
    assert chat._focus[key] == "#maths"
    alice.send("/part #maths")
    assert key not in chat._focus and alice.protocol.room.name == "#lobby"


def test_change_replaces_the_identity():
    """A change makes a new frozen identity rather than editing the old one."""
    before = Identity("alice")
    session = Session("1.1", before, None)
    session.change(account="alice")
    assert before.account is None and session.identity.account == "alice"
