"""What ``docs/mongodb.rst`` promises a sharded cluster: every query the
posting, claiming and deleting paths send names its queue, so a cluster
sharded on the shard keys given there (``messages`` on ``{q, _id}``,
``queues`` on ``{p, n}``, ``subscriptions`` on ``{p, q}``) routes it to one
shard.

The driver runs against the real test server; its collections are wrapped
so that each call's filter (or inserted document) is recorded on its way
to the server.
"""

from types import SimpleNamespace

from bson.objectid import ObjectId
from twisted.internet import task
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.mongodb.driver import MongoDriver
from tests.mongodb_server import fresh_database_uri
from tests.storage_conformance import START

QUEUE = "sharded"
PROJECT = "tenant"
#: Collection -> its shard key's fields, each needed as an equality.
SHARD_KEYS = {"messages": ("q",), "queues": ("p", "n"), "subscriptions": ("p", "q")}
#: Methods whose first argument is a filter.
FILTERED = {"find", "find_one", "update_one", "update_many", "delete_one", "delete_many",
            "find_one_and_update", "find_one_and_delete", "count_documents"}


class RecordedCollection:
    """A txmongo collection whose calls are recorded as (collection,
    method, filter or documents) in ``calls``, then made."""

    def __init__(self, name, collection, calls):
        self._name = name
        self._collection = collection
        self._calls = calls

    def __getattr__(self, method):
        target = getattr(self._collection, method)

        def call(*args, **kwargs):
            if method in FILTERED:
                self._calls.append((self._name, method, args[0]))
            elif method == "insert_many":
                self._calls.extend((self._name, method, doc) for doc in args[0])
            elif method == "insert_one":
                self._calls.append((self._name, method, args[0]))
            return target(*args, **kwargs)

        return call


class TargetedQueryTests(unittest.TestCase):
    """Posting, claiming and deleting over HTTP's storage calls."""

    async def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        settings = config.load(overrides=[("drivers:storage:mongodb", "pool_size", "2")])
        self.driver = MongoDriver(fresh_database_uri(self), self.clock, settings.mongodb)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        await self.driver.queues.create(PROJECT, QUEUE)
        self.calls = []
        db = self.driver._db
        self.driver._db = SimpleNamespace(**{
            name: (RecordedCollection(name, getattr(db, name), self.calls)
                   if name in SHARD_KEYS else getattr(db, name))
            for name in vars(db)})

    def assertTargeted(self):
        """Every recorded call names the whole shard key of its collection
        with equalities (not operators), and something was recorded."""
        self.assertTrue(self.calls)
        for collection, method, where in self.calls:
            for field in SHARD_KEYS[collection]:
                self.assertIn(field, where, (collection, method, where))
                value = where[field]
                self.assertTrue(value is None or isinstance(value, (str, ObjectId)),
                                (collection, method, where))

    async def test_post_claim_delete_paths_are_targeted(self):
        """Post, list, get, claim (create, get, renew, release), delete
        with and without a claim, bulk delete and pop: one shard each."""
        d = self.driver
        ids = await d.messages.post(PROJECT, QUEUE, [{"ttl": 300, "body": n}
                                                     for n in range(6)])
        await d.messages.list(PROJECT, QUEUE)
        await d.messages.get(PROJECT, QUEUE, ids[0])
        await d.messages.bulk_get(PROJECT, QUEUE, ids[:2])
        claim = await d.claims.create(PROJECT, QUEUE, 300, 60, 2)
        await d.claims.get(PROJECT, QUEUE, claim.id)
        await d.claims.update(PROJECT, QUEUE, claim.id, 200)
        await d.messages.delete(PROJECT, QUEUE, claim.messages[0].id, claim.id)
        await d.claims.delete(PROJECT, QUEUE, claim.id)
        await d.messages.delete(PROJECT, QUEUE, ids[3])
        await d.messages.bulk_delete(PROJECT, QUEUE, ids[4:])
        self.assertEqual(len(await d.messages.pop(PROJECT, QUEUE, 1)), 1)
        await d.queues.stats(PROJECT, QUEUE)
        self.assertTargeted()

    async def test_stalled_batch_abort_is_targeted(self):
        """A reader that aborts a stalled batch (a producer gone between
        register and commit) names the queue record by project and name."""
        from marconi_tx.storage.mongodb import batches

        self.calls.clear()
        last = await batches.reserve(self.driver, 1)
        await batches.register(self.driver, PROJECT, QUEUE, last, last, "t0k3n",
                               START + 1, START + 300)
        self.clock.advance(10)
        await self.driver.claims.create(PROJECT, QUEUE, 60, 60, 1)
        self.assertIn(("queues", "update_one"), [c[:2] for c in self.calls])
        self.assertTargeted()

    async def test_subscription_paths_are_targeted(self):
        """Subscriptions: create, get, list, update, confirm, delete."""
        d = self.driver.subscriptions
        sid, _ = await d.create(PROJECT, QUEUE, "http://example.com/hook", 3600, {})
        await d.get(PROJECT, QUEUE, sid)
        await d.list(PROJECT, QUEUE)
        await d.update(PROJECT, QUEUE, sid, ttl=600)
        await d.confirm(PROJECT, QUEUE, sid, True)
        await d.delete(PROJECT, QUEUE, sid)
        self.assertTargeted()
