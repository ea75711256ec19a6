"""
The twistd plugin: `twistd wazzap` builds its service from L{wazzap.app.tap}.

Kept to a name and a module path so that listing plugins never imports the server.
"""

from twisted.application.service import ServiceMaker

wazzap = ServiceMaker(
    "wazzap",
    "wazzap.app.tap",
    "A terminal chat server for nc, telnet and the wazzap client.",
    "wazzap",
)
