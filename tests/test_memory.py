"""
What an idle joined connection costs wazzap's own code, by tracemalloc:
benchmark D's budget (2 KiB of server RSS per idle connection) also covers
Twisted's transport, the socket and the kernel, so ours must stay small.
"""

import gc
import sys
import tracemalloc

import pytest

from tests.doubles import Connection, make_factory

#: Connections joined before measuring (what the first joins load once, and
#: the tables they start) and measured.
WARM_UP, MEASURED = 100, 1000
#: Bytes of heap per idle joined connection that wazzap's code allocates,
#: the protocol object included (about 890 B; 964 B before issue 9's
#: memory work).
BUDGET_BYTES = 920


@pytest.mark.timeout(60)
def test_an_idle_joined_connection_costs_little_heap():
    """Joining 1,000 idle connections grows wazzap's own heap by at most the budget each."""
    factory = make_factory(max_connections_per_minute=0, max_connections_per_address=0)
    connections = []

    def join(number):
        connection = Connection(factory, port=number).join("u%05d" % (number,))
        connection.lines()
        connections.append(connection)

    for number in range(WARM_UP):
        join(number)
    gc.collect()
    ours = [tracemalloc.Filter(True, "*/wazzap/*")]
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot().filter_traces(ours)
        for number in range(WARM_UP, WARM_UP + MEASURED):
            join(number)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(ours)
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    # The protocol object is made by Twisted's buildProtocol, outside our files.
    per_connection = grown / MEASURED + sys.getsizeof(connections[-1].protocol)
    assert len(factory.chat) == WARM_UP + MEASURED
    assert per_connection <= BUDGET_BYTES


#: People joining in one turn, and the most the turn's end may allocate and
#: let go again (about 60 KB; 3 MB while every newcomer's share of the
#: crowd's join notices was held until the last was sent).
CROWD, CROWD_PEAK_BYTES = 300, 300_000


@pytest.mark.timeout(60)
def test_a_crowd_joining_in_one_turn_is_told_without_a_quadratic_peak():
    """The end of a turn in which 300 join holds one newcomer's notices at a time, not all of theirs."""
    factory = make_factory(max_connections_per_minute=0, max_connections_per_address=0)
    crowd = [Connection(factory, port=number) for number in range(CROWD)]
    for connection in crowd:
        connection.lines()
        connection.protocol.dataReceived(b"c%05d\n" % (connection.transport.getPeer().port,))
    gc.collect()
    tracemalloc.start(1)
    try:
        factory.clock.advance(0)
        # What the turn allocated and let go again; its output stays in the
        # StringTransports.
        ended, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    last = crowd[-1].lines()
    assert len(factory.chat) == CROWD
    assert "[Server] c%05d joined the chat" % (CROWD - 1,) in crowd[0].lines()
    assert any(line.startswith("[Server] Welcome, c%05d!" % (CROWD - 1,)) for line in last)
    assert peak - ended <= CROWD_PEAK_BYTES
