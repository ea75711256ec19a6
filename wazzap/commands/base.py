"""
Small pieces every group of commands uses: splitting arguments, finding
members, the mute check, and reading and writing durations.
"""

import re

_DURATION = re.compile(r"(\d+)([smhdw]?)\Z")
#: A digit, then letters and digits if any: what a mistyped duration (10x,
#: 5min, 1d2h) looks like.
_DURATION_LIKE = re.compile(r"\d[^\W_]*\Z")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DAY = 86400
#: The longest ban or mute with an end: anything longer is meant as "until
#: lifted", and is said that way, not as a date after the year 9999.
MAX_DURATION_SECONDS = 3650 * DAY
DURATION_UNITS = "a number of seconds, or a number and s, m, h, d or w (like 30m, 2h, 7d)"


class DurationError(ValueError):
    """
    A word that was meant as a duration but is not a usable one; the message
    says why, for the user.
    """


def split_word(args):
    """
    Split C{"bob hello there"} into C{("bob", "hello there")}.
    """
    word, _, rest = args.strip().partition(" ")
    return word, rest.strip()


def plural(count, noun, nouns=None):
    """
    C{count} and C{noun}, in the plural unless there is one: C{"1 ban"},
    C{"2 bans"}, C{"3 people"} (with C{nouns}, the plural form).
    """
    return "%d %s" % (count, noun if count == 1 else nouns or noun + "s")


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


def may_speak(mutes, user):
    """
    Whether C{user} may talk, after telling them for how long they may not.
    """
    muted_for = mutes.muted_for(user)
    if muted_for == float("inf"):
        user.notice("you are muted until an admin lifts it")
    elif muted_for:
        user.notice("you are muted for another %s" % (format_duration(muted_for),))
    return not muted_for


def looks_like_duration(word):
    """
    Whether C{word} was meant as a duration: it starts with a digit and has
    only letters and digits.
    """
    return _DURATION_LIKE.match(word) is not None


def parse_duration(word):
    """
    Seconds in C{"90"}, C{"30s"}, C{"10m"}, C{"2h"}, C{"1d"} or C{"1w"}; raise
    L{DurationError} for anything else, zero, or more than
    L{MAX_DURATION_SECONDS}.
    """
    match = _DURATION.match(word.lower())
    if match is None:
        raise DurationError("%s is not a duration: use %s" % (word, DURATION_UNITS))
    digits, unit = match.groups()
    # A few digits past the cap in any unit are already too long: no need to
    # turn a line of digits into a number.
    if len(digits.lstrip("0")) > len(str(MAX_DURATION_SECONDS)):
        seconds = MAX_DURATION_SECONDS + 1
    else:
        seconds = int(digits) * _UNIT_SECONDS[unit]
    if seconds == 0:
        raise DurationError("a duration must be more than zero: use %s" % (DURATION_UNITS,))
    if seconds > MAX_DURATION_SECONDS:
        raise DurationError(
            "%s is too long: at most %dd (10 years); leave the duration out for no end"
            % (word, MAX_DURATION_SECONDS // DAY)
        )
    return seconds


def format_duration(seconds):
    """
    A duration as people say it: C{"45s"}, C{"10m"}, C{"2h 5m"}, C{"3d"};
    beyond L{MAX_DURATION_SECONDS} (a mute or ban stored before there was a
    cap), C{"more than 10 years"}.
    """
    if seconds > MAX_DURATION_SECONDS:
        return "more than 10 years"
    seconds = int(round(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append("%d%s" % (seconds // size, unit))
            seconds %= size
    if seconds or not parts:
        parts.append("%ds" % (seconds,))
    return " ".join(parts[:2])
