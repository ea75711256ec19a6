"""
Presence in this process's memory, against the contract every presence keeps.
"""

from types import SimpleNamespace

import pytest

from tests.contract_presence import *  # noqa: F401,F403 (the contract's tests run here)
from wazzap.core.presence import MemoryPresence


def fired(deferred):
    results = []
    deferred.addBoth(results.append)
    assert results, "an in-memory answer fires at once"
    return results[0]


@pytest.fixture
def presence_setup():
    return SimpleNamespace(presence=MemoryPresence(), wait=fired)
