"""
Commands as records: a L{Command} per command, kept in a L{Registry} that
finds them by name or alias and lists the ones a user may run.

A group of commands is an object whose handlers are C{cmd_<name>} methods
marked with L{command}; L{Registry.add_group} turns each into a record, so a
group is registered, not mixed in.  A handler's docstring is its
C{/help} text: the first line is its entry in C{/help} (C{USAGE -- what it
does}), the lines after a blank one its C{/help NAME} text, so a command and
its documentation cannot drift apart.
"""

import inspect
from dataclasses import dataclass
from typing import Callable, Tuple

from twisted.internet import defer
from twisted.logger import Logger

from wazzap.failures import log_failure

log = Logger()

_SPEC = "_wazzap_command"
_PREFIX = "cmd_"


@dataclass(frozen=True)
class Command:
    """
    One command: C{handler(user, args)} runs it and may return a Deferred.

    @ivar usage: how it is typed, like C{/mute NICK [DURATION]}.
    @ivar summary: its line in C{/help}: the usage, C{--}, what it does.
    @ivar details: the lines C{/help NAME} shows after the summary.
    @ivar admin_only: refused to anyone who is not an admin, checked
        against the store at every use.
    @ivar aliases: other names that run it, like C{/leave} for C{/quit}.
    """

    name: str
    usage: str
    summary: str
    details: Tuple[str, ...]
    handler: Callable
    admin_only: bool = False
    aliases: Tuple[str, ...] = ()

    @classmethod
    def from_handler(cls, name, handler, admin_only=False, aliases=()):
        """
        The record of C{handler}, its help read from its docstring.
        """
        lines = (inspect.getdoc(handler) or "").splitlines()
        if not lines or " -- " not in lines[0] or (len(lines) > 1 and lines[1]):
            raise ValueError(
                "/%s needs a docstring of a 'USAGE -- summary' line, then a blank line "
                "before any more" % (name,)
            )
        return cls(
            name=name,
            usage=lines[0].partition(" -- ")[0],
            summary=lines[0],
            details=tuple(lines[2:]),
            handler=handler,
            admin_only=admin_only,
            aliases=tuple(aliases),
        )

    def help_lines(self):
        """
        The lines of C{/help NAME}: the summary, then the details after a
        blank line.
        """
        return [self.summary] + ([""] + list(self.details) if self.details else [])


def command(admin_only=False, aliases=()):
    """
    Mark C{cmd_<name>}, a method of a group, as the handler of C{/name}; an
    C{admin_only} command is refused to others, and checked against the
    store each time.
    """

    def mark(handler):
        if not handler.__name__.startswith(_PREFIX):
            raise ValueError("a command handler is named %s<name>" % (_PREFIX,))
        setattr(handler, _SPEC, (admin_only, tuple(aliases)))
        return handler

    return mark


class Registry:
    """
    Every command by name, each name and alias taken once.
    """

    def __init__(self):
        self._commands = []
        self._by_name = {}

    def add(self, record):
        """
        Register C{record}; raise L{ValueError} if its name or an alias is
        taken already.
        """
        names = (record.name,) + record.aliases
        taken = [name for name in names if name in self._by_name]
        if taken or len(set(names)) < len(names):
            raise ValueError("/%s is registered twice" % (taken[0] if taken else record.name,))
        self._commands.append(record)
        for name in names:
            self._by_name[name] = record

    def add_group(self, group):
        """
        Register every handler of C{group} marked with L{command}.
        """
        for attribute, value in vars(type(group)).items():
            spec = getattr(value, _SPEC, None)
            if spec is not None:
                admin_only, aliases = spec
                handler = getattr(group, attribute)
                self.add(Command.from_handler(attribute[len(_PREFIX) :], handler, admin_only, aliases))

    def find(self, name):
        """
        The command called C{name} or by an alias C{name}, or L{None}.
        """
        return self._by_name.get(name)

    def permitted(self, is_admin):
        """
        The commands an admin (or, without C{is_admin}, anyone) may run, by name.
        """
        return sorted(
            (record for record in self._commands if is_admin or not record.admin_only),
            key=lambda record: record.name,
        )


def follow(user, name, done):
    """
    See C{done}, the Deferred of C{/name} run for C{user}, through: the
    user's next lines wait until it fires, and a failure is logged in one
    line and told, never shown as a traceback.
    """
    done.addErrback(_failed, user, name)
    user.hold_input_until(done)
    return done


def run_held(user, name, work):
    """
    Run C{work()} (part of C{/name}, such as the answer to its prompt) as a
    command runs: see L{follow}.
    """
    return follow(user, name, defer.maybeDeferred(work))


def _failed(failure, user, name):
    log_failure(failure, log, "/" + name)
    user.notice("/%s failed on the server; please try again" % (name,))
