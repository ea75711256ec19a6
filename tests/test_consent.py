"""
Private chats by consent: the state in L{wazzap.consent} on a L{Clock}, and
the commands that tell people about it.
"""

import sys

from twisted.internet.task import Clock

from tests.doubles import joined, make_factory
from wazzap import consent
from wazzap.consent import MAX_REQUESTS_WAITING, REJECTED_REQUEST_PAUSE_SECONDS, PrivateChats


class Person:
    """
    As much of a member as consent needs: a nickname.
    """

    def __init__(self, nickname):
        self.nickname = nickname

    def __repr__(self):
        return self.nickname


def people(count, prefix="user"):
    return [Person("%s%d" % (prefix, index)) for index in range(count)]


def lines_run_in_consent(operation):
    """
    How many lines of wazzap/consent.py C{operation} runs: the work it does,
    counted rather than timed, so the count is the same on a busy machine.
    """
    count = 0
    filename = consent.__file__

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != filename:
            return None
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        operation()
    finally:
        sys.settrace(None)
    return count


def test_requests_and_chats_are_seen_from_both_ends():
    """A request is listed for both sides, and accepting it opens a chat both see."""
    chats = PrivateChats(Clock())
    alice, bob, carol = people(3)
    chats.request(alice, bob)
    chats.request(carol, bob)
    assert chats.requests_from(alice) == [bob]
    assert sorted(chats.requests_to(bob), key=repr) == [alice, carol]
    assert chats.answer(bob, alice, True)
    assert chats.partners(alice) == [bob] and chats.partners(bob) == [alice]
    assert chats.requests_to(bob) == [carol] and chats.requests_from(alice) == []
    assert chats.end(alice, bob) and chats.partners(bob) == [] and not chats.end(bob, alice)


def test_accepting_settles_a_request_made_both_ways():
    """When two people asked each other, accepting one request settles both."""
    chats = PrivateChats(Clock())
    alice, bob = people(2)
    chats.request(alice, bob)
    chats.request(bob, alice)
    assert chats.answer(bob, alice, True)
    assert chats.requests_from(bob) == [] and chats.is_open(alice, bob)


def test_leaving_clears_both_ends_and_leaves_nothing_behind():
    """Whoever leaves is forgotten on every side, and the indexes keep no empty entries."""
    chats = PrivateChats(Clock())
    alice, bob, carol, dave = people(4)
    chats.request(alice, bob)
    chats.answer(bob, alice, True)
    chats.request(carol, alice)
    chats.request(alice, dave)
    partners, asked_it, it_asked = chats.remove_member(alice)
    assert (partners, asked_it, it_asked) == ([bob], [carol], [dave])
    assert chats.partners(bob) == [] and chats.requests_from(carol) == []
    assert chats.requests_to(dave) == []
    assert chats._partners == {} and chats._asked == {} and chats._asked_by == {}


def test_a_rejected_requester_waits_before_asking_again():
    """After a /reject the same requester may not ask the same person for ten minutes, even after reconnecting."""
    clock = Clock()
    chats = PrivateChats(clock)
    mallory, bob, carol = Person("Mallory"), Person("bob"), Person("carol")
    chats.request(mallory, bob)
    assert chats.answer(bob, mallory, False)
    assert chats.paused_for(mallory, bob) == REJECTED_REQUEST_PAUSE_SECONDS
    assert chats.paused_for(mallory, carol) == 0 and chats.paused_for(bob, mallory) == 0
    clock.advance(REJECTED_REQUEST_PAUSE_SECONDS - 1)
    assert chats.paused_for(Person("mallory"), bob) == 1
    clock.advance(1)
    assert chats.paused_for(mallory, bob) == 0
    assert chats._rejected == {}


def test_work_per_operation_does_not_grow_with_other_peoples_requests():
    """Asking, answering, listing and leaving run as many lines with 20,000 other requests as with none."""

    def one_persons_day(chats, alice, bob, carol):
        def run():
            chats.request(alice, bob)
            chats.request(carol, alice)
            chats.requests_from(alice)
            chats.requests_to(alice)
            chats.partners(alice)
            chats.is_requested(alice, bob)
            chats.paused_for(alice, bob)
            chats.answer(bob, alice, True)
            chats.may_message(alice, bob)
            chats.end(alice, bob)
            chats.remove_member(alice)

        return run

    counts = []
    for others in (0, 200):
        chats = PrivateChats(Clock())
        crowd = people(others, "crowd")
        for asker in crowd:
            for target in crowd[:100]:
                if asker is not target:
                    chats.request(asker, target)
        alice, bob, carol = people(3)
        counts.append(lines_run_in_consent(one_persons_day(chats, alice, bob, carol)))
    assert counts[0] == counts[1]


def test_request_after_a_rejection_is_refused_with_the_wait():
    """A requester turned down is told how long until it may ask again, and the target hears nothing."""
    factory = make_factory()
    mallory, bob = joined(factory, "mallory", "bob")
    mallory.send("/request bob")
    bob.send("/reject mallory")
    mallory.lines(), bob.lines()
    mallory.send("/request bob")
    assert mallory.lines() == ["[Server] bob turned down your request: you may ask again in 10m"]
    assert bob.lines() == []
    factory.clock.advance(REJECTED_REQUEST_PAUSE_SECONDS)
    mallory.send("/request bob")
    assert mallory.lines() == ["[Server] asked bob for a private chat"]


def test_requests_waiting_are_capped_and_can_be_taken_back():
    """Past the cap a request is refused with what to do; /end takes one back, and both are told."""
    nicknames = ["user%d" % index for index in range(MAX_REQUESTS_WAITING + 1)]
    factory = make_factory()
    asker, *others = joined(factory, "asker", *nicknames)
    for nickname in nicknames[:-1]:
        asker.send("/request " + nickname)
    asker.lines()
    asker.send("/request " + nicknames[-1])
    assert asker.lines() == [
        "[Server] you already have 20 requests waiting for an answer, the most allowed: "
        "/end NICK takes one back"
    ]
    assert others[-1].lines() == []
    others[0].lines()
    asker.send("/end user0")
    assert asker.lines() == ["[Server] you took back your request to user0"]
    assert others[0].lines() == ["[Server] asker took back their private chat request"]
    asker.send("/request " + nicknames[-1])
    assert asker.lines() == ["[Server] asked %s for a private chat" % (nicknames[-1],)]


def test_end_without_chat_or_request_says_so():
    """/end for someone with neither a chat nor a request explains both."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    alice.send("/end bob")
    assert alice.lines() == ["[Server] you have no private chat with bob, nor a request to them"]
