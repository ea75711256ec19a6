"""
The friendly way into a wazzap chat: C{wazzap-client [HOST] [PORT]}, or
C{python -m wazzap.client [HOST] [PORT]}.

L{wazzap.client.cli} reads the command line and runs the rest:
L{wazzap.client.connection} speaks to the server, L{wazzap.client.pipe} is
line in and line out for scripts, L{wazzap.client.interactive} is the input
line on a terminal, with L{wazzap.client.roster} (names learned from the
server, for completion), L{wazzap.client.attention} (highlights, the bell,
timestamps) and L{wazzap.client.tls} (C{--tls}).
"""

# The console script is wazzap.client:main, and wazzap.admin names its usage
# the same way.
from wazzap.client.cli import main, program_name

__all__ = ["main", "program_name"]
