"""
Tests for L{wazzap.threads}: a pool of threads in the service tree, with a
reactor stand-in that carries results back to the test's thread.
"""

import threading

import pytest
from twisted.application.service import Service

from tests.test_store import ThreadedReactor
from wazzap.persist.store import Store
from wazzap.threads import ThreadPoolService


@pytest.fixture
def reactor():
    return ThreadedReactor()


def current_thread():
    return threading.current_thread()


class ClosesAtStop(Service):
    """
    A user of the threads that closes its store when it stops, as the
    server's service closes the accounts.
    """

    def __init__(self, store):
        self.store = store

    def stopService(self):
        Service.stopService(self)
        return self.store.close()


def test_calls_before_the_start_wait_for_it(reactor):
    """A call made before the service starts runs once it starts, on one of its threads."""
    threads = ThreadPoolService("wazzap-test", 1, reactor)
    ran = threads.run(current_thread)
    assert not ran.called
    threads.startService()
    try:
        worker = reactor.wait(ran)
        assert worker is not threading.current_thread() and worker.is_alive()
    finally:
        reactor.wait(threads.stopService())
    assert not worker.is_alive()


def test_threads_outlive_the_services_under_them(reactor, tmp_path):
    """Stopping waits for the services under it, whose last writes still run, then stops the threads."""
    threads = ThreadPoolService("wazzap-store", 1, reactor)
    store = Store.open(str(tmp_path / "wazzap.sqlite3"), threads)
    ClosesAtStop(store).setServiceParent(threads)
    threads.startService()
    worker = reactor.wait(threads.run(current_thread))
    written = store.create_account("alice", "hash", at=1)
    stopped = threads.stopService()
    assert reactor.wait(written) is True
    reactor.wait(stopped)
    assert not worker.is_alive()
    with pytest.raises(RuntimeError, match="wazzap-store threads have stopped"):
        reactor.wait(threads.run(current_thread))
