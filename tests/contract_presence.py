"""
The contract of presence (L{wazzap.core.interfaces.IPresence}), for every
implementation: a test module imports these tests and gives a
C{presence_setup} fixture whose value has C{presence} and C{wait(deferred)},
which returns the result a Deferred fires with.
"""

from zope.interface.verify import verifyObject

from wazzap.core.interfaces import IPresence

ALICE, BOB, CAROL = "1.1", "1.2", "1.3"


def test_presence_provides_ipresence(presence_setup):
    """The implementation fulfils the presence contract."""
    assert verifyObject(IPresence, presence_setup.presence)


def test_a_nickname_is_held_by_one_session_ignoring_case(presence_setup):
    """Once claimed, a nickname in any case is taken for others but free for its holder."""
    presence, wait = presence_setup.presence, presence_setup.wait
    assert wait(presence.claim(ALICE, "Alice"))
    assert not wait(presence.claim(BOB, "ALICE"))
    assert wait(presence.available("alice")) is False
    assert wait(presence.available("alice", ALICE)) is True
    assert wait(presence.available("bob")) is True
    assert presence.locate("aLiCe") == ALICE
    assert presence.nickname_of(ALICE) == "Alice"
    assert presence.locate("bob") is None and presence.nickname_of(BOB) is None


def test_claiming_again_moves_the_session_to_the_new_name(presence_setup):
    """A session that claims another name frees its old one."""
    presence, wait = presence_setup.presence, presence_setup.wait
    assert wait(presence.claim(ALICE, "alice"))
    assert wait(presence.claim(ALICE, "ALICE"))
    assert presence.nickname_of(ALICE) == "ALICE"
    assert wait(presence.claim(ALICE, "alicia"))
    assert presence.locate("alice") is None


def test_rename_frees_the_old_name_or_keeps_it_when_refused(presence_setup):
    """Renaming frees the old nickname; a name held by another is refused and the old one kept."""
    presence, wait = presence_setup.presence, presence_setup.wait
    wait(presence.claim(ALICE, "alice"))
    wait(presence.claim(BOB, "bob"))
    assert wait(presence.rename(ALICE, "Alicia"))
    assert presence.locate("alice") is None and presence.locate("alicia") == ALICE
    assert not wait(presence.rename(BOB, "ALICIA"))
    assert presence.nickname_of(BOB) == "bob"
    assert not wait(presence.rename(CAROL, "carol"))  # nothing to rename
    assert presence.locate("carol") is None


def test_rooms_list_their_members_in_order(presence_setup):
    """A room counts and lists its sessions in the order they entered, and a session its rooms."""
    presence = presence_setup.presence
    for key in (BOB, ALICE, CAROL):
        presence.enter("lobby", key)
    presence.enter("other", ALICE)
    assert presence.members_of("lobby") == [BOB, ALICE, CAROL]
    assert presence.count("lobby") == 3 and presence.count("nowhere") == 0
    assert sorted(presence.rooms_of(ALICE)) == ["lobby", "other"]
    presence.exit("lobby", ALICE)
    presence.exit("lobby", ALICE)
    presence.exit("nowhere", ALICE)
    assert presence.members_of("lobby") == [BOB, CAROL]
    assert presence.rooms_of(ALICE) == ["other"]
    assert presence.members_of("nowhere") == [] and presence.rooms_of("0.0") == []


def test_the_approval_queue_keeps_order_and_counts_addresses(presence_setup):
    """Waiting sessions come out longest-waiting first, and each address counts its waiters."""
    presence, wait = presence_setup.presence, presence_setup.wait
    for key, nickname in ((BOB, "bob"), (ALICE, "alice"), (CAROL, "carol")):
        wait(presence.claim(key, nickname))
    presence.wait_for_approval(BOB, "192.0.2.1")
    presence.wait_for_approval(ALICE, "192.0.2.1")
    presence.wait_for_approval(CAROL, "192.0.2.2")
    assert presence.waiting() == [BOB, ALICE, CAROL]
    assert presence.waiting_from("192.0.2.1") == 2 and presence.waiting_from("192.0.2.9") == 0
    assert presence.stop_waiting(BOB)
    assert not presence.stop_waiting(BOB)
    assert presence.waiting() == [ALICE, CAROL] and presence.waiting_from("192.0.2.1") == 1
    assert presence.locate("bob") == BOB  # taken off the queue, still holding its name


def test_release_forgets_everything_about_a_session(presence_setup):
    """A released session frees its nickname, leaves its rooms and the approval queue."""
    presence, wait = presence_setup.presence, presence_setup.wait
    wait(presence.claim(ALICE, "alice"))
    presence.enter("lobby", ALICE)
    presence.wait_for_approval(ALICE, "192.0.2.1")
    presence.release(ALICE)
    presence.release(ALICE)
    assert presence.locate("alice") is None and presence.nickname_of(ALICE) is None
    assert presence.members_of("lobby") == [] and presence.rooms_of(ALICE) == []
    assert presence.waiting() == [] and presence.waiting_from("192.0.2.1") == 0
