"""
Small pieces every group of commands uses: splitting arguments, marking admin
commands, and reading and writing durations.
"""

import re

_DURATION = re.compile(r"(\d+)([smhdw]?)\Z")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def split_word(args):
    """
    Split C{"bob hello there"} into C{("bob", "hello there")}.
    """
    word, _, rest = args.strip().partition(" ")
    return word, rest.strip()


def find_member(chat, user, nickname, usage):
    """
    The member online as C{nickname}, or L{None} after telling C{user} why not
    (no nickname given: the C{usage}; nobody by that name).
    """
    if not nickname:
        user.notice("usage: " + usage)
        return None
    member = chat.find(nickname)
    if member is None:
        user.notice("nobody called %s is online" % (nickname,))
    return member


def admin_only(handler):
    """
    Mark a command as reserved for admins; the dispatcher refuses it to others.
    """
    handler.admin_only = True
    return handler


def parse_duration(word):
    """
    Seconds in C{"90"}, C{"30s"}, C{"10m"}, C{"2h"}, C{"1d"} or C{"1w"}, or
    L{None} if C{word} is not a duration.
    """
    match = _DURATION.match(word.lower())
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds):
    """
    A duration as people say it: C{"45s"}, C{"10m"}, C{"2h 5m"}, C{"3d"}.
    """
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append("%d%s" % (seconds // size, unit))
            seconds %= size
    if seconds or not parts:
        parts.append("%ds" % (seconds,))
    return " ".join(parts[:2])
