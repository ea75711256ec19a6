"""
End-to-end: accounts, login history, private-chat consent, admins, join
approval, moderation and colours, spoken to the real C{twistd -n wazzap} over
loopback sockets (as nc would) with a real SQLite file.

Accounts most tests need are written straight into the database before the
server starts (L{seed_accounts}), with the server's own argon2id parameters;
registering through the server is tested on its own.  Every wait is bounded;
a check that something did I{not} arrive reads up to a later line the server
is bound to send after it.
"""

import functools
import re
import signal
import statistics
import threading
import time

import argon2
import pytest

from tests.support import (
    NICKNAME_PROMPT,
    PASSWORD,
    TIMEOUT,
    admin_cli,
    admin_server,
    LoginClient,
    percentile,
    room,
    seed_accounts,
    strip_colors,
)
from wazzap.persist.store import Database

ESC = b"\x1b"


@pytest.fixture
def open_client(open_client):
    """
    The shared fixture, opening clients that can log in, without Nagle's delay.
    """
    return functools.partial(open_client, client_class=LoginClient, nodelay=True, timeout=TIMEOUT)


def stopped_cleanly(server):
    """
    Stop C{server} with SIGTERM; whether it shut down cleanly (twistd
    re-raises the signal after a clean shutdown, hence -SIGTERM).
    """
    return server.stop() in (0, -signal.SIGTERM)


# 1. Accounts from raw sockets


def test_register_with_password_then_login_needs_it(start_server, open_client):
    """/register PASSWORD reserves the nickname, and the next login needs that password."""
    server = start_server()
    alice = open_client(server, "alice")
    assert alice.ask("/register " + PASSWORD, "registered") == (
        "[Server] registered: from now on alice needs this password"
    )
    assert alice.ask("/register " + PASSWORD, "already") == (
        "[Server] you are already logged in to the account alice"
    )
    alice.send("/quit")
    alice.wait_closed(TIMEOUT)
    again = open_client(server)
    assert again.log_in("alice").startswith("[Server] Welcome, alice!")


def test_register_without_argument_asks_for_the_password(start_server, open_client):
    """/register alone prompts for the password twice, refuses a short one, and registers once both agree."""
    server = start_server()
    bob = open_client(server, "bob")
    assert bob.ask("/register", "Password:") == "[Server] Choose a password for bob. Password:"
    assert bob.ask("short", "cannot register") == (
        "[Server] cannot register: a password is 8 to 128 characters"
    )
    bob.ask("/register", "Password:")
    assert bob.ask(PASSWORD, "password:") == "[Server] Repeat the password:"
    assert bob.ask(PASSWORD, "registered") == (
        "[Server] registered: from now on bob needs this password"
    )
    bob.send("/quit")
    bob.wait_closed(TIMEOUT)
    assert open_client(server).log_in("bob").startswith("[Server] Welcome, bob!")


def test_wrong_password_is_generic_and_three_close(start_server, open_client, tmp_path):
    """A wrong password gets only "Wrong nickname or password." and the third one closes the connection."""
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"]))
    guesser = open_client(server)
    for attempt in range(2):
        guesser.log_in("alice", "not-the-password", welcome=False, prompted=attempt > 0)
        assert guesser.read_through(NICKNAME_PROMPT) == [
            "[Server] Wrong nickname or password.",
            "[Server] " + NICKNAME_PROMPT + " (1 to 16 letters, digits, _ or -):",
        ]
    guesser.log_in("alice", "not-the-password", welcome=False, prompted=True)
    assert guesser.wait_closed(TIMEOUT) == ["[Server] wrong nickname or password: goodbye"]
    alice = open_client(server)
    assert alice.log_in("alice").startswith("[Server] Welcome, alice!")


def test_password_change(start_server, open_client, tmp_path):
    """/password OLD NEW needs the right OLD, and from then on only NEW logs in."""
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"]))
    alice = open_client(server)
    alice.log_in("alice")
    assert alice.ask("/password wrong-password new-password", "wrong password") == (
        "[Server] wrong password: nothing changed"
    )
    assert alice.ask("/password %s short" % (PASSWORD,), "cannot change") == (
        "[Server] cannot change password: a password is 8 to 128 characters"
    )
    assert alice.ask("/password %s new-password" % (PASSWORD,), "password changed") == (
        "[Server] password changed"
    )
    alice.send("/quit")
    alice.wait_closed(TIMEOUT)
    old = open_client(server)
    old.log_in("alice", PASSWORD, welcome=False)
    assert old.read_until("Wrong") == "[Server] Wrong nickname or password."
    new = open_client(server)
    assert new.log_in("alice", "new-password").startswith("[Server] Welcome, alice!")


def test_unregister_frees_the_nickname(start_server, open_client, tmp_path):
    """/unregister PASSWORD deletes the account, after which the nickname joins without a password."""
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", ["alice"]))
    alice = open_client(server)
    alice.log_in("alice")
    assert alice.ask("/unregister wrong-password", "account") == (
        "[Server] wrong password: the account stays"
    )
    assert alice.ask("/unregister " + PASSWORD, "account") == "[Server] the account alice is gone"
    alice.send("/quit")
    alice.wait_closed(TIMEOUT)
    again = open_client(server)
    again.read_until(NICKNAME_PROMPT)
    again.send("alice")
    lines = again.read_through("Welcome, alice!")
    assert not any("Password" in line for line in lines), lines
    with Database.open(server.db_path) as database:
        assert database.get_account("alice") is None


def test_restart_keeps_accounts_bans_and_history(start_server, open_client, tmp_path):
    """A new server on the same --db still knows the accounts, the bans and the login history."""
    db = "--db=%s" % (tmp_path / "wazzap.sqlite3",)
    seed_accounts(tmp_path / "wazzap.sqlite3", ["boss"], admins=["boss"])
    first = start_server(db, "--admin=boss")
    boss = open_client(first)
    boss.log_in("boss")
    carol, mallory = room(first, open_client, "carol", "mallory")
    boss.read_until("mallory joined")
    boss.send("/ban mallory 1d spamming")
    assert mallory.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: banned by boss: spamming"
    carol.send("/quit bye")
    carol.wait_closed(TIMEOUT)
    boss.read_until("carol left the chat")
    assert stopped_cleanly(first)

    second = start_server(db, "--admin=boss")
    banned = open_client(second)
    banned.read_until(NICKNAME_PROMPT)
    banned.send("mallory")
    lines = banned.wait_closed(TIMEOUT)
    assert re.fullmatch(r"\[Server\] mallory is banned until .* UTC: spamming\.", lines[-1]), lines
    impostor = open_client(second)
    impostor.log_in("boss", "not-the-password", welcome=False)
    assert impostor.read_until("Wrong") == "[Server] Wrong nickname or password."
    boss = open_client(second)
    boss.log_in("boss")
    assert boss.read_until("admin") == "[Server] You are an admin: /help lists your commands."
    boss.send("/bans")
    assert boss.read_through("nickname mallory")[-1].startswith("[Server]   nickname mallory by boss, for ")
    boss.send("/history carol")
    sessions = boss.read_through("(quit: bye)")
    assert sessions[-2] == "[Server] last 1 sessions of carol:"
    assert re.fullmatch(
        r"\[Server\]   \S+ \S+ UTC from 127\.0\.0\.1, until \S+ \S+ UTC \(quit: bye\)", sessions[-1]
    )
    assert re.fullmatch(
        r"\[Server\] carol was last online .* UTC, for \d+s \(quit: bye\)",
        boss.ask("/seen carol", "carol was"),
    )


# 2. Durability against SIGKILL


def test_sigkill_keeps_every_acknowledged_registration(start_server, open_client):
    """Every registration acknowledged before a SIGKILL is in the database afterwards and logs in."""
    server = start_server()
    nicknames = ["user%02d" % (index,) for index in range(30)]
    # Registrations are limited per address: each client has its own.
    clients = [
        open_client(server, nickname, source="127.0.1.%d" % (index + 1,))
        for index, nickname in enumerate(nicknames)
    ]
    acknowledged = []
    lock = threading.Lock()
    enough = threading.Event()

    def register(client, nickname):
        try:
            client.read_until("registered: from now on %s " % (nickname,), timeout=TIMEOUT)
        except (AssertionError, EOFError, OSError):
            return  # killed before its turn: not acknowledged
        with lock:
            acknowledged.append(nickname)
            if len(acknowledged) >= 10:
                enough.set()

    for client, nickname in zip(clients, nicknames):
        client.send("/register pw-%s-secret" % (nickname,))
    threads = [threading.Thread(target=register, args=pair) for pair in zip(clients, nicknames)]
    for thread in threads:
        thread.start()
    assert enough.wait(TIMEOUT), "fewer than 10 registrations acknowledged"
    server.process.kill()
    server.process.wait(TIMEOUT)
    for thread in threads:
        thread.join(TIMEOUT)
    with lock:
        acknowledged = list(acknowledged)

    verifier = argon2.PasswordHasher()
    with Database.open(server.db_path) as database:
        stored = {account.nickname for account in database.list_accounts()}
        for nickname in acknowledged:
            account = database.get_account(nickname)
            assert account is not None, "%s was acknowledged, then lost" % (nickname,)
            assert verifier.verify(account.password_hash, "pw-%s-secret" % (nickname,))
    print(
        "\nSIGKILL durability: %d of 30 registrations acknowledged before the kill, "
        "%d accounts in the database afterwards, 0 acknowledged ones lost"
        % (len(acknowledged), len(stored))
    )

    restarted = start_server("--db=%s" % (server.db_path,))
    first = acknowledged[0]
    assert open_client(restarted).log_in(first, "pw-%s-secret" % (first,))
    with Database.open(server.db_path) as database:
        reasons = [session.reason for session in database.history(first)]
    assert "server stopped" in reasons, reasons


# 3. Chat latency while people log in


def test_chat_latency_stays_low_while_twenty_log_in(start_server, open_client, tmp_path):
    """Public lines between two users stay fast while 20 others log in (argon2id on threads)."""
    logins = ["login%02d" % (index,) for index in range(20)]
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", logins), "--flood-rate=0")
    talker, listener = room(server, open_client, "talker", "listener")
    sent_at = {}
    arrived_at = {}
    done_sending = threading.Event()

    def listen():
        pattern = re.compile(r"^talker: lat (\d+)$")
        deadline = time.monotonic() + 4 * TIMEOUT
        while time.monotonic() < deadline:
            if done_sending.is_set() and len(arrived_at) >= len(sent_at):
                return
            try:
                line = listener.read_until(pattern, timeout=0.5)
            except AssertionError:
                continue
            arrived_at[int(pattern.match(line).group(1))] = time.monotonic()

    def sample(count, interval, keep_going=lambda: False):
        """Send lines every C{interval} s: at least C{count}, more while C{keep_going()}."""
        first = len(sent_at)
        number = first
        while number - first < count or keep_going():
            sent_at[number] = time.monotonic()
            talker.send("lat %d" % (number,))
            number += 1
            time.sleep(interval)
        return range(first, number)

    listener_thread = threading.Thread(target=listen)
    listener_thread.start()
    try:
        quiet = sample(20, 0.01)

        joiners = [open_client(server) for _ in logins]
        for client, nickname in zip(joiners, logins):
            client.read_until(NICKNAME_PROMPT)
            client.send(nickname)
        for client in joiners:
            client.read_until("Password:")
        finished = threading.Event()
        login_times = {}

        def wait_for_welcomes():
            for client, nickname in zip(joiners, logins):
                client.read_until("Welcome, %s!" % (nickname,), timeout=4 * TIMEOUT)
            login_times["end"] = time.monotonic()
            finished.set()

        welcomes = threading.Thread(target=wait_for_welcomes)
        login_times["start"] = time.monotonic()
        for client in joiners:
            client.send(PASSWORD)
        welcomes.start()
        busy = sample(20, 0.01, keep_going=lambda: not finished.is_set())
        welcomes.join(4 * TIMEOUT)
        assert finished.is_set(), "the 20 logins did not finish"
    finally:
        done_sending.set()
        listener_thread.join(4 * TIMEOUT)

    assert len(arrived_at) == len(sent_at), "some lines never arrived"

    def latencies_ms(numbers):
        return [(arrived_at[n] - sent_at[n]) * 1000 for n in numbers]

    during = latencies_ms(n for n in busy if sent_at[n] < login_times["end"])
    before = latencies_ms(quiet)
    login_seconds = login_times["end"] - login_times["start"]
    print(
        "\nchat latency, idle server: %d samples, p50 %.1f ms, p90 %.1f ms, max %.1f ms"
        % (len(before), statistics.median(before), percentile(before, 0.9), max(before))
    )
    print(
        "chat latency while 20 logins ran (%.0f ms in all): %d samples, "
        "p50 %.1f ms, p90 %.1f ms, max %.1f ms"
        % (login_seconds * 1000, len(during), statistics.median(during),
           percentile(during, 0.9), max(during))
    )
    assert len(during) >= 10, "too few samples during the logins: %d" % (len(during),)
    # One argon2id check takes ~55-80 ms here: on the reactor thread, 20 of
    # them would hold every line for most of a second.
    assert statistics.median(during) < 100, during


# 4. Login history


def test_seen_online_last_online_and_never(start_server, open_client):
    """/seen says whether someone is online now, when they last were, or that they never came."""
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    assert bob.ask("/seen ALICE", "online") == "[Server] alice is online now"
    alice.send("/quit gone fishing")
    alice.wait_closed(TIMEOUT)
    bob.read_until("alice left the chat")
    assert re.fullmatch(
        r"\[Server\] alice was last online \d{4}-\d\d-\d\d \d\d:\d\d UTC, for \d+s "
        r"\(quit: gone fishing\)",
        bob.ask("/seen alice", "alice was"),
    )
    assert bob.ask("/seen nobody", "nobody") == "[Server] nobody has never been here"


def test_history_is_for_admins_and_includes_unregistered_sessions(start_server, open_client, tmp_path):
    """/history NICK shows an admin anyone's sessions, with address and reason; /sessions is refused to others."""
    db = seed_accounts(tmp_path / "wazzap.sqlite3", ["boss"])
    server = start_server(db, "--admin=boss")
    carol = open_client(server, "carol")
    carol.send("/quit bye")
    carol.wait_closed(TIMEOUT)
    carol = open_client(server, "carol")
    carol.close()
    eve = open_client(server, "eve")
    assert eve.ask("/sessions carol", "permission") == (
        "[Server] permission denied: /sessions is for admins"
    )
    eve.ask("/seen carol", "carol was")  # carol's last session has been recorded
    boss = open_client(server)
    boss.log_in("boss")
    boss.send("/history carol")
    lines = boss.read_through("(quit: bye)")
    assert lines[-3:] == [
        "[Server] last 2 sessions of carol:",
        lines[-2],
        lines[-1],
    ]
    session = r"\[Server\]   .* UTC from 127\.0\.0\.1, until .* UTC \(%s\)"
    assert re.fullmatch(session % (r"connection closed",), lines[-2])
    assert re.fullmatch(session % (r"quit: bye",), lines[-1])
    assert re.fullmatch(
        r"\[Server\]   .* UTC from 127\.0\.0\.1, online now",
        boss.ask("/history boss", "online now"),
    )
    assert boss.ask("/history nobody", "no sessions") == "[Server] no sessions of nobody"


# 5. Private chats by consent


def test_consent_needs_request_and_accept_until_end(start_server, open_client):
    """With /consent on, @nick is refused until /request and /accept, and /end tells both and closes it."""
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    assert bob.ask("/consent on", "private") == (
        "[Server] private messages now need a private chat: others /request one"
    )
    refusal = "[Server] bob takes private messages only in a private chat: ask with /request bob"
    assert alice.ask("@bob hello", "takes private") == refusal
    assert alice.ask("/request bob", "asked") == "[Server] asked bob for a private chat"
    assert bob.read_until("asks for") == (
        "[Server] alice asks for a private chat: /accept alice or /reject alice"
    )
    alice.send("/chats")
    assert alice.read_through("consent is")[-4:] == [
        "[Server] private chats: none",
        "[Server] you asked: bob",
        "[Server] asking you: none",
        "[Server] consent is off",
    ]
    bob.send("/chats")
    assert bob.read_through("consent is")[-4:] == [
        "[Server] private chats: none",
        "[Server] you asked: none",
        "[Server] asking you: alice",
        "[Server] consent is on",
    ]
    assert bob.ask("/accept alice", "open") == "[Server] private chat with alice is open: @alice TEXT"
    assert alice.read_until("accepted") == "[Server] bob accepted: private chat open: @bob TEXT"
    assert alice.ask("@bob hello", "PM to") == "[PM to bob] hello"
    assert bob.read_until("PM from") == "[PM from alice] hello"
    bob.send("/chats")
    assert bob.read_through("asking you")[-3:-1] == [
        "[Server] private chats: alice",
        "[Server] you asked: none",
    ]
    assert alice.ask("/end bob", "closed") == "[Server] private chat with bob closed"
    assert bob.read_until("closed") == "[Server] alice closed your private chat"
    assert alice.ask("@bob still there?", "takes private") == refusal
    bob.send("/chats")
    lines = bob.read_through("consent is")
    assert "[Server] private chats: none" in lines
    assert not any("still there" in line for line in lines)


def test_consent_reject(start_server, open_client):
    """/reject turns a request down, both sides are told, and private messages stay refused."""
    server = start_server()
    bob, carol = room(server, open_client, "bob", "carol")
    bob.ask("/consent on", "private")
    carol.ask("/request bob", "asked")
    bob.read_until("asks for")
    assert bob.ask("/reject carol", "turned down") == "[Server] you turned down carol"
    assert carol.read_until("turned down") == "[Server] bob turned down your private chat request"
    assert carol.ask("@bob please", "takes private").endswith("ask with /request bob")
    assert bob.ask("/accept carol", "not asked") == (
        "[Server] carol has not asked you for a private chat"
    )


def test_disconnect_ends_chats_and_cancels_requests(start_server, open_client):
    """A user who leaves ends their private chats and cancels requests both ways, with notices."""
    server = start_server()
    alice, bob, carol, dave = room(server, open_client, "alice", "bob", "carol", "dave")
    alice.ask("/request bob", "asked")
    bob.read_until("asks for")
    bob.ask("/accept alice", "open")
    carol.ask("/request alice", "asked")
    alice.ask("/request dave", "asked")
    dave.read_until("asks for")
    alice.close()
    assert bob.read_until("ended") == "[Server] your private chat with alice ended: they left"
    assert carol.read_until("cancelled") == "[Server] your request to alice was cancelled: they left"
    assert dave.read_until("withdrew") == (
        "[Server] alice withdrew their private chat request: they left"
    )
    dave.send("/chats")
    assert "[Server] asking you: none" in dave.read_through("consent is")
    bob.send("/chats")
    assert "[Server] private chats: none" in bob.read_through("consent is")


def test_private_consent_option_is_the_default_for_newcomers(start_server, open_client):
    """With --private-consent a newcomer takes private messages only in a chat, until /consent off."""
    server = start_server("--private-consent")
    alice, bob = room(server, open_client, "alice", "bob")
    assert bob.ask("/consent", "usage") == "[Server] usage: /consent on|off (it is on)"
    assert alice.ask("@bob hi", "takes private").endswith("ask with /request bob")
    assert bob.ask("/consent off", "anyone") == "[Server] anyone can send you private messages again"
    assert alice.ask("@bob hi", "PM to") == "[PM to bob] hi"
    assert bob.read_until("PM from") == "[PM from alice] hi"


# 6. Admins


def test_admin_option_gives_rights_only_after_password(start_server, open_client, tmp_path):
    """--admin NICK makes a registered account an admin once it logs in with its password, never without."""
    server = start_server(seed_accounts(tmp_path / "wazzap.sqlite3", ["boss"]), "--admin=boss")
    guesser = open_client(server)
    guesser.log_in("boss", "not-the-password", welcome=False)
    assert guesser.read_until("Wrong") == "[Server] Wrong nickname or password."
    boss = open_client(server)
    boss.log_in("boss")
    assert boss.read_until("admin") == "[Server] You are an admin: /help lists your commands."
    assert boss.ask("/bans", "bans") == "[Server] no bans"
    boss.send("/help")
    assert any("/kick NICK" in line for line in boss.read_through("Anything else"))


def test_admin_option_for_an_unregistered_nickname_reserves_it(start_server, open_client):
    """An --admin nickname with no account is reserved, and start-up says how to create it."""
    server = start_server("--admin=boss")
    squatter = open_client(server)
    squatter.read_until(NICKNAME_PROMPT)
    squatter.send("boss")
    assert squatter.read_until("reserved") == "[Server] Sorry, boss is reserved for an admin."
    squatter.read_until(NICKNAME_PROMPT)
    squatter.send("eve")
    squatter.read_until("Welcome, eve!")
    assert squatter.ask("/nick boss", "cannot") == (
        "[Server] cannot change nickname: boss is registered to someone else"
    )
    advice = "python -m wazzap.admin add boss --admin"
    server.wait_for_log(advice)
    server.signal(signal.SIGTERM)
    output, _ = server.process.communicate(timeout=TIMEOUT)
    assert "wazzap: --admin boss: no such account" in output.decode(), output


def test_admin_command_grant_takes_effect_at_next_login(start_server, open_client):
    """python -m wazzap.admin grant on a running server's database takes effect at the next login."""
    server = start_server()
    alice = open_client(server, "alice")
    alice.ask("/register " + PASSWORD, "registered")
    assert alice.ask("/bans", "permission") == "[Server] permission denied: /bans is for admins"
    granted = admin_cli("--db", str(server.db_path), "grant", "alice")
    assert (granted.returncode, granted.stdout, granted.stderr) == (0, "alice is now an admin\n", "")
    listed = admin_cli("--db", str(server.db_path), "list")
    assert re.search(r"^alice\s+yes\s", listed.stdout, re.M), listed.stdout
    assert alice.ask("/bans", "permission") == "[Server] permission denied: /bans is for admins"
    alice.send("/quit")
    alice.wait_closed(TIMEOUT)
    alice = open_client(server)
    alice.log_in("alice")
    assert alice.read_until("admin") == "[Server] You are an admin: /help lists your commands."
    assert alice.ask("/bans", "bans") == "[Server] no bans"


# 7. Join approval


def test_approve_and_deny(start_server, open_client, tmp_path):
    """With --approve-joins a newcomer waits, admins are asked, /approve lets in and /deny turns away."""
    server = admin_server(start_server, tmp_path, "--approve-joins")
    boss = open_client(server)
    boss.log_in("boss")
    carol = open_client(server)
    carol.read_until(NICKNAME_PROMPT)
    carol.send("carol")
    assert carol.read_until("approval") == (
        "[Server] This chat needs an admin's approval to join; please wait."
    )
    assert boss.read_until("asks to join") == (
        "[Server] carol (127.0.0.1) asks to join: /approve carol or /deny carol"
    )
    assert carol.ask("hello?", "still waiting") == (
        "[Server] still waiting for an admin's approval: /quit to stop waiting"
    )
    assert boss.ask("/pending", "carol") == (
        "[Server]   carol (127.0.0.1): /approve carol or /deny carol"
    )
    assert boss.ask("/approve carol", "approved") == "[Server] carol was approved by boss"
    assert carol.read_until("Welcome").startswith("[Server] Welcome, carol! Also here: boss.")
    boss.read_until("carol joined the chat")

    dave = open_client(server)
    dave.read_until(NICKNAME_PROMPT)
    dave.send("dave")
    boss.read_until("dave (127.0.0.1) asks to join")
    assert carol.ask("/approve dave", "permission") == (
        "[Server] permission denied: /approve is for admins"
    )
    assert boss.ask("/deny dave", "denied") == "[Server] dave was denied by boss"
    assert dave.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: denied by boss"
    assert boss.ask("/pending", "waiting") == "[Server] nobody is waiting to join"


def test_newcomer_waits_for_an_admin_to_log_in(start_server, open_client, tmp_path):
    """With no admin online the newcomer is told so, and is let in once an admin logs in and approves."""
    server = admin_server(start_server, tmp_path, "--approve-joins")
    erin = open_client(server)
    erin.read_until(NICKNAME_PROMPT)
    erin.send("erin")
    assert erin.read_through("No admin")[-2:] == [
        "[Server] This chat needs an admin's approval to join; please wait.",
        "[Server] No admin is online right now: you will be let in or turned away when one decides.",
    ]
    boss = open_client(server)
    boss.log_in("boss")
    assert boss.read_until("waiting") == "[Server] 1 waiting to join: /pending"
    boss.send("/approve erin")
    assert erin.read_until("Welcome").startswith("[Server] Welcome, erin!")


def test_approval_timeout_ends_the_wait(start_server, open_client):
    """--approval-timeout 1 sends a newcomer away after a second without a decision."""
    server = start_server("--approve-joins", "--approval-timeout=1")
    frank = open_client(server)
    frank.read_until(NICKNAME_PROMPT)
    started = time.monotonic()
    frank.send("frank")
    frank.read_until("please wait")
    assert frank.wait_closed(TIMEOUT)[-1] == "[Server] no admin approved you in time: goodbye"
    assert 0.8 < time.monotonic() - started < 3


# 8. Moderation


def test_moderation_commands_are_refused_to_non_admins(start_server, open_client, tmp_path):
    """Every moderation command answers "permission denied" to a user who is not an admin."""
    server = admin_server(start_server, tmp_path)
    bob, carol = room(server, open_client, "bob", "carol")
    commands = ("kick", "ban", "unban", "bans", "mute", "unmute", "pending", "approve", "deny", "sessions")
    for command in commands:
        assert carol.ask("/%s bob" % (command,), "permission") == (
            "[Server] permission denied: /%s is for admins" % (command,)
        )
    bob.send("/who")
    assert bob.read_until("online:") == "[Server] 2 online: bob, carol"


def test_kick_and_mute_are_announced(start_server, open_client, tmp_path):
    """/kick disconnects and /mute, /mute DURATION and /unmute are announced to the room."""
    server = admin_server(start_server, tmp_path)
    boss = open_client(server)
    boss.log_in("boss")
    bob, carol = room(server, open_client, "bob", "carol")
    assert boss.ask("/mute carol 30s", "muted") == "[Server] carol was muted by boss for 30s"
    assert bob.read_until("muted") == "[Server] carol was muted by boss for 30s"
    assert re.fullmatch(
        r"\[Server\] you are muted for another (30|29)s", carol.ask("hidden words", "muted for")
    )
    boss.send("/unmute carol")
    assert "carol: hidden words" not in bob.read_through("unmuted")
    carol.send("audible words")
    assert bob.read_until("words") == "carol: audible words"
    boss.send("/mute carol")
    assert bob.read_until("muted") == "[Server] carol was muted by boss until lifted"
    assert carol.ask("/me waves", "you are muted") == "[Server] you are muted until an admin lifts it"
    boss.send("/unmute carol")
    assert bob.read_until("unmuted") == "[Server] carol was unmuted by boss"
    assert boss.ask("/unmute carol", "not muted") == "[Server] carol is not muted"
    boss.send("/kick bob flooding")
    assert bob.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: kicked by boss: flooding"
    assert carol.read_until("left") == "[Server] bob left the chat (kicked by boss: flooding)"
    assert boss.ask("/kick bob", "nobody") == "[Server] nobody called bob is online"


def test_nickname_ban_survives_restart_until_unban(start_server, open_client, tmp_path):
    """/ban NICK disconnects and keeps the nickname out, across a restart, until /unban."""
    db_path = tmp_path / "wazzap.sqlite3"
    server = admin_server(start_server, tmp_path)
    boss = open_client(server)
    boss.log_in("boss")
    bob, carol = room(server, open_client, "bob", "carol")
    boss.send("/ban bob 2h flooding")
    assert carol.read_until("banned") == "[Server] bob was banned by boss for 2h (flooding)"
    assert bob.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: banned by boss: flooding"
    boss.send("/bans")
    assert boss.read_through("nickname bob")[-2:][0] == "[Server] 1 ban:"
    assert stopped_cleanly(server)

    server = start_server("--db=%s" % (db_path,))
    again = open_client(server)
    again.read_until(NICKNAME_PROMPT)
    again.send("BOB")
    assert re.fullmatch(
        r"\[Server\] BOB is banned until .* UTC: flooding\.", again.wait_closed(TIMEOUT)[-1]
    )
    boss = open_client(server)
    boss.log_in("boss")
    assert boss.ask("/unban bob", "ban") == "[Server] boss lifted the ban on bob"
    assert boss.ask("/unban bob", "banned") == "[Server] bob is not banned"
    assert boss.ask("/bans", "bans") == "[Server] no bans"
    open_client(server, "bob")


def test_address_ban_refuses_connections_until_unban(start_server, open_client, tmp_path):
    """/ban ADDRESS disconnects and refuses that address with a message, leaves others alone, until /unban."""
    server = admin_server(start_server, tmp_path)
    boss = open_client(server, source="127.0.0.2")
    boss.log_in("boss")
    victim = open_client(server, "victim", source="127.0.0.3")
    bystander = open_client(server, "bystander")
    boss.send("/ban 127.0.0.3 10m abuse")
    assert bystander.read_until("banned") == "[Server] 127.0.0.3 was banned by boss for 10m (abuse)"
    assert victim.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: banned by boss: abuse"
    refused = open_client(server, source="127.0.0.3")
    assert re.fullmatch(
        r"\[Server\] This address is banned until .* UTC: abuse\.", refused.wait_closed(TIMEOUT)[-1]
    )
    open_client(server, "newcomer")
    boss.send("/bans")
    assert boss.read_through("address 127.0.0.3")[-1].startswith(
        "[Server]   address 127.0.0.3 by boss, for "
    )
    assert boss.ask("/unban 127.0.0.3", "lifted") == "[Server] boss lifted the ban on 127.0.0.3"
    open_client(server, "victim", source="127.0.0.3")


def test_admin_banning_its_own_address_stays_to_unban_it(start_server, open_client, tmp_path):
    """An admin who bans its own address (127.0.0.1: all of loopback) stays on to /unban it."""
    server = admin_server(start_server, tmp_path)
    boss = open_client(server)
    boss.log_in("boss")
    bob = open_client(server, "bob")
    boss.send("/ban 127.0.0.1 1m test")
    assert bob.wait_closed(TIMEOUT)[-1] == "[Server] disconnected: banned by boss: test"
    refused = open_client(server)
    assert re.fullmatch(
        r"\[Server\] This address is banned until .* UTC: test\.", refused.wait_closed(TIMEOUT)[-1]
    )
    try:
        lifted = boss.ask("/unban 127.0.0.1", "lifted")
    except (EOFError, ConnectionResetError):
        last = strip_colors(boss.raw.decode("utf-8", "replace")).splitlines()[-1]
        pytest.fail("the admin was disconnected by its own address ban: %r" % (last,))
    assert lifted == "[Server] boss lifted the ban on 127.0.0.1"
    open_client(server, "bob")


# 9. Colours


def test_color_in_public_and_private_messages(start_server, open_client):
    """/color NAME TEXT colours the text in public, in @nick and in /private messages."""
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    alice.send("/color red hello all")
    assert bob.read_until("hello all") == "alice: hello all"
    assert bob.raw_line(b"hello all").endswith(b": \x1b[31mhello all\x1b[0m\r\n")
    alice.send("@bob /color green psst")
    assert bob.read_until("psst") == "[PM from alice] psst"
    assert bob.raw_line(b"psst").endswith(b"\x1b[0m \x1b[32mpsst\x1b[0m\r\n")
    assert alice.read_until("psst") == "[PM to bob] psst"
    assert alice.raw_line(b"psst").endswith(b"\x1b[0m \x1b[32mpsst\x1b[0m\r\n")
    alice.send("/private bob /color blue yo")
    assert bob.read_until("yo") == "[PM from alice] yo"
    assert bob.raw_line(b"yo").endswith(b"\x1b[0m \x1b[34myo\x1b[0m\r\n")


def test_unknown_color_lists_the_names(start_server, open_client):
    """An unknown colour, in public or private, is refused with the list of valid names and sends nothing."""
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    usage = (
        "[Server] usage: /color NAME TEXT, where NAME is one of: "
        "red, green, yellow, blue, magenta, cyan, white"
    )
    assert alice.ask("/color pink hello", "usage") == usage
    assert alice.ask("@bob /color pink hello", "usage") == usage
    assert alice.ask("/private bob /color pink hello", "usage") == usage
    alice.send("sentinel")
    assert not any("hello" in line for line in bob.read_through("sentinel"))


def test_colors_off_shows_plain_text(start_server, open_client):
    """After /colors off a user receives /color text, names and notices without any escape code."""
    server = start_server()
    alice, bob = room(server, open_client, "alice", "bob")
    assert bob.ask("/colors off", "colours") == "[Server] colours are off"
    assert bob.raw_line(b"colours are off") == b"[Server] colours are off\r\n"
    alice.send("/color red plain please")
    bob.read_until("plain please")
    assert bob.raw_line(b"plain please") == b"alice: plain please\r\n"
    alice.send("@bob /color cyan whisper")
    bob.read_until("whisper")
    assert bob.raw_line(b"whisper") == b"[PM from alice] whisper\r\n"
    bob.ask("/colors on", "colours")
    alice.send("/color red bright again")
    bob.read_until("bright again")
    assert ESC in bob.raw_line(b"bright again")
