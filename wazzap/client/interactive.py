"""
The client on a terminal: an input line at the bottom, with the server's lines
scrolling above it and never mixed into what is being typed.

prompt_toolkit draws the input line (Emacs-style editing, Up and Down through
what was sent this session, Tab completion) and runs on asyncio; Twisted runs
on the same asyncio loop (L{wazzap.client.cli} installs its asyncio reactor
before anything imports another), so one thread does both and the
connection's callbacks can print above the prompt directly.  Lines that
arrive in one reactor turn are printed together: the prompt is erased and
redrawn once per batch, not once per line.
"""

import asyncio
import re

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import InMemoryHistory
from twisted.internet import defer

from wazzap.text import sanitize

#: Commands whose arguments are rooms; the others' are nicknames.
ROOM_COMMANDS = frozenset({"join", "part", "names", "topic", "lock", "unlock"})

_SGR = re.compile(r"(\x1b\[[0-9;]*m)")


def displayable(line):
    """
    C{line} with its colours (SGR sequences) kept and every other control
    removed, so that nothing the server sends can move the cursor or garble
    the input line.
    """
    return "".join(
        part if index % 2 else sanitize(part) for index, part in enumerate(_SGR.split(line))
    )


class ChatCompleter(Completer):
    """
    Tab completion from a L{wazzap.client.roster.Roster}: command names after
    a leading C{/}, nicknames after C{@} and in a command's arguments (rooms in
    those of C{/join} and the like), room names after C{#}, and nicknames for
    any other word.
    """

    def __init__(self, roster):
        self.roster = roster

    def get_completions(self, document, complete_event):
        before = document.text_before_cursor
        word = before.rsplit(" ", 1)[-1]
        for text in self._candidates(before, word):
            if text.lower().startswith(word.lower()) and text.rstrip() != word:
                yield Completion(text, start_position=-len(word))

    def _candidates(self, before, word):
        roster = self.roster
        at_start = before == word
        if word.startswith("/") and at_start:
            return ["/%s " % (name,) for name in roster.commands]
        if word.startswith("@"):
            ending = " " if at_start else ""
            return ["@" + nickname + ending for nickname in roster.nicknames]
        if word.startswith("#"):
            return roster.rooms
        if before.startswith("/"):
            command = before[1:].split(" ", 1)[0].lower()
            return roster.rooms if command in ROOM_COMMANDS else roster.nicknames
        return roster.nicknames if word else []


class SentHistory(InMemoryHistory):
    """
    What the user sent this session, for Up and Down; never a password.
    """

    def __init__(self, secret):
        """
        @param secret: returns whether the line being typed is a password.
        """
        super().__init__()
        self._secret = secret

    def append_string(self, string):
        if not self._secret():
            super().append_string(string)


class PromptScreen:
    """
    Where the lines go: above the prompt while it runs, else straight to the
    terminal; gathered for a reactor turn and written in one go.
    """

    def __init__(self, application, clock):
        self._application = application
        self._clock = clock
        self._pending = []
        self._bell = False
        self._flushing = None
        self._printing = None

    def show(self, text):
        self._pending.append(displayable(text))
        self._soon()

    def ring(self):
        self._bell = True
        self._soon()

    def _soon(self):
        if self._flushing is None:
            self._flushing = self._clock.callLater(0, self._flush)

    def _flush(self):
        self._flushing = None
        text = "".join(line + "\n" for line in self._pending)
        bell, self._bell = self._bell, False
        self._pending = []
        application = self._application

        def write():
            if text:
                application.print_text(ANSI(text))
            if bell:
                application.output.bell()

        if application.is_running:
            self._printing = run_in_terminal(write)
        else:
            write()

    def drain(self):
        """
        Write what is still to be written; the result fires once it is out.
        """
        if self._flushing is not None:
            self._flushing.cancel()
            self._flush()
        printing, self._printing = self._printing, None
        if printing is None or printing.done():
            return defer.succeed(None)
        return defer.Deferred.fromFuture(printing)


class ChatPrompt:
    """
    The input line: reads what the user types and hands it to a
    L{wazzap.client.connection.ChatClient}; hides a password as it is typed
    (it is also the client's C{hidden_input}).
    """

    def __init__(self, roster):
        self.roster = roster
        self.secret = False
        self.session = PromptSession(
            message=self._message,
            completer=ChatCompleter(roster),
            complete_while_typing=False,
            history=SentHistory(lambda: self.secret),
            is_password=Condition(lambda: self.secret),
        )
        self._reading = None

    @property
    def application(self):
        return self.session.app

    def _message(self):
        roster = self.roster
        if self.secret:
            return "(hidden) > "
        if roster.me is None:
            return "> "
        return "[%s] %s> " % (roster.room, roster.me)

    def refresh(self):
        """
        Redraw the prompt, whose nickname or room changed.
        """
        self.application.invalidate()

    # hidden_input API

    def hide(self):
        self.secret = True
        self.refresh()

    def restore(self):
        self.secret = False
        self.refresh()

    # Reading

    def start(self, client):
        """
        Read lines for C{client} until it closes or the user leaves.
        """
        self._reading = asyncio.ensure_future(self._read(client))

    async def _read(self, client):
        while not client.closing:
            try:
                # Twisted handles SIGINT and logs errors: prompt_toolkit is to
                # take neither over (its handlers outlive the prompt).
                line = await self.session.prompt_async(
                    handle_sigint=False, set_exception_handler=False
                )
            except KeyboardInterrupt:
                client.interrupt()
                return
            except EOFError:
                client.leave()
                return
            client.send_typed(line)

    def stop(self):
        """
        Take the input line away and give the terminal back as it was; the
        result fires once that is done.
        """
        reading, self._reading = self._reading, None
        if reading is None or reading.done():
            return defer.succeed(None)
        reading.cancel()
        stopped = defer.Deferred.fromFuture(reading)
        stopped.addErrback(lambda failure: failure.trap(asyncio.CancelledError))
        return stopped
