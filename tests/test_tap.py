"""The daemon's own services (marconi_tx.tap)."""

import gc
import weakref

from twisted.internet.testing import MemoryReactor
from twisted.trial import unittest

from marconi_tx.tap import GarbageCollection


class _Node:
    pass


class GarbageCollectionTests(unittest.SynchronousTestCase):
    def setUp(self):
        threshold = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *threshold)
        self.addCleanup(gc.unfreeze)

    def test_tuned_once_running(self):
        """Once the reactor runs, not before: objects alive then are frozen
        out of the cyclic collector (start-up's garbage is collected first,
        not frozen with them) and the young generation's threshold is
        raised."""
        reactor = MemoryReactor()
        kept = _Node()
        cycle = _Node()
        cycle.me = cycle
        gone = weakref.ref(cycle)
        del cycle
        gc.disable()  # only the service may collect in this test
        self.addCleanup(gc.enable)
        GarbageCollection(reactor).startService()
        self.assertEqual(gc.get_freeze_count(), 0)
        self.assertIsNotNone(gone())
        reactor.run()
        self.assertIsNone(gone())
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertNotIn(kept, gc.get_objects(generation=2))
        self.assertEqual(gc.get_threshold()[0], GarbageCollection.YOUNG_THRESHOLD)
