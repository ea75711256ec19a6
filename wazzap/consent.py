"""
Consent for private messages: who wants to be asked first, who asked whom, and
which pairs have an open private chat.

Pure state over member objects, like L{wazzap.chat}: the commands in
L{wazzap.privacy} turn its answers into notices.
"""


class PrivateChats:
    """
    Private chats between pairs of members, and the requests that open them.
    """

    def __init__(self, consent_by_default=False):
        self.consent_by_default = consent_by_default
        self._requires_consent = set()
        self._open = set()
        self._requests = set()

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
        return target not in self._requires_consent or frozenset((sender, target)) in self._open

    def is_open(self, first, second):
        return frozenset((first, second)) in self._open

    def is_requested(self, requester, target):
        return (requester, target) in self._requests

    def request(self, requester, target):
        self._requests.add((requester, target))

    def answer(self, target, requester, accepted):
        """
        Settle C{requester}'s request to C{target}; return whether there was one.
        """
        if (requester, target) not in self._requests:
            return False
        self._requests.discard((requester, target))
        if accepted:
            self._requests.discard((target, requester))
            self._open.add(frozenset((requester, target)))
        return True

    def end(self, first, second):
        """
        Close the private chat between two members; return whether one was open.
        """
        pair = frozenset((first, second))
        if pair not in self._open:
            return False
        self._open.discard(pair)
        return True

    def partners(self, member):
        """
        The members C{member} has an open private chat with.
        """
        return [other for pair in self._open if member in pair for other in pair - {member}]

    def requests_to(self, member):
        return [requester for requester, target in self._requests if target is member]

    def requests_from(self, member):
        return [target for requester, target in self._requests if requester is member]

    def remove_member(self, member):
        """
        Forget C{member}, who left: return the partners whose chats ended, the
        members whose requests to it were cancelled, and those it had asked.
        """
        partners = self.partners(member)
        self._open = {pair for pair in self._open if member not in pair}
        asked_it = self.requests_to(member)
        it_asked = self.requests_from(member)
        self._requests = {
            (requester, target)
            for requester, target in self._requests
            if member is not requester and member is not target
        }
        self._requires_consent.discard(member)
        return partners, asked_it, it_asked
