"""
Fixtures shared by the end-to-end tests: real servers and raw clients, always
stopped and closed however a test ends.
"""

import pytest

from tests.support import ServerProcess


@pytest.fixture
def start_server(tmp_path):
    """
    Start a real C{twistd -n wazzap} with the given options; every server
    started is stopped when the test ends.
    """
    servers = []

    def start(*options, host="127.0.0.1"):
        server = ServerProcess(tmp_path, *options, host=host)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server):
    """
    A real server with flood control loose enough for quick tests.
    """
    return start_server()


@pytest.fixture
def connect(server):
    """
    Open raw connections to C{server}, optionally joined under a nickname;
    all are closed when the test ends.
    """
    clients = []

    def open_client(nickname=None):
        client = server.connect(nickname)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()
