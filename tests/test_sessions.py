"""
Accounts, private-chat consent and moderation through the protocol, on a
real in-memory SQLite schema and the real argon2 hasher, driven by a Clock.
"""

from twisted.internet import defer
from twisted.logger import LogLevel, capturedLogs

from tests.doubles import Connection, admin_and_user, admin_logged_in, connect, log_in, make_factory, registered
from wazzap.persist.passwords import (
    GUESS_WINDOW_SECONDS,
    GUESSES_PER_ACCOUNT_AND_ADDRESS,
    REGISTRATIONS_PER_ADDRESS,
    HasherBusy,
)
from wazzap.persist.store import BUSY_TIMEOUT_SECONDS


class BusyHasher:
    """
    A hasher whose lanes are always full.
    """

    def hash(self, password, lane=None):
        return defer.fail(HasherBusy("full"))

    verify = lambda self, password_hash, password, lane=None: self.hash(password)


def test_registered_nickname_needs_its_password():
    """After /register, joining under that nickname asks for the password."""
    factory = make_factory()
    registered(factory, "alice").close()
    alice = log_in(factory, "alice")
    assert alice.lines()[0].startswith("[Server] Welcome, alice!")
    assert alice.protocol.account == "alice"


def test_register_without_password_asks_for_it_twice():
    """/register alone asks for the password twice, secretly, and registers once both agree."""
    factory = make_factory()
    alice = Connection(factory).join("alice")
    alice.send("/register")
    assert alice.lines() == ["[Server] Choose a password for alice. Password:"]
    assert alice.protocol._question.secret
    alice.send("correct horse")
    assert alice.lines() == ["[Server] Repeat the password:"]
    alice.send("correct horse")
    assert alice.lines() == ["[Server] registered: from now on alice needs this password"]


def test_register_prompts_must_agree():
    """Two different answers to the /register prompts register nothing."""
    factory = make_factory()
    alice = Connection(factory).join("alice")
    alice.send("/register")
    alice.send("correct horse")
    alice.send("correct house")
    assert alice.lines()[-1] == "[Server] cannot register: the two passwords differ"
    assert factory.accounts.store.database.get_account("alice") is None


def test_short_password_refused():
    """A password under the minimum length is refused."""
    alice = Connection(make_factory()).join("alice")
    alice.send("/register short")
    assert "8 to 128 characters" in alice.lines()[0]


def test_wrong_password_is_generic_and_three_close():
    """A wrong password gets one generic message; the third closes the connection."""
    factory = make_factory()
    registered(factory, "alice").close()
    intruder = connect(factory, 47000)
    for attempt in range(3):
        intruder.send("alice")
        intruder.lines()
        intruder.send("guess %d" % attempt)
        factory.clock.advance(5)
    lines = intruder.lines()
    assert "wrong nickname or password: goodbye" in lines[-1]
    assert intruder.transport.disconnecting


def test_guesses_from_one_address_stop_but_the_owner_elsewhere_gets_in():
    """Past the guesses allowed from one address it is refused at once; the owner elsewhere is not held up."""
    factory = make_factory()
    registered(factory, "alice").close()
    for port in range(48000, 48000 + GUESSES_PER_ACCOUNT_AND_ADDRESS):
        guesser = connect(factory, port)
        guesser.send("alice")
        guesser.send("wrong password")
        assert guesser.lines()[1] == "[Server] Wrong nickname or password."
    refused = connect(factory, 48100)
    refused.send("alice")
    assert refused.lines()[0] == (
        "[Server] Too many wrong passwords for alice from your address: try again in 15 minutes."
    )
    owner = Connection(factory, host="192.0.2.9", port=49000)
    owner.lines()
    owner.send("alice")
    owner.send("correct horse")
    assert owner.lines()[1].startswith("[Server] Welcome, alice!")
    factory.clock.advance(GUESS_WINDOW_SECONDS)
    retry = connect(factory, 48101)
    retry.send("alice")
    assert retry.lines() == ["[Server] alice is registered. Password:"]


def test_password_change_and_unregister():
    """/password needs the old password; /unregister needs the password too."""
    factory = make_factory()
    alice = registered(factory, "alice", password="correct-horse")
    alice.send("/password wrongwrong newpassword")
    assert alice.lines() == ["[Server] wrong password: nothing changed"]
    alice.send("/password correct-horse newpassword")
    assert alice.lines() == ["[Server] password changed"]
    alice.send("/unregister correct-horse")
    assert alice.lines() == ["[Server] wrong password: the account stays"]
    alice.send("/unregister newpassword")
    assert alice.lines() == ["[Server] the account alice is gone"]


def test_password_command_guesses_are_throttled_like_logins():
    """Wrong old passwords in /password count as guesses: past the limit the hashing is not even tried."""
    factory = make_factory()
    alice = registered(factory, "alice", password="correct-horse")
    for _ in range(GUESSES_PER_ACCOUNT_AND_ADDRESS):
        alice.send("/password wrongwrong newpassword")
        assert alice.lines() == ["[Server] wrong password: nothing changed"]
    alice.send("/password correct-horse newpassword")
    assert alice.lines() == [
        "[Server] cannot change password: too many wrong passwords for alice from your "
        "address: try again in 15 minutes"
    ]
    alice.send("/unregister correct-horse")
    assert alice.lines()[0].startswith("[Server] cannot give up the account: too many wrong")


def test_one_line_password_change_cannot_take_spaces():
    """/password OLD NEW with a passphrase says it cannot take spaces and points to /password alone."""
    factory = make_factory()
    alice = registered(factory, "alice", password="correct horse battery")
    alice.send("/password correct horse battery staple new")
    assert alice.lines() == [
        "[Server] cannot change password: /password OLD NEW cannot take passwords with "
        "spaces: type /password alone to be asked for each"
    ]
    alice.send("/password alone")
    assert alice.lines() == ["[Server] usage: /password OLD NEW, or /password alone to be asked for each"]


def test_password_alone_asks_for_old_and_new_twice():
    """/password alone asks for the old password, then the new one twice; spaces are fine."""
    factory = make_factory()
    alice = registered(factory, "alice", password="correct horse battery")
    alice.send("/password")
    assert alice.lines() == ["[Server] Current password:"]
    alice.send("correct horse battery")
    assert alice.lines() == ["[Server] New password:"]
    alice.send("a new passphrase")
    assert alice.lines() == ["[Server] Repeat the password:"]
    alice.send("a new passphrase")
    assert alice.lines() == ["[Server] password changed"]
    alice.close()
    assert log_in(factory, "alice", "a new passphrase").lines()[0].startswith("[Server] Welcome")


def test_passwords_are_hashed_as_typed():
    """Control characters, tabs and bytes that sanitising would change stay in the password."""
    factory = make_factory()
    alice = Connection(factory).join("alice")
    alice.send(b"/register tab\there\x01ctrl")
    assert alice.lines() == ["[Server] registered: from now on alice needs this password"]
    alice.close()
    assert log_in(factory, "alice", "tab here ctrl", port=46001).lines() == [
        "[Server] Wrong nickname or password.",
        "[Server] Choose a nickname (1 to 16 letters, digits, _ or -):",
    ]
    assert log_in(factory, "alice", b"tab\there\x01ctrl", port=46002).lines()[0].startswith(
        "[Server] Welcome, alice!"
    )


def test_password_that_is_not_utf8_is_refused():
    """A one-line password that is not valid UTF-8 is refused with a clear notice."""
    factory = make_factory()
    alice = Connection(factory).join("alice")
    alice.send(b"/register caf\xe9-latin1")
    assert alice.lines() == [
        "[Server] cannot register: that line was not valid UTF-8 text, so nothing was done"
    ]
    assert factory.accounts.store.database.get_account("alice") is None


def test_unregister_alone_asks_for_the_password():
    """/unregister alone asks for the password, secretly."""
    factory = make_factory()
    alice = registered(factory, "alice")
    alice.send("/unregister")
    assert alice.lines() == ["[Server] To give up the account alice, type its password:"]
    alice.send("correct horse")
    assert alice.lines() == ["[Server] the account alice is gone"]


def test_registrations_from_one_address_are_limited():
    """Past the registrations allowed per address, /register is refused with when to try again."""
    factory = make_factory()
    for port in range(63000, 63000 + REGISTRATIONS_PER_ADDRESS):
        registered(factory, "user%d" % (port,), port=port).close()
    late = Connection(factory, port=63100).join("late")
    late.send("/register correct horse")
    assert late.lines() == [
        "[Server] cannot register: your address made %d registrations in the last 60 minutes: "
        "try again in 60 minutes" % (REGISTRATIONS_PER_ADDRESS,)
    ]
    elsewhere = Connection(factory, host="192.0.2.5", port=63101).join("other")
    elsewhere.send("/register correct horse")
    assert elsewhere.lines() == ["[Server] registered: from now on other needs this password"]


def test_register_on_a_locked_database_says_so():
    """A registration the database cannot take (locked) says the database is busy, and logs one line."""
    factory = make_factory(locked=True)
    alice = Connection(factory).join("alice")
    with capturedLogs() as events:
        alice.send("/register correct horse")
        factory.clock.advance(BUSY_TIMEOUT_SECONDS)
    assert alice.lines() == ["[Server] cannot register: the database is busy, try again in a moment"]
    errors = [event for event in events if event["log_format"].startswith("failed {doing}")]
    assert [(event["log_level"], event["doing"]) for event in errors] == [
        (LogLevel.error, "registering alice")
    ]
    alice.send("/who")
    assert alice.lines() == ["[Server] 1 online: alice"]


def test_busy_hasher_is_told():
    """When the hashing lanes are full, the user is told the server is busy, and nothing counts as a guess."""
    factory = make_factory()
    alice = registered(factory, "alice")
    factory.accounts.hasher = BusyHasher()
    alice.send("/password correct-horse newpassword")
    assert alice.lines() == ["[Server] cannot change password: the server is busy, try again in a moment"]
    assert factory.accounts.throttle.refusal("alice", "127.0.0.1") is None
    assert len(factory.accounts.throttle) == 0


def test_registered_owner_takes_the_nickname_back():
    """Logging in to a registered nickname that is online closes the old session and joins the new one."""
    factory = make_factory()
    stale = registered(factory, "bob")
    carol = Connection(factory, port=64000).join("carol")
    carol.lines()
    bob = log_in(factory, "bob", port=64001)
    assert bob.lines()[0].startswith("[Server] Welcome, bob!")
    assert stale.lines()[-1] == "[Server] bob logged in from elsewhere"
    assert stale.transport.disconnecting
    assert factory.chat.find("bob") is bob.protocol
    assert carol.lines() == [
        "[Server] bob left the chat (logged in from elsewhere)",
        "[Server] bob joined the chat",
    ]
    stale.close()
    assert factory.chat.find("bob") is bob.protocol
    assert carol.lines() == []


def test_unregistered_nickname_stays_first_come():
    """An unregistered nickname that is online cannot be taken by a second connection."""
    factory = make_factory()
    Connection(factory).join("dave")
    second = connect(factory, 64100)
    second.send("dave")
    assert second.lines()[0] == "[Server] Sorry, dave is already online."


def test_wrong_password_does_not_take_over():
    """A wrong password for an online registered nickname leaves its session alone."""
    factory = make_factory()
    bob = registered(factory, "bob")
    intruder = connect(factory, 64200)
    intruder.send("bob")
    intruder.send("not the password")
    assert intruder.lines()[1] == "[Server] Wrong nickname or password."
    assert factory.chat.find("bob") is bob.protocol
    assert not bob.transport.disconnecting


def test_unregistered_admin_nickname_is_reserved():
    """An --admin nickname with no account can neither be used, taken by /nick, nor registered."""
    factory = make_factory(admins=["boss"])
    squatter = connect(factory, 64300)
    squatter.send("Boss")
    assert squatter.lines()[0] == "[Server] Sorry, Boss is reserved for an admin."
    squatter.send("eve")
    squatter.lines()
    squatter.send("/nick boss")
    assert squatter.lines() == ["[Server] cannot change nickname: boss is registered to someone else"]
    assert factory.chat.find("boss") is None


def test_admin_account_created_by_the_admin_command_logs_in():
    """Once the admin command has created the --admin account, it logs in with its password as an admin."""
    factory = make_factory(admins=["boss"])
    boss = admin_logged_in(factory, "boss", port=64400)
    assert boss.protocol.is_admin


def test_unregister_frees_the_nickname():
    """After /unregister, anyone may join under the nickname without a password."""
    factory = make_factory()
    alice = registered(factory, "alice", password="correct-horse")
    alice.send("/unregister correct-horse")
    assert alice.lines() == ["[Server] the account alice is gone"]
    alice.close()
    Connection(factory, port=50000).join("alice")


def test_nick_onto_registered_name_refused():
    """/nick cannot take a nickname registered to somebody else."""
    factory = make_factory()
    registered(factory, "alice").close()
    bob = Connection(factory, port=51000).join("bob")
    bob.send("/nick Alice")
    assert bob.lines() == ["[Server] cannot change nickname: Alice is registered to someone else"]


def test_seen_and_history():
    """/seen tells when someone was last online; /history is for admins only."""
    factory = make_factory(admins=["root1"])
    bob = Connection(factory, port=52000).join("bob")
    bob.send("/quit bye")
    bob.close()
    alice = Connection(factory, port=52001).join("alice")
    alice.send("/seen bob")
    assert "bob was last online" in alice.lines()[0]
    alice.send("/seen alice")
    assert alice.lines() == ["[Server] alice is online now"]
    alice.send("/seen nobody")
    assert alice.lines() == ["[Server] nobody has never been here"]
    alice.send("/history bob")
    assert alice.lines() == [
        "[Server] permission denied: /history NICK is for admins; "
        "/history [#ROOM] [N] shows the lines of a room"
    ]
    admin = admin_logged_in(factory, "root1", port=52002)
    admin.send("/history bob")
    lines = admin.lines()
    assert lines[0] == "[Server] last 1 sessions of bob:"
    assert "from 127.0.0.1" in lines[1] and "(quit: bye)" in lines[1]


def test_consent_request_accept_end():
    """With consent on, a chat opens by request and acceptance, and both are told when it ends."""
    factory = make_factory()
    alice = Connection(factory, port=53000).join("alice")
    bob = Connection(factory, port=53001).join("bob")
    alice.lines()
    bob.send("/consent on")
    bob.lines()
    alice.send("@bob hi")
    assert "ask with /request bob" in alice.lines()[0]
    alice.send("/request bob")
    assert bob.lines() == ["[Server] alice asks for a private chat: /accept alice or /reject alice"]
    alice.send("/request bob")
    assert "already asked" in alice.lines()[-1]
    bob.send("/chats")
    assert "[Server] asking you: alice" in bob.lines()
    bob.send("/accept alice")
    assert "alice accepted" not in "".join(bob.lines())
    assert alice.lines() == ["[Server] bob accepted: private chat open: @bob TEXT"]
    alice.send("@bob hi")
    assert bob.lines() == ["[PM from alice] hi"]
    alice.lines()
    bob.send("/end alice")
    assert alice.lines() == ["[Server] bob closed your private chat"]
    alice.send("@bob again")
    assert "ask with /request bob" in alice.lines()[0]


def test_consent_reject_and_bad_requests():
    """Rejections reach the requester; self, unknown and unasked answers get notices."""
    factory = make_factory(consent=True)
    alice = Connection(factory, port=54000).join("alice")
    bob = Connection(factory, port=54001).join("bob")
    alice.lines()
    alice.send("/request alice")
    assert "that is you" in alice.lines()[0]
    alice.send("/request ghost")
    assert alice.lines() == ["[Server] nobody called ghost is online"]
    bob.send("/accept alice")
    assert bob.lines()[-1] == "[Server] alice has not asked you for a private chat"
    alice.send("/request bob")
    bob.send("/reject alice")
    assert alice.lines()[-1] == "[Server] bob turned down your private chat request"


def test_disconnect_ends_chats_with_notice():
    """A disconnect ends that user's private chats and tells the partner."""
    factory = make_factory(consent=True)
    alice = Connection(factory, port=55000).join("alice")
    bob = Connection(factory, port=55001).join("bob")
    alice.send("/request bob")
    bob.send("/accept alice")
    bob.lines()
    alice.close()
    assert "[Server] your private chat with alice ended: they left" in bob.lines()


def test_moderation_needs_admin():
    """Moderation commands are refused to users who are not admins."""
    factory = make_factory(admins=["root1"])
    bob = Connection(factory, port=57000).join("bob")
    for command in ("/kick x", "/ban x", "/unban x", "/bans", "/mute x", "/unmute x", "/pending"):
        bob.send(command)
        assert "permission denied" in bob.lines()[0]


def test_kick_is_announced():
    """/kick disconnects the user and the room hears who did it and why."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/kick bob spamming")
    assert bob.lines()[-1] == "[Server] disconnected: kicked by root1: spamming"
    bob.close()
    assert admin.lines() == ["[Server] bob left the chat (kicked by root1: spamming)"]


def test_ban_by_address_checked_at_connect_and_lifted():
    """An address ban disconnects, keeps new connections out, and /unban lifts it."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/ban 192.0.2.7 1h flooding")
    assert "[Server] 192.0.2.7 was banned by root1 for 1h (flooding)" in admin.lines()
    assert bob.transport.disconnecting
    again = Connection(factory, port=56002, host="192.0.2.7")
    assert b"This address is banned" in again.raw()
    admin.send("/bans")
    assert "address 192.0.2.7 by root1, for 1h (flooding)" in admin.lines()[1]
    admin.send("/unban 192.0.2.7")
    assert admin.lines() == ["[Server] root1 lifted the ban on 192.0.2.7"]
    Connection(factory, port=56003, host="192.0.2.7").join("bobby")


def test_ban_by_nickname_expires():
    """A timed nickname ban keeps the nickname out until it expires."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/ban bob 10m")
    bob.close()
    retry = connect(factory, 58000)
    retry.send("bob")
    assert "bob is banned until" in retry.lines()[0]
    factory.clock.advance(601)
    Connection(factory, port=58001).join("bob")


def test_mute_and_unmute():
    """A muted user cannot talk until unmuted; both are announced."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/mute bob")
    assert bob.lines() == ["[Server] bob was muted by root1 until lifted"]
    bob.send("hello?")
    assert bob.lines() == ["[Server] you are muted until an admin lifts it"]
    assert admin.lines() == ["[Server] bob was muted by root1 until lifted"]
    admin.send("/unmute bob")
    bob.send("thanks")
    assert admin.lines()[-1] == "bob: thanks"


def test_approval_queue():
    """With join approval, newcomers wait until an admin approves or denies them."""
    factory = make_factory(admins=["root1"], approve_joins=True)
    admin = admin_logged_in(factory, "root1", port=59001)
    bob = connect(factory, 59002)
    bob.send("bob")
    assert bob.lines()[0] == "[Server] This chat needs an admin's approval to join; please wait."
    assert admin.lines() == ["[Server] bob (127.0.0.1) asks to join: /approve bob or /deny bob"]
    admin.send("/pending")
    assert "bob (127.0.0.1)" in admin.lines()[0]
    admin.send("/approve bob")
    assert bob.lines()[0].startswith("[Server] Welcome, bob!")
    carol = connect(factory, 59003)
    carol.send("carol")
    admin.send("/deny carol")
    assert carol.lines()[-1] == "[Server] disconnected: denied by root1"
    assert carol.transport.disconnecting


def test_approval_wait_times_out_without_admin():
    """With no admin online the newcomer is told, and the wait ends after the timeout."""
    factory = make_factory(approve_joins=True, approval_timeout_seconds=300)
    bob = connect(factory, 60000)
    bob.send("bob")
    assert "No admin is online right now" in bob.lines()[1]
    factory.clock.advance(301)
    assert "no admin approved you in time" in bob.lines()[-1]
    assert bob.transport.disconnecting


def test_admin_banning_own_address_stays_to_lift_it():
    """An admin who bans its own address stays connected, warned, and can /unban."""
    factory = make_factory(admins=["root1"])
    admin, bob = admin_and_user(factory)
    admin.send("/ban 127.0.0.1 1h")
    lines = admin.lines()
    assert "[Server] the ban covers you too: /unban 127.0.0.1 before you leave, or you will be kept out" in lines
    assert not admin.transport.disconnecting
    admin.send("/unban 127.0.0.1")
    assert admin.lines() == ["[Server] root1 lifted the ban on 127.0.0.1"]


def test_ipv6_ban_matches_however_the_address_is_written():
    """An address ban is stored in standard form, so any spelling of it keeps the address out."""
    factory = make_factory(admins=["root1"])
    admin = admin_logged_in(factory, "root1", port=61000)
    eve = Connection(factory, host="2001:db8::1", port=61001).join("eve")
    admin.lines()
    admin.send("/ban 2001:0DB8:0::0001 1h")
    assert "[Server] 2001:db8::1 was banned by root1 for 1h" in admin.lines()
    assert eve.transport.disconnecting
    assert b"This address is banned" in Connection(factory, host="2001:db8::1", port=61002).raw()
    admin.send("/unban 2001:DB8::1")
    assert admin.lines() == ["[Server] root1 lifted the ban on 2001:db8::1"]


def test_rename_answered_after_leaving_changes_nothing():
    """A nickname change whose answer comes after its sender left leaves the chat as it was."""
    factory = make_factory()
    alice = Connection(factory, port=62000).join("alice")
    alice.close()
    carol = Connection(factory, port=62001).join("alice")
    factory.commands.talk._rename(None, alice.protocol, "zed")
    assert factory.chat.find("zed") is None
    assert factory.chat.find("alice") is carol.protocol


def test_failed_session_write_does_not_stop_the_chat():
    """A join whose session cannot be recorded still leaves cleanly, logged in one line each way."""
    factory = make_factory(locked=True)
    with capturedLogs() as events:
        alice = Connection(factory).join("alice")
        alice.close()
        factory.clock.advance(BUSY_TIMEOUT_SECONDS)
        bob = Connection(factory, port=40001).join("bob")
        bob.close()
        factory.clock.advance(BUSY_TIMEOUT_SECONDS)
    assert factory.chat.find("alice") is None and len(factory.chat) == 0
    errors = [event for event in events if "could not record" in event.get("log_format", "")]
    assert len(errors) == 2
    assert all("log_failure" not in event for event in errors)
    assert "locked by another process" in errors[0]["error"]
