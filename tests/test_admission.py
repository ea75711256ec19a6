"""
Admission on its own: nicknames, passwords and addresses in, outcomes out,
over the in-memory doubles and a Clock; no connection logs in here.
"""

from tests.doubles import Connection, add_account, make_factory
from wazzap.core.admission import (
    MAX_WAITERS_PER_ADDRESS,
    TAKEN_OVER,
    Admission,
    Admitted,
    NeedsPassword,
    Refused,
    Waiting,
    WrongPassword,
)
from wazzap.persist.passwords import GUESSES_PER_ACCOUNT_AND_ADDRESS

ADDRESS = "192.0.2.7"


def admission_of(factory):
    return Admission(factory.chat, factory.accounts, factory.bans, factory.approve_joins)


def outcome(deferred):
    """
    The result of a Deferred the doubles have already fired.
    """
    results = []
    deferred.addBoth(results.append)
    [result] = results
    return result


def test_clean_address_and_free_nickname_are_admitted():
    """An address nobody banned passes, and a free nickname is admitted as no account."""
    admission = admission_of(make_factory())
    assert outcome(admission.check_address(ADDRESS)) is None
    assert outcome(admission.choose_nickname("alice", ADDRESS)) == Admitted("alice", None, False)


def test_banned_address_is_refused_and_closed():
    """A banned address is refused before any nickname, and the connection is to close."""
    factory = make_factory()
    outcome(factory.bans.add(ADDRESS, "address", None, "spam", "root"))
    refused = outcome(admission_of(factory).check_address(ADDRESS))
    assert refused == Refused("This address is banned: spam.", close=True, reason="banned")


def test_bad_reserved_banned_and_online_nicknames():
    """A bad, reserved, banned or online nickname is refused, only the ban closing."""
    factory = make_factory(admins=["chief"])
    outcome(factory.bans.add("mallory", "nickname", None, "", "root"))
    Connection(factory).join("bob")
    admission = admission_of(factory)
    assert outcome(admission.choose_nickname("no way", ADDRESS)) == Refused(
        "Sorry, a nickname is 1 to 16 characters: letters, digits, _ or -."
    )
    assert outcome(admission.choose_nickname("CHIEF", ADDRESS)) == Refused(
        "Sorry, CHIEF is reserved for an admin."
    )
    assert outcome(admission.choose_nickname("Mallory", ADDRESS)) == Refused(
        "Mallory is banned.", close=True, reason="banned"
    )
    assert outcome(admission.choose_nickname("BOB", ADDRESS)) == Refused(
        "Sorry, bob is already online."
    )


def test_registered_nickname_needs_its_password():
    """A registered nickname asks for its password; the right one admits it as its account."""
    factory = make_factory()
    add_account(factory, "alice", "correct horse", admin=True)
    admission = admission_of(factory)
    needs = outcome(admission.choose_nickname("ALICE", ADDRESS))
    assert isinstance(needs, NeedsPassword) and needs.nickname == "ALICE"
    assert needs.account.nickname == "alice"
    assert outcome(admission.check_password("ALICE", "wrong horse", ADDRESS)) == WrongPassword(
        "ALICE"
    )
    assert outcome(admission.check_password("ALICE", "correct horse", ADDRESS)) == Admitted(
        "ALICE", "alice", True
    )


def test_guesses_are_throttled():
    """Past the throttle's wrong guesses, the nickname and the password are refused, not checked."""
    factory = make_factory()
    add_account(factory, "alice", "correct horse")
    admission = admission_of(factory)
    for _ in range(GUESSES_PER_ACCOUNT_AND_ADDRESS):
        assert isinstance(outcome(admission.check_password("alice", "guess", ADDRESS)), WrongPassword)
    why = "Too many wrong passwords for alice from your address: try again in 15 minutes."
    assert outcome(admission.choose_nickname("alice", ADDRESS)) == Refused(why)
    assert outcome(admission.check_password("alice", "correct horse", ADDRESS)) == Refused(why)


def test_owner_takes_the_nickname_over():
    """The right password ends the session that holds the nickname and admits its owner."""
    factory = make_factory()
    stale = Connection(factory).join("bob")
    add_account(factory, "bob", "correct horse")
    admission = admission_of(factory)
    assert outcome(admission.check_password("bob", "correct horse", ADDRESS)) == Admitted(
        "bob", "bob", False
    )
    assert factory.chat.find("bob") is None
    stale.settle()
    assert stale.lines()[-1] == "[Server] bob " + TAKEN_OVER
    assert stale.transport.disconnecting


def test_approval_waits_except_admins_and_caps_an_address():
    """With --approve-joins newcomers wait, admins do not, and one address has a few waiting at most."""
    factory = make_factory(approve_joins=True)
    add_account(factory, "chief", "correct horse", admin=True)
    admission = admission_of(factory)
    assert outcome(admission.check_password("chief", "correct horse", ADDRESS)) == Admitted(
        "chief", "chief", True
    )
    for i in range(MAX_WAITERS_PER_ADDRESS):
        nickname = "guest%d" % (i,)
        assert outcome(admission.choose_nickname(nickname, ADDRESS)) == Waiting(nickname, None)
        waiter = Connection(factory, host=ADDRESS, port=41000 + i)
        waiter.protocol.identify(nickname=nickname)
        assert admission.wait_for_approval(waiter.protocol) == 0
    refused = outcome(admission.choose_nickname("guest9", ADDRESS))
    assert refused.close and refused.reason == "too many waiting from one address"
    assert refused.why == (
        "3 people from your address already wait for approval: try again later"
    )
    assert outcome(admission.choose_nickname("guest0", "192.0.2.8")) == Refused(
        "Sorry, guest0 is already online."
    )
    admission.stop_waiting("guest0")
    assert outcome(admission.choose_nickname("guest0", "192.0.2.8")) == Waiting("guest0", None)
