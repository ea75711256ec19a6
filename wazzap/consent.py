"""
Consent for private messages: who wants to be asked first, who asked whom, and
which pairs have an open private chat.

Pure state over member objects, like L{wazzap.chat}: the commands in
L{wazzap.commands.privacy} turn its answers into notices.  Every pair is
indexed from both ends, so what one member does costs the same however many
requests and chats everybody else has.
"""

from wazzap.text import nickname_key

MINUTE = 60

#: Requests one member may have waiting for an answer at once.
MAX_REQUESTS_WAITING = 20

#: How long, after a /reject, the same requester may not ask the same person
#: again.
REJECTED_REQUEST_PAUSE_SECONDS = 10 * MINUTE


class PrivateChats:
    """
    Private chats between pairs of members, and the requests that open them.
    """

    def __init__(self, clock, consent_by_default=False):
        self.consent_by_default = consent_by_default
        self._clock = clock
        self._requires_consent = set()
        self._partners = {}
        self._asked = {}
        self._asked_by = {}
        # (requester, target) nickname keys -> when the requester may ask
        # again; kept by nickname, so leaving and coming back does not lift
        # it.  Entries are added in the order they expire.
        self._rejected = {}

    def add_member(self, member):
        """
        Give a newcomer the server's default consent setting.
        """
        if self.consent_by_default:
            self._requires_consent.add(member)

    def set_requires_consent(self, member, required):
        if required:
            self._requires_consent.add(member)
        else:
            self._requires_consent.discard(member)

    def requires_consent(self, member):
        return member in self._requires_consent

    def may_message(self, sender, target):
        """
        Whether C{sender} may send C{target} a private message now.
        """
        return target not in self._requires_consent or self.is_open(sender, target)

    def is_open(self, first, second):
        return second in self._partners.get(first, ())

    def is_requested(self, requester, target):
        return target in self._asked.get(requester, ())

    def requests_waiting(self, requester):
        """
        How many of C{requester}'s requests wait for an answer.
        """
        return len(self._asked.get(requester, ()))

    def paused_for(self, requester, target):
        """
        Seconds until C{requester} may ask C{target} again after being
        turned down; 0 if it may ask now.
        """
        self._forget_expired_rejections()
        key = (nickname_key(requester.nickname), nickname_key(target.nickname))
        return max(self._rejected.get(key, 0) - self._clock.seconds(), 0)

    def request(self, requester, target):
        _link(self._asked, requester, target)
        _link(self._asked_by, target, requester)

    def withdraw(self, requester, target):
        """
        Take back C{requester}'s request to C{target}; return whether there
        was one.
        """
        if not self.is_requested(requester, target):
            return False
        _unlink(self._asked, requester, target)
        _unlink(self._asked_by, target, requester)
        return True

    def answer(self, target, requester, accepted):
        """
        Settle C{requester}'s request to C{target}; return whether there was
        one.  A rejected requester may not ask C{target} again for
        L{REJECTED_REQUEST_PAUSE_SECONDS}.
        """
        if not self.withdraw(requester, target):
            return False
        if accepted:
            self.withdraw(target, requester)
            _link(self._partners, requester, target)
            _link(self._partners, target, requester)
        else:
            self._forget_expired_rejections()
            key = (nickname_key(requester.nickname), nickname_key(target.nickname))
            self._rejected.pop(key, None)
            self._rejected[key] = self._clock.seconds() + REJECTED_REQUEST_PAUSE_SECONDS
        return True

    def end(self, first, second):
        """
        Close the private chat between two members; return whether one was open.
        """
        if not self.is_open(first, second):
            return False
        _unlink(self._partners, first, second)
        _unlink(self._partners, second, first)
        return True

    def partners(self, member):
        """
        The members C{member} has an open private chat with.
        """
        return list(self._partners.get(member, ()))

    def requests_to(self, member):
        return list(self._asked_by.get(member, ()))

    def requests_from(self, member):
        return list(self._asked.get(member, ()))

    def remove_member(self, member):
        """
        Forget C{member}, who left: return the partners whose chats ended, the
        members whose requests to it were cancelled, and those it had asked.
        """
        partners = self._partners.pop(member, ())
        for partner in partners:
            _unlink(self._partners, partner, member)
        it_asked = self._asked.pop(member, ())
        for target in it_asked:
            _unlink(self._asked_by, target, member)
        asked_it = self._asked_by.pop(member, ())
        for requester in asked_it:
            _unlink(self._asked, requester, member)
        self._requires_consent.discard(member)
        return list(partners), list(asked_it), list(it_asked)

    def _forget_expired_rejections(self):
        now = self._clock.seconds()
        rejected = self._rejected
        while rejected:
            key = next(iter(rejected))
            if rejected[key] > now:
                break
            del rejected[key]


def _link(index, key, value):
    index.setdefault(key, set()).add(value)


def _unlink(index, key, value):
    """
    Take C{value} out of C{index[key]}, and the key too once it has none left,
    so someone without requests or chats costs nothing here.
    """
    values = index[key]
    values.discard(value)
    if not values:
        del index[key]
