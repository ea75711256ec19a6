"""
Fixtures shared by the end-to-end tests: real servers and raw clients, always
stopped and closed however a test ends.
"""

import shutil

import pytest

from tests.servers import (
    POSTGRES_MISSING,
    REDIS_MISSING,
    PostgresServer,
    RedisServer,
    postgres_bin_dir,
)
from tests.support import LineClient, ServerProcess


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


@pytest.fixture
def open_client():
    """
    Open clients to any server (C{open_client(server, nickname=None, **options)},
    options as L{LineClient} takes, or C{client_class}), joined under a nickname
    if one is given; all are closed when the test ends.
    """
    opened = []

    def open_one(server, nickname=None, client_class=LineClient, **options):
        client = client_class(server.host, server.port, **options)
        opened.append(client)
        if nickname is not None:
            client.join(nickname)
        return client

    yield open_one
    for client in opened:
        client.close()


@pytest.fixture(scope="session")
def postgres_server():
    """
    One real PostgreSQL for the whole run (L{PostgresServer}), stopped at
    the end; the tests that need it skip where it is not installed.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(POSTGRES_MISSING)
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """
    The URL of a new, empty database on the tests' PostgreSQL.
    """
    return postgres_server.new_database()


@pytest.fixture
def redis_server(tmp_path_factory):
    """
    A real C{redis-server} of the test's own (L{RedisServer}), stopped when
    it ends; the tests that need it skip where it is not installed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(REDIS_MISSING)
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
