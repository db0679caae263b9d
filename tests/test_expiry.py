"""The expiry loop, driven by task.Clock over a real sqlite file."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from marconi_tx.expiry import ExpiryService
from marconi_tx.storage.sqlite.driver import SqliteDriver


class ExpiryServiceTests(unittest.TestCase):
    async def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.driver = SqliteDriver(self.mktemp(), self.clock)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        await self.driver.queues.create(None, "q")
        self.service = ExpiryService(self.driver, 30, self.clock)

    def rows(self, table):
        return self.driver.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    async def test_removes_expired_records_each_interval(self):
        """Every interval the loop deletes expired messages and claims and
        keeps live ones; nothing runs before the first interval."""
        await self.driver.messages.post(None, "q", [{"ttl": 75, "body": 1}])
        await self.driver.messages.post(None, "q", [{"ttl": 600, "body": 2}])
        await self.driver.claims.create(None, "q", 75, 0, 1)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.clock.advance(60)  # runs at +30 and +60: nothing has expired yet
        self.assertEqual((self.rows("messages"), self.rows("claims")), (2, 1))
        self.clock.advance(30)  # the run at +90 s
        self.assertEqual((self.rows("messages"), self.rows("claims")), (1, 0))
        [left] = await self.driver.messages.list(None, "q", include_claimed=True)
        self.assertEqual(left.body, 2)

    async def test_failure_is_logged_and_loop_continues(self):
        """A failing run is logged; the next interval runs again."""
        self.service.startService()
        self.addCleanup(self.service.stopService)
        await self.driver.close()
        self.clock.advance(30)
        self.assertEqual(len(self.flushLoggedErrors()), 1)
        await self.driver.open()
        await self.driver.queues.create(None, "q")
        await self.driver.messages.post(None, "q", [{"ttl": 60, "body": 1}])
        self.clock.advance(90)
        self.assertEqual(self.rows("messages"), 0)

    def test_stop_stops_the_loop(self):
        """After stopService the loop has no call scheduled on the clock."""
        def loop_calls():
            return [c for c in self.clock.getDelayedCalls() if "collect" in repr(c)]

        self.service.startService()
        self.assertEqual(len(loop_calls()), 1)
        self.service.stopService()
        self.assertEqual(loop_calls(), [])
