"""
Presence in this process's memory, against the contract every presence keeps.
"""

from types import SimpleNamespace

import pytest

from tests.contract_presence import *  # noqa: F401,F403 (the contract's tests run here)
from tests.doubles import fired
from wazzap.core.presence import MemoryPresence


@pytest.fixture
def presence_setup():
    return SimpleNamespace(presence=MemoryPresence(), wait=fired)
