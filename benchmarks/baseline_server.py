"""
The baseline: the plain Twisted chat everyone writes first.

A dict of users; the first line is the nickname; each chat line is formatted
once as C{nick: text} and C{sendLine}d to every other user.  No flood control,
no colours, no sanitising, no output pacing.  wazzap's throughput targets are
ratios against this server.

    python benchmarks/baseline_server.py PORT
"""

import sys

from twisted.internet import reactor
from twisted.internet.protocol import ServerFactory
from twisted.protocols.basic import LineReceiver

BACKLOG = 4096


class Chat(LineReceiver):
    delimiter = b"\n"

    def __init__(self, users):
        self.users = users
        self.name = None

    def connectionMade(self):
        self.sendLine(b"What's your name?")

    def connectionLost(self, reason):
        if self.users.get(self.name) is self:
            del self.users[self.name]

    def lineReceived(self, line):
        line = line.rstrip(b"\r")
        if self.name is None:
            if not line or line in self.users:
                self.sendLine(b"Name taken, please choose another.")
                return
            self.name = line
            self.users[line] = self
            self.sendLine(b"Welcome, " + line + b"!")
            return
        message = self.name + b": " + line
        for user in self.users.values():
            if user is not self:
                user.sendLine(message)


class ChatFactory(ServerFactory):
    def __init__(self):
        self.users = {}

    def buildProtocol(self, addr):
        return Chat(self.users)


def main():
    port = int(sys.argv[1])
    reactor.listenTCP(port, ChatFactory(), backlog=BACKLOG, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main()
