"""
Text in wazzap: sanitising what users send, nickname rules, reasons, and the
names of the colours people are given or may pick.

Everything a user typed passes through L{sanitize} before anybody sees it, so
nobody can recolour, clear, retitle or visually reverse another terminal; the
server's own colours are added afterwards, by the renderer of each listener
(L{wazzap.listeners.line.render} for the line protocol).
"""

import re
import time
import unicodedata

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

#: Colour names handed out to users; yellow and magenta are kept for the
#: server's notices and for private messages so those never look like someone
#: talking, and white is left out because it cannot be read on a light terminal.
USER_PALETTE = (
    "red",
    "green",
    "blue",
    "cyan",
    "lightred",
    "lightgreen",
    "lightblue",
    "lightcyan",
)

#: The colours a user may pick by name with /color; events carry the name.
NAMED_COLORS = ("red", "green", "yellow", "blue", "magenta", "cyan", "white")

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
# wazzap.listeners.line.protocol.ChatProtocol.quit and wazzap.commands.moderation._by); no
# nickname has a colon, and "the operator" (wazzap.app.control) has a space.
_REASON_WITH_WORDS = re.compile(r"(quit|(?:kicked|banned|denied) by [^:]+): (.*)\Z", re.DOTALL)


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


def format_time(timestamp, local=False):
    """
    A unix time to the minute, in UTC (or local time); a time past what the
    calendar functions take (a ban stored before durations had a cap) is
    written as such instead of raising.
    """
    try:
        if local:
            return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))
    except (OverflowError, ValueError, OSError):
        return "after the year 9999"
