"""
Events as plain data: frozen, and the same after a trip through JSON.
"""

import dataclasses
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wazzap.core import events
from wazzap.core.identity import Identity, new_session_key, process_id, process_of

words = st.text()
maybe_words = st.none() | st.text()
counts = st.integers(min_value=0, max_value=10**6)

room_event = st.one_of(
    st.builds(events.Said, words, maybe_words, words, words),
    st.builds(events.Emoted, words, maybe_words, words),
    st.builds(events.Joined, words, words),
    st.builds(events.Left, words, maybe_words, words),
    st.builds(events.Renamed, words, words),
    st.builds(events.PresenceSummary, counts, counts, counts),
    st.builds(events.Notice, words),
    st.builds(events.Announcement, words),
    st.builds(events.Private, words, words, words, words, words),
)
any_event = room_event | st.builds(
    events.History, words, st.floats(allow_nan=False, allow_infinity=False), st.booleans(), room_event
)


@given(any_event)
def test_every_event_survives_json(event):
    """Any event, whatever its text, comes back equal from its JSON."""
    assert events.from_json(events.to_json(event)) == event


def test_every_event_type_is_known_to_json():
    """Each event class can be read back by name."""
    assert set(events.EVENT_TYPES.values()) == {
        cls for cls in vars(events).values() if dataclasses.is_dataclass(cls)
    }


def test_events_are_frozen():
    """An event cannot be changed once published."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        events.Notice("hi").text = "changed"


@pytest.mark.parametrize(
    "data",
    ["[]", '{"type": "Nope"}', '{"type": "Notice"}', '{"type": "Notice", "text": "x", "extra": 1}', '"x"'],
)
def test_what_is_not_an_event_is_refused(data):
    """JSON that is not an event raises ValueError rather than giving half an event."""
    with pytest.raises(ValueError):
        events.from_json(data)


def test_identity_is_a_frozen_value_renamed_as_a_copy():
    """Renaming an identity gives a new value and leaves the old one alone."""
    alice = Identity("alice", "alice", True, "red", "192.0.2.1")
    alicia = dataclasses.replace(alice, nickname="Alicia")
    assert (alicia.nickname, alicia.account, alicia.is_admin, alicia.color) == ("Alicia", "alice", True, "red")
    assert alice.nickname == "alice"
    with pytest.raises(dataclasses.FrozenInstanceError):
        alice.color = "blue"


def test_session_keys_are_unique_and_name_the_process():
    """Each session key is new and names this process, whose id a forked child does not share."""
    keys = {new_session_key() for _ in range(100)}
    assert len(keys) == 100
    assert {process_of(key) for key in keys} == {process_id()}
    child_reads, child_writes = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(child_writes, process_of(new_session_key()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(child_reads, 64).decode() not in ("", process_id())


@given(room_event)
def test_every_room_event_survives_packing(event):
    """Any event a room publishes comes back equal from its packed form."""
    assert events.unpack(events.pack(event)) == event


@pytest.mark.parametrize("values", [[], "x", ["Nope"], ["Notice"], ["Notice", "a", "b"], [1, 2]])
def test_what_is_not_a_packed_event_is_refused(values):
    """A list that is not a packed event raises ValueError."""
    with pytest.raises(ValueError):
        events.unpack(values)
