"""
What admins do: approve joins, kick, ban, mute.

Every action is announced to the room, so moderation happens in the open.
Bans are kept in the database and checked at connect; mutes last while the
server runs.
"""

import ipaddress

from wazzap import text
from wazzap.commands.base import (
    admin_only,
    find_member,
    format_duration,
    parse_duration,
    split_word,
)


def _address(word):
    """
    C{word} as an IP address in its standard form (so 2001:DB8:0::1 and
    2001:db8::1 are one), or None if it is not an address.
    """
    try:
        return str(ipaddress.ip_address(word))
    except ValueError:
        return None


def _duration_and_reason(args):
    """
    Split C{"[DURATION] [REASON]"}; the duration is L{None} when absent.
    """
    first, rest = split_word(args)
    seconds = parse_duration(first) if first else None
    if seconds is None:
        return None, args.strip()
    return seconds, rest


def _is_banned(member, kind, target):
    if kind == "address":
        return member.peer == target
    return text.nickname_key(member.nickname) == text.nickname_key(target)


def _for(seconds):
    return "for %s" % (format_duration(seconds),) if seconds else "until lifted"


class ModerationCommands:
    """
    Commands for admins; each is marked L{admin_only}.
    """

    @admin_only
    def cmd_kick(self, user, args):
        """
        /kick NICK [REASON] -- (admin) disconnect NICK.
        """
        nickname, reason = split_word(args)
        reason = text.short_reason(reason)
        member = find_member(self.chat, user, nickname, "/kick NICK [REASON]")
        if member is not None:
            self.log.info("{admin} kicked {nickname}", admin=user.nickname, nickname=member.nickname)
            member.disconnect(_by("kicked", user, reason))

    @admin_only
    def cmd_ban(self, user, args):
        """
        /ban NICK|ADDRESS [DURATION] [REASON] -- (admin) keep a nickname or an address out.

        DURATION is like 30m, 2h, 7d; without one the ban lasts until /unban.
        Whoever is online under that nickname or from that address is
        disconnected.  Bans survive restarts.
        """
        target, rest = split_word(args)
        if not target:
            user.notice("usage: /ban NICK|ADDRESS [DURATION] [REASON]")
            return None
        address = _address(target)
        kind = "address" if address else "nickname"
        target = address or target
        if kind == "nickname" and text.nickname_problem(target) is not None:
            user.notice("%s is neither a nickname nor an address" % (target,))
            return None
        seconds, reason = _duration_and_reason(rest)
        return self.bans.add(target, kind, seconds, reason, user.nickname).addCallback(
            self._banned, user, target, kind, seconds, reason
        )

    def _banned(self, _, user, target, kind, seconds, reason):
        self.log.info("{admin} banned {target}", admin=user.nickname, target=target)
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

    @admin_only
    def cmd_unban(self, user, args):
        """
        /unban NICK|ADDRESS -- (admin) lift a ban.
        """
        target = args.strip()
        if not target:
            user.notice("usage: /unban NICK|ADDRESS")
            return None
        target = _address(target) or target
        return self.bans.remove(target).addCallback(self._unbanned, user, target)

    def _unbanned(self, removed, user, target):
        if not removed:
            user.notice("%s is not banned" % (target,))
            return
        self.log.info("{admin} unbanned {target}", admin=user.nickname, target=target)
        self.chat.announce("%s lifted the ban on %s" % (user.nickname, target))

    @admin_only
    def cmd_bans(self, user, args):
        """
        /bans -- (admin) list the bans in force.
        """
        return self.bans.active().addCallback(self._list_bans, user, self.clock.seconds())

    def _list_bans(self, bans, user, now):
        if not bans:
            user.notice("no bans")
            return
        user.notice("%d bans:" % (len(bans),))
        for ban in bans:
            user.notice(
                "  %s %s by %s, %s%s"
                % (
                    ban.kind,
                    ban.target,
                    ban.by,
                    _for(ban.until - now if ban.until else None),
                    " (%s)" % (ban.reason,) if ban.reason else "",
                )
            )

    @admin_only
    def cmd_mute(self, user, args):
        """
        /mute NICK [DURATION] -- (admin) stop NICK from talking, for DURATION (like 10m) or until /unmute.
        """
        nickname, rest = split_word(args)
        member = find_member(self.chat, user, nickname, "/mute NICK [DURATION]")
        if member is None:
            return
        seconds = parse_duration(rest) if rest else None
        if rest and seconds is None:
            user.notice("%s is not a duration: try 30s, 10m, 2h or 1d" % (rest,))
            return
        self.chat.mute(member, seconds)
        self.chat.room_of(member).announce(
            "%s was muted by %s %s" % (member.nickname, user.nickname, _for(seconds))
        )

    @admin_only
    def cmd_unmute(self, user, args):
        """
        /unmute NICK -- (admin) let NICK talk again.
        """
        member = find_member(self.chat, user, args.strip(), "/unmute NICK")
        if member is None:
            return
        if not self.chat.unmute(member):
            user.notice("%s is not muted" % (member.nickname,))
            return
        self.chat.room_of(member).announce(
            "%s was unmuted by %s" % (member.nickname, user.nickname)
        )

    @admin_only
    def cmd_pending(self, user, args):
        """
        /pending -- (admin) who is waiting for approval to join.
        """
        waiting = self.chat.waiting()
        if not waiting:
            user.notice("nobody is waiting to join")
            return
        for member in waiting:
            user.notice(
                "  %s (%s): /approve %s or /deny %s"
                % (member.nickname, member.peer, member.nickname, member.nickname)
            )

    @admin_only
    def cmd_approve(self, user, args):
        """
        /approve NICK -- (admin) let NICK, who is waiting, join.
        """
        self._decide(user, args.strip(), True)

    @admin_only
    def cmd_deny(self, user, args):
        """
        /deny NICK -- (admin) turn NICK away.
        """
        self._decide(user, args.strip(), False)

    def _decide(self, user, nickname, approved):
        member = self.chat.stop_waiting(nickname) if nickname else None
        if member is None:
            user.notice("%s is not waiting to join: see /pending" % (nickname or "nobody",))
            return
        verb = "approved" if approved else "denied"
        self.log.info("{admin} {verb} {nickname}", admin=user.nickname, verb=verb, nickname=nickname)
        for admin in self.chat.admins():
            admin.notice("%s was %s by %s" % (member.nickname, verb, user.nickname))
        if approved:
            member.admit()
        else:
            member.disconnect("denied by %s" % (user.nickname,))


def _by(action, user, reason):
    return "%s by %s%s" % (action, user.nickname, ": " + reason if reason else "")
