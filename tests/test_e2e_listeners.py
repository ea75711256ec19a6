"""
End-to-end: one room, three listeners, real clients nobody here wrote: a
headless Chromium on the page, the C{irc} package's client on the IRC port
and a raw socket as nc makes, each seeing the others' lines in order, with
their nicknames.
"""

import pytest

from tests.support import free_port
from tests.test_e2e_irc import IrcPerson
from tests.test_e2e_web import browser_joins, browser_says, chromium, messages, wait_for_line

__all__ = ["chromium"]  # the fixture, used by name

pytestmark = pytest.mark.timeout(120)


def test_a_browser_an_irc_user_and_an_nc_user_share_a_room(start_server, open_client, chromium):
    """Each of a browser, an IRC and an nc user sees the other two's lines, in order, with nicknames."""
    web_port, irc_port = free_port(), free_port()
    server = start_server(
        "--web=tcp:%d:interface=127.0.0.1" % (web_port,),
        "--irc-port=tcp:%d:interface=127.0.0.1" % (irc_port,),
    )
    server.wait_for_log("serving the web page on http://127.0.0.1:%d/" % (web_port,))
    browser_joins(chromium, web_port, "webby")
    ircer = IrcPerson("127.0.0.1", irc_port, "ircer")
    try:
        ircer.wait_for(lambda event: event[0] == "join" and event[2] == "#lobby")
        nc = open_client(server, "ncuser")
        wait_for_line(chromium, "ncuser joined the chat")
        for n in range(3):
            nc.send("nc line %d" % (n,))
            ircer.connection.privmsg("#lobby", "irc line %d" % (n,))
            browser_says(chromium, "web line %d" % (n,))
        said_on_irc = []
        while len(said_on_irc) < 6:
            event = ircer.wait_for(lambda event: event[0] == "pubmsg")
            ircer.events.remove(event)
            said_on_irc.append((event[1], event[3]))
        wait_for_line(chromium, "nc line 2")
        wait_for_line(chromium, "irc line 2")
        seen_by_nc = nc.read_through("irc line 2")
        if not any("web line 2" in line for line in seen_by_nc):
            seen_by_nc += nc.read_through("web line 2")
    finally:
        ircer.close()
    for nickname, sender in (("ncuser", "nc"), ("webby", "web")):
        assert [text for who, text in said_on_irc if who == nickname] == [
            "%s line %d" % (sender, n) for n in range(3)
        ]
    for nickname, sender in (("ircer", "irc"), ("webby", "web")):
        assert [line for line in seen_by_nc if line.startswith(nickname + ": ")] == [
            "%s: %s line %d" % (nickname, sender, n) for n in range(3)
        ]
    page = messages(chromium)
    for sender, nickname in (("nc", "ncuser"), ("irc", "ircer")):
        assert [line for line in page if line.startswith(nickname + ": ")] == [
            "%s: %s line %d" % (nickname, sender, n) for n in range(3)
        ]
