"""
The room bus of one process, against the contract every bus keeps.
"""

from types import SimpleNamespace

import pytest
from twisted.internet.task import Clock

from tests.contract_bus import *  # noqa: F401,F403 (the contract's tests run here)
from wazzap.bus.local import LocalBus
from wazzap.core.outbox import Outbox
from wazzap.flow import TurnFlusher


@pytest.fixture
def bus_setup():
    clock = Clock()
    bus = LocalBus(Outbox(TurnFlusher(clock)))
    return SimpleNamespace(bus=bus, end_turn=lambda: clock.advance(0))
