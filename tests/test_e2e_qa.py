"""
End-to-end tests of what trying the merged wazzap by hand found at the
seams between features built apart: the real C{twistd -n wazzap}, as its
operator runs it.

Every wait is bounded; every server started is stopped when the test ends.
"""

import signal
import subprocess

import pytest

from tests.test_e2e_control import Output, port_of, stop, twistd

pytestmark = pytest.mark.timeout(60)


def test_a_server_with_a_console_reloads_on_hangup(tmp_path):
    """kill -HUP of twistd -n wazzap --console puts a changed config in force, not refuses it."""
    config = tmp_path / "wazzap.toml"
    config.write_text("max-line-bytes = 4096\n")
    server = twistd(tmp_path, "--console", "--config=%s" % (config,), stdin=subprocess.PIPE)
    try:
        output = Output(server.stdout)
        port_of(output)
        output.read_until("wazzap console: type help for the commands")
        config.write_text("max-line-bytes = 100\n")
        server.send_signal(signal.SIGHUP)
        seen = output.read_until("reload: max-line-bytes changed from 4096 to 100").decode()
        assert "reload refused" not in seen
    finally:
        stop(server)
