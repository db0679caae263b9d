"""The MongoDB driver: the conformance suite against a real MongoDB-wire
server (``tests.mongodb_server``), plus what only this driver has: indexes,
server outages, several connections racing, the batch publication protocol.

The driver's reactor (its time and the timeouts of its calls) is a
``task.Clock``; txmongo's network I/O runs on the real reactor.
"""

import dataclasses
import uuid

import pymongo
from twisted.internet import defer, task
from twisted.trial import unittest

from marconi_tx import config, errors
from marconi_tx.storage import records
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.mongodb.messages import documents
from marconi_tx.storage.mongodb.schema import marker
from tests.mongodb_server import dedicated_server, fresh_database_uri, with_database
from tests.storage_conformance import (
    START,
    StorageConformanceMixin,
    concurrently,
    ids_of,
)

QUEUE = "fizbit"


def settings(**overrides):
    """``config.mongodb`` with a small pool (tests are small) and overrides."""
    overrides.setdefault("pool_size", 3)
    return config.load(overrides=[("drivers:storage:mongodb", name, str(value))
                                  for name, value in overrides.items()]).mongodb


class MongoConformanceTests(StorageConformanceMixin, unittest.TestCase):
    """The conformance suite on a fresh database per test; the second daemon
    is a second driver (its own connection pool) on the same database."""

    def make_driver(self, clock):
        self.uri = fresh_database_uri(self)
        return MongoDriver(self.uri, clock, settings())

    def make_second_driver(self, clock):
        return MongoDriver(self.uri, clock, settings())


def plain(value):
    """Whether ``value`` is made only of records and plain JSON-like Python
    types."""
    if dataclasses.is_dataclass(value):
        return value.__module__ == records.__name__ and all(
            plain(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return all(type(k) is str and plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(plain(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


class MongoDriverTests(unittest.TestCase):
    """Behaviour specific to the MongoDB driver, on a fresh database."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.uri = fresh_database_uri(self)
        self.driver = self.new_driver()
        return self.open(self.driver)

    def new_driver(self, **overrides):
        return MongoDriver(self.uri, self.clock, settings(**overrides))

    def open(self, driver):
        d = driver.open()
        d.addCallback(lambda _: self.addCleanup(driver.close))
        return d

    async def post(self, count, queue=QUEUE, driver=None, tag="m"):
        batch = [{"ttl": 120, "body": {"tag": tag, "n": i}} for i in range(count)]
        return await (driver or self.driver).messages.post(None, queue, batch)

    async def everything(self, queue=QUEUE, driver=None):
        return ids_of(await (driver or self.driver).messages.list(
            None, queue, limit=100, echo=True, include_claimed=True))

    async def queue_record(self, queue=QUEUE):
        return await self.driver.db.queues.find_one({"p": None, "n": queue})

    async def stalled_batch(self, count, deadline, queue=QUEUE):
        """A producer that reserved, registered and wrote a batch but has not
        committed it: (its ids, its queue record id, its token)."""
        last = await batches.reserve(self.driver, count)
        first = last - count + 1
        token = uuid.uuid4().hex
        qid = await batches.register(self.driver, None, queue, first, last, token,
                                     deadline, START + 120)
        rows = documents([{"ttl": 120, "body": "stalled"}] * count, self.driver.now())
        await self.driver.db.messages.insert_many(
            [{"_id": marker(first + i), "q": qid, **row} for i, row in enumerate(rows)])
        return [str(i) for i in range(first, last + 1)], qid, token

    async def test_indexes_created_idempotently(self):
        """open creates the unique (project, name) queue index and the
        (queue, marker), (queue, priority, marker), (queue, claim expiry,
        marker), expiry and sparse claim indexes of messages; opening
        again, through the same or another driver, changes nothing and keeps
        the data."""
        await self.driver.queues.create(None, QUEUE)
        ids = await self.post(2)

        async def indexes():
            found = {}
            for collection in ("queues", "messages"):
                info = await getattr(self.driver.db, collection).index_information()
                for name, spec in info.items():
                    found[(collection, name)] = (
                        [tuple(k) for k in spec["key"].items()],
                        bool(spec.get("unique")), bool(spec.get("sparse")))
            return found

        expected = {
            ("queues", "_id_"): ([("_id", 1)], False, False),
            ("queues", "queue_name"): ([("p", 1), ("n", 1)], True, False),
            ("messages", "_id_"): ([("_id", 1)], False, False),
            ("messages", "queue_marker"): ([("q", 1), ("_id", 1)], True, False),
            ("messages", "queue_priority"): ([("q", 1), ("pr", 1), ("_id", 1)], False, False),
            ("messages", "queue_claim_expiry"): ([("q", 1), ("ce", 1), ("_id", 1)],
                                                 False, False),
            ("messages", "expiry"): ([("e", 1)], False, False),
            ("messages", "claim"): ([("ci", 1)], False, True),
        }
        self.assertEqual(await indexes(), expected)
        await self.driver.open()
        other = self.new_driver()
        await self.open(other)
        self.assertEqual(await indexes(), expected)
        self.assertEqual(await self.everything(driver=other), ids)

    async def test_claim_search_skips_live_claims(self):
        """Both searches of a claim (never claimed or released, then expired
        claims) scan the (queue, claim expiry, marker) index, and the keys
        they examine are the free messages, never the live claims at the
        head (the test server's explain reports keys examined; it sorts the
        first range in memory where MongoDB reads it in index order)."""
        await self.driver.queues.create(None, QUEUE)
        await self.post(40)
        await self.driver.claims.create(None, QUEUE, 60, 60, 30)
        from marconi_tx.storage.mongodb import claims as mongo_claims

        explained = []
        messages = self.driver.db.messages

        class Explaining:
            async def find(self, query, projection, sort, limit):
                explained.append(await self_db.command(
                    {"explain": {"find": "messages", "filter": query, "sort": {"_id": 1},
                                 "hint": sort["hint"], "limit": limit},
                     "verbosity": "executionStats"}))
                return await messages.find(query, projection, sort=sort, limit=limit)

        self_db = self.driver.pool[self.driver.database]
        snapshot = await batches.view(self.driver, None, QUEUE, ordered=True)
        found = await mongo_claims.ClaimController._free(
            Explaining(), snapshot, self.driver.now(), 5)
        self.assertEqual(len(found), 5)
        self.assertEqual(len(explained), 2)
        for explain in explained:
            text = repr(explain["queryPlanner"]["winningPlan"])
            self.assertIn("'indexName': 'queue_claim_expiry'", text)
            self.assertNotIn("COLLSCAN", text)
        self.assertEqual([e["executionStats"]["totalKeysExamined"] for e in explained][1], 0)
        self.assertLessEqual(explained[0]["executionStats"]["totalKeysExamined"], 10)

    async def test_results_are_plain_python(self):
        """No engine type (ObjectId, bson.Int64) leaves the driver: every
        result is a record of ``storage.records`` or made of dict, list,
        tuple, str, int, float, bool and None, and so is every field of a
        record."""
        await self.driver.queues.create(None, QUEUE, {"k": [1, 2.5]})
        ids = await self.post(3)
        claim = await self.driver.claims.create(None, QUEUE, 60, 60, 1)
        results = [
            await self.driver.queues.list(None, detailed=True),
            await self.driver.queues.get_metadata(None, QUEUE),
            await self.driver.queues.stats(None, QUEUE),
            await self.driver.messages.list(None, QUEUE, include_claimed=True),
            await self.driver.messages.get(None, QUEUE, ids[0]),
            await self.driver.messages.bulk_get(None, QUEUE, ids),
            claim,
            await self.driver.claims.get(None, QUEUE, claim.id),
            await self.driver.messages.pop(None, QUEUE, 1),
            ids,
        ]
        for result in results:
            self.assertTrue(plain(result), result)

    async def test_events_on_post_and_release(self):
        """Listeners of driver.events hear of each committed post and of each
        release that freed messages, with the queue's project and name; a
        failed post and a release of nothing are silent."""
        heard = []
        self.driver.events.subscribe(lambda project, queue: heard.append((project, queue)))
        await self.driver.queues.create("p1", QUEUE)
        await self.driver.messages.post("p1", QUEUE, [{"ttl": 60, "body": 1}])
        await self.assertFailure(defer.ensureDeferred(self.post(1, queue="nope")),
                                 errors.QueueDoesNotExist)
        self.assertEqual(heard, [("p1", QUEUE)])
        claim = await self.driver.claims.create("p1", QUEUE, 60, 60, 1)
        await self.driver.claims.delete("p1", QUEUE, claim.id)
        await self.driver.claims.delete("p1", QUEUE, claim.id)
        self.assertEqual(heard, [("p1", QUEUE)] * 2)

    async def test_post_retries_past_registered_markers(self):
        """A post whose reserved markers are not above the queue's registered
        top (a later block registered first) takes new markers until they
        are; with no attempts left it fails and shows nothing."""
        await self.driver.queues.create(None, QUEUE)
        [first] = await self.post(1)
        top = int(first) + 3
        await self.driver.db.queues.update_one({"n": QUEUE}, {"$set": {"top": top}})
        ids = await self.post(2)
        self.assertGreater(int(ids[0]), top)
        self.assertEqual(int(ids[1]), int(ids[0]) + 1)
        self.assertEqual(await self.everything(), [first] + ids)
        await self.driver.db.queues.update_one({"n": QUEUE}, {"$set": {"top": 2**62}})
        impatient = self.new_driver(max_post_retries=2)
        await self.open(impatient)
        await self.assertFailure(defer.ensureDeferred(self.post(1, driver=impatient)),
                                 errors.StorageUnavailable)
        self.assertEqual((await self.queue_record())["pend"], {})
        self.assertEqual(await self.everything(), [first] + ids)

    async def test_stalled_batch_holds_back_ordered_reads(self):
        """While a lower batch is registered but not committed, list, claim and
        pop stop below it, so an observer paging by marker cannot pass it;
        later batches are readable by id; the stalled batch itself is
        invisible everywhere until it commits, then all show in order."""
        await self.driver.queues.create(None, QUEUE)
        before = await self.post(1, tag="before")
        stalled, qid, token = await self.stalled_batch(2, deadline=START + 1000)
        after = await self.post(2, tag="after")
        self.assertEqual(await self.everything(), before)
        self.assertEqual(ids_of(await self.driver.claims.create(None, QUEUE, 60, 60, 10)),
                         before)
        self.assertEqual(await self.driver.messages.pop(None, QUEUE, 10), [])
        self.assertEqual((await self.driver.messages.get(None, QUEUE, after[0])).id, after[0])
        for mid in stalled:
            await self.assertFailure(self.driver.messages.get(None, QUEUE, mid),
                                     errors.MessageDoesNotExist)
        self.assertEqual(await self.driver.messages.bulk_get(None, QUEUE, stalled), [])
        self.assertEqual((await self.driver.queues.stats(None, QUEUE)).total, 3)
        self.assertIs(await batches.commit(self.driver, {"_id": qid}, token), True)
        self.assertEqual(await self.everything(), before + stalled + after)
        self.assertEqual((await self.driver.queues.stats(None, QUEUE)).total, 5)

    async def test_stale_batch_aborted_then_collected(self):
        """A batch not committed by its deadline is aborted by the next
        ordered read: later batches show, its own commit then fails, it never
        shows; gc deletes its messages and forgets it once they have expired."""
        await self.driver.queues.create(None, QUEUE)
        stalled, qid, token = await self.stalled_batch(2, deadline=START + 10)
        after = await self.post(1)
        self.assertEqual(await self.everything(), [])
        self.clock.advance(10)
        self.assertEqual(await self.everything(), after)
        self.assertIs(await batches.commit(self.driver, {"_id": qid}, token), False)
        self.assertEqual(await self.everything(), after)
        await self.assertFailure(self.driver.messages.get(None, QUEUE, stalled[0]),
                                 errors.MessageDoesNotExist)
        self.assertEqual(await self.driver.gc(), 2)
        self.assertEqual(list((await self.queue_record())["pend"]), [token])
        self.clock.advance(110)
        await self.driver.gc()
        self.assertEqual((await self.queue_record())["pend"], {})

    async def test_gc_aborts_stale_batches(self):
        """gc aborts a batch whose deadline passed even if nobody reads the
        queue, and deletes its messages."""
        await self.driver.queues.create(None, QUEUE)
        _, qid, token = await self.stalled_batch(3, deadline=START + 10)
        self.assertEqual(await self.driver.gc(), 0)
        self.clock.advance(10)
        self.assertEqual(await self.driver.gc(), 3)
        self.assertIs(await batches.commit(self.driver, {"_id": qid}, token), False)
        self.assertEqual(await self.driver.db.messages.count_documents({"q": qid}), 0)

    async def test_post_to_deleted_queue_never_shows_in_new_one(self):
        """A batch registered on a queue that is then deleted and re-created
        cannot commit and never shows in the new queue, which starts empty."""
        await self.driver.queues.create(None, QUEUE)
        old = await self.post(2)
        stalled, qid, token = await self.stalled_batch(2, deadline=START + 1000)
        await self.driver.queues.delete(None, QUEUE)
        await self.driver.queues.create(None, QUEUE)
        self.assertIs(await batches.commit(self.driver, {"_id": qid}, token), False)
        self.assertEqual(await self.everything(), [])
        new = await self.post(1)
        self.assertEqual(await self.everything(), new)
        self.assertGreater(int(new[0]), int(max(old + stalled, key=int)))

    async def test_lost_counter_is_repaired(self):
        """If the id counter is lost, posts skip ids still in use (bounded
        retry on the duplicate key) and open raises the counter past them."""
        await self.driver.queues.create(None, QUEUE)
        await self.driver.queues.create(None, "other")
        ids = await self.post(3)
        await self.driver.db.counters.drop()
        [mid] = await self.post(1, queue="other")
        self.assertGreater(int(mid), int(ids[-1]))
        self.assertEqual(await self.everything(), ids)
        self.assertEqual(await self.everything("other"), [mid])
        await self.driver.db.counters.drop()
        reopened = self.new_driver()
        await self.open(reopened)
        self.assertEqual((await self.driver.db.counters.find_one({}))["v"], int(mid))
        [next_id] = await self.post(1, driver=reopened)
        self.assertEqual(int(next_id), int(mid) + 1)

    async def test_claims_from_three_drivers_disjoint(self):
        """Six claims racing through three connection pools never share a
        message, and together with what is left free they cover every one."""
        drivers = [self.driver, self.new_driver(), self.new_driver()]
        for driver in drivers[1:]:
            await self.open(driver)
        await self.driver.queues.create(None, QUEUE)
        ids = await self.post(20)
        claims = await concurrently(*[d.claims.create(None, QUEUE, 60, 60, 4)
                                      for d in drivers * 2])
        held = [i for claim in claims for i in ids_of(claim)]
        self.assertEqual(len(held), len(set(held)))
        free = ids_of(await self.driver.messages.list(None, QUEUE, limit=100))
        self.assertEqual(sorted(held + free, key=int), ids)

    async def claim_until_dead(self, queue=QUEUE, claims=2, driver=None):
        """Claim and release every message of ``queue`` ``claims`` times."""
        driver = driver or self.driver
        for _ in range(claims):
            claim = await driver.claims.create(None, queue, 60, 60, 100)
            await driver.claims.delete(None, queue, claim.id)

    async def test_dead_letter_move_visible_in_marker_order(self):
        """A message moved to a dead-letter queue is visible there at once
        (the queue's top is raised to its marker), in marker order among
        that queue's messages, to listings, gets, stats and the line
        protocol; later posts to that queue still land above it."""
        await self.driver.queues.create(None, QUEUE)
        await self.driver.queues.create(None, "dlq")
        [old] = await self.post(1)
        [newer] = await self.post(1, queue="dlq")
        [newest] = await self.post(1)
        await self.claim_until_dead()
        dead_letter = records.DeadLetter(max_claims=2, queue="dlq")
        self.assertIsNone(await self.driver.claims.create(None, QUEUE, 60, 60, 10,
                                                          dead_letter=dead_letter))
        self.assertEqual(await self.everything(), [])
        self.assertEqual(await self.everything("dlq"), [old, newer, newest])
        self.assertGreaterEqual((await self.queue_record("dlq"))["top"], int(newest))
        self.assertEqual((await self.driver.messages.get(None, "dlq", newest)).claim_count, 0)
        self.assertEqual((await self.driver.queues.stats(None, "dlq")).free, 3)
        self.assertEqual((await self.driver.jobs.peek(None, int(old))).queue, "dlq")
        [later] = await self.post(1, queue="dlq")
        self.assertGreater(int(later), int(newest))
        self.assertEqual(await self.everything("dlq"), [old, newer, newest, later])

    async def test_dead_letter_move_races(self):
        """Claims with a dead-letter policy racing through three connection
        pools move an exhausted message at most once and never also claim
        it: every message is in exactly one queue afterwards, and no claim
        holds a moved or exhausted one."""
        drivers = [self.driver, self.new_driver(), self.new_driver()]
        for driver in drivers[1:]:
            await self.open(driver)
        await self.driver.queues.create(None, QUEUE)
        dead = await self.post(12, tag="dead")
        await self.claim_until_dead()
        live = await self.post(6, tag="live")
        dead_letter = records.DeadLetter(max_claims=2, queue="dlq", ttl=30)
        claims = await concurrently(*[
            d.claims.create(None, QUEUE, 60, 60, 3, dead_letter=dead_letter)
            for d in drivers * 3])
        held = [i for claim in claims if claim for i in ids_of(claim)]
        self.assertEqual(len(held), len(set(held)))
        self.assertFalse(set(held) & set(dead))
        moved = await self.everything("dlq")
        self.assertTrue(moved)
        remaining = await self.everything()
        self.assertFalse(set(remaining) & set(moved))
        self.assertEqual(sorted(moved + remaining, key=int), dead + live)
        self.assertEqual({m.ttl for m in await self.driver.messages.bulk_get(
            None, "dlq", moved)}, {30})

    async def test_queue_list_metadata_filter_pages(self):
        """A listing filtered by metadata reads past pages of non-matching
        queues (more than one scan page) and pages by marker correctly."""
        from marconi_tx.storage.mongodb.queues import SCAN_PAGE

        names = [f"q{i:04d}" for i in range(SCAN_PAGE * 2 + 10)]
        wanted = names[5::SCAN_PAGE // 2]
        for name in names:
            await self.driver.queues.create(
                None, name, {"keep": True} if name in wanted else {"keep": False})
        seen, marker = [], None
        while True:
            page = await self.driver.queues.list(None, marker=marker, limit=2,
                                                 metadata={"keep": True})
            if not page:
                break
            seen += [q.name for q in page]
            marker = page[-1].name
        self.assertEqual(seen, wanted)
        self.assertEqual(await self.driver.queues.count(None), len(names))

    async def test_purge_leaves_pending_batches(self):
        """purge removes what is published, never a batch still being
        published: it shows complete once committed."""
        await self.driver.queues.create(None, QUEUE)
        await self.post(2)
        stalled, qid, token = await self.stalled_batch(2, deadline=START + 1000)
        self.assertEqual(await self.driver.messages.purge(None, QUEUE), 2)
        self.assertIs(await batches.commit(self.driver, {"_id": qid}, token), True)
        self.assertEqual(await self.everything(), stalled)

    async def test_producers_on_three_drivers_keep_order(self):
        """Three daemons posting batches at once while an observer pages by
        marker: every id is seen once, in increasing order, each batch
        contiguous."""
        drivers = [self.driver, self.new_driver(), self.new_driver()]
        for driver in drivers[1:]:
            await self.open(driver)
        await self.driver.queues.create(None, QUEUE)
        seen, batches_posted, marker = [], [], None
        for round_ in range(4):
            posts = [self.post(3, driver=d, tag=f"{n}.{round_}") for n, d in enumerate(drivers)]
            page = self.driver.messages.list(None, QUEUE, marker=marker, limit=100)
            *posted, page = await concurrently(*posts, page)
            batches_posted += posted
            seen += ids_of(page)
            marker = seen[-1] if seen else None
        seen += ids_of(await self.driver.messages.list(None, QUEUE, marker=marker, limit=100))
        posted = [i for batch in batches_posted for i in batch]
        self.assertEqual(sorted(seen, key=int), sorted(posted, key=int))
        self.assertEqual([int(i) for i in seen], sorted({int(i) for i in seen}))
        for batch in batches_posted:
            start = seen.index(batch[0])
            self.assertEqual(seen[start:start + len(batch)], batch)


class MongoOutageTests(unittest.TestCase):
    """A dedicated server is stopped and restarted under an opened driver.

    The driver's reactor is ``self.clock`` (a Clock): its timeouts run there,
    so the tests show that every call ends once ``operation_timeout`` has
    elapsed, without waiting for it."""

    def setUp(self):
        self.server = dedicated_server(self)
        self.clock = task.Clock()
        self.clock.advance(START)
        self.settings = settings(operation_timeout=1, connect_timeout=1)
        self.driver = MongoDriver(with_database(self.server.uri, "outage"), self.clock,
                                  self.settings)
        self.addCleanup(self.driver.close)

    async def until_answered(self, call):
        """Repeat ``call()`` until it succeeds, giving each attempt a little
        real time and then its timeout; the last error if it never does."""
        from twisted.internet import reactor

        for _ in range(50):
            d = call()
            await task.deferLater(reactor, 0.1)
            if not d.called:
                self.clock.advance(self.settings.operation_timeout)
            try:
                return await d
            except errors.StorageUnavailable as e:
                failure = e
        raise failure

    async def test_outage_and_recovery(self):
        """With the server down every call fails with StorageUnavailable
        within operation_timeout and is_alive answers False; once the server
        is back on its port the same driver works again, with the data
        acknowledged before the outage."""
        await self.driver.open()
        await self.driver.queues.create(None, QUEUE)
        ids = await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": 1}] * 2)
        self.server.stop()
        calls = [
            self.driver.queues.create(None, "other"),
            self.driver.queues.stats(None, QUEUE),
            self.driver.messages.list(None, QUEUE),
            self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": 2}]),
            self.driver.messages.delete(None, QUEUE, ids[0]),
            self.driver.claims.create(None, QUEUE, 60, 60, 1),
            self.driver.gc(),
        ]
        alive = self.driver.is_alive()
        self.clock.advance(self.settings.operation_timeout)
        self.assertTrue(all(d.called for d in calls + [alive]))
        for d in calls:
            await self.assertFailure(d, errors.StorageUnavailable)
        self.assertIs(await alive, False)

        self.server.start()
        listed = await self.until_answered(lambda: self.driver.messages.list(None, QUEUE))
        self.assertEqual(ids_of(listed)[:2], ids)
        more = await self.until_answered(
            lambda: self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": 3}]))
        self.assertEqual(ids_of(await self.driver.messages.list(None, QUEUE, limit=20))[-1],
                         more[0])
        self.assertIs(await self.driver.is_alive(), True)

    async def test_open_fails_when_server_down(self):
        """open against a stopped server fails with StorageUnavailable once
        its time is up and leaves no connection behind; a later open, with
        the server back, succeeds."""
        self.server.stop()
        opening = self.driver.open()
        self.clock.advance(self.settings.connect_timeout + self.settings.operation_timeout)
        await self.assertFailure(opening, errors.StorageUnavailable)
        self.assertIsNone(self.driver.pool)
        self.assertIs(await self.driver.is_alive(), False)
        await self.assertFailure(self.driver.queues.exists(None, QUEUE),
                                 errors.StorageUnavailable)
        self.server.start()
        await self.until_answered(self.driver.open)
        self.assertIs(await self.driver.queues.create(None, QUEUE), True)


class MongoDriverConfigTests(unittest.SynchronousTestCase):
    """Building the driver from settings; no server involved."""

    def test_write_concern(self):
        """write_concern takes a member count or a mode name; 0
        (unacknowledged) is refused, since failed posts would go unnoticed."""
        for raw, w in (("majority", "majority"), ("2", 2), ("1", 1), ("dc-tag", "dc-tag")):
            self.assertEqual(MongoDriver("mongodb://h/db", None, settings(write_concern=raw)).w, w)
        self.assertRaises(config.ConfigError, MongoDriver, "mongodb://h/db", None,
                          settings(write_concern="0"))

    def test_uri(self):
        """The URI's database is used, 'marconi' when it names none; a
        malformed URI is a ConfigError."""
        self.assertEqual(MongoDriver("mongodb://h:1/queues", None, settings()).database, "queues")
        self.assertEqual(MongoDriver("mongodb://h:1", None, settings()).database, "marconi")
        self.assertEqual(MongoDriver("mongodb://a:1,b:2/x?replicaSet=rs", None,
                                     settings()).database, "x")
        for uri in ("mongodb://", "mongodb://h:port/db", "mongodb://h/db?w=bogus&zz"):
            self.assertRaises(config.ConfigError, MongoDriver, uri, None, settings())

    def test_from_config_does_not_connect(self):
        """The storage factory builds an unopened MongoDriver from a mongodb
        URI (start-up validates URIs this way, before any reactor runs)."""
        from marconi_tx import storage

        cfg = config.load(overrides=[("drivers", "storage", "mongodb://127.0.0.1:1/q")])
        driver = storage.driver_from_config(cfg, None)
        self.assertIsInstance(driver, MongoDriver)
        self.assertIsNone(driver.pool)

    def test_unopened_driver(self):
        """Calls on a driver that is not open fail with StorageUnavailable and
        is_alive answers False."""
        driver = MongoDriver("mongodb://127.0.0.1:1/q", task.Clock(), settings())
        self.failureResultOf(driver.queues.list(None), errors.StorageUnavailable)
        self.failureResultOf(driver.messages.get(None, QUEUE, "1"), errors.StorageUnavailable)
        self.assertIs(self.successResultOf(driver.is_alive()), False)

    def test_engine_errors_translated(self):
        """Engine failures become StorageUnavailable with a short message
        (never the documents a write error quotes); a document over the size
        limit is the client's ValidationError; domain errors pass through."""
        driver = MongoDriver("mongodb://127.0.0.1:1/q", task.Clock(), settings())

        async def raising(error):
            raise error

        huge = "x" * 100_000
        too_large = pymongo.errors.BulkWriteError({"writeErrors": [
            {"index": 0, "code": 10334, "errmsg": "too large", "op": {"b": huge}}]})
        duplicate = pymongo.errors.BulkWriteError({"writeErrors": [
            {"index": 0, "code": 11000, "errmsg": "dup", "op": {"b": huge}}]})
        failure = self.failureResultOf(driver.call(raising(too_large)), errors.ValidationError)
        self.assertNotIn(huge, str(failure.value))
        failure = self.failureResultOf(driver.call(raising(duplicate)), errors.StorageUnavailable)
        self.assertLess(len(str(failure.value)), 300)
        self.failureResultOf(driver.call(raising(pymongo.errors.AutoReconnect("gone"))),
                             errors.StorageUnavailable)
        self.failureResultOf(driver.call(raising(errors.QueueDoesNotExist("q"))),
                             errors.QueueDoesNotExist)


class HarnessTests(unittest.SynchronousTestCase):
    """tests.mongodb_server's rules for a missing server and for URIs."""

    def test_unavailable_skips_outside_ci(self):
        """Without CI in the environment, a missing server skips the test."""
        from tests import mongodb_server

        self.patch(mongodb_server.os, "environ", {})
        self.assertRaises(unittest.SkipTest, mongodb_server.unavailable, "no server")

    def test_unavailable_fails_in_ci(self):
        """With CI set, a missing server is an error, never a skip."""
        from tests import mongodb_server

        self.patch(mongodb_server.os, "environ", {"CI": "true"})
        error = self.assertRaises(mongodb_server.ServerUnavailable,
                                  mongodb_server.unavailable, "no server")
        self.assertNotIsInstance(error, unittest.SkipTest)

    def test_with_database(self):
        """A database name replaces any in a URI, keeping hosts and options."""
        self.assertEqual(with_database("mongodb://h:1", "d"), "mongodb://h:1/d")
        self.assertEqual(with_database("mongodb://h:1/old", "d"), "mongodb://h:1/d")
        self.assertEqual(with_database("mongodb://a:1,b:2/old?replicaSet=rs", "d"),
                         "mongodb://a:1,b:2/d?replicaSet=rs")
        self.assertEqual(with_database("mongodb://h:1/?w=1", "d"), "mongodb://h:1/d?w=1")
