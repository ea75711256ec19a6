"""
The line listener's grammar: what a sanitised line asks for, by how it looks on screen.
"""

import pytest

from wazzap.commands.inputs import Invocation, PrivateMessage, PublicMessage
from wazzap.listeners.line.grammar import parse


@pytest.mark.parametrize(
    "line, parsed",
    [
        ("/nick bob", Invocation("nick", "bob")),
        ("/WHO", Invocation("who", "")),
        ("/msg  bob   hi there ", Invocation("msg", "bob   hi there")),
        ("/", Invocation("", "")),
        ("  /register secret99", Invocation("register", "secret99")),
        ("\u200b/register secret99", Invocation("register", "secret99")),
        ("//etc/passwd is a file", PublicMessage("/etc/passwd is a file")),
        ("  //etc", PublicMessage("/etc")),
        ("@bob psst", PrivateMessage("bob", "psst")),
        (" @bob  psst ", PrivateMessage("bob", "psst")),
        ("@bob", PrivateMessage("bob", "")),
        ("@", PublicMessage("@")),
        ("hello", PublicMessage("hello")),
        ("   indented", PublicMessage("   indented")),
        ("\u200b \u3164", PublicMessage("\u200b \u3164")),
    ],
)
def test_a_line_parses_by_its_first_visible_character(line, parsed):
    """A command, an escaped slash, a private message or public text, decided by what shows first."""
    assert parse(line) == parsed
