"""
Failures in the log: one line for what the operator must fix (a full disk,
a database another process holds), a traceback only for what is a bug.
"""


class OperatorError(Exception):
    """
    Something outside the program went wrong (the disk, the database file):
    the message, one line, says what and why, for the operator to fix.
    """

    def __init__(self, message):
        # Messages from libraries (SQLite's quick_check's in particular)
        # may span lines.
        super().__init__(" ".join(str(message).split()))


def log_failure(failure, log, doing):
    """
    Log that C{doing} failed: an L{OperatorError} in one line saying why,
    since it is the operator's to fix and not a bug; anything else with its
    traceback.  Return None, so that it can end an errback chain.
    """
    if failure.check(OperatorError):
        log.error("{doing} failed: {error}", doing=doing, error=failure.value)
    else:
        log.failure("{doing} failed", failure, doing=doing)
