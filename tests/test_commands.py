"""
The command registry and the dispatcher without a connection: records, names
and aliases, /help, admin checks and commands that wait for the database.
"""

import pytest
from twisted.internet import defer
from twisted.logger import LogLevel, capturedLogs, formatEvent

from tests.doubles import make_factory
from wazzap.commands import HelpCommands
from wazzap.commands.inputs import Invocation, PrivateMessage, PublicMessage
from wazzap.commands.registry import Command, Registry, command
from wazzap.persist.store import StoreError


class Session:
    """
    As much of a joined user as the dispatcher needs: notices and input holds recorded.
    """

    def __init__(self, nickname="alice", is_admin=False):
        self.nickname = nickname
        self.account = nickname if is_admin else None
        self.is_admin = is_admin
        self.notices = []
        self.holds = []

    def notice(self, message):
        self.notices.append(message)

    def hold_input_until(self, deferred):
        self.holds.append(deferred)

    def identify(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)


class Greetings:
    """
    A small group of commands for the tests.
    """

    @command(aliases=("hi",))
    def cmd_hello(self, user, args):
        """
        /hello [NAME] -- say hello.

        NAME is who to greet.
        """
        user.notice("hello " + args)

    @command(admin_only=True)
    def cmd_shout(self, user, args):
        """
        /shout TEXT -- (admin) say it loud.
        """


def test_a_record_reads_its_help_from_the_docstring():
    """A command's usage, summary and details come from its handler's docstring."""
    registry = Registry()
    registry.add_group(Greetings())
    hello = registry.find("hello")
    assert (hello.name, hello.usage, hello.admin_only, hello.aliases) == ("hello", "/hello [NAME]", False, ("hi",))
    assert hello.help_lines() == ["/hello [NAME] -- say hello.", "", "NAME is who to greet."]
    assert registry.find("hi") is hello
    assert registry.find("shout").admin_only


def test_two_commands_of_one_name_are_refused():
    """Registering a name, or an alias, that is taken already raises instead of hiding a command."""
    registry = Registry()
    registry.add_group(Greetings())
    with pytest.raises(ValueError, match="/hello is registered twice"):
        registry.add_group(Greetings())
    clash = Command.from_handler("hi", Greetings().cmd_hello)
    with pytest.raises(ValueError, match="/hi is registered twice"):
        registry.add(clash)
    assert [record.name for record in registry.permitted(is_admin=True)] == ["hello", "shout"]


def test_a_handler_without_a_usage_line_is_refused():
    """A docstring that does not start with 'USAGE -- summary' cannot become /help text."""

    def cmd_bare(user, args):
        """Does things."""

    with pytest.raises(ValueError, match="/bare needs a docstring"):
        Command.from_handler("bare", cmd_bare)


def test_a_handler_not_named_cmd_is_refused():
    """Only cmd_<name> methods are handlers, so a group's other methods never become commands."""
    with pytest.raises(ValueError):
        command()(lambda user, args: None)


@pytest.mark.parametrize("is_admin", [False, True])
def test_help_lists_exactly_the_registered_permitted_commands(is_admin):
    """/help lists one line per registered command the user may run, by name, and nothing else."""
    registry = Registry()
    registry.add_group(Greetings())
    registry.add_group(HelpCommands(registry))
    user = Session(is_admin=is_admin)
    registry.find("help").handler(user, "")
    assert user.notices == [
        "Commands (type /help COMMAND for more):",
        "  /hello [NAME] -- say hello.",
        "  /help [COMMAND] -- list the commands, or explain one.",
    ] + (["  /shout TEXT -- (admin) say it loud."] if is_admin else []) + [
        "  @NICK TEXT -- a private message to NICK",
        "Anything else goes to everyone in the room.",
    ]


def test_the_servers_help_lists_every_registered_command_it_permits():
    """The server's /help shows the summary of each permitted command in its registry, admin ones to admins only."""
    commands = make_factory().commands
    for is_admin in (False, True):
        user = Session(is_admin=is_admin)
        commands.run(user, "help", "")
        listed = user.notices[1:-2]
        permitted = commands.registry.permitted(is_admin)
        assert listed == ["  " + record.summary for record in permitted]
        assert any(record.admin_only for record in permitted) == is_admin
    assert {"msg", "who", "quit", "kick", "ban", "register", "consent", "help"} <= {
        record.name for record in commands.registry.permitted(is_admin=True)
    }


@pytest.mark.parametrize("alias, name", [("leave", "quit"), ("exit", "quit"), ("users", "who"), ("online", "who"), ("private", "msg")])
def test_aliases_find_their_command(alias, name):
    """Each alias of today's commands runs the command it stands for."""
    registry = make_factory().commands.registry
    assert registry.find(alias) is registry.find(name)


def test_unknown_command_gets_a_notice():
    """A name nobody registered is answered with a pointer to /help."""
    user = Session()
    make_factory().commands.dispatch(user, Invocation("frobnicate", ""))
    assert user.notices == ["unknown command /frobnicate: type /help for the list"]


def test_admin_command_is_refused_without_asking_the_store():
    """A user who is not an admin is refused an admin command at once."""
    user = Session()
    make_factory().commands.dispatch(user, Invocation("kick", "bob"))
    assert user.notices == ["permission denied: /kick is for admins"]
    assert user.holds == []


def test_a_waiting_command_holds_input_and_a_store_failure_is_one_log_line():
    """A handler's Deferred holds the user's input until it fires; a store failure is logged in one line and told."""
    commands = make_factory().commands
    waiting = defer.Deferred()
    commands.registry.add(Command("slow", "/slow", "/slow -- wait.", (), lambda user, args: waiting))
    user = Session()
    with capturedLogs() as events:
        commands.dispatch(user, Invocation("slow", ""))
        (held,) = user.holds
        assert not held.called
        waiting.errback(StoreError("the disk is full"))
    assert held.called
    assert user.notices == ["/slow failed on the server; please try again"]
    assert [formatEvent(event) for event in events if event["log_level"] >= LogLevel.error] == [
        "/slow failed: the disk is full"
    ]


def test_text_and_private_messages_reach_the_chat():
    """Public text and private messages are handed to the chat commands as they are."""
    factory = make_factory()
    user = Session()
    said = []
    factory.commands.talk.say = lambda user, message: said.append(("say", message))
    factory.commands.talk.private = lambda user, nickname, message: said.append(("private", nickname, message))
    factory.commands.dispatch(user, PublicMessage("hello"))
    factory.commands.dispatch(user, PrivateMessage("bob", "psst"))
    assert said == [("say", "hello"), ("private", "bob", "psst")]
