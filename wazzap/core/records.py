"""
What the core is handed about accounts (by L{wazzap.persist.accounts}),
as plain values, so that the core needs nothing of the database.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    nickname: str
    password_hash: str
    is_admin: bool
    created_at: float


@dataclass(frozen=True)
class ReservedNickname(Account):
    """
    An C{--admin} nickname nobody has registered, as account lookups give
    it: held for the admin, it has no password that could open it.
    """


class Refused(Exception):
    """
    The server will not do this now; C{str()} says why, for the user.
    """
