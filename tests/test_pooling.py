"""What only the pooled driver does: placement by weight and flavor, routes
shared by every process through the catalog, ids that name their pool,
dead-letter queues kept in their source's pool, merged listings, pools
added, changed and removed while it runs."""

from collections import Counter
from random import Random

from twisted.internet import task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from marconi_tx import config, errors, storage
from marconi_tx.config import ConfigError
from marconi_tx.storage.interfaces import IFlavorController, IPoolController, IPooledDriver
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.pooling import ids, placement
from marconi_tx.storage.pooling.driver import PooledDriver
from marconi_tx.storage.records import DeadLetter, JobCounts, Pool, Queue
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.tap import Options
from tests.clock_reactor import ClockReactor
from tests.mongodb_server import fresh_database_uri
from tests.storage_conformance import START, concurrently
from tests.test_pooling_storage import pooled_config, sqlite_catalog, sqlite_pools

TTL = 300


def pool(name, weight, flavor=None, number=1):
    return Pool(name=name, uri="sqlite:x", weight=weight, flavor=flavor, options={},
                number=number)


class PlacementTests(unittest.SynchronousTestCase):
    """``placement.choose``: weighted, flavored."""

    def test_shares_follow_weights(self):
        """Over many draws each candidate gets about its weight's share."""
        pools = [pool("a", 1), pool("b", 3), pool("c", 6)]
        rng = Random(7)
        drawn = Counter(placement.choose(pools, None, rng).name for _ in range(10000))
        for name, share in (("a", 0.1), ("b", 0.3), ("c", 0.6)):
            self.assertLess(abs(drawn[name] / 10000 - share), 0.02)

    def test_weight_zero_and_other_flavors_never_chosen(self):
        """A pool of weight 0 and pools of another flavor are never chosen;
        a queue without a flavor goes to pools without one."""
        pools = [pool("zero", 0), pool("gold", 5, "gold"), pool("plain", 1)]
        rng = Random(3)
        self.assertEqual({placement.choose(pools, None, rng).name for _ in range(200)},
                         {"plain"})
        self.assertEqual({placement.choose(pools, "gold", rng).name for _ in range(200)},
                         {"gold"})

    def test_no_candidate(self):
        """No pool of the flavor with a weight above 0: NoPoolAvailable."""
        pools = [pool("zero", 0), pool("gold", 5, "gold")]
        self.assertRaises(errors.NoPoolAvailable, placement.choose, pools, None, Random(1))
        self.assertRaises(errors.NoPoolAvailable, placement.choose, pools, "silver", Random(1))
        self.assertRaises(errors.NoPoolAvailable, placement.choose, [], None, Random(1))


class IdTests(unittest.SynchronousTestCase):
    """Global ids: ordered within a pool, naming their pool."""

    def test_round_trip_and_order(self):
        """An id goes out and comes back; ids of one pool keep their order;
        an id of another pool, or one naming no message, is not translated."""
        out = [ids.to_global(local, 5) for local in (1, 2, 3, 1000)]
        self.assertEqual(out, sorted(out))
        self.assertEqual([ids.to_local(g, 5) for g in out], [1, 2, 3, 1000])
        self.assertEqual({ids.pool_number(g) for g in out}, {5})
        self.assertIsNone(ids.to_local(out[0], 6))
        self.assertIsNone(ids.to_local(5, 5))  # local 0
        self.assertIsNone(ids.local_text("abc", 5))
        self.assertEqual(ids.local_text(str(out[1]), 5), "2")

    def test_markers(self):
        """A marker lists, in a pool, what it lists globally: whatever pool
        the marker came from."""
        number = 3
        for marker in (1, 1024, 1027, 2050, 5000):
            local = ids.local_marker(str(marker), number)
            after = [m for m in range(1, 10) if ids.to_global(m, number) > marker]
            expected_first = after[0]
            self.assertEqual(1 if local is None else int(local) + 1, expected_first)
        self.assertEqual(ids.local_marker("zz", number), "zz")


class ConfigurationTests(unittest.SynchronousTestCase):
    """``[drivers] pooling`` in the daemon's settings and options."""

    def test_pooling_wraps_the_catalog_storage(self):
        """With pooling on, the driver is a PooledDriver whose catalog
        storage is the driver of ``[drivers] storage``; off, that driver."""
        path = self.mktemp()
        overrides = [("drivers", "storage", f"sqlite:{path}")]
        plain = storage.driver_from_config(config.load(None, overrides), task.Clock())
        self.assertIsInstance(plain, SqliteDriver)
        pooled = storage.driver_from_config(
            config.load(None, overrides + [("drivers", "pooling", "true")]), task.Clock())
        self.assertIsInstance(pooled, PooledDriver)
        self.assertIsInstance(pooled.catalog_storage, SqliteDriver)
        self.assertEqual(pooled.catalog_storage.path, path)

    def test_driver_for_uri(self):
        """Pools' drivers come from their URIs; an unknown URI is a
        ConfigError."""
        settings = config.load()
        self.assertEqual(storage.driver_for_uri("sqlite:/x/y.db", settings, None).path,
                         "/x/y.db")
        self.assertRaises(ConfigError, storage.driver_for_uri, "redis://x", settings, None)


    def test_workers_need_a_shared_catalog(self):
        """twistd refuses, in one line, workers over a catalog in memory
        (each process would have its own), and starts a pooled daemon's
        options over a catalog file."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[drivers]\npooling = true\n")
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["--config", path, "--workers", "2",
                                    "--storage", "sqlite::memory:"])
        self.assertTrue(str(caught.exception.code).startswith("marconi: "))
        self.assertNotIn("\n", str(caught.exception.code))
        options = Options()
        options.parseOptions(["--config", path, "--workers", "2",
                              "--storage", f"sqlite:{self.mktemp()}"])
        self.assertTrue(options.config.drivers.pooling)


class PooledDriverCase(unittest.TestCase):
    """A PooledDriver (and, for tests about two processes, a second one)
    over a sqlite catalog of pools on sqlite files; ``catalog`` is the
    first driver's catalog store; ``direct[name]`` is a plain SqliteDriver
    on each pool's file, to see where data really is."""

    weights = (1, 1)
    flavors = None

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.uris = sqlite_pools(self, len(self.weights))
        self.catalog_path = self.mktemp()
        self.catalog = sqlite_catalog(self.catalog_path, self.clock, self.uris, self.weights,
                                      self.flavors)
        self.driver = self.make_pooled(Random(1), self.catalog)
        self.direct = {}
        for n, uri in enumerate(self.uris):
            direct = self.direct[f"pool{n + 1}"] = SqliteDriver(uri[len("sqlite:"):], self.clock)
            direct.open()
            self.addCleanup(direct.close)
        return self.driver.open()

    def make_pooled(self, random, catalog, **pooling):
        driver = PooledDriver(catalog, ClockReactor(self.clock), pooled_config(**pooling),
                              random)
        self.addCleanup(driver.close)
        return driver

    async def second(self, **pooling):
        driver = self.make_pooled(Random(2), sqlite_catalog(self.catalog_path, self.clock),
                                  **pooling)
        await driver.open()
        return driver

    async def where(self, queue, project=None):
        """The names of the pools whose storage has the queue."""
        return [name for name, direct in sorted(self.direct.items())
                if await direct.queues.exists(project, queue)]

    def put_in(self, pool_name, queue, project=None):
        """Record the queue in the pool ``pool_name`` (as a placement would)."""
        return self.catalog.catalog.insert(project, queue, pool_name)

    def post(self, queue, count=1, project=None, driver=None):
        batch = [{"ttl": TTL, "body": n} for n in range(count)]
        return (driver or self.driver).messages.post(project, queue, batch, create=True)


class RoutingTests(PooledDriverCase):
    """Placement and routing through the catalog."""

    weights = (1, 3)

    async def test_provides_interface(self):
        """The pooled driver provides IPooledDriver, with the catalog
        storage's pools, flavors and catalog."""
        self.assertTrue(verifyObject(IPooledDriver, self.driver))
        self.assertIs(self.driver.catalog, self.catalog.catalog)
        self.assertTrue(verifyObject(IPoolController, self.driver.pools))
        self.assertTrue(verifyObject(IFlavorController, self.driver.flavors))
        self.assertEqual(await self.driver.pools.list(), await self.catalog.pools.list())

    async def test_changes_through_the_driver_apply_at_once(self):
        """Pools created, changed or deleted and flavors deleted through the
        driver's controllers apply to this process's next placement,
        without waiting for a refresh."""
        pools, flavors = self.driver.pools, self.driver.flavors
        await flavors.create("gold")
        await pools.create("gold", sqlite_pools(self, 1)[0], 1, "gold")
        await self.driver.queues.create(None, "g", {"_flavor": "gold"})
        self.assertEqual(await self.catalog.catalog.lookup(None, "g"), "gold")
        for name in ("pool1", "pool2"):
            await pools.update(name, {"weight": 0})
        await flavors.delete("gold")
        await self.driver.queues.create(None, "plain")
        self.assertEqual(await self.catalog.catalog.lookup(None, "plain"), "gold")
        await pools.create("pool3", sqlite_pools(self, 1)[0], 1)
        await self.driver.catalog.remove_pool("gold")
        await pools.delete("gold")
        await self.driver.queues.create(None, "last")
        self.assertEqual(await self.catalog.catalog.lookup(None, "last"), "pool3")
        self.assertEqual(sorted(await self.driver.pool_health()), ["pool1", "pool2", "pool3"])

    async def test_placement_by_weight(self):
        """New queues spread over the pools by weight (1:3), each recorded in
        the catalog and kept in that pool's storage only."""
        names = [f"q{n:03}" for n in range(200)]
        for name in names:
            await self.driver.queues.create(None, name)
        placed = Counter([await self.catalog.catalog.lookup(None, name) for name in names])
        self.assertLess(abs(placed["pool2"] / 200 - 0.75), 0.1)
        self.assertEqual(placed["pool1"] + placed["pool2"], 200)
        for name in names[:20]:
            self.assertEqual(await self.where(name),
                             [await self.catalog.catalog.lookup(None, name)])

    async def test_weight_zero_takes_no_new_queue_but_serves_its_own(self):
        """A pool whose weight becomes 0 gets no new queue; its queues are
        still served."""
        await self.put_in("pool2", "old")
        await self.post("old", 2)
        await self.catalog.pools.update("pool2", {"weight": 0})
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        for n in range(30):
            await self.driver.queues.create(None, f"new{n}")
            self.assertEqual(await self.where(f"new{n}"), ["pool1"])
        self.assertEqual(len(await self.driver.messages.list(None, "old")), 2)

    async def test_no_pool_available(self):
        """With every pool at weight 0, creating a queue, posting with
        create, putting a job and subscribing are NoPoolAvailable; calls on
        a placed queue still work."""
        await self.put_in("pool1", "placed")
        for name in ("pool1", "pool2"):
            await self.catalog.pools.update(name, {"weight": 0})
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        await self.assertFailure(self.driver.queues.create(None, "q"), errors.NoPoolAvailable)
        await self.assertFailure(self.post("q"), errors.NoPoolAvailable)
        await self.assertFailure(self.driver.jobs.put(None, "q", "b", TTL, 1, 0, 10),
                                 errors.NoPoolAvailable)
        await self.assertFailure(
            self.driver.subscriptions.create(None, "q", "http://127.0.0.1:9/", 60, {}),
            errors.NoPoolAvailable)
        self.assertIsNone(await self.catalog.catalog.lookup(None, "q"))
        self.assertTrue(await self.driver.queues.create(None, "placed"))
        self.assertEqual(await self.where("placed"), ["pool1"])

    async def test_unplaced_queue_does_not_exist(self):
        """Calls on a queue that was never placed answer as for a missing
        queue and place nothing."""
        d = self.driver
        self.assertFalse(await d.queues.exists(None, "ghost"))
        await self.assertFailure(d.queues.get_metadata(None, "ghost"), errors.QueueDoesNotExist)
        await self.assertFailure(d.queues.stats(None, "ghost"), errors.QueueDoesNotExist)
        await self.assertFailure(d.messages.post(None, "ghost", [{"ttl": 60, "body": 1}]),
                                 errors.QueueDoesNotExist)
        self.assertEqual(await d.messages.list(None, "ghost"), [])
        self.assertIsNone(await d.claims.create(None, "ghost", 60, 60, 10))
        self.assertEqual(await d.jobs.counts(None, "ghost"),
                         JobCounts(urgent=0, ready=0, reserved=0, delayed=0, buried=0,
                                   queues=0))
        self.assertIsNone(await d.jobs.reserve(None, ["ghost"]))
        self.assertEqual(await d.subscriptions.list(None, "ghost"), [])
        await d.queues.delete(None, "ghost")
        self.assertIsNone(await self.catalog.catalog.lookup(None, "ghost"))

    async def test_queue_created_again_returns_to_its_pool(self):
        """A deleted queue created again goes back to its pool, even when
        weights now send new queues elsewhere."""
        await self.put_in("pool1", "back")
        await self.driver.queues.create(None, "back")
        await self.driver.queues.delete(None, "back")
        await self.catalog.pools.update("pool1", {"weight": 0})
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        await self.post("back")
        self.assertEqual(await self.where("back"), ["pool1"])

    async def test_two_processes_agree(self):
        """Two pooled drivers (two processes) creating the same queues at
        once each find the pool the catalog recorded; what one posts the
        other reads, and each queue is in one pool's storage only."""
        other = await self.second()
        names = [f"shared{n}" for n in range(20)]
        for name in names:
            await concurrently(self.driver.queues.create(None, name),
                               other.queues.create(None, name))
        for name in names:
            self.assertEqual(len(await self.where(name)), 1)
        [posted] = await self.post(names[0], driver=other)
        self.assertEqual([m.id for m in await self.driver.messages.list(None, names[0])],
                         [posted])
        job = await self.driver.jobs.put(None, names[1], "x", TTL, 1, 0, 10)
        self.assertEqual((await other.jobs.peek(None, job)).queue, names[1])

    async def test_route_cache_is_bounded(self):
        """The route cache keeps at most route_cache_size routes; a queue
        whose route was dropped is found through the catalog again."""
        small = await self.second(route_cache_size=2)
        for name in ("a", "b", "c"):
            await self.post(name, driver=small)
        self.assertEqual(len(small.routes), 2)
        self.assertEqual(len(await small.messages.list(None, "a")), 1)


class IdRoutingTests(PooledDriverCase):
    """Ids leaving the driver name their pool."""

    async def place_two(self):
        """Queue "one" in pool1, "two" in pool2."""
        await self.put_in("pool1", "one")
        await self.put_in("pool2", "two")

    async def test_message_ids_of_another_pool_are_unknown(self):
        """The first messages of two pools (the same local id) have
        different ids; an id used on the queue of the other pool is not
        found, not deleted, not listed."""
        await self.place_two()
        [in_one] = await self.post("one")
        [in_two] = await self.post("two")
        self.assertNotEqual(in_one, in_two)
        self.assertEqual(ids.pool_number(int(in_one)), 1)
        self.assertEqual(ids.pool_number(int(in_two)), 2)
        m = self.driver.messages
        await self.assertFailure(m.get(None, "two", in_one), errors.MessageDoesNotExist)
        self.assertEqual(await m.bulk_get(None, "two", [in_one]), [])
        await m.delete(None, "two", in_one)
        await m.bulk_delete(None, "two", [in_one])
        self.assertEqual((await m.get(None, "two", in_two)).id, in_two)
        self.assertEqual((await m.get(None, "one", in_one)).id, in_one)

    async def test_records_carry_global_ids(self):
        """Lists, claims, pops and stats give global ids; a marker pages on."""
        await self.place_two()
        posted = await self.post("two", 3)
        m = self.driver.messages
        self.assertEqual([x.id for x in await m.list(None, "two")], posted)
        self.assertEqual([x.id for x in await m.list(None, "two", marker=posted[0])],
                         posted[1:])
        stats = await self.driver.queues.stats(None, "two")
        self.assertEqual((stats.oldest.id, stats.newest.id), (posted[0], posted[-1]))
        claim = await self.driver.claims.create(None, "two", 60, 60, 1)
        self.assertEqual([x.id for x in claim.messages], posted[:1])
        self.assertEqual([x.id for x in (await self.driver.claims.get(
            None, "two", claim.id)).messages], posted[:1])
        await m.delete(None, "two", posted[0], claim.id)
        self.assertEqual([x.id for x in await m.pop(None, "two", 1)], posted[1:2])

    async def test_job_ids_find_their_pool(self):
        """Calls by job id alone reach the job's pool: the first jobs of two
        pools are told apart by peek, reserve, touch, release, bury, kick
        and delete."""
        await self.place_two()
        jobs = self.driver.jobs
        first = await jobs.put(None, "one", "in one", TTL, 5, 0, 30)
        second = await jobs.put(None, "two", "in two", TTL, 5, 0, 30)
        self.assertEqual((await jobs.peek(None, first)).body, "in one")
        self.assertEqual((await jobs.peek(None, second)).body, "in two")
        reserved = await jobs.reserve_job(None, second)
        self.assertEqual(reserved.id, second)
        self.assertTrue(await jobs.touch(None, second, reserved.claim_id))
        self.assertFalse(await jobs.touch(None, first, reserved.claim_id))
        self.assertTrue(await jobs.bury(None, second, reserved.claim_id, 1))
        self.assertTrue(await jobs.kick_job(None, second))
        self.assertEqual(await jobs.delete(None, second), "two")
        self.assertIsNone(await jobs.peek(None, second))
        self.assertEqual((await jobs.peek(None, first)).state, "ready")
        unknown_pool = ids.to_global(1, 77)
        self.assertIsNone(await jobs.peek(None, unknown_pool))
        self.assertIsNone(await jobs.delete(None, unknown_pool))

    async def test_reserve_across_pools_by_priority(self):
        """reserve over queues of two pools takes the lowest priority of
        both, whichever pool it is in; next_change is the earliest of
        both."""
        await self.place_two()
        jobs = self.driver.jobs
        await jobs.put(None, "one", "low", TTL, 9, 0, 30)
        urgent = await jobs.put(None, "two", "urgent", TTL, 1, 0, 30)
        await jobs.put(None, "one", "later", TTL, 1, 50, 30)
        self.assertEqual((await jobs.reserve(None, ["one", "two"])).id, urgent)
        self.assertEqual((await jobs.reserve(None, ["one", "two"])).body, "low")
        self.assertEqual(await jobs.next_change(None, ["one", "two"]), START + 30)
        self.assertIsNone(await jobs.reserve(None, ["one", "two"]))

    async def test_subscription_cursor_is_global(self):
        """A subscription's cursor is a global id: it starts after the
        queue's newest message, and advancing it to a message's id hides
        that message from a listing after the cursor."""
        await self.place_two()
        posted = await self.post("two", 2)
        sid, _ = await self.driver.subscriptions.create(None, "two", "http://h:9/", 60, {})
        sub = await self.driver.subscriptions.get(None, "two", sid)
        self.assertEqual(sub.cursor, int(posted[-1]))
        more = await self.post("two", 2)
        await self.driver.subscriptions.advance(None, "two", sid, int(more[0]))
        sub = await self.driver.subscriptions.get(None, "two", sid)
        listed = await self.driver.messages.list(None, "two", marker=str(sub.cursor))
        self.assertEqual([m.id for m in listed], more[1:])


class MergingTests(PooledDriverCase):
    """Calls over every queue merge every pool's answers."""

    async def test_listing_pages_across_pools(self):
        """Queue listings merge both pools in name order, page by page; count
        sums them."""
        names = [f"q{n}" for n in range(7)]
        for n, name in enumerate(names):
            await self.put_in(f"pool{n % 2 + 1}", name)
            await self.driver.queues.create(None, name, {"n": n})
        await self.put_in("pool1", "x")
        await self.driver.queues.create("other", "x")
        pages, marker = [], None
        while True:
            page = await self.driver.queues.list(None, marker, limit=3, detailed=True)
            if not page:
                break
            pages.append(page)
            marker = page[-1].name
        self.assertEqual([len(p) for p in pages], [3, 3, 1])
        self.assertEqual([q for p in pages for q in p],
                         [Queue(name, {"n": n}) for n, name in enumerate(names)])
        self.assertEqual(await self.driver.queues.count(None), 7)
        self.assertEqual(await self.driver.queues.count("other"), 1)
        self.assertEqual(await self.driver.queues.list(None, limit=2, metadata={"n": 3}),
                         [Queue("q3")])

    async def test_counts_scan_gc_and_events_span_pools(self):
        """Job counts of a project sum both pools; subscriptions.scan merges
        them by id; gc collects in both; a post in either pool is heard on
        the driver's hub."""
        await self.put_in("pool1", "one")
        await self.put_in("pool2", "two")
        heard = []
        self.driver.events.subscribe(lambda project, queue: heard.append(queue))
        for queue in ("one", "two"):
            await self.driver.messages.post(None, queue, [{"ttl": 60, "body": 1}], create=True)
        self.assertEqual(heard, ["one", "two"])
        self.assertEqual((await self.driver.jobs.counts(None)).ready, 2)
        made = []
        for queue in ("one", "two", "one"):
            sid, _ = await self.driver.subscriptions.create(
                None, queue, f"http://h:9/{len(made)}", 60, {})
            made.append(sid)
        self.assertEqual([s.id for s in await self.driver.subscriptions.scan()], sorted(made))
        self.assertEqual([s.id for s in await self.driver.subscriptions.scan(limit=2)],
                         sorted(made)[:2])
        self.clock.advance(61)
        self.assertEqual(await self.driver.gc(), 5)


class MongoCatalogRaceTests(unittest.TestCase):
    """Two processes over a MongoDB catalog (answering over the network,
    so their placements really interleave) and two sqlite pools."""

    async def test_concurrent_placements_agree(self):
        """Two pooled drivers placing the same new queues at the same time
        (each drawing its own pool) both use the pool the catalog recorded:
        each queue is in one pool's storage only, and each driver routes it
        there."""
        clock = task.Clock()
        clock.advance(START)
        uri = fresh_database_uri(self)
        uris = sqlite_pools(self)
        drivers = []
        for seed in (1, 2):
            catalog = MongoDriver(uri, clock, pooled_config().mongodb)
            driver = PooledDriver(catalog, ClockReactor(clock), pooled_config(), Random(seed))
            await driver.open()
            self.addCleanup(driver.close)
            drivers.append(driver)
        for n, pool_uri in enumerate(uris):
            await drivers[0].pools.create(f"pool{n + 1}", pool_uri, 1)
        await drivers[1].pool_set.refresh()
        names = [f"q{n}" for n in range(20)]
        await concurrently(*(driver.queues.create(None, name)
                             for name in names for driver in drivers))
        direct = [SqliteDriver(pool_uri[len("sqlite:"):], clock) for pool_uri in uris]
        for each in direct:
            await each.open()
            self.addCleanup(each.close)
        for name in names:
            recorded = await drivers[0].catalog.lookup(None, name)
            held = [f"pool{n + 1}" for n, each in enumerate(direct)
                    if await each.queues.exists(None, name)]
            self.assertEqual(held, [recorded], name)
            for driver in drivers:
                self.assertEqual((await driver.route(None, name)).name, recorded)


class DeadLetterTests(PooledDriverCase):
    """A dead-letter queue lives in its source queue's pool."""

    async def test_metadata_places_dead_letter_queue_with_its_source(self):
        """Naming a dead-letter queue not yet placed places it in the
        source's pool; claims then move messages there."""
        await self.put_in("pool2", "src")
        await self.driver.queues.create(None, "src")
        await self.driver.queues.set_metadata(None, "src", {"_dead_letter_queue": "dlq"})
        self.assertEqual(await self.catalog.catalog.lookup(None, "dlq"), "pool2")
        [posted] = await self.post("src")
        letter = DeadLetter(max_claims=1, queue="dlq")
        claim = await self.driver.claims.create(None, "src", 60, 0, 1, letter)
        await self.driver.claims.delete(None, "src", claim.id)
        self.assertIsNone(await self.driver.claims.create(None, "src", 60, 0, 1, letter))
        self.assertEqual([m.id for m in await self.driver.messages.list(None, "dlq")],
                         [posted])
        self.assertEqual(await self.where("dlq"), ["pool2"])

    async def test_dead_letter_queue_in_another_pool_is_refused(self):
        """Naming a dead-letter queue placed in another pool is a
        ValidationError, and the metadata is left as it was."""
        await self.put_in("pool1", "src")
        await self.put_in("pool2", "elsewhere")
        await self.driver.queues.create(None, "src", {"keep": 1})
        await self.assertFailure(
            self.driver.queues.set_metadata(None, "src", {"_dead_letter_queue": "elsewhere"}),
            errors.ValidationError)
        self.assertEqual(await self.driver.queues.get_metadata(None, "src"), {"keep": 1})

    async def test_new_queue_goes_to_its_dead_letter_queue_pool(self):
        """A new queue whose metadata names a placed dead-letter queue is
        placed in that queue's pool."""
        for n in range(10):
            await self.put_in(f"pool{n % 2 + 1}", f"dlq{n}")
            await self.driver.queues.create(None, f"src{n}", {"_dead_letter_queue": f"dlq{n}"})
            self.assertEqual(await self.where(f"src{n}"), [f"pool{n % 2 + 1}"])


class FlavorTests(PooledDriverCase):
    """Queues of a flavor go to that flavor's pools."""

    weights = (1, 1, 1)
    flavors = (None, "gold", "gold")

    async def test_flavor_placement(self):
        """A queue created with ``_flavor`` goes to a pool of that flavor; one
        without goes to pools without a flavor; a flavor that neither exists
        nor names a pool is the client's mistake (ValidationError, 400)."""
        for n in range(10):
            await self.driver.queues.create(None, f"gold{n}", {"_flavor": "gold"})
            await self.driver.queues.create(None, f"plain{n}")
        gold = {(await self.where(f"gold{n}"))[0] for n in range(10)}
        self.assertEqual(gold, {"pool2", "pool3"})
        self.assertEqual({(await self.where(f"plain{n}"))[0] for n in range(10)}, {"pool1"})
        await self.assertFailure(self.driver.queues.create(None, "x", {"_flavor": "tin"}),
                                 errors.ValidationError)


class PoolChangeTests(PooledDriverCase):
    """Pools added, changed and removed while the driver runs."""

    weights = (1,)

    async def test_pool_added_elsewhere_is_used(self):
        """A pool added to the catalog is read within refresh_interval, and
        at once when a queue placed there by another process is used."""
        uri = sqlite_pools(self, 1)[0]
        await self.catalog.pools.create("pool2", uri, 1)
        await self.put_in("pool2", "there")
        [posted] = await self.post("there")  # read at once: the catalog names it
        self.assertEqual(ids.pool_number(int(posted)), 2)
        await self.catalog.pools.update("pool1", {"weight": 0})
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        await self.driver.queues.create(None, "new")
        self.assertEqual(await self.catalog.catalog.lookup(None, "new"), "pool2")

    async def test_uri_change_reopens(self):
        """A pool whose URI changes is opened again on the new URI."""
        await self.post("q")
        moved = sqlite_pools(self, 1)[0]
        await self.catalog.pools.update("pool1", {"uri": moved})
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        self.assertFalse(await self.driver.queues.exists(None, "q"))  # the new file is empty
        await self.post("q")
        check = SqliteDriver(moved[len("sqlite:"):], self.clock)
        await check.open()
        self.addCleanup(check.close)
        self.assertTrue(await check.queues.exists(None, "q"))

    async def test_removed_pool_forgets_its_queues(self):
        """A pool removed from the catalog (with its entries) is closed and
        its queues no longer exist for the driver."""
        await self.post("q")
        await self.catalog.catalog.remove_pool("pool1")
        await self.catalog.pools.delete("pool1")
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        self.assertFalse(await self.driver.queues.exists(None, "q"))
        self.assertEqual(await self.driver.queues.list(None), [])


    async def test_catalog_outage_keeps_known_routes(self):
        """While the catalog does not answer, queues already routed are
        still served and a failed refresh is a warning, not an error; a new
        queue cannot be placed (503)."""
        await self.post("q")
        await self.catalog.close()
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        self.assertEqual(len(await self.driver.messages.list(None, "q")), 1)
        await self.assertFailure(self.driver.queues.create(None, "new"),
                                 errors.StorageUnavailable)


    async def test_pool_made_again_under_its_name(self):
        """A pool removed and made again under its name (a new number) is a
        new pool: the old one's routes are forgotten, its ids name nothing."""
        [posted] = await self.post("q")
        await self.catalog.catalog.remove_pool("pool1")
        await self.catalog.pools.delete("pool1")
        await self.catalog.pools.create("pool1", self.uris[0], 1)  # the same file
        self.clock.advance(self.driver.config.pooling.refresh_interval)
        self.assertFalse(await self.driver.queues.exists(None, "q"))
        self.assertIsNone(await self.driver.jobs.peek(None, int(posted)))
        [again] = await self.post("q")
        self.assertEqual(ids.pool_number(int(again)), 2)


class HealthTests(PooledDriverCase):
    """check_uri, pool_health, is_alive."""

    async def test_check_uri(self):
        """A sqlite file is accepted; unknown schemes, sqlite::memory: (no
        other process sees it) and storage that cannot open are refused."""
        await self.driver.check_uri(sqlite_pools(self, 1)[0])
        for bad in ("redis://x", "sqlite::memory:", "sqlite:", "sqlite:/proc/nope/x.db"):
            await self.assertFailure(self.driver.check_uri(bad), errors.ValidationError)

    async def test_pool_health(self):
        """pool_health names every pool with whether it answers; a pool that
        cannot open makes is_alive False."""
        self.assertEqual(await self.driver.pool_health(), {"pool1": True, "pool2": True})
        self.assertTrue(await self.driver.is_alive())
        await self.catalog.pools.create("broken", "sqlite:/proc/nope/x.db", 1)
        self.assertEqual(await self.driver.pool_health(),
                         {"broken": False, "pool1": True, "pool2": True})
        self.assertFalse(await self.driver.is_alive())

    async def test_gc_collects_the_pools_that_answer(self):
        """gc collects in every pool that answers, then reports the outage
        of one that does not."""
        for name in ("pool1", "pool2"):
            await self.put_in(name, f"in-{name}")
            await self.post(f"in-{name}", 2)
        await self.catalog.pools.create("broken", "sqlite:/proc/nope/x.db", 1)
        await self.driver.pool_set.refresh()
        self.clock.advance(TTL)
        await self.assertFailure(self.driver.gc(), errors.StorageUnavailable)
        for direct in self.direct.values():
            self.assertEqual(direct.db.execute("SELECT count(*) FROM messages").fetchone(), (0,))
