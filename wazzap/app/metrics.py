"""
What an operator watches: the server's numbers in Prometheus's text format,
served over HTTP at C{/metrics} (C{--metrics}).

The numbers are running totals the server keeps as plain integers
(L{wazzap.net.counts}, the chat and its outbox, admission), read only when scraped by
L{ChatCollector}: nothing on the way of a line or a send takes a lock for
them, and a scrape reads no member, so it costs the same with ten thousand
people online as with ten.  prometheus_client's own Twisted resource renders
in the reactor's thread pool, where it would read the chat's state while
the reactor changes it; the page here renders on the reactor, from a
registry of its own rather than the process-wide default one.
"""

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from twisted.internet.task import LoopingCall
from twisted.web.resource import Resource
from twisted.web.server import Site

#: How often the reactor's lateness is sampled.
LAG_PROBE_INTERVAL_SECONDS = 1
#: The upper bounds of the lag histogram's buckets: a reactor at ease stays
#: in the first; past a tenth of a second, people notice their lines lag.
LAG_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: The text format C{generate_latest} writes (its default escaping keeps
#: names as they are, which the classic 0.0.4 format every scraper reads allows).
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class ChatCollector(Collector):
    """
    The numbers of one L{wazzap.server.ChatFactory}, read from its running
    totals at each scrape.
    """

    def __init__(self, factory):
        self._factory = factory

    def collect(self):
        factory = self._factory
        counts = factory.counts
        chat = factory.chat
        yield GaugeMetricFamily("wazzap_users_online", "People in the chat.", value=len(chat))
        yield GaugeMetricFamily(
            "wazzap_rooms", "Rooms, #lobby and permanent ones included.", value=chat.room_count()
        )
        yield GaugeMetricFamily(
            "wazzap_connections_open",
            "Open connections, logging in or in the chat.",
            value=len(factory.connections),
        )
        yield CounterMetricFamily(
            "wazzap_connections", "Connections accepted, refused ones included.",
            value=counts.connections,
        )
        disconnections = CounterMetricFamily(
            "wazzap_disconnections",
            "Connections ended, by why: quit (/quit or closed by the client), slow (stopped"
            " reading), timeout (login, approval or idle), kicked (kick, ban, deny, logged in"
            " elsewhere), error (connection lost, server error), refused (limits, bans, not a"
            " chat client, wrong passwords), shutdown, other.",
            labels=["reason"],
        )
        for kind, count in counts.disconnections.items():
            disconnections.add_metric([kind], count)
        yield disconnections
        yield CounterMetricFamily(
            "wazzap_received_lines", "Lines read from clients.", value=counts.lines_in
        )
        yield CounterMetricFamily(
            "wazzap_sent_lines",
            "Lines (events) handed to people: a public line to a room of N counts N - 1.",
            value=chat.outbox.delivered,
        )
        yield CounterMetricFamily(
            "wazzap_sent_bytes", "Bytes written to clients.", value=counts.bytes_out
        )
        yield CounterMetricFamily(
            "wazzap_login_failures", "Wrong passwords given at login.",
            value=factory.admission.login_failures,
        )
        yield CounterMetricFamily(
            "wazzap_flood_slowdowns",
            "Times a connection sent too fast and had its lines slowed down.",
            value=counts.flood_slowdowns,
        )
        yield GaugeMetricFamily(
            "wazzap_queued_output_bytes",
            "Bytes waiting for clients that stopped reading their output.",
            value=counts.queued_output_bytes(),
        )


class ReactorLag:
    """
    How late the reactor runs what is due: a L{LoopingCall} on C{clock}
    every L{LAG_PROBE_INTERVAL_SECONDS} notes how long after its due time
    it ran, in the histogram C{wazzap_reactor_lag_seconds}.  Work that
    blocks the reactor (a slow callback, a swapping host) shows here first.
    """

    def __init__(self, clock, registry):
        self.histogram = Histogram(
            "wazzap_reactor_lag_seconds",
            "How late the reactor ran a timer, sampled every %s s." % (LAG_PROBE_INTERVAL_SECONDS,),
            buckets=LAG_BUCKETS_SECONDS,
            registry=registry,
        )
        # A LoopingCall runs on a grid from its start and skips the runs a
        # blocked reactor missed, telling how many intervals went by: the due
        # time of each run is so known exactly.
        self._loop = LoopingCall.withCount(self._ran)
        self._loop.clock = clock
        self._intervals_done = 0

    def start(self):
        self._intervals_done = 0
        self._loop.start(LAG_PROBE_INTERVAL_SECONDS, now=False)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def _ran(self, intervals):
        loop = self._loop
        due = loop.starttime + (self._intervals_done + 1) * loop.interval
        self._intervals_done += intervals
        self.histogram.observe(max(0.0, loop.clock.seconds() - due))


class MetricsPage(Resource):
    """
    The page a scrape gets, rendered on the reactor by C{render}.
    """

    isLeaf = True

    def __init__(self, render):
        Resource.__init__(self)
        self._render = render

    # Resource API

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE)
        return self._render()


class MetricsSite(Site):
    """
    The web site of the metrics, which writes no log line per request: a
    scrape every 15 seconds would fill the server's log with them.
    """

    noisy = False

    def log(self, request):
        pass


class Metrics:
    """
    The metrics of one server: its registry (the L{ChatCollector} and the
    L{ReactorLag} histogram) and the web site that serves it at C{/metrics}.
    """

    def __init__(self, factory):
        self.registry = CollectorRegistry()
        self.registry.register(ChatCollector(factory))
        self.lag = ReactorLag(factory.clock, self.registry)
        root = Resource()
        root.putChild(b"metrics", MetricsPage(self.render))
        self.site = MetricsSite(root)

    def render(self):
        """
        The text exposition of every metric, as a scrape gets it.
        """
        return generate_latest(self.registry)
