"""
The grammar of a joined user's line on the line listener:

    chat-line = "/" command [ SP args ]      ; a command (see /help)
              / "//" text                    ; public text that starts with "/"
              / "@" nickname [ SP text ]     ; a private message
              / text                         ; public text, sent as typed

What the line starts with on screen decides: spaces or invisible characters
before a C{/} or C{@} do not turn a command (a password, say) into a public
message.  A line that shows nothing is public text, which the commands
refuse with a notice as they refuse any text that shows nothing.
"""

from wazzap import text
from wazzap.commands.base import split_word
from wazzap.commands.inputs import Invocation, PrivateMessage, PublicMessage


def parse(line):
    """
    The input value of one sanitised, non-blank line.
    """
    shown = text.from_first_visible(line)
    first = shown[:1]  # one comparison for most lines: this is every public line's path
    if first == "/":
        if shown.startswith("//"):
            return PublicMessage(shown[1:])
        name, args = split_word(shown[1:])
        return Invocation(name.lower(), args)
    if first == "@" and len(shown) > 1:
        nickname, message = split_word(shown[1:])
        return PrivateMessage(nickname, message)
    return PublicMessage(line)
