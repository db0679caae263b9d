"""The daemon's own services (marconi_tx.tap)."""

import gc
import weakref

from twisted.internet.testing import MemoryReactor
from twisted.trial import unittest

from marconi_tx.tap import FrozenStartUp


class _Node:
    pass


class FrozenStartUpTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.addCleanup(gc.unfreeze)

    def test_start_up_objects_frozen_once_running(self):
        """Objects alive when the reactor starts are frozen out of the
        cyclic collector, not before; garbage of start-up is collected
        first, not frozen with them."""
        reactor = MemoryReactor()
        kept = _Node()
        cycle = _Node()
        cycle.me = cycle
        gone = weakref.ref(cycle)
        del cycle
        gc.disable()  # only the service may collect in this test
        self.addCleanup(gc.enable)
        FrozenStartUp(reactor).startService()
        self.assertEqual(gc.get_freeze_count(), 0)
        self.assertIsNotNone(gone())
        reactor.run()
        self.assertIsNone(gone())
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertNotIn(kept, gc.get_objects(generation=2))
