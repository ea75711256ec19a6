"""
Offline messages: a private message to a registered user who is not online
is kept in the database (L{wazzap.persist.store.Database.leave_memo}) and handed over
when they next log in, with its sender and the time it was sent.

The sender is told it will be delivered only once it is committed, so a
message acknowledged is never lost, even to a SIGKILL; one handed over is
deleted only after it was written to the recipient's connection, so a crash
before that delivers it at the next login instead.  Consent applies as it
does online: it is not kept across logins, so an offline user comes back
with the server's default (C{--consent}) and no private chat open, and a
server that asks consent by default keeps no offline messages.
"""

import time

from twisted.internet import defer
from twisted.logger import Logger

from wazzap import text
from wazzap.chat import EMPTY_PRIVATE_MESSAGE, PRIVATE_CHAT_NEEDED
from wazzap.core import events
from wazzap.failures import log_failure
from wazzap.persist.store import (
    MEMO_KEPT,
    MEMO_RECIPIENT_FULL,
    MEMO_SENDER_FULL,
    MEMO_UNREGISTERED,
    StoreError,
)

log = Logger()

#: Messages that may wait for one recipient, from everybody.
MAX_WAITING_PER_RECIPIENT = 20
#: Messages that may wait for one recipient from one sender (by nickname).
MAX_WAITING_PER_SENDER = 5

#: A memo comes from nobody's session: the line renderer shows it as
#: received, never as sent, whoever reads it.
NO_SESSION = ""


def sent_at(seconds, now):
    """
    When a message was sent, as C{"09:14 UTC"}, with the date
    (C{"2026-11-30 09:14 UTC"}) when it was not sent today (in UTC).
    """
    sent = time.gmtime(seconds)
    if sent[:3] == time.gmtime(now)[:3]:
        return time.strftime("%H:%M UTC", sent)
    return time.strftime("%Y-%m-%d %H:%M UTC", sent)


def unregistered(nickname):
    """
    What a sender hears for a message to a nickname nobody online has and
    nobody registered.
    """
    return (
        "%s is not online, and not registered: offline messages need a registered recipient"
        % (nickname,)
    )


class OfflineMessages:
    """
    Keeping messages for offline users and handing them over at login.

    @ivar store: the L{wazzap.persist.store.Store} they are kept in.
    """

    def __init__(self, chat, store, clock):
        """
        @param chat: the L{wazzap.chat.Chat} whose members send and receive.
        @param clock: the L{IReactorTime} messages are dated by.
        """
        self._chat = chat
        self.store = store
        self._clock = clock

    def leave(self, sender, nickname, message, style=""):
        """
        Keep C{message} (in the colour C{style}) from C{sender} for
        C{nickname}, who is not online, and tell C{sender} what became of it;
        return a Deferred that fires once they are told.
        """
        if not message:
            sender.notice(EMPTY_PRIVATE_MESSAGE)
            return defer.succeed(None)
        if text.nickname_problem(nickname) is not None:
            sender.notice(unregistered(nickname))
            return defer.succeed(None)
        if self._chat.private_chats.consent_by_default:
            looked_up = self.store.get_account(nickname)
            return looked_up.addCallback(self._consent_needed, sender, nickname).addErrback(
                self._not_kept, sender, nickname
            )
        kept = self.store.leave_memo(
            sender.nickname,
            nickname,
            message,
            style,
            self._clock.seconds(),
            MAX_WAITING_PER_RECIPIENT,
            MAX_WAITING_PER_SENDER,
        )
        return kept.addCallback(self._kept, sender, nickname).addErrback(
            self._not_kept, sender, nickname
        )

    def _consent_needed(self, account, sender, nickname):
        if account is None:
            sender.notice(unregistered(nickname))
        else:
            sender.notice(PRIVATE_CHAT_NEEDED % (account.nickname, account.nickname))

    def _kept(self, result, sender, nickname):
        outcome, recipient = result
        if outcome == MEMO_KEPT:
            sender.notice(
                "%s is offline: your message will be delivered when they log in "
                "(/memos lists yours waiting)" % (recipient,)
            )
        elif outcome == MEMO_UNREGISTERED:
            sender.notice(unregistered(nickname))
        elif outcome == MEMO_RECIPIENT_FULL:
            sender.notice(
                "%s is offline and already has %d messages waiting, the most allowed: "
                "yours was not kept" % (recipient, MAX_WAITING_PER_RECIPIENT)
            )
        elif outcome == MEMO_SENDER_FULL:
            sender.notice(
                "you already have %d messages waiting for %s, the most allowed: "
                "yours was not kept (/memos lists them, /unsend N takes one back)"
                % (MAX_WAITING_PER_SENDER, recipient)
            )
        else:
            raise ValueError("no such outcome of leaving a message: %r" % (outcome,))

    def _not_kept(self, failure, sender, nickname):
        failure.trap(StoreError)
        log_failure(failure, log, "keeping a message for " + nickname)
        sender.notice(
            "your message to %s could not be kept (the database failed), so it was not sent: "
            "try again later" % (nickname,)
        )

    def deliver(self, member):
        """
        Hand C{member}, who just logged in, the messages waiting for its
        account, and delete them once written to it; a Deferred.
        """
        account = member.account
        if account is None:
            return defer.succeed(None)
        waiting = self.store.memos_for(account)
        return waiting.addCallback(self._hand_over, member).addErrback(
            log_failure, log, "delivering the messages waiting for " + account
        )

    def _hand_over(self, memos, member):
        chat = self._chat
        if not memos or chat.session_of(member) is None:
            return None  # none, or gone again: they wait for the next login
        now = self._clock.seconds()
        recipient = chat.identity(member).nickname
        chat.tell(
            member,
            "1 message came while you were away:"
            if len(memos) == 1
            else "%d messages came while you were away:" % (len(memos),),
        )
        outbox = chat.outbox
        for memo in memos:
            outbox.direct(
                member,
                events.Private(
                    memo.sender,
                    NO_SESSION,
                    recipient,
                    "(%s) %s" % (sent_at(memo.sent_at, now), memo.text),
                    memo.style,
                ),
            )
        # Written to the member now, not at the end of the turn: from here
        # on they are delivered, and only then may they go.
        outbox.flush_member(member)
        return self.store.delete_memos([memo.id for memo in memos])
