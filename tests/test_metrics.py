"""
The metrics over StringTransport connections and a Clock: what a scrape
says after people join, talk, flood, stall and leave in every way there is;
the reactor-lag probe; the page; and a scrape's cost with 10,000 online.
"""

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import MemoryReactor
from twisted.python.failure import Failure
from twisted.web.test.requesthelper import DummyRequest

from tests.doubles import (
    RecordingMember,
    admin_and_user,
    admin_logged_in,
    connect,
    joined,
    log_in,
    make_factory,
    registered,
)
from wazzap.app.metrics import CONTENT_TYPE, LAG_PROBE_INTERVAL_SECONDS, Metrics, MetricsPage
from wazzap.app import tap
from wazzap.net import counts
from wazzap.net.counts import DISCONNECTION_KINDS, disconnection_kind
from wazzap.app.service import MetricsService

#: A scrape with 10,000 people online must take no longer than this; it
#: takes about a tenth of a millisecond, the same as with ten.
SCRAPE_SECONDS_AT_10000 = 0.02


def scrape(metrics):
    """
    The samples of a scrape: C{name} or C{(name, label value)} -> value.
    """
    samples = {}
    for family in text_string_to_metric_families(metrics.render().decode("utf-8")):
        for sample in family.samples:
            key = (sample.name,) + tuple(sample.labels.values())
            samples[key[0] if len(key) == 1 else key] = sample.value
    return samples


def disconnections(metrics):
    """
    The disconnections counted so far, by kind, leaving out kinds at 0.
    """
    samples = scrape(metrics)
    found = {kind: samples[("wazzap_disconnections_total", kind)] for kind in DISCONNECTION_KINDS}
    return {kind: count for kind, count in found.items() if count}


def test_users_rooms_and_connections_are_counted():
    """A scrape tells the people online, the rooms and the open and accepted connections."""
    factory = make_factory()
    metrics = Metrics(factory)
    alice, _ = joined(factory, "alice", "bob")
    connect(factory, 41000)
    alice.send("/join #maths")
    samples = scrape(metrics)
    assert samples["wazzap_users_online"] == 2
    assert samples["wazzap_rooms"] == 2
    assert samples["wazzap_connections_open"] == 3
    assert samples["wazzap_connections_total"] == 3
    alice.close()
    samples = scrape(metrics)
    assert samples["wazzap_users_online"] == 1
    assert samples["wazzap_rooms"] == 1
    assert samples["wazzap_connections_open"] == 2
    assert samples["wazzap_connections_total"] == 3


def test_lines_and_bytes_in_and_out_are_counted():
    """Each line read counts once, and each line and byte written to each recipient."""
    factory = make_factory()
    metrics = Metrics(factory)
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    before = scrape(metrics)
    alice.send("hello")
    alice.protocol.dataReceived(b"one\ntwo\n")
    alice.settle()
    after = scrape(metrics)
    assert after["wazzap_received_lines_total"] - before["wazzap_received_lines_total"] == 3
    # Three lines to bob and three to carol, in one send each.
    assert after["wazzap_sent_lines_total"] - before["wazzap_sent_lines_total"] == 6
    written = len(bob.raw()) + len(carol.raw()) + len(alice.raw())
    assert after["wazzap_sent_bytes_total"] - before["wazzap_sent_bytes_total"] == written


def test_every_line_handed_out_is_counted_once_however_it_went():
    """Lines shared by a room, lines of one's own in the same turn, and those flushed on leaving each count once."""
    factory = make_factory()
    metrics = Metrics(factory)
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    before = scrape(metrics)["wazzap_sent_lines_total"]
    alice.protocol.dataReceived(b"hi all\n@bob psst\n/me waves\n")
    alice.settle()
    carol.send("/quit")
    written = sum(connection.raw().count(b"\n") for connection in (alice, bob, carol))
    # alice: her private line and wave; bob: all three; carol: two and her goodbye.
    assert written == 8
    assert scrape(metrics)["wazzap_sent_lines_total"] - before == written


def test_quit_and_closing_count_as_quit_and_a_lost_connection_as_error():
    """/quit and a client that closes count as quit; a connection lost counts as error."""
    factory = make_factory()
    metrics = Metrics(factory)
    alice, bob, carol = joined(factory, "alice", "bob", "carol")
    alice.send("/quit bye")
    alice.close()
    bob.close()
    carol.protocol.connectionLost(Failure(ConnectionLost()))
    assert disconnections(metrics) == {"quit": 2, "error": 1}


def test_a_reader_too_slow_counts_as_slow():
    """A client dropped for not reading its output counts as slow."""
    factory = make_factory(max_queued_output_bytes=2048)
    metrics = Metrics(factory)
    alice, bob = joined(factory, "alice", "bob")
    bob.transport.producer.pauseProducing()
    for index in range(100):
        alice.send("message number %d" % (index,))
    assert bob.transport.disconnecting
    bob.protocol.connectionLost(Failure(ConnectionLost()))
    assert disconnections(metrics) == {"slow": 1}


def test_login_and_idle_timeouts_count_as_timeout():
    """No nickname in time and idling too long each count as timeout."""
    factory = make_factory(login_timeout_seconds=30, idle_timeout_seconds=60)
    metrics = Metrics(factory)
    (idler,) = joined(factory, "idler")
    silent = connect(factory, 41000)
    factory.clock.advance(61)
    for connection in (idler, silent):
        assert connection.transport.disconnecting
        connection.close()
    assert disconnections(metrics) == {"timeout": 2}


def test_kick_ban_and_a_takeover_count_as_kicked():
    """Kicked, banned, or logged in to from elsewhere: each counts as kicked."""
    factory = make_factory(admins=("root1",))
    metrics = Metrics(factory)
    admin, bob = admin_and_user(factory)
    (carol,) = joined(factory, "carol")
    stale = registered(factory, "dave", port=42000)
    admin.send("/kick bob")
    admin.send("/ban carol")
    log_in(factory, "dave", port=42001)
    for connection in (bob, carol, stale):
        assert connection.transport.disconnecting
        connection.close()
    assert disconnections(metrics) == {"kicked": 3}


def test_no_approval_in_time_counts_as_timeout_and_a_denial_as_kicked():
    """With --approve-joins, a newcomer nobody approved in time times out; one denied is kicked."""
    factory = make_factory(admins=("root1",), approve_joins=True, approval_timeout_seconds=20)
    metrics = Metrics(factory)
    admin = admin_logged_in(factory, "root1", port=41000)
    denied = connect(factory, 41001)
    denied.send("erin")
    admin.send("/deny erin")
    assert denied.transport.disconnecting
    denied.close()
    forgotten = connect(factory, 41002)
    forgotten.send("frank")
    factory.clock.advance(21)
    assert forgotten.transport.disconnecting
    forgotten.close()
    assert disconnections(metrics) == {"kicked": 1, "timeout": 1}


def test_refusals_and_wrong_passwords_count_as_refused_and_login_failures():
    """A connection over the per-address limit is refused; each wrong password is a login failure."""
    factory = make_factory(max_connections_per_address=2)
    metrics = Metrics(factory)
    registered(factory, "alice").close()
    guesser = connect(factory, 41000)
    for attempt in range(3):
        guesser.send("alice")
        guesser.send("guess %d" % (attempt,))
        factory.clock.advance(5)
    assert guesser.transport.disconnecting
    guesser.close()
    (first,) = joined(factory, "first")
    connect(factory, 41001)
    over = connect(factory, 41002)
    assert over.transport.disconnecting
    over.close()
    samples = scrape(metrics)
    assert samples["wazzap_login_failures_total"] == 3
    assert disconnections(metrics) == {"quit": 1, "refused": 2}


def test_a_shutdown_counts_as_shutdown():
    """Everyone closed by the server's shutdown counts as shutdown, however they went."""
    factory = make_factory()
    metrics = Metrics(factory)
    connections = joined(factory, "alice", "bob")
    factory.shut_down("server is shutting down")
    for connection in connections:
        connection.close()
    assert disconnections(metrics) == {"shutdown": 2}


def test_every_leave_reason_has_a_kind_and_unknown_ones_are_other():
    """The reasons the server gives map to their kinds; a reason nobody gives is other."""
    assert disconnection_kind("quit: off to bed") == counts.QUIT
    assert disconnection_kind("idle for 600 seconds") == counts.TIMEOUT
    assert disconnection_kind("ping timeout: 150 seconds") == counts.TIMEOUT
    assert disconnection_kind("too slow: stopped reading") == counts.SLOW
    assert disconnection_kind("banned") == counts.REFUSED
    assert disconnection_kind("something new") == counts.OTHER


def test_flood_slowdowns_are_counted_once_per_flood():
    """A flood counts once however many of its lines are held, and the next flood again."""
    factory = make_factory(flood_burst_lines=2, flood_rate_lines_per_second=1)
    metrics = Metrics(factory)
    (alice,) = joined(factory, "alice", "bob")[:1]
    alice.protocol.dataReceived(b"".join(b"line %d\n" % (index,) for index in range(6)))
    factory.clock.pump([1] * 20)
    assert scrape(metrics)["wazzap_flood_slowdowns_total"] == 1
    alice.protocol.dataReceived(b"".join(b"again %d\n" % (index,) for index in range(6)))
    factory.clock.pump([1] * 20)
    assert scrape(metrics)["wazzap_flood_slowdowns_total"] == 2


def test_queued_output_is_what_waits_for_readers_that_stopped():
    """Output queued for a client that stopped reading is counted until it reads again."""
    factory = make_factory()
    metrics = Metrics(factory)
    alice, bob = joined(factory, "alice", "bob")
    bob.transport.producer.pauseProducing()
    alice.send("hello")
    queued = scrape(metrics)["wazzap_queued_output_bytes"]
    assert queued == len(b"".join(bob.transport.producer._blocked.backlog)) > 0
    bob.transport.producer.resumeProducing()
    assert scrape(metrics)["wazzap_queued_output_bytes"] == 0


def test_reactor_lag_is_how_late_each_probe_ran():
    """Each probe notes how long after its due time it ran, skipped intervals included."""
    factory = make_factory()
    metrics = Metrics(factory)
    clock = factory.clock
    metrics.lag.start()
    interval = LAG_PROBE_INTERVAL_SECONDS
    clock.advance(interval)  # on time
    clock.advance(interval * 1.25)  # a quarter of an interval late
    clock.advance(interval * 2.5)  # due at 3 intervals, run at 4.75: one skipped
    samples = scrape(metrics)
    assert samples["wazzap_reactor_lag_seconds_count"] == 3
    assert samples["wazzap_reactor_lag_seconds_sum"] == interval * (0 + 0.25 + 1.75)
    assert samples[("wazzap_reactor_lag_seconds_bucket", "0.001")] == 1
    assert samples[("wazzap_reactor_lag_seconds_bucket", "0.25")] == 2
    assert samples[("wazzap_reactor_lag_seconds_bucket", "2.5")] == 3
    metrics.lag.stop()
    assert not clock.getDelayedCalls()


def test_the_page_is_the_text_exposition():
    """The page answers with the text format and its content type, rendered at once."""
    factory = make_factory()
    metrics = Metrics(factory)
    joined(factory, "alice")
    request = DummyRequest([b""])
    body = MetricsPage(metrics.render).render_GET(request)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [CONTENT_TYPE]
    assert b"\nwazzap_users_online 1.0\n" in body


@pytest.mark.parametrize(
    "value, description",
    [
        ("9108", "tcp:9108:interface=127.0.0.1"),
        ("tcp:9108:interface=0.0.0.0", "tcp:9108:interface=0.0.0.0"),
        ("unix:/run/wazzap-metrics.sock", "unix:/run/wazzap-metrics.sock"),
    ],
)
def test_metrics_option_forms(value, description):
    """--metrics takes an endpoint, and a bare port number listens on loopback only."""
    options = tap.Options()
    options.parseOptions(["--metrics", value])
    assert options["metrics"] == description


def test_the_service_serves_the_site_and_probes_the_lag_while_running():
    """The service listens with the metrics site at once, probes the lag while running, and stops both."""
    factory = make_factory()
    metrics = Metrics(factory)
    reactor = MemoryReactor()
    metrics_service = MetricsService(metrics, "tcp:9108:interface=127.0.0.1", reactor)
    metrics_service.listen()
    [(port, site, _, interface)] = reactor.tcpServers
    assert (port, site, interface) == (9108, metrics.site, "127.0.0.1")
    metrics_service.startService()
    factory.clock.advance(LAG_PROBE_INTERVAL_SECONDS)
    assert scrape(metrics)["wazzap_reactor_lag_seconds_count"] == 1
    stopped = metrics_service.stopService()
    assert stopped.called and not factory.clock.getDelayedCalls()


def test_a_scrape_with_10000_online_reads_no_member():
    """A scrape with 10,000 people online, some of them stalled, takes well under a millisecond or so."""
    factory = make_factory()
    metrics = Metrics(factory)
    stalled = joined(factory, *("stalled%d" % (index,) for index in range(20)))
    for connection in stalled:
        connection.transport.producer.pauseProducing()
    stalled[0].send("/me waits")
    chat = factory.chat
    # Joined without ending the turn: their join notices, never sent,
    # cost nothing more here.
    for index in range(10000):
        member = RecordingMember("user%d" % (index,))
        member.color = chat.pick_color()
        chat.join(member)
        factory.connections[member] = None
    started = time.perf_counter()
    metrics.render()
    took = time.perf_counter() - started
    samples = scrape(metrics)
    assert samples["wazzap_users_online"] == 10020
    assert samples["wazzap_queued_output_bytes"] > 0
    assert took < SCRAPE_SECONDS_AT_10000, took
