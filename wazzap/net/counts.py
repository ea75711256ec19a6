"""
What the connections of one server have done since it started, kept as
plain integers that the connections bump and the metrics
(L{wazzap.app.metrics}) read when scraped.

A Prometheus counter takes a lock on every increment; these are bumped for
every line and every send, where an attribute add is all the cost allowed.
"""

from wazzap.core.admission import TAKEN_OVER

#: Why connections end, as the metrics tell them apart.
QUIT = "quit"
SLOW = "slow"
TIMEOUT = "timeout"
KICKED = "kicked"
ERROR = "error"
REFUSED = "refused"
SHUTDOWN = "shutdown"
OTHER = "other"
DISCONNECTION_KINDS = (QUIT, SLOW, TIMEOUT, KICKED, ERROR, REFUSED, SHUTDOWN, OTHER)

#: The leave reason of a connection refused before it joined (per-address
#: limits, a banned address, a browser or a TLS client on the plain port).
REFUSED_REASON = "refused"

#: Leave reasons, or how they start, by kind: the reasons the protocol, the
#: login dialog, admission and the moderation commands give, which
#: tests/test_metrics.py drives one by one.
_KIND_OF_REASON = (
    (QUIT, ("quit", "connection closed")),
    (SLOW, ("too slow",)),
    (TIMEOUT, ("login timeout", "no approval in time", "idle for ", "ping timeout")),
    (KICKED, ("kicked by ", "banned by ", "denied by ", TAKEN_OVER)),
    (ERROR, ("connection lost", "server error")),
    (REFUSED, (REFUSED_REASON, "banned", "too many wrong passwords", "too many waiting")),
)


def disconnection_kind(reason):
    """
    Which of L{DISCONNECTION_KINDS} a leave C{reason} is: the few the
    metrics count apart, where the reason itself may name people.
    """
    for kind, starts in _KIND_OF_REASON:
        if reason.startswith(starts):
            return kind
    return OTHER


class Counts:
    """
    The running totals of one server's connections.

    @ivar backlogged: the output queues whose peer stopped reading (paused),
        so that what is queued for clients is summed over those few rather
        than over everyone online.
    """

    __slots__ = (
        "lines_in",
        "bytes_out",
        "connections",
        "flood_slowdowns",
        "disconnections",
        "backlogged",
    )

    def __init__(self):
        self.lines_in = 0
        self.bytes_out = 0
        self.connections = 0
        self.flood_slowdowns = 0
        #: kind -> count, every kind there from the start so each is exported.
        self.disconnections = dict.fromkeys(DISCONNECTION_KINDS, 0)
        self.backlogged = set()

    def disconnected(self, kind):
        self.disconnections[kind] += 1

    def queued_output_bytes(self):
        """
        Bytes waiting for clients that stopped reading.
        """
        return sum(queue.queued_bytes() for queue in self.backlogged)
