"""
Text in and out of wazzap: sanitising what users send, nickname rules, and the
colours and layouts of every line the server writes.

Everything a user typed passes through L{sanitize} before anybody sees it, so
nobody can recolour, clear, retitle or visually reverse another terminal; the
server's own colours are added afterwards by L{Line}.  A L{Line} is rendered and
encoded once, in two variants (with and without colour), however many people
receive it.
"""

import re
import unicodedata

from colorama import Fore, Style

#: Longest nickname, in characters.
MAX_NICKNAME_CHARS = 16

#: Letters, digits, underscore and hyphen, ASCII only, so that two names that
#: look the same on screen are the same name.
NICKNAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,%d}\Z" % MAX_NICKNAME_CHARS)

#: Names that would let a user pass for the server itself.
RESERVED_NICKNAMES = frozenset({"server", "admin", "wazzap", "root"})

# Digits that pass for letters, and l and 1 for i (alike in many fonts), so
# that serv3r, r00t, adm1n and admln compare as the words they imitate.
_LOOKALIKE_LETTERS = str.maketrans("0123457l", "oizeasti")
_RESERVED_LOOKALIKES = {word.translate(_LOOKALIKE_LETTERS): word for word in RESERVED_NICKNAMES}

#: Longest reason (of /quit or /kick) kept, in bytes of UTF-8: the room sees
#: it and the login history keeps it.
MAX_REASON_BYTES = 200
_CUT = "\u2026"

#: Colours handed out to users; yellow and magenta are kept for the server's
#: notices and for private messages so those never look like someone talking,
#: and white is left out because it cannot be read on a light terminal.
USER_PALETTE = (
    Fore.RED,
    Fore.GREEN,
    Fore.BLUE,
    Fore.CYAN,
    Fore.LIGHTRED_EX,
    Fore.LIGHTGREEN_EX,
    Fore.LIGHTBLUE_EX,
    Fore.LIGHTCYAN_EX,
)
SERVER_STYLE = Style.BRIGHT + Fore.YELLOW
PRIVATE_STYLE = Style.BRIGHT + Fore.MAGENTA
RESET = Style.RESET_ALL

#: The colours a user may pick by name with /color.
NAMED_COLORS = {
    "red": Fore.RED,
    "green": Fore.GREEN,
    "yellow": Fore.YELLOW,
    "blue": Fore.BLUE,
    "magenta": Fore.MAGENTA,
    "cyan": Fore.CYAN,
    "white": Fore.WHITE,
}

# Whole escape sequences go first (CSI, OSC/DCS/APC/PM/SOS strings, two-byte
# escapes), so their parameters do not linger as litter; lone control characters,
# C1 controls, bidirectional overrides and line separators go next.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|\x1b[\]P_^X][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
    r"|\x9b[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
)
_UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


# Characters that show nothing on their own although sanitize lets them
# through: format characters such as U+200B (Cf), spaces, marks that need a
# base character, and the fillers that Unicode counts as letters or symbols.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _shows(character):
    return not (
        character.isspace()
        or character in _BLANK_CHARACTERS
        or unicodedata.category(character) in _INVISIBLE_CATEGORIES
    )


def from_first_visible(text):
    """
    C{text} from its first visible character on, or C{""} if it shows nothing:
    a line that looks like a command on screen is one.
    """
    if text and "!" <= text[0] <= "~":
        return text  # most lines start with a printable ASCII character
    for index, character in enumerate(text):
        if _shows(character):
            return text[index:]
    return ""


def is_visible(text):
    """
    Whether C{text} shows anything on screen; blank or zero-width look-alikes
    of a message (U+200B, U+3164, ...) are not worth a line to everybody.
    """
    return bool(from_first_visible(text))


def short_reason(words):
    """
    C{words} given as a reason for leaving or kicking, cut to
    L{MAX_REASON_BYTES} at a character boundary (ending in an ellipsis), or
    L{None} when they show nothing.
    """
    words = words.strip()
    if not is_visible(words):
        return None
    encoded = words.encode("utf-8")
    if len(encoded) <= MAX_REASON_BYTES:
        return words
    room = MAX_REASON_BYTES - len(_CUT.encode("utf-8"))
    return encoded[:room].decode("utf-8", "ignore").rstrip() + _CUT


# The leave reasons that end in someone's own words (see
# wazzap.protocol.ChatProtocol.quit and wazzap.commands.moderation._by).
_REASON_WITH_WORDS = re.compile(r"(quit|(?:kicked|banned) by \S+): (.*)\Z", re.DOTALL)


def reason_for_log(reason):
    """
    A leave reason as the log may keep it: the server's part whole, and of
    the words a person added only their length, since the log must never
    hold what people say.
    """
    match = _REASON_WITH_WORDS.match(reason)
    if match is None:
        return reason
    return "%s: [%d characters]" % (match.group(1), len(match.group(2)))


def sanitize(text):
    """
    Return C{text} with every terminal control removed and tabs made spaces, so
    that it shows as the characters it is and nothing else.
    """
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _UNSAFE_CHARACTERS.sub("", text).replace("\t", " ")


# The server colours with SGR sequences only; any CSI sequence goes, so that
# plain output never lets a control through.
_STYLE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_styles(text):
    """
    Remove the colour and brightness codes the server adds, for plain output.
    """
    return _STYLE.sub("", text)


def nickname_problem(nickname):
    """
    Return why C{nickname} cannot be used, or L{None} if it can.
    """
    if not NICKNAME_PATTERN.match(nickname):
        return (
            "a nickname is 1 to %d characters: letters, digits, _ or -"
            % (MAX_NICKNAME_CHARS,)
        )
    if nickname.lower() in RESERVED_NICKNAMES:
        return "%s is reserved" % (nickname,)
    imitated = nickname.lower().translate(_LOOKALIKE_LETTERS).strip("_-")
    if imitated in _RESERVED_LOOKALIKES:
        return "%s looks like %s, which is reserved" % (nickname, _RESERVED_LOOKALIKES[imitated])
    return None


def nickname_key(nickname):
    """
    The form under which nicknames are compared: alice, Alice and ALICE are one.
    """
    key = nickname.lower()
    # The same string when it is already lower case: one copy per person, not two.
    return nickname if key == nickname else key


class Line:
    """
    One line of output, rendered and encoded once per variant.

    C{variants[0]} carries colour, C{variants[1]} is plain; a connection picks
    one by index, which is the cheapest choice to make once per recipient.
    """

    __slots__ = ("variants",)

    def __init__(self, spans):
        """
        @param spans: pairs of (style or C{""}, text); text is shown as given,
            so anything a user typed must already be sanitised.
        """
        colored = "".join(style + text + RESET if style else text for style, text in spans)
        plain = "".join(text for _, text in spans)
        self.variants = ((colored + "\r\n").encode("utf-8"), (plain + "\r\n").encode("utf-8"))


COLORED = 0
PLAIN = 1


class _Joined:
    """
    Several L{Line}s as one, for a single write.
    """

    __slots__ = ("variants",)

    def __init__(self, variants):
        self.variants = variants


def joined(lines):
    """
    The lines one after the other, as one line-like object with C{variants}.
    """
    return _Joined(
        (
            b"".join([line.variants[COLORED] for line in lines]),
            b"".join([line.variants[PLAIN] for line in lines]),
        )
    )


def server_line(text):
    """
    A notice from the server itself: C{[Server] text}.
    """
    return Line([(SERVER_STYLE, "[Server]"), ("", " " + text)])


def chat_line(nickname, color, text, text_style=""):
    """
    A public message: the sender's nickname in its colour, then the text (in
    C{text_style} when it was sent with C{/color}).
    """
    return Line([(color, nickname), ("", ": "), (text_style, text)])


def action_line(nickname, color, action):
    """
    A C{/me} action: C{* alice waves}.
    """
    return Line([("", "* "), (color, nickname), ("", " " + action)])


def private_line(direction, nickname, text, text_style=""):
    """
    A private message as one side sees it: C{[PM from alice] hi}, C{[PM to bob] hi}.
    """
    return Line(
        [(PRIVATE_STYLE, "[PM %s %s]" % (direction, nickname)), ("", " "), (text_style, text)]
    )
