"""
What admins do: approve joins, kick, ban, mute.

Every action is announced to the room, so moderation happens in the open.
Bans and mutes are kept in the database (L{wazzap.persist.bans}): bans are checked
at connect and at every nickname, mutes at every line.
"""

from twisted.logger import Logger

from wazzap import addresses, text
from wazzap.persist.bans import mute_key
from wazzap.commands.base import (
    DurationError,
    find_member,
    format_duration,
    looks_like_duration,
    parse_duration,
    plural,
    split_word,
)
from wazzap.commands.registry import command

log = Logger()

#: Waiting newcomers listed per page of /pending.
PENDING_PAGE_LINES = 20

BAN_USAGE = "/ban NICK|ADDRESS|NETWORK [DURATION] [REASON]"
MUTE_USAGE = "/mute NICK [DURATION]"


def _duration_and_reason(args):
    """
    Split C{"[DURATION] [REASON]"}: the duration is L{None} when absent;
    raise L{DurationError} for a first word meant as a duration that is not
    one (C{10x}), rather than take it as the start of the reason.
    """
    first, rest = split_word(args)
    if first and looks_like_duration(first):
        return parse_duration(first), rest
    return None, args.strip()


def _is_banned(member, kind, target):
    if kind == "address":
        return addresses.covers(target, member.peer)
    return text.nickname_key(member.nickname) == text.nickname_key(target)


def _is_self(user, nickname):
    key = text.nickname_key(nickname)
    return key in {text.nickname_key(user.nickname), text.nickname_key(user.account or "")}


def _for(seconds):
    return "for %s" % (format_duration(seconds),) if seconds else "until lifted"


def _remaining(until, now):
    return _for(until - now if until else None)


class ModerationCommands:
    """
    Commands for admins; each is registered as admin-only.
    """

    def __init__(self, chat, bans, clock):
        self.chat = chat
        self.bans = bans
        self.clock = clock

    @command(admin_only=True)
    def cmd_kick(self, user, args):
        """
        /kick NICK [REASON] -- (admin) disconnect NICK.
        """
        nickname, reason = split_word(args)
        reason = text.short_reason(reason)
        member = find_member(self.chat, user, nickname, "/kick NICK [REASON]")
        if member is user:
            user.notice("you cannot kick yourself: /quit leaves")
        elif member is not None:
            log.info("{admin} kicked {nickname}", admin=user.nickname, nickname=member.nickname)
            member.disconnect(_by("kicked", user, reason))

    @command(admin_only=True)
    def cmd_ban(self, user, args):
        """
        /ban NICK|ADDRESS|NETWORK [DURATION] [REASON] -- (admin) keep a nickname, an address or a network out.

        DURATION is like 30m, 2h, 7d (at most 3650d); without one the ban
        lasts until /unban.  A NETWORK is written like 203.0.113.0/24 or
        2001:db8::/32.  Whoever is online under that nickname or from that
        address is disconnected.  Bans survive restarts.
        """
        target, rest = split_word(args)
        if not target:
            user.notice("usage: " + BAN_USAGE)
            return None
        address = addresses.ban_target(target)
        kind = "address" if address else "nickname"
        target = address or target
        if kind == "nickname" and text.nickname_problem(target) is not None:
            user.notice("%s is neither a nickname nor an address or network" % (target,))
            return None
        if kind == "nickname" and _is_self(user, target):
            user.notice("you cannot ban yourself")
            return None
        try:
            seconds, reason = _duration_and_reason(rest)
        except DurationError as e:
            user.notice("usage: " + BAN_USAGE)
            user.notice(str(e))
            return None
        return self.bans.add(target, kind, seconds, reason, user.nickname).addCallback(
            self._banned, user, target, kind, seconds, reason
        )

    def _banned(self, _, user, target, kind, seconds, reason):
        log.info("{admin} banned {target}", admin=user.nickname, target=target)
        self.chat.announce(
            "%s was banned by %s %s%s"
            % (target, user.nickname, _for(seconds), " (%s)" % (reason,) if reason else "")
        )
        why = _by("banned", user, reason)
        for member in self.chat.members() + self.chat.waiting():
            if member is not user and _is_banned(member, kind, target):
                member.disconnect(why)
        if _is_banned(user, kind, target):
            # Disconnecting the admin too would leave nobody inside to /unban.
            user.notice(
                "the ban covers you too: /unban %s before you leave, or you will be kept out"
                % (target,)
            )

    @command(admin_only=True)
    def cmd_unban(self, user, args):
        """
        /unban NICK|ADDRESS|NETWORK -- (admin) lift a ban.
        """
        target = args.strip()
        if not target:
            user.notice("usage: /unban NICK|ADDRESS|NETWORK")
            return None
        target = addresses.ban_target(target) or target
        return self.bans.remove(target).addCallback(self._unbanned, user, target)

    def _unbanned(self, removed, user, target):
        if not removed:
            user.notice("%s is not banned" % (target,))
            return
        log.info("{admin} unbanned {target}", admin=user.nickname, target=target)
        self.chat.announce("%s lifted the ban on %s" % (user.nickname, target))

    @command(admin_only=True)
    def cmd_bans(self, user, args):
        """
        /bans -- (admin) list the bans in force.
        """
        return self.bans.active().addCallback(self._list_bans, user, self.clock.seconds())

    def _list_bans(self, bans, user, now):
        if not bans:
            user.notice("no bans")
            return
        user.notice("%s:" % (plural(len(bans), "ban"),))
        for ban in bans:
            user.notice(
                "  %s %s by %s, %s%s"
                % (
                    ban.kind,
                    ban.target,
                    ban.by,
                    _remaining(ban.until, now),
                    " (%s)" % (ban.reason,) if ban.reason else "",
                )
            )

    @command(admin_only=True)
    def cmd_mute(self, user, args):
        """
        /mute NICK [DURATION] -- (admin) stop NICK from talking, for DURATION (like 10m) or until /unmute.

        A registered user stays muted under any nickname; an unregistered
        one is muted by nickname and cannot change it while muted.  The mute
        lasts across reconnects and restarts; NICK may be offline if they
        are muted already (to change how long).
        """
        nickname, rest = split_word(args)
        if not nickname:
            user.notice("usage: " + MUTE_USAGE)
            return None
        try:
            seconds = parse_duration(rest) if rest else None
        except DurationError as e:
            user.notice(str(e))
            return None
        member = self.chat.find(nickname)
        if member is user:
            user.notice("you cannot mute yourself")
            return None
        mutes = self.bans.mutes
        if member is not None:
            stored = mutes.mute(member, seconds, user.nickname)
            name, rooms = member.nickname, self.chat.rooms_of(member)
        else:
            # Someone offline: only a mute they have can be changed.
            mute = mutes.find(nickname)
            if mute is None:
                user.notice("nobody called %s is online or muted" % (nickname,))
                return None
            stored = mutes.extend(mute, seconds, user.nickname)
            name, rooms = mute.target, None
        log.info("{admin} muted {nickname}", admin=user.nickname, nickname=name)
        notice = "%s was muted by %s %s" % (name, user.nickname, _for(seconds))
        return stored.addCallback(lambda _: self.chat.announce(notice, rooms))

    @command(admin_only=True)
    def cmd_unmute(self, user, args):
        """
        /unmute NICK -- (admin) let NICK talk again; NICK may be offline.
        """
        nickname = args.strip()
        if not nickname:
            user.notice("usage: /unmute NICK")
            return None
        member = self.chat.find(nickname)
        if member is not None:
            # Both: the account's mute and one on the nickname it uses.
            targets, name = (mute_key(member), member.nickname), member.nickname
            rooms = self.chat.rooms_of(member)
        else:
            mute = self.bans.mutes.find(nickname)
            targets, name, rooms = (nickname,), mute.target if mute else nickname, None
        return self.bans.mutes.unmute(*targets).addCallback(self._unmuted, user, name, rooms)

    def _unmuted(self, was_muted, user, name, rooms):
        if not was_muted:
            user.notice("%s is not muted" % (name,))
            return
        log.info("{admin} unmuted {nickname}", admin=user.nickname, nickname=name)
        self.chat.announce("%s was unmuted by %s" % (name, user.nickname), rooms)

    @command(admin_only=True)
    def cmd_mutes(self, user, args):
        """
        /mutes -- (admin) list the mutes in force.
        """
        mutes = self.bans.mutes.active()
        if not mutes:
            user.notice("no mutes")
            return
        now = self.clock.seconds()
        user.notice("%s:" % (plural(len(mutes), "mute"),))
        for mute in mutes:
            user.notice(
                "  %s %s by %s, %s" % (mute.kind, mute.target, mute.by, _remaining(mute.until, now))
            )

    @command(admin_only=True)
    def cmd_pending(self, user, args):
        """
        /pending [PAGE] -- (admin) who is waiting for approval to join, 20 a page.
        """
        page = args.strip() or "1"
        # isdigit() alone takes "²", which int() refuses.
        if not (page.isascii() and page.isdigit()) or int(page) == 0:
            user.notice("usage: /pending [PAGE], PAGE a number from 1")
            return
        waiting = self.chat.waiting()
        if not waiting:
            user.notice("nobody is waiting to join")
            return
        pages = -(-len(waiting) // PENDING_PAGE_LINES)
        page = int(page) if len(page) < 10 else pages + 1
        if page > pages:
            user.notice("there %s only %s" % ("is" if pages == 1 else "are", plural(pages, "page")))
            return
        start = (page - 1) * PENDING_PAGE_LINES
        if pages > 1:
            user.notice(
                "%s waiting to join (page %d of %d):"
                % (plural(len(waiting), "person", "people"), page, pages)
            )
        for member in waiting[start : start + PENDING_PAGE_LINES]:
            user.notice(
                "  %s (%s): /approve %s or /deny %s"
                % (member.nickname, member.peer, member.nickname, member.nickname)
            )
        if page < pages:
            user.notice("/pending %d for the next page" % (page + 1,))

    @command(admin_only=True)
    def cmd_approve(self, user, args):
        """
        /approve NICK -- (admin) let NICK, who is waiting, join.
        """
        self._decide(user, args.strip(), True)

    @command(admin_only=True)
    def cmd_deny(self, user, args):
        """
        /deny NICK [REASON] -- (admin) turn NICK away, telling them REASON.
        """
        nickname, reason = split_word(args)
        self._decide(user, nickname, False, text.short_reason(reason))

    def _decide(self, user, nickname, approved, reason=None):
        member = self.chat.stop_waiting(nickname) if nickname else None
        if member is None:
            user.notice("%s is not waiting to join: see /pending" % (nickname or "nobody",))
            return
        verb = "approved" if approved else "denied"
        log.info("{admin} {verb} {nickname}", admin=user.nickname, verb=verb, nickname=nickname)
        told = self.chat.admins()
        if user not in told:
            # The operator, deciding at the server's terminal, is no admin in the chat.
            told.append(user)
        for admin in told:
            admin.notice("%s was %s by %s" % (member.nickname, verb, user.nickname))
        if approved:
            member.admit()
        else:
            member.disconnect(_by("denied", user, reason))


def _by(action, user, reason):
    return "%s by %s%s" % (action, user.nickname, ": " + reason if reason else "")
