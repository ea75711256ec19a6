"""
Command-line options of C{twistd wazzap} and the service they build.

Every option is checked here, so a bad value ends in a one-line usage error
from twistd rather than a traceback from deep inside the server.
"""

import sys

from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from wazzap.accounts import RESERVED_ADMIN, Accounts
from wazzap.bans import Bans
from wazzap.chat import Chat
from wazzap.core.rooms import (
    LOBBY,
    MAX_ROOMS,
    MAX_ROOMS_PER_USER,
    as_room_name,
    room_key,
    room_name_problem,
)
from wazzap.core.replay import MAX_HISTORY_LINES, REPLAY_LINES
from wazzap.passwords import HASHING_THREADS, PasswordHasher
from wazzap.persist.history import HISTORY_DAYS, HISTORY_LINES, HistoryLog, HistoryRetention
from wazzap.server import ChatFactory, Limits
from wazzap.service import SESSION_HISTORY_DAYS, ChatServerService, SessionHistoryRetention
from wazzap.store import STORE_THREADS, Store, StoreError, default_db_path
from wazzap.text import nickname_problem
from wazzap.threads import ThreadPoolService

DEFAULT_PORT = 5555

log = Logger(namespace="wazzap.tap")


def _number(kind, minimum, name):
    """
    A converter for an option that must be a C{kind} of at least C{minimum}.
    """

    def convert(value):
        try:
            number = kind(value)
        except ValueError:
            raise usage.UsageError("--%s must be a number, not %r" % (name, value))
        if not number >= minimum:
            raise usage.UsageError("--%s must be at least %s, not %s" % (name, minimum, value))
        return number

    return convert


# (option, Limits field, kind, minimum, help)
_LIMIT_OPTIONS = [
    ("max-line-bytes", "max_line_bytes", int, 64,
     "Longest line accepted, in bytes; longer lines are refused with a notice."),
    ("max-queued-output", "max_queued_output_bytes", int, 1024,
     "Bytes of output held for a client that stopped reading before it is dropped."),
    ("slow-timeout", "slow_timeout_seconds", float, 0.1,
     "Seconds a client may leave its output blocked before it is dropped."),
    ("login-timeout", "login_timeout_seconds", float, 0.1,
     "Seconds a new connection has to choose a nickname."),
    ("idle-timeout", "idle_timeout_seconds", float, 0,
     "Seconds of silence after which a user is disconnected (0: never)."),
    ("flood-burst", "flood_burst_lines", int, 1,
     "Lines a connection may send at once before it is slowed down."),
    ("flood-rate", "flood_rate_lines_per_second", float, 0,
     "Lines per second a connection may keep sending (0: no flood control)."),
    ("max-per-address", "max_connections_per_address", int, 0,
     "Connections allowed from one address (0: no limit)."),
    ("max-connections-per-minute", "max_connections_per_minute", int, 0,
     "New connections allowed from one address in a minute (0: no limit)."),
    ("approval-timeout", "approval_timeout_seconds", float, 1,
     "Seconds a newcomer waits for an admin's approval (with --approve-joins)."),
]


class Options(usage.Options):
    synopsis = "[options]"
    longdesc = (
        "Run a wazzap chat server. Users connect with nc, telnet or "
        "wazzap-client (python -m wazzap.client). --port takes a port number (all IPv4 "
        "interfaces) or a Twisted endpoint such as tcp:5555:interface=127.0.0.1, "
        "tcp6:5555 or unix:/run/wazzap.sock, and may be given several times."
    )

    optFlags = [
        ("approve-joins", None, "Newcomers wait until an admin lets them in (/approve)."),
        ("private-consent", None,
         "Users take private messages only in accepted private chats unless they /consent off."),
        ("no-user-rooms", None, "Only admins create rooms; others join those there are."),
    ]

    optParameters = [
        ("db", None, None,
         "The SQLite database of accounts, login history and bans "
         "[default: %s]." % (default_db_path(),)),
        ("session-history-days", None, SESSION_HISTORY_DAYS,
         "Days the login history (/sessions) keeps a session after it ended; "
         "older ones are deleted hourly (0: keep them for ever).",
         _number(int, 0, "session-history-days")),
        ("history-days", None, HISTORY_DAYS,
         "Days room history (replays, /history) keeps a line (0: keep none).",
         _number(int, 0, "history-days")),
        ("history-lines", None, HISTORY_LINES,
         "Lines of history kept for each room at most.",
         _number(int, 1, "history-lines")),
        ("replay", None, REPLAY_LINES,
         "Lines of a room's history shown to someone joining it, up to %d (0: none)."
         % (MAX_HISTORY_LINES,),
         _number(int, 0, "replay")),
        ("max-rooms-per-user", None, MAX_ROOMS_PER_USER,
         "Rooms one user may be in at once (#lobby counts).",
         _number(int, 1, "max-rooms-per-user")),
        ("max-rooms", None, MAX_ROOMS,
         "Rooms the server holds at once, #lobby and --room ones included.",
         _number(int, 1, "max-rooms")),
    ] + [
        (name, None, getattr(Limits, field), help, _number(kind, minimum, name))
        for name, field, kind, minimum, help in _LIMIT_OPTIONS
    ]

    def __init__(self):
        usage.Options.__init__(self)
        self["port"] = []
        self["admin"] = []
        self["room"] = []

    def opt_admin(self, nickname):
        """
        A registered nickname with admin rights once logged in (repeatable).
        """
        problem = nickname_problem(nickname)
        if problem is not None and not problem.endswith("is reserved"):
            raise usage.UsageError("--admin %r: %s" % (nickname, problem))
        self["admin"].append(nickname)

    def parseOptions(self, options=None):
        # twistd answers a UsageError with its whole help text; one line that
        # names the problem and where help is serves a user better.
        try:
            usage.Options.parseOptions(self, options)
        except usage.UsageError as e:
            raise SystemExit("twistd wazzap: %s (see: twistd wazzap --help)" % (e,))

    def opt_port(self, value):
        """
        Where to listen: a port number or an endpoint string (repeatable; default 5555).
        """
        description = "tcp:%s" % (value,) if value.isdigit() else value
        try:
            from twisted.internet import reactor

            serverFromString(reactor, description)
        except Exception as e:
            raise usage.UsageError("--port %r is not a port or endpoint: %s" % (value, e))
        self["port"].append(description)

    opt_p = opt_port

    def opt_room(self, name):
        """
        A permanent room, made at start and kept when empty, with or without its # (repeatable).
        """
        name = as_room_name(name)
        problem = room_name_problem(name)
        if problem is not None:
            raise usage.UsageError("--room: " + problem)
        known = {room_key(room) for room in [LOBBY] + self["room"]}
        if room_key(name) not in known:
            self["room"].append(name)

    def postOptions(self):
        if not self["port"]:
            self.opt_port(str(DEFAULT_PORT))
        if self["replay"] > MAX_HISTORY_LINES:
            raise usage.UsageError(
                "--replay must be at most %d, not %d" % (MAX_HISTORY_LINES, self["replay"])
            )
        rooms = 1 + len(self["room"])
        if self["max-rooms"] < rooms:
            raise usage.UsageError(
                "--max-rooms %d is fewer than the %d rooms #lobby and --room make"
                % (self["max-rooms"], rooms)
            )

    def limits(self):
        """
        The per-connection L{Limits} these options ask for.
        """
        return Limits(**{field: self[name] for name, field, _, _, _ in _LIMIT_OPTIONS})


def makeService(config, reactor=None):
    """
    Build the wazzap service from parsed L{Options}, with its database open
    and its ports listening: twistd calls this before it becomes a daemon,
    so a problem with either is told on the terminal that started it.
    """
    if reactor is None:
        from twisted.internet import reactor
    # The threads are parents of the services that use them, so that they
    # start first and stop last: the server still reads and writes the
    # database while it stops, and a MultiService stops its children at once.
    top = MultiService()
    store_threads = ThreadPoolService("wazzap-store", STORE_THREADS, reactor)
    store_threads.setServiceParent(top)
    hashing_threads = ThreadPoolService("wazzap-passwords", HASHING_THREADS, reactor)
    hashing_threads.setServiceParent(store_threads)
    try:
        store = Store.open(config["db"], store_threads)
    except StoreError as e:
        raise SystemExit("wazzap: %s" % (e,))
    log.info(
        "{done} database {path}",
        done="created a new" if store.database.created else "opened the",
        path=store.path,
    )
    accounts = Accounts(store, PasswordHasher(hashing_threads), config["admin"], reactor)
    # Said before twistd daemonizes, where whoever started it sees it.
    for nickname in accounts.unregistered_admins():
        sys.stderr.write("wazzap: %s\n" % (RESERVED_ADMIN.format(nickname=nickname),))
    bans = Bans(store, reactor)
    bans.load()
    history = None
    if config["history-days"]:
        try:
            # A replay shows no more than the history keeps.
            tail_lines = min(config["replay"], config["history-lines"])
            history = HistoryLog.open(
                store, reactor, [LOBBY] + config["room"], config["history-days"], tail_lines
            )
        except StoreError as e:
            raise SystemExit("wazzap: %s" % (e,))
    factory = ChatFactory(
        Chat(
            reactor,
            consent_by_default=config["private-consent"],
            rooms=config["room"],
            user_rooms=not config["no-user-rooms"],
            max_rooms=config["max-rooms"],
            max_rooms_per_user=config["max-rooms-per-user"],
            history=history,
            replay_lines=config["replay"],
        ),
        accounts,
        bans,
        accounts.throttle,
        config.limits(),
        clock=reactor,
        approve_joins=config["approve-joins"],
    )
    server = ChatServerService(factory, config["port"], reactor=reactor)
    server.setServiceParent(hashing_threads)
    if config["session-history-days"]:
        # Stopped before the server's service closes the store: a
        # MultiService stops its children last first.
        retention = SessionHistoryRetention(store, config["session-history-days"], reactor)
        retention.setServiceParent(hashing_threads)
    HistoryRetention(
        store, config["history-days"], config["history-lines"], reactor
    ).setServiceParent(hashing_threads)
    server.listen()
    return top
