"""
Real servers for the tests (PostgreSQL, redis-server), each started in a
temporary directory on a free loopback port and stopped when the tests are
done: nothing of the machine's own (no system cluster, no port 5432 or 6379)
is used or touched.

A server whose programs are not installed makes the tests that need it skip
with one reason saying what to install.  Every wait is bounded.
"""

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from tests.support import free_port

#: How long a server may take to start or stop on a busy machine.
SERVER_TIMEOUT_SECONDS = 30

POSTGRES_MISSING = "PostgreSQL is not installed: apt-get install postgresql"
#: The unprivileged user that runs PostgreSQL when the tests run as root,
#: which PostgreSQL refuses; Debian's package creates it.
POSTGRES_SYSTEM_USER = "postgres"
POSTGRES_ROLE = "wazzap"
POSTGRES_PASSWORD = "test-password"


def postgres_bin_dir():
    """
    The directory of PostgreSQL's server programs (initdb next to postgres),
    or None: on the PATH, else Debian's newest /usr/lib/postgresql/*/bin.
    """
    found = shutil.which("initdb")
    candidates = [os.path.dirname(os.path.realpath(found))] if found else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: [int(part) for part in path.split("/")[-2].split(".") if part.isdigit()],
        reverse=True,
    )
    for directory in candidates:
        programs = [os.path.join(directory, name) for name in ("initdb", "postgres")]
        if all(os.access(program, os.X_OK) for program in programs):
            return directory
    return None


def _as_unprivileged():
    """
    The command prefix and the (uid, gid) that run PostgreSQL: as the
    L{POSTGRES_SYSTEM_USER} when we are root, else as ourselves.
    """
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        return None, None
    prefix = [
        "setpriv",
        "--reuid=%d" % (user.pw_uid,),
        "--regid=%d" % (user.pw_gid,),
        "--clear-groups",
        "--",
    ]
    return prefix, (user.pw_uid, user.pw_gid)


class PostgresServer:
    """
    A PostgreSQL cluster of its own (initdb in a temporary directory), on
    127.0.0.1 and a free port, its unix socket in that directory, fsync off:
    the tests' data needs no durability.  Its superuser L{POSTGRES_ROLE}
    logs in with L{POSTGRES_PASSWORD}; L{new_database} makes a fresh
    database per test.
    """

    def __init__(self, bin_dir):
        prefix, owner = _as_unprivileged()
        if prefix is None:
            raise RuntimeError(
                "running as root, and there is no %r user to run PostgreSQL as"
                % (POSTGRES_SYSTEM_USER,)
            )
        self.host = "127.0.0.1"
        self.port = free_port()
        # Not pytest's tmp_path: under root that is a 0700 directory the
        # postgres user cannot enter.
        self.directory = tempfile.mkdtemp(prefix="wazzap-postgres-")
        self.data = os.path.join(self.directory, "data")
        password_file = os.path.join(self.directory, "password")
        with open(password_file, "w") as f:
            f.write(POSTGRES_PASSWORD + "\n")
        if owner is not None:
            os.chown(self.directory, *owner)
            os.chown(password_file, *owner)
        self._names = itertools.count(1)
        self.process = None
        try:
            subprocess.run(
                prefix
                + [
                    os.path.join(bin_dir, "initdb"),
                    "--pgdata=" + self.data,
                    "--username=" + POSTGRES_ROLE,
                    "--pwfile=" + password_file,
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                timeout=SERVER_TIMEOUT_SECONDS,
            )
            self.log_path = os.path.join(self.directory, "postgres.log")
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    prefix
                    + [
                        os.path.join(bin_dir, "postgres"),
                        "-D", self.data,
                        "-h", self.host,
                        "-p", str(self.port),
                        "-k", self.directory,
                        "-c", "fsync=off",
                        "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def url(self, database="postgres", password=True):
        """
        The connection URL of C{database}, with the password in it unless
        C{password} is false (then it must come from PGPASSWORD).
        """
        secret = ":" + POSTGRES_PASSWORD if password else ""
        return "postgresql://%s%s@%s:%d/%s" % (
            POSTGRES_ROLE, secret, self.host, self.port, database,
        )

    def _log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _wait_ready(self):
        import psycopg

        deadline = time.monotonic() + SERVER_TIMEOUT_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("PostgreSQL exited at start-up:\n" + self._log())
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError("PostgreSQL did not start:\n" + self._log())
                time.sleep(0.05)

    def new_database(self):
        """
        Create an empty database; return its URL.
        """
        name = "test_%d" % (next(self._names),)
        postgres_execute(self.url(), "CREATE DATABASE %s" % (name,))
        return self.url(name)

    def stop(self):
        """
        Stop the server (a fast shutdown, then a kill if it lingers) and
        delete its directory.
        """
        if self.process is not None and self.process.poll() is None:
            # SIGINT is PostgreSQL's fast shutdown: SIGTERM would wait for
            # every client to disconnect.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(SERVER_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SERVER_TIMEOUT_SECONDS)
        shutil.rmtree(self.directory, ignore_errors=True)


def postgres_execute(url, sql, parameters=None):
    """
    Run one statement on the database at C{url}; return its rows, if it has any.
    """
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        cursor = connection.execute(sql, parameters)
        return cursor.fetchall() if cursor.description is not None else None


def postgres_drop_connections(url):
    """
    End every other connection to the database at C{url}, as a restart of
    PostgreSQL does.
    """
    postgres_execute(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )


REDIS_MISSING = "redis-server is not installed: apt-get install redis-server"

class RedisServer:
    """
    A C{redis-server} of its own, keeping nothing on disk, that a test may
    stop and start again on the same port; with C{certificates} (see
    L{tests.certificates}) it speaks only TLS, and with C{password} it
    asks for one.
    """

    def __init__(self, binary, directory, certificates=None, password=None):
        self._binary = binary
        self._directory = directory
        self._certificates = certificates
        self._password = password
        self.port = free_port()
        self._process = None
        self.start()

    @property
    def url(self):
        scheme = "redis" if self._certificates is None else "rediss"
        return "%s://127.0.0.1:%d/0" % (scheme, self.port)

    def start(self):
        options = ["--port", str(self.port)]
        if self._certificates is not None:
            files = self._certificates
            options = [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(files.fullchain), "--tls-key-file", str(files.key),
                "--tls-ca-cert-file", str(files.ca), "--tls-auth-clients", "no",
            ]
        if self._password is not None:
            options += ["--requirepass", self._password]
        self._process = subprocess.Popen(
            [
                self._binary, *options, "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self._directory),
                "--daemonize", "no", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + SERVER_TIMEOUT_SECONDS
        while self.command("PING") != "+PONG":
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.stop()
                raise AssertionError("redis-server did not start on port %d" % (self.port,))
            time.sleep(0.05)

    def command(self, *words):
        """
        The first line Redis answers C{words} with (after logging in, with
        a password), or L{None} if it cannot be reached.
        """
        commands = [words] if self._password is None else [("AUTH", self._password), words]
        request = b"".join(
            b"*%d\r\n" % (len(command),)
            + b"".join(b"$%d\r\n%s\r\n" % (len(word.encode()), word.encode()) for word in command)
            for command in commands
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                if self._certificates is not None:
                    context = ssl.create_default_context(cafile=str(self._certificates.ca))
                    sock = context.wrap_socket(sock, server_hostname="localhost")
                sock.sendall(request)
                replies = sock.makefile("rb")
                return [replies.readline() for _ in commands][-1].decode().rstrip("\r\n")
        except OSError:
            return None

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(SERVER_TIMEOUT_SECONDS)
        self._process = None
