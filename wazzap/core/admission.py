"""
Whether someone may join, and as whom: asked of the bans, the accounts and
the approval queue, answered with an outcome that the listener they came
through tells them in its own way.

The steps, in order: a ban on the address (at connect) or on the nickname
or address; the account registered under the nickname, or a nickname held
for an C{--admin} nobody registered; its password, through the accounts'
throttle (an owner whose password is right takes the nickname over from a
session still holding it, which is likely stale); and with
C{--approve-joins}, the wait for an admin's decision, at most
L{MAX_WAITERS_PER_ADDRESS} from one address at once.

Admission knows no connection and no wire format: it takes nicknames,
passwords and addresses, and returns L{Refused}, L{NeedsPassword},
L{WrongPassword}, L{Waiting} or L{Admitted}, whose sentences are meant for
the user.  Timers and the count of wrong passwords per connection belong to
the listener's dialog.
"""

from dataclasses import dataclass
from typing import Optional

from twisted.internet import defer
from twisted.logger import Logger

from wazzap import text
from wazzap.core.records import Account, ReservedNickname
from wazzap.core.records import Refused as AccountRefusal

#: People from one address who may wait for approval (--approve-joins) at
#: once: each holds a nickname until an admin decides or the wait times out.
MAX_WAITERS_PER_ADDRESS = 3

#: Why a session ends when its nickname is logged in to elsewhere.
TAKEN_OVER = "logged in from elsewhere"


@dataclass(frozen=True)
class Refused:
    """
    Not let in: C{why} is the sentence to tell the user.  With C{close} the
    connection ends, C{reason} saying why for the log and the login
    history; without it the user may choose another nickname.
    """

    why: str
    close: bool = False
    reason: Optional[str] = None


@dataclass(frozen=True)
class NeedsPassword:
    """
    C{nickname}, as typed, is registered as C{account}: its password comes
    next, for L{Admission.check_password}.
    """

    nickname: str
    account: Account


@dataclass(frozen=True)
class WrongPassword:
    """
    The password given for C{nickname} was wrong.
    """

    nickname: str


@dataclass(frozen=True)
class Waiting:
    """
    Let in once an admin approves: the user, under C{nickname} and with
    C{account} (its registered spelling, or L{None}), is to be put in the
    queue with L{Admission.wait_for_approval}.
    """

    nickname: str
    account: Optional[str]


@dataclass(frozen=True)
class Admitted:
    """
    Let in as C{nickname}, logged in to C{account} (its registered
    spelling) or to none (L{None}), an admin or not.
    """

    nickname: str
    account: Optional[str]
    is_admin: bool


class Admission:
    """
    The steps from an address to a joined nickname, over the C{chat} (who
    is online, the approval queue), the C{accounts} and the C{bans}.
    """

    log = Logger()

    def __init__(self, chat, accounts, bans, approve_joins=False):
        self._chat = chat
        self._accounts = accounts
        self._bans = bans
        self._approve_joins = approve_joins
        #: Wrong passwords given since the start, for the metrics.
        self.login_failures = 0

    def check_address(self, address):
        """
        A Deferred firing with a closing L{Refused} if C{address} is
        banned, else with L{None}.
        """
        return self._bans.find(None, address).addCallback(_address_refusal)

    @defer.inlineCallbacks
    def choose_nickname(self, nickname, address, claimant=None):
        """
        A Deferred firing with what follows choosing C{nickname} from
        C{address}: L{Refused}, L{NeedsPassword}, L{Waiting} or
        L{Admitted}.  With L{Waiting} or L{Admitted}, the nickname is held
        for the member C{claimant} (if given) until it joins or leaves: in
        every process sharing the chat, only one may win a nickname.
        """
        # Whether the nickname is online is asked after the database: the
        # owner of a registered nickname may take it over from a stale session.
        problem = text.nickname_problem(nickname)
        if problem is not None:
            return Refused("Sorry, " + problem + ".")
        ban = yield self._bans.find(nickname, address)
        account = yield self._accounts.lookup(nickname)
        if ban is not None:
            return Refused(
                "%s is banned%s." % (nickname, ban_details(ban)), close=True, reason="banned"
            )
        if isinstance(account, ReservedNickname):
            return Refused("Sorry, %s is reserved for an admin." % (nickname,))
        if account is not None:
            refusal = self._accounts.throttle.refusal(nickname, address)
            if refusal is not None:
                return Refused(_sentence(refusal))
            return NeedsPassword(nickname, account)
        return (yield self._approval(nickname, None, address, claimant))

    @defer.inlineCallbacks
    def check_password(self, nickname, password, address, claimant=None):
        """
        A Deferred firing with what follows C{password} for the registered
        C{nickname} from C{address}: L{Refused} (too many guesses, or the
        server too busy to check), L{WrongPassword}, L{Waiting} or
        L{Admitted}; C{claimant} as for L{choose_nickname}.
        """
        try:
            account = yield self._accounts.log_in(nickname, password, address)
        except AccountRefusal as refusal:
            return Refused(_sentence(str(refusal)))
        if account is None:
            self.log.info("wrong password for {nickname} from {peer}", nickname=nickname, peer=address)
            self.login_failures += 1
            return WrongPassword(nickname)
        self._take_over(nickname, address)
        return (yield self._approval(nickname, account, address, claimant))

    def wait_for_approval(self, member):
        """
        Put C{member}, whose nickname a L{Waiting} named, in the queue and
        ask the admins online; return how many were asked.
        """
        self.log.info(
            "{nickname} from {peer} waits for approval", nickname=member.nickname, peer=member.peer
        )
        return self._chat.wait_for_approval(member)

    def stop_waiting(self, nickname):
        """
        Take C{nickname} off the queue: its wait is over without a decision.
        """
        self._chat.stop_waiting(nickname)

    def _take_over(self, nickname, address):
        """
        End the session that holds C{nickname}, whose password was just
        given from C{address}: its owner is back, the old session is likely
        stale.
        """
        chat = self._chat
        stale = chat.find(nickname) or chat.stop_waiting(nickname)
        if stale is None:
            return
        self.log.info(
            "{nickname} logged in from {peer}; closing the session from {old}",
            nickname=stale.nickname,
            peer=address,
            old=stale.peer,
        )
        stale.disconnect(TAKEN_OVER, "%s %s" % (stale.nickname, TAKEN_OVER))
        # Free the nickname now: the old connection reports its loss later.
        chat.leave(stale, TAKEN_OVER)

    @defer.inlineCallbacks
    def _approval(self, nickname, account, address, claimant):
        """
        The last step: L{Admitted} at once, or L{Waiting} for an admin with
        C{--approve-joins}, unless the nickname is online or C{address} has
        too many waiting.
        """
        problem = self._chat.nickname_problem(nickname)
        if problem is not None:
            return Refused("Sorry, " + problem + ".")
        name = None if account is None else account.nickname
        is_admin = account is not None and account.is_admin
        if not self._approve_joins or is_admin:
            outcome = Admitted(nickname, name, is_admin)
        elif self._chat.waiting_from(address) >= MAX_WAITERS_PER_ADDRESS:
            return Refused(
                "%d people from your address already wait for approval: try again later"
                % (MAX_WAITERS_PER_ADDRESS,),
                close=True,
                reason="too many waiting from one address",
            )
        else:
            outcome = Waiting(nickname, name)
        if claimant is not None:
            problem = yield self._chat.claim(claimant, nickname)
            if problem is not None:
                return Refused("Sorry, " + problem + ".")
        return outcome


def ban_details(ban):
    """
    How long a ban lasts and why, to tell the person it keeps out.
    """
    until = ""
    if ban.until:
        until = " until %s" % (text.format_time(ban.until),)
    return until + (": " + ban.reason if ban.reason else "")


def _address_refusal(ban):
    if ban is None:
        return None
    return Refused(
        "This address is banned%s." % (ban_details(ban),), close=True, reason="banned"
    )


def _sentence(phrase):
    return phrase[0].upper() + phrase[1:] + "."
