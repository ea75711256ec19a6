"""
The message of the day (C{--motd FILE}): the lines every user is shown
after the welcome, read from a file the operator writes, and sanitised like
anything a user types, so the file cannot recolour or clear a terminal.
"""

from dataclasses import dataclass

from wazzap.text import sanitize

KIB = 1024
#: A MOTD is a few lines; a bigger file is a mistake (a log, a binary), and
#: every user would be sent it at each login.
MAX_MOTD_BYTES = 8 * KIB


class MotdError(Exception):
    """
    The MOTD file cannot be shown; the message says why, in a few words.
    """


@dataclass(frozen=True)
class Motd:
    """
    A MOTD file and the lines read from it: two are equal when a user would
    see the same, so a reload can tell whether it changed.
    """

    path: str
    lines: tuple

    def __str__(self):
        count = len(self.lines)
        return "%s (%d line%s)" % (self.path, count, "" if count == 1 else "s")


def read_motd(path):
    """
    The L{Motd} in the file at C{path}: UTF-8 (an invalid byte shows as
    U+FFFD), controls removed, blank lines at either end dropped.
    """
    try:
        with open(path, "rb") as motd_file:
            data = motd_file.read(MAX_MOTD_BYTES + 1)
    except OSError as e:
        raise MotdError("cannot read it: %s" % ((e.strerror or str(e)).lower(),))
    if len(data) > MAX_MOTD_BYTES:
        raise MotdError("it is longer than %d bytes" % (MAX_MOTD_BYTES,))
    lines = [sanitize(line).rstrip() for line in data.decode("utf-8", "replace").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return Motd(path, tuple(lines))
