"""
IRC messages as text (RFC 1459 section 2.3.1, RFC 2812 section 2.3):

    message  = [ ":" prefix SP ] command *( SP middle ) [ SP ":" trailing ]

Parsing never raises: a line that is no message parses as an empty command.
The formatting codes IRC clients send (bold, colours, ...) are stripped from
what IRC users type before anyone else sees it (L{strip_formatting}); the
colour names of the core become mIRC colour codes (L{MIRC_COLORS}).
"""

import re

#: Longest IRC line, CR LF included (RFC 2812 section 2.3).
MAX_LINE_BYTES = 512

#: The CTCP quoting byte, around C{ACTION text} for C{/me}.
CTCP = "\x01"
ACTION_START = CTCP + "ACTION "

#: mIRC colour codes of the core's colour names (L{wazzap.text.USER_PALETTE}
#: and L{wazzap.text.NAMED_COLORS}).
MIRC_COLORS = {
    "white": "00",
    "blue": "02",
    "green": "03",
    "lightred": "04",
    "red": "05",
    "magenta": "06",
    "yellow": "08",
    "lightgreen": "09",
    "cyan": "10",
    "lightcyan": "11",
    "lightblue": "12",
}
COLOR_CODE = "\x03"

# Bold, colour (with its numbers), hex colour, reset, monospace, reverse,
# italic, strike-through, underline.
_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?"
    r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)


def parse(line):
    """
    C{line} (decoded, without its ending) as C{(command, params)}: the
    command upper-cased, the trailing parameter last among the params.
    """
    if line.startswith(":"):
        _, _, line = line.partition(" ")
    line = line.lstrip(" ")
    middle, found, trailing = line.partition(" :")
    if line.startswith(":"):
        middle, found, trailing = "", True, line[1:]
    words = middle.split()
    if not words:
        return "", []
    params = words[1:]
    if found:
        params.append(trailing)
    return words[0].upper(), params


def strip_formatting(text):
    """
    C{text} without IRC's formatting codes, as line users should read it.
    """
    if "\x03" in text or "\x04" in text or re.search(r"[\x02\x0f\x11\x16\x1d\x1e\x1f]", text):
        return _FORMATTING.sub("", text)
    return text


def action_of(text):
    """
    The action of a CTCP ACTION (C{/me}), or L{None} for other text.
    """
    if text.startswith(ACTION_START):
        return text[len(ACTION_START) :].rstrip(CTCP)
    return None


def is_ctcp(text):
    return text.startswith(CTCP)


def colored(text, color):
    """
    C{text} in the mIRC colour of C{color} (a core colour name), if any.
    """
    code = MIRC_COLORS.get(color)
    if not code:
        return text
    # Two digits always, so that text starting with a digit stays text.
    return "%s%s%s%s" % (COLOR_CODE, code, text, COLOR_CODE)


def lines(head, text):
    """
    C{head} + C{text} as CRLF-ended UTF-8 lines of at most
    L{MAX_LINE_BYTES}: a long C{text} (line users may send up to 4 KiB) is
    cut between characters and each piece gets the C{head}.
    """
    data = text.encode("utf-8")
    head = head.encode("utf-8")
    room = MAX_LINE_BYTES - len(head) - 2
    if len(data) <= room:
        return head + data + b"\r\n"
    pieces = []
    while data:
        cut = min(room, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # not inside a character
        pieces.append(head + data[:cut] + b"\r\n")
        data = data[cut:]
    return b"".join(pieces)
