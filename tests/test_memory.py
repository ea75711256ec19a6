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
