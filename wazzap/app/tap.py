"""
Command-line options of C{twistd wazzap} and the service they build.

Every option is checked here, so a bad value ends in a one-line usage error
from twistd rather than a traceback from deep inside the server.  A config
file (C{--config}, L{wazzap.app.config}) gives the same options through the same
checks, and the command line wins over it.
"""

import getopt
import os
import sys

from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from wazzap.persist.accounts import RESERVED_ADMIN, Accounts
from wazzap.app.control import (
    CONTROL_SUFFIX,
    ControlCommands,
    ControlService,
    console_problem,
    control_socket_for,
)
from wazzap.persist.bans import Bans
from wazzap.bus.redis import DEFAULT_PREFIX
from wazzap.chat import Chat
from wazzap.core.identity import process_id
from wazzap.failures import OperatorError
from wazzap.app.config import ConfigError, option_values, read_config
from wazzap.core.replay import MAX_HISTORY_LINES, REPLAY_LINES
from wazzap.core.rooms import (
    LOBBY,
    MAX_ROOMS,
    MAX_ROOMS_PER_USER,
    as_room_name,
    room_key,
    room_name_problem,
)
from wazzap.app.motd import MotdError, read_motd
from wazzap.net.tls import ServerCertificate, TLSError
from wazzap.persist.passwords import HASHING_THREADS, PasswordHasher
from wazzap.persist.history import HISTORY_DAYS, HISTORY_LINES, HistoryLog, HistoryRetention
from wazzap.app.reload import (
    Reloader,
    ReloadOnHangup,
    admins_step,
    limits_step,
    motd_step,
    rooms_step,
    tls_step,
)
from wazzap.server import ChatFactory, Limits
from wazzap.app.service import (
    SESSION_HISTORY_DAYS,
    ChatServerService,
    MetricsService,
    WebService,
    SessionHistoryRetention,
)
from wazzap.persist.store import (
    STORE_THREADS,
    Store,
    StoreError,
    default_db_path,
    is_database_url,
)
from wazzap.text import nickname_problem
from wazzap.threads import ThreadPoolService

DEFAULT_PORT = 5555

log = Logger(namespace="wazzap.app.tap")


def _number(kind, minimum, name, maximum=None):
    """
    A converter for an option that must be a C{kind} of at least C{minimum}
    (and at most C{maximum}, if given).
    """

    def convert(value):
        try:
            number = kind(value)
        except ValueError:
            raise usage.UsageError("--%s must be a number, not %r" % (name, value))
        if not number >= minimum:
            raise usage.UsageError("--%s must be at least %s, not %s" % (name, minimum, value))
        if maximum is not None and number > maximum:
            raise usage.UsageError("--%s must be at most %s, not %s" % (name, maximum, value))
        return number

    return convert


def _endpoint(name, value, port_form="tcp:%s", tls_added=False):
    """
    The endpoint the option C{name} was given as C{value}: a port number,
    written as C{port_form} says, or an endpoint string; a usage error that
    says why if Twisted cannot listen there, or (C{tls_added}: wazzap wraps
    the endpoint in TLS itself) if it is an C{ssl:} one.
    """
    if tls_added and value.startswith("ssl:"):
        raise usage.UsageError(
            "--%s %r: give a port or a tcp: endpoint; wazzap adds the TLS" % (name, value)
        )
    description = port_form % (value,) if value.isdigit() else value
    try:
        from twisted.internet import reactor

        serverFromString(reactor, description)
    except Exception as e:
        if description.startswith("systemd:") and isinstance(e, (KeyError, IndexError)):
            # Twisted's own words for it are a bare name or "list index out of range".
            raise usage.UsageError(
                "--%s %r: systemd passed no such socket: start wazzap through its socket"
                " unit, which passes it with LISTEN_FDS and LISTEN_FDNAMES" % (name, value)
            )
        raise usage.UsageError("--%s %r is not a port or endpoint: %s" % (name, value, e))
    return description


def _redis_url(url):
    """
    Check the Redis URL now, so that a mistyped one stops the start.
    """
    from wazzap.bus.redis_link import parse_redis_url

    try:
        parse_redis_url(url)
    except OperatorError as e:
        raise usage.UsageError(str(e))
    return url


def _motd(path):
    """
    Read the MOTD file now: a missing one stops the start (or a reload).
    """
    try:
        return read_motd(path)
    except MotdError as e:
        raise usage.UsageError("--motd %s: %s" % (path, e))


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
    #: Whether these options are read again for a reload (L{parse_again}).
    reloading = False
    longdesc = (
        "Run a wazzap chat server. Users connect with nc, telnet or "
        "wazzap-client (python -m wazzap.client). --port takes a port number (all IPv4 "
        "interfaces) or a Twisted endpoint such as tcp:5555:interface=127.0.0.1, "
        "tcp6:5555 or unix:/run/wazzap.sock, and may be given several times."
        " --tls-port 5556 --tls-cert fullchain.pem --tls-key privkey.pem listens with TLS;"
        " --port ssl:5556:certKey=cert.pem:extraCertChain=chain.pem:privateKey=privkey.pem"
        " does too, without the plain-text answer to a client that does not speak TLS."
    )

    optFlags = [
        ("approve-joins", None, "Newcomers wait until an admin lets them in (/approve)."),
        ("private-consent", None,
         "Users take private messages only in accepted private chats unless they /consent off."),
        ("no-user-rooms", None, "Only admins create rooms; others join those there are."),
        ("require-tls-for-passwords", None,
         "Refuse logins with a password and registration on connections without TLS."),
        ("console", None,
         "Read the operator's commands (help lists them) from standard input, and print "
         "each request to join there (with twistd -n only)."),
    ]

    optParameters = [
        ("config", None, None,
         "A TOML file of these options, under their long names "
         "(max-line-bytes = 4096); the command line wins over it; reread on SIGHUP."),
        ("motd", None, None,
         "A text file shown to each user after the welcome; reread on SIGHUP.", _motd),
        ("db", None, None,
         "The database of accounts, login history, bans, room history and offline "
         "messages: a SQLite file, or a PostgreSQL URL (postgresql://USER@HOST/NAME; "
         "the password from the URL or PGPASSWORD) that several servers can share "
         "[default: %s]." % (default_db_path(),)),
        ("redis", None, None,
         "Share rooms, nicknames and presence with the other wazzap processes on this "
         "Redis: redis://HOST:PORT/DB, or rediss:// for TLS; a password in the URL "
         "(redis://:PASSWORD@HOST) or in REDIS_PASSWORD. Give every process the same "
         "--db, a PostgreSQL one when they run on several machines, and each its own "
         "--control-socket.",
         _redis_url),
        ("redis-prefix", None, DEFAULT_PREFIX,
         "What this deployment's Redis keys and channels start with: two deployments "
         "on one Redis need different ones."),
        ("control-socket", None, None,
         "The UNIX socket wazzap-admin's pending, approve, deny, kick, announce and who "
         "talk to, mode 0600 [default: the database's path with %s added; none "
         "with a PostgreSQL --db]." % (CONTROL_SUFFIX,),
         lambda path: os.path.abspath(os.path.expanduser(path))),
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
         _number(int, 0, "replay", MAX_HISTORY_LINES)),
        ("max-rooms-per-user", None, MAX_ROOMS_PER_USER,
         "Rooms one user may be in at once (#lobby counts).",
         _number(int, 1, "max-rooms-per-user")),
        ("max-rooms", None, MAX_ROOMS,
         "Rooms the server holds at once, #lobby and --room ones included.",
         _number(int, 1, "max-rooms")),
        ("tls-cert", None, None,
         "The PEM certificate of the TLS ports, with its chain after it (fullchain.pem)."),
        ("tls-key", None, None, "The PEM private key of --tls-cert (unencrypted)."),
        ("server-name", None, None,
         "The name the IRC listener gives itself in numerics and PONG "
         "[default: the host name]."),
        ("web-origin", None, None,
         "The one Origin (https://chat.example.org) whose pages may use the --web port's "
         "WebSocket; others get HTTP 403 [default: the page's own origin]."),
    ] + [
        (name, None, getattr(Limits, field), help, _number(kind, minimum, name))
        for name, field, kind, minimum, help in _LIMIT_OPTIONS
    ]

    def __init__(self):
        usage.Options.__init__(self)
        # An opt_ method's docstring is its help, and twistd wraps it with
        # the docstring's own line breaks and indentation left in.
        self.docs = {name: doc and " ".join(doc.split()) for name, doc in self.docs.items()}
        self["port"] = []
        self["tls-port"] = []
        self["irc-port"] = []
        self["irc-tls-port"] = []
        self["admin"] = []
        self["room"] = []
        self["metrics"] = None
        self["web"] = None

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
            self.parse_arguments(sys.argv[1:] if options is None else options)
        except (usage.UsageError, ConfigError) as e:
            raise SystemExit("twistd wazzap: %s (see: twistd wazzap --help)" % (e,))

    def parse_arguments(self, arguments):
        """
        Parse C{arguments} (and the config file they name), raising
        L{usage.UsageError} or L{ConfigError}; kept in C{command_line} to
        be parsed again on reload.
        """
        self.command_line = list(arguments)
        try:
            given, _ = getopt.getopt(arguments, self.shortOpt, self.longOpt)
        except getopt.error as e:
            raise usage.UsageError(str(e))
        given = {self.synonyms[name.lstrip("-")]: value for name, value in given}
        # --help answers even when the config file it names is broken.
        if given.get("config") and not {"help", "version"} & given.keys():
            self._read_config_file(given["config"], given)
        usage.Options.parseOptions(self, arguments)

    def _read_config_file(self, path, given):
        """
        Take each option of the config file at C{path} that the command
        line does not give (the command line wins, a repeatable option's
        list included).
        """
        flags = {name for name in self.longOpt if not name.endswith("=")}
        keys = self.config_keys()
        for key, value in read_config(path).items():
            if key not in keys:
                raise ConfigError(
                    "%s: unknown key %r: the keys are the long options of "
                    "twistd wazzap --help, without their --" % (path, key)
                )
            if key in given:
                continue
            repeatable = isinstance(self[key], list)
            try:
                for argument in option_values(key, value, key in flags, repeatable):
                    self._take_option(key, argument)
            except (usage.UsageError, ConfigError) as e:
                raise ConfigError("%s: %s" % (path, _naming(key, str(e))))

    def config_keys(self):
        """
        The keys a config file may have: every long option but --config
        itself and twistd's --help and --version.
        """
        return {name.rstrip("=") for name in self.longOpt} - {"config", "help", "version"}

    def _take_option(self, name, argument):
        # As usage.Options.parseOptions does for each option of a command line.
        handler = self._dispatch[name]
        if isinstance(handler, usage.CoerceParameter):
            handler.dispatch(name, argument)
        else:
            handler(name, argument)

    def opt_port(self, value):
        """
        Where to listen: a port number or an endpoint string (repeatable; default 5555).
        """
        self["port"].append(_endpoint("port", value))

    opt_p = opt_port

    def opt_tls_port(self, value):
        """
        Where to listen with TLS (--tls-cert, --tls-key): a port number or a
        plain endpoint string, as for --port (repeatable).
        """
        self["tls-port"].append(_endpoint("tls-port", value, tls_added=True))

    def opt_irc_port(self, value):
        """
        Where to listen for IRC clients (irssi, WeeChat, HexChat): a port number
        or an endpoint string, as for --port (repeatable; default: none).
        """
        self["irc-port"].append(_endpoint("irc-port", value))

    def opt_irc_tls_port(self, value):
        """
        Where to listen for IRC clients with TLS (--tls-cert, --tls-key), as
        for --tls-port (repeatable; default: none).
        """
        self["irc-tls-port"].append(_endpoint("irc-tls-port", value, tls_added=True))

    def opt_metrics(self, value):
        """
        Serve Prometheus metrics over HTTP at /metrics here: a port number (on 127.0.0.1
        only) or an endpoint string such as tcp:9108:interface=127.0.0.1 [default: none].
        """
        self["metrics"] = _endpoint("metrics", value, "tcp:%s:interface=127.0.0.1")

    def opt_web(self, value):
        """
        Serve the browser page and its WebSocket here: a port number (all IPv4
        interfaces) or an endpoint string such as tcp:8080:interface=127.0.0.1
        [default: none].
        """
        self["web"] = _endpoint("web", value)

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
        self._check_tls()
        # A reload has no twistd options to say -n, and a console that
        # reads already: whether it could start is a question for a start.
        if self["console"] and not self.reloading:
            # twistd's own options are the parent of these.
            parent = getattr(self, "parent", None)
            problem = console_problem(parent is not None and parent["nodaemon"])
            if problem is not None:
                raise usage.UsageError(problem)
        rooms = 1 + len(self["room"])
        if self["max-rooms"] < rooms:
            raise usage.UsageError(
                "--max-rooms %d is fewer than the %d rooms #lobby and --room make"
                % (self["max-rooms"], rooms)
            )

    def _check_tls(self):
        given = [name for name in ("tls-cert", "tls-key") if self[name]]
        for ports in ("tls-port", "irc-tls-port"):
            if self[ports] and len(given) < 2:
                raise usage.UsageError("--%s needs --tls-cert and --tls-key" % (ports,))
        if given and not (self["tls-port"] or self["irc-tls-port"]):
            raise usage.UsageError("--%s is for --tls-port, which is not given" % (given[0],))
        has_tls = self["tls-port"] or any(port.startswith("ssl:") for port in self["port"])
        if self["require-tls-for-passwords"] and not has_tls:
            raise usage.UsageError(
                "--require-tls-for-passwords needs a TLS port (--tls-port, or an ssl: --port)"
            )

    def limits(self):
        """
        The per-connection L{Limits} these options ask for.
        """
        return Limits(**{field: self[name] for name, field, _, _, _ in _LIMIT_OPTIONS})


#: The options that make the L{Limits}.
LIMIT_OPTIONS = tuple(name for name, _, _, _, _ in _LIMIT_OPTIONS)


def _naming(key, message):
    """
    C{message} about an option, to start with its config file C{key}:
    "--max-rooms must be..." becomes "max-rooms must be...".
    """
    message = message[2:] if message.startswith("--" + key) else message
    if message.startswith(key) and message[len(key) : len(key) + 1] in (" ", ":"):
        return message
    return "%s: %s" % (key, message)


def parse_again(options):
    """
    The command line of C{options}, and the config file it names, parsed
    anew: what a reload puts in force.
    """
    fresh = type(options)()
    fresh.reloading = True
    fresh.parse_arguments(options.command_line)
    return fresh


def makeService(config, reactor=None):
    """
    Build the wazzap service from parsed L{Options}, with its database open
    and its ports listening: twistd calls this before it becomes a daemon,
    so a problem with either is told on the terminal that started it.
    """
    if reactor is None:
        from twisted.internet import reactor
    certificate = _certificate(config)
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
                store,
                reactor,
                [LOBBY] + config["room"],
                config["history-days"],
                tail_lines,
                shared=bool(config["redis"]),
            )
        except StoreError as e:
            raise SystemExit("wazzap: %s" % (e,))
    cluster = _cluster(config, reactor)
    factory = ChatFactory(
        Chat(
            reactor,
            presence=None if cluster is None else cluster.make_presence(),
            bus=None if cluster is None else cluster.make_bus,
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
        config.limits(),
        clock=reactor,
        approve_joins=config["approve-joins"],
    )
    if cluster is not None:
        # Started before the listeners, stopped after them: the sessions'
        # goodbyes still reach the others.
        cluster.setServiceParent(hashing_threads)
        factory.chat.moderation_listeners.append(bans.reload)
        bans.changed_listeners.append(factory.chat.presence.moderation_changed)
    motd = motd_step(factory)
    motd.apply(config)  # as each reload will
    # What SIGHUP rereads and puts in force, one step per part of the server.
    reload_steps = [
        motd,
        limits_step(factory, LIMIT_OPTIONS),
        rooms_step(factory.chat),
        admins_step(accounts, factory.chat),
    ]
    if certificate is not None:
        reload_steps.append(tls_step(certificate))
    ReloadOnHangup(Reloader(config, parse_again, reload_steps), reactor).setServiceParent(top)
    server = ChatServerService(
        factory,
        config["port"],
        reactor=reactor,
        tls_descriptions=config["tls-port"],
        certificate=certificate,
        require_tls_for_passwords=config["require-tls-for-passwords"],
        irc=irc_listener(factory, config),
    )
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
    if config["metrics"]:
        # Imported here: prometheus_client and twisted.web cost a server
        # without --metrics nothing.
        from wazzap.app.metrics import Metrics

        metrics = MetricsService(Metrics(factory), config["metrics"], reactor)
        metrics.setServiceParent(top)
        metrics.listen()
    if config["web"]:
        # Imported here: twisted.web and wsproto cost a server without --web nothing.
        from wazzap.listeners.websocket.site import web_site

        web = WebService(web_site(factory, config["web-origin"]), config["web"], reactor)
        web.setServiceParent(top)
        web.listen()
    control = ControlService(
        ControlCommands(factory.chat, factory.commands.registry),
        factory.chat.approval_listeners,
        config["control-socket"] or control_socket_default(config["db"], store.path),
        console=config["console"],
        reactor=reactor,
    )
    control.setServiceParent(hashing_threads)
    control.listen()
    return top


def _cluster(config, reactor):
    """
    The L{Cluster} of this process on the Redis of --redis, or L{None}.
    """
    if not config["redis"]:
        return None
    # Imported here: a server of one process loads no Redis client.
    from wazzap.bus.redis import Cluster
    from wazzap.bus.redis_link import RedisLink, parse_redis_url

    address = parse_redis_url(config["redis"])
    log.info(
        "sharing rooms through Redis at {address}, prefix {prefix}",
        address=address,
        prefix=config["redis-prefix"],
    )
    return Cluster(
        lambda *callbacks: RedisLink(address, reactor, *callbacks),
        config["redis-prefix"],
        process_id,
        reactor,
    )


def control_socket_default(db, path):
    """
    The control socket of a server given no --control-socket: beside its
    SQLite file; none for a PostgreSQL database, which has no place on this
    machine, and whose servers there would otherwise share one path.
    """
    return None if is_database_url(db) else control_socket_for(path)


def irc_listener(factory, config):
    """
    The IRC listener's factory and its plain and TLS endpoints, or L{None}
    without --irc-port or --irc-tls-port.
    """
    if not (config["irc-port"] or config["irc-tls-port"]):
        return None
    # Imported here: a server without IRC loads none of it.
    from wazzap.listeners.irc.connection import IrcFactory

    return IrcFactory(factory, config["server-name"]), config["irc-port"], config["irc-tls-port"]


def _certificate(config):
    """
    The certificate of the TLS ports, if there are any; one that cannot
    serve stops the start with one line.
    """
    if not (config["tls-port"] or config["irc-tls-port"]):
        return None
    try:
        return ServerCertificate(config["tls-cert"], config["tls-key"])
    except TLSError as e:
        raise SystemExit("wazzap: %s" % (e,))
