"""
What the factory remembers of an address between its connections: new
connections a minute, and the flood allowance across reconnects, driven by a
Clock; and the rooms its congestion goes by.
"""

from tests.doubles import Connection, joined, make_factory


def reconnect(factory, times, host="127.0.0.1"):
    """
    Open and close C{times} connections from C{host}; return the last, still open.
    """
    for port in range(1, times):
        Connection(factory, host=host, port=port).close()
    return Connection(factory, host=host, port=times)


def test_new_connections_a_minute_are_limited_per_address():
    """Past the new connections allowed a minute, an address is refused with one clear line."""
    factory = make_factory(max_connections_per_minute=3)
    assert b"Welcome" in reconnect(factory, 3).raw()
    refused = Connection(factory, port=4)
    assert refused.lines() == [
        "[Server] Too many new connections from your address (limit 3 a minute):"
        " try again in 20 seconds."
    ]
    assert refused.transport.disconnecting
    assert b"Welcome" in Connection(factory, host="127.0.0.2").raw()
    factory.clock.advance(20)
    assert b"Welcome" in Connection(factory, port=5).raw()
    assert b"Too many" in Connection(factory, port=6).raw()


def test_no_limit_on_new_connections_with_zero():
    """With --max-connections-per-minute 0, reconnecting is never refused."""
    factory = make_factory(max_connections_per_minute=0)
    assert b"Welcome" in reconnect(factory, 200).raw()


def test_reconnecting_does_not_buy_a_fresh_flood_burst():
    """A connection from an address whose last connection used its burst starts without one."""
    factory = make_factory(flood_burst_lines=5, flood_rate_lines_per_second=1)
    flooder = Connection(factory).join("flooder")
    flooder.send(b"".join(b"line %d\n" % (n,) for n in range(4)), ending=b"")
    flooder.close()
    again = Connection(factory, port=2)
    again.raw()
    again.send("flooder")
    assert "[Server] you are sending too fast: your lines are being slowed down" in again.lines()
    assert factory.addresses.line_allowance("127.0.0.2").full()
    factory.clock.advance(5)
    assert factory.addresses.line_allowance("127.0.0.1").full()


def test_what_is_remembered_of_addresses_is_forgotten_once_it_no_longer_matters():
    """Addresses whose allowances are full again are forgotten: the memory stays small."""
    factory = make_factory(flood_burst_lines=2, flood_rate_lines_per_second=1)
    for number in range(1000):
        if number % 100 == 0:
            factory.clock.advance(60)
        connection = Connection(factory, host="10.0.%d.%d" % (number // 250, number % 250))
        connection.send("n%d" % (number,))
        connection.send("/who")
        connection.close()
    assert len(factory.addresses) <= 300


def test_congestion_goes_by_the_rooms_of_the_chat():
    """A reader catching up holds back the senders in its room of the chat's presence only."""
    factory = make_factory()
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    presence, key = factory.chat.presence, carol.protocol.session_key
    (lobby,) = presence.rooms_of(key)
    presence.exit(lobby, key)
    presence.enter("elsewhere", key)
    factory.congestion.started(bob.protocol)
    assert factory.congestion.holds_back(alice.protocol)
    assert not factory.congestion.holds_back(carol.protocol)
