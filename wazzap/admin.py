"""
The administrator's command: C{wazzap-admin [--db PATH|URL] COMMAND}, or
C{python -m wazzap.admin [--db PATH|URL] COMMAND}.

Its account and ban commands work on the database directly, so they run
with or without the server (SQLite's WAL journal lets both use the file at
once; a PostgreSQL database is shared by nature).  C{pending}, C{approve},
C{deny}, C{kick}, C{announce} and C{who} act on the running server through
its control socket (L{wazzap.app.control}), as the operator, who needs no
chat account.  A
missing account, ban, database or server, or a command the server could not
do, is a one-line error on stderr and exit status 1; a usage error is
argparse's, status 2.
"""

import argparse
import getpass
import os
import sys
import time

from wazzap.app.control import NoAnswer, ask, control_socket_for
from wazzap.text import format_time
from wazzap.client import program_name
from wazzap.persist.passwords import argon2_hasher, password_problem
from wazzap.persist.store import (
    HISTORY_LIMIT,
    StoreError,
    default_db_path,
    is_database_url,
    open_database,
)
from wazzap.text import nickname_problem

PROGRAM = program_name("wazzap-admin", "wazzap.admin")


class Failed(Exception):
    """
    The command could not be done; the message says why.
    """


def _when(timestamp):
    """
    A unix time as local date and time, to the minute (safe for a ban stored
    with an end past the year 9999).
    """
    return format_time(timestamp, local=True)


def _table(rows):
    """
    Rows of strings as lines, in columns two spaces apart.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows
    ]


def cmd_list(database, arguments, out):
    """
    List the accounts, with their admin flag and creation date.
    """
    accounts = database.list_accounts()
    if not accounts:
        out("no accounts")
        return
    rows = [("NICKNAME", "ADMIN", "CREATED")]
    rows += [(a.nickname, "yes" if a.is_admin else "no", _when(a.created_at)) for a in accounts]
    for line in _table(rows):
        out(line)


def cmd_add(database, arguments, out):
    """
    Register an account, asking for its password (or reading WAZZAP_PASSWORD).
    """
    problem = nickname_problem(arguments.nickname)
    if problem is not None:
        raise Failed(problem)
    password = _new_password(arguments.nickname)
    if not database.create_account(arguments.nickname, argon2_hasher().hash(password)):
        raise Failed("%s is already registered" % (arguments.nickname,))
    if arguments.admin:
        database.set_admin(arguments.nickname, True)
    out("%s is registered%s" % (arguments.nickname, " as an admin" if arguments.admin else ""))


def _new_password(nickname):
    """
    The password for a new account: from the environment, so scripts need
    not put it on a command line, or typed twice without echo.
    """
    password = os.environ.get("WAZZAP_PASSWORD")
    if password is None:
        try:
            password = getpass.getpass("Password for %s: " % (nickname,))
            if getpass.getpass("Again: ") != password:
                raise Failed("the passwords differ")
        except EOFError:
            raise Failed("no password given (type one, or set WAZZAP_PASSWORD)")
    problem = password_problem(password)
    if problem is not None:
        raise Failed(problem)
    return password


def _set_admin(database, nickname, flag):
    if not database.set_admin(nickname, flag):
        raise Failed("no account named %s" % (nickname,))
    return database.get_account(nickname).nickname


def cmd_grant(database, arguments, out):
    """
    Make an account an admin.
    """
    nickname = _set_admin(database, arguments.nickname, True)
    out("%s is now an admin" % (nickname,))


def cmd_revoke(database, arguments, out):
    """
    Make an account an ordinary user.
    """
    nickname = _set_admin(database, arguments.nickname, False)
    out("%s is no longer an admin" % (nickname,))


def cmd_bans(database, arguments, out):
    """
    List the bans in force.
    """
    bans = database.active_bans(time.time())
    if not bans:
        out("no active bans")
        return
    rows = [("TARGET", "KIND", "UNTIL", "BY", "REASON")]
    rows += [
        (
            ban.target,
            ban.kind,
            "permanent" if ban.until is None else _when(ban.until),
            ban.by or "-",
            ban.reason or "-",
        )
        for ban in bans
    ]
    for line in _table(rows):
        out(line)


def cmd_unban(database, arguments, out):
    """
    Lift the ban on a nickname or an address.
    """
    if not database.remove_ban(arguments.target):
        raise Failed("no ban on %s" % (arguments.target,))
    out("%s is no longer banned" % (arguments.target,))


def cmd_history(database, arguments, out):
    """
    Show a nickname's latest logins, newest first.
    """
    sessions = database.history(arguments.nickname, arguments.limit)
    if not sessions:
        if database.get_account(arguments.nickname) is None:
            raise Failed("no account or logins for %s" % (arguments.nickname,))
        out("%s has never logged in" % (arguments.nickname,))
        return
    rows = [("LOGIN", "LOGOUT", "ADDRESS", "REASON")]
    rows += [
        (
            _when(s.login_at),
            "online" if s.logout_at is None else _when(s.logout_at),
            s.address,
            s.reason or "-",
        )
        for s in sessions
    ]
    for line in _table(rows):
        out(line)


def _positive(value):
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number, not %r" % (value,))
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1, not %d" % (number,))
    return number


def parser():
    main_parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Manage wazzap's accounts and bans, and the running server."
    )
    main_parser.add_argument(
        "--db",
        metavar="PATH|URL",
        default=None,
        help="the server's database: a SQLite file or a postgresql:// URL (default: %s)"
        % (default_db_path(),),
    )
    main_parser.add_argument(
        "--control-socket",
        metavar="PATH",
        default=None,
        help="the running server's control socket (default: the database's, PATH.control)",
    )
    commands = main_parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, handler):
        summary = handler.__doc__.strip()
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    command("list", cmd_list)
    add = command("add", cmd_add)
    add.add_argument("nickname", metavar="NICK")
    add.add_argument("--admin", action="store_true", help="make the account an admin")
    command("grant", cmd_grant).add_argument("nickname", metavar="NICK")
    command("revoke", cmd_revoke).add_argument("nickname", metavar="NICK")
    command("bans", cmd_bans)
    command("unban", cmd_unban).add_argument("target", metavar="TARGET")
    history = command("history", cmd_history)
    history.add_argument("nickname", metavar="NICK")
    history.add_argument(
        "--limit",
        type=_positive,
        default=HISTORY_LIMIT,
        metavar="N",
        help="show at most N logins (default: %d)" % (HISTORY_LIMIT,),
    )

    def on_server(name, summary, *words):
        """
        A command sent to the running server: C{name}, then the C{words}
        (argparse destinations) its arguments are kept in.
        """
        summary += "."
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=None, request=name, words=words)
        return sub

    on_server("pending", "On the running server, list who waits for approval").add_argument(
        "page", metavar="PAGE", nargs="?", help="the page of 20 to show (default: 1)"
    )
    approve = on_server("approve", "On the running server, let NICK, who waits, join", "nickname")
    approve.add_argument("nickname", metavar="NICK")
    for name, summary in (("deny", "turn NICK, who waits, away"), ("kick", "disconnect NICK")):
        sub = on_server(name, "On the running server, " + summary, "nickname", "reason")
        sub.add_argument("nickname", metavar="NICK")
        sub.add_argument("reason", metavar="REASON", nargs="*", help="told to NICK")
    on_server("announce", "On the running server, tell everyone online TEXT", "text").add_argument(
        "text", metavar="TEXT", nargs="+"
    )
    on_server("who", "On the running server, list who is online")
    return main_parser


def _request(arguments):
    """
    The control socket's request line for a command sent to the server.
    """
    words = [arguments.request]
    for name in arguments.words:
        value = getattr(arguments, name)
        words.extend(value if isinstance(value, list) else [value] if value else [])
    return " ".join(words)


def _ask_server(arguments, out, err):
    """
    Send the command to the running server and tell its answer; return the
    exit status.
    """
    if arguments.control_socket is None and is_database_url(arguments.db):
        raise Failed("a server on PostgreSQL has a control socket only if given --control-socket")
    path = arguments.control_socket or control_socket_for(arguments.db)
    if path is None:
        raise Failed("a server on :memory: has a control socket only if given --control-socket")
    try:
        answer = ask(path, _request(arguments))
    except NoAnswer as e:
        raise Failed(str(e))
    for line in answer.lines:
        (out if answer.ok else err)(line)
    return 0 if answer.ok else 1


def main(argv=None, stdout=None, stderr=None):
    """
    Run one command; return the exit status.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    arguments = parser().parse_args(argv)

    def out(line):
        stdout.write(line + "\n")

    def err(line):
        stderr.write("%s: %s\n" % (PROGRAM, line))

    try:
        if arguments.handler is None:
            return _ask_server(arguments, out, err)
        # Only "add" may start a database (before the server's first run); for
        # the rest, a mistyped --db is an error, not a new empty database.
        creates = arguments.handler is cmd_add
        with open_database(arguments.db, create=creates) as database:
            arguments.handler(database, arguments, out)
    except (StoreError, Failed) as e:
        err(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
