"""Test doubles for code that uses marconi_tx, with no daemon to run.

``MemoryDriver`` keeps the storage contract in memory (it passes the
storage conformance suite); ``StubServer`` serves the real HTTP API over it
and hands out ``marconi_tx.client`` clients whose requests never leave the
process (``treq.testing.StubTreq``). One ``task.Clock`` drives both.
"""

from marconi_tx.testing.memory import MemoryDriver
from marconi_tx.testing.server import StubServer

__all__ = ["MemoryDriver", "StubServer"]
