"""
Reloading the running server on SIGHUP (what C{systemctl reload}, many
logrotate set-ups and a closed terminal send), with nobody disconnected.

The command line and the config file it names are parsed again, through the
very checks of a start; a config that does not pass changes nothing.  Then
a short list of L{ReloadStep}s puts the new options in force, each in its
part of the server, and every option that changed is logged: those no step
applies (the listening ports, the database) as needing a restart.
"""

import signal
from dataclasses import dataclass
from typing import Callable

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.python import usage

from wazzap.persist.accounts import RESERVED_ADMIN
from wazzap.app.config import ConfigError
from wazzap.net.tls import TLSError
from wazzap.failures import log_failure
from wazzap.text import nickname_key

NOW_ADMIN = "You are now an admin: /help lists your commands."


@dataclass(frozen=True)
class ReloadStep:
    """
    One part of the running server that a reload changes: C{apply} is
    called with the new options at every reload (a file such as the MOTD
    may have changed when no option did); C{options} names the options it
    puts in force, so that a change to any other needs a restart.
    """

    options: tuple
    apply: Callable


class Reloader:
    """
    The options in force, and how to replace them with those read anew.
    """

    log = Logger()

    def __init__(self, options, parse_again, steps):
        """
        @param options: the L{wazzap.app.tap.Options} the server started with.
        @param parse_again: a function of options to the same command line
            and config file parsed anew (L{wazzap.app.tap.parse_again}).
        @param steps: the L{ReloadStep}s, applied in order.
        """
        self.options = options
        self._parse_again = parse_again
        self._steps = steps

    def reload(self):
        """
        Read the options again and put them in force; return whether they
        were good (if not, the running ones stay, and the log says why).
        """
        source = self.options["config"] or "the command line"
        try:
            new = self._parse_again(self.options)
        except (usage.UsageError, ConfigError) as e:
            self.log.error(
                "reload refused, the running configuration stays: {problem}", problem=e
            )
            return False
        self.log.info("reloading the configuration from {source}", source=source)
        live = {name for step in self._steps for name in step.options}
        changed = changed_options(self.options, new)
        for name, old, now in changed:
            self._log_change(name, old, now, name in live)
        for step in self._steps:
            try:
                step.apply(new)
            except Exception:
                self.log.failure(
                    "reload: putting {options} in force", options=", ".join(step.options)
                )
        self.options = new
        if not changed:
            self.log.info("reload: no option changed")
        return True

    def _log_change(self, name, old, new, live):
        old, new = _shown(old), _shown(new)
        if old == new:
            what = "%s %s: its contents changed" % (name, new)
        else:
            what = "%s changed from %s to %s" % (name, old, new)
        if live:
            self.log.info("reload: {what}", what=what)
        else:
            self.log.warn("reload: {what}: restart the server to put it in force", what=what)


def changed_options(old, new):
    """
    The options (name, old value, new value) whose values differ, by name.
    """
    return [
        (name, old.get(name), new.get(name))
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


def _shown(value):
    if value is None:
        return "unset"
    if isinstance(value, list):
        return "[%s]" % (", ".join(str(item) for item in value),)
    if isinstance(value, float):
        return format(value, "g")  # 1, not 1.0: as the operator wrote it
    return str(value)


class ReloadOnHangup(Service):
    """
    Reloads when the process gets SIGHUP.  The signal handler only asks the
    reactor to reload on its own thread, as twistd's SIGUSR1 handler (which
    rotates the log) does, so a reload never runs in the middle of
    something else.
    """

    def __init__(self, reloader, reactor):
        self.reloader = reloader
        self._reactor = reactor
        self._previous = None

    def startService(self):
        Service.startService(self)
        self._previous = signal.signal(signal.SIGHUP, self._hung_up)

    def stopService(self):
        Service.stopService(self)
        # None: the handler before was not set from Python.
        signal.signal(signal.SIGHUP, signal.SIG_DFL if self._previous is None else self._previous)

    def _hung_up(self, signum, frame):
        self._reactor.callFromThread(self.reloader.reload)


# The steps of a wazzap server (see wazzap.app.tap.makeService).


def motd_step(factory):
    """
    The MOTD, shown to whoever joins from now on.
    """

    def apply(options):
        factory.motd_lines = () if options["motd"] is None else options["motd"].lines

    return ReloadStep(("motd",), apply)


def limits_step(factory, limit_options):
    """
    The L{wazzap.server.Limits}, for the connections open and to come.
    """
    return ReloadStep(limit_options, lambda options: factory.change_limits(options.limits()))


def rooms_step(chat):
    """
    Who may create rooms, and how many rooms there may be: the rooms there
    are stay, even past a lower limit.
    """

    def apply(options):
        chat.user_rooms = not options["no-user-rooms"]
        chat.max_rooms = options["max-rooms"]
        chat.max_rooms_per_user = options["max-rooms-per-user"]

    return ReloadStep(("no-user-rooms", "max-rooms", "max-rooms-per-user"), apply)


def admins_step(accounts, chat):
    """
    The C{--admin} list: its accounts are flagged admins, and those online
    get their rights at once.  A nickname taken off the list keeps the flag
    in the database (as after a restart): the log says how to revoke it.
    """
    log = Logger(namespace="wazzap.app.reload")

    def apply(options):
        before = accounts.admin_keys
        flagged = accounts.change_admins(options["admin"])
        flagged.addCallback(_admins_flagged, before, accounts.admin_keys, chat, log)
        flagged.addErrback(log_failure, log, "flagging the admins")

    return ReloadStep(("admin",), apply)


def _admins_flagged(unregistered, before, after, chat, log):
    for nickname in unregistered:
        log.warn(RESERVED_ADMIN, nickname=nickname)
    for key in sorted(before - after):
        log.warn(
            "reload: {nickname} is no longer an --admin but keeps the admin flag of its "
            "account: wazzap-admin revoke {nickname} takes it away",
            nickname=key,
        )
    for member in chat.members():
        account = member.account
        if account is not None and not member.is_admin and nickname_key(account) in after:
            member.identify(is_admin=True)
            member.notice(NOW_ADMIN)


def tls_step(certificate):
    """
    The TLS certificate and key, for the connections to come: files that
    do not serve are refused in one line, and the ones in use stay.
    """

    def apply(options):
        try:
            description = certificate.reload(options["tls-cert"], options["tls-key"])
        except TLSError as e:
            Reloader.log.error("reload: the TLS certificate in use stays: {problem}", problem=e)
        else:
            Reloader.log.info("reload: TLS certificate {description}", description=description)

    return ReloadStep(("tls-cert", "tls-key"), apply)
