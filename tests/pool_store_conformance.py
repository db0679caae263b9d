"""The catalog store conformance suite: what every ``IPoolingStorage`` must
do with its pools, flavors and catalog (``storage/interfaces.py``).

``PoolStoreConformanceMixin`` runs no test by itself: a driver's test case
combines it with ``twisted.trial.unittest.TestCase`` and provides
``make_driver(clock)`` (a new, unopened driver on an empty database) and,
optionally, ``make_second_driver(clock)`` (another unopened driver on the
same database, as a second daemon would have; tests about two daemons are
skipped when it returns None, the default), as ``tests.storage_conformance``
does.
"""

from zope.interface.verify import verifyObject

from marconi_tx import errors
from marconi_tx.storage.interfaces import (
    ICatalogController,
    IFlavorController,
    IPoolController,
    IPoolingStorage,
)
from marconi_tx.storage.records import Flavor, Pool
from tests.storage_conformance import DriverCaseMixin, concurrently

URI = "sqlite:/var/lib/marconi/pool.db"
#: Options and capabilities as clients may send them: nested, null, keys an
#: engine could mistake for operators or paths, text beyond ASCII.
AWKWARD = {"a": [1, {"b": None}], "$set": {"x.y": True}, "text": "é\u2603", "n": 1.5}


class PoolStoreConformanceMixin(DriverCaseMixin):
    """Catalog-store tests for any ``IPoolingStorage``; see the module
    docstring."""

    def setUp(self):
        d = super().setUp()
        self.pools = self.driver.pools
        self.flavors = self.driver.flavors
        self.catalog = self.driver.catalog
        return d

    def test_provides_interfaces(self):
        """The driver provides IPoolingStorage and its pools, flavors and
        catalog provide their interfaces."""
        self.assertTrue(verifyObject(IPoolingStorage, self.driver))
        self.assertTrue(verifyObject(IPoolController, self.pools))
        self.assertTrue(verifyObject(IFlavorController, self.flavors))
        self.assertTrue(verifyObject(ICatalogController, self.catalog))

    # -- pools ---------------------------------------------------------------

    async def test_create_and_get_pool(self):
        """A new pool reads back as created, number 1 for the first; no
        flavor and options {} when none are given."""
        made = await self.pools.create("a", URI, 100, flavor="gold", options={"k": [1]})
        self.assertEqual(made, Pool(name="a", uri=URI, weight=100, flavor="gold",
                                    options={"k": [1]}, number=1))
        self.assertEqual(await self.pools.get("a"), made)
        plain = await self.pools.create("b", "mongodb://h:1/x", 0)
        self.assertEqual(plain, Pool(name="b", uri="mongodb://h:1/x", weight=0, flavor=None,
                                     options={}, number=2))
        self.assertEqual(await self.pools.get("b"), plain)

    async def test_create_existing_pool(self):
        """Creating a pool whose name is taken is PoolExists (naming it) and
        changes nothing; the failed create gives away no number."""
        first = await self.pools.create("a", URI, 1)
        failure = await self.assertFailure(self.pools.create("a", "sqlite:other", 5,
                                                             flavor="f"), errors.PoolExists)
        self.assertEqual(failure.name, "a")
        self.assertEqual(await self.pools.get("a"), first)
        self.assertEqual((await self.pools.create("b", URI, 1)).number, 2)

    async def test_missing_pool(self):
        """get, update and delete of an unknown pool are PoolDoesNotExist
        naming it."""
        await self.pools.create("a", URI, 1)
        for call in (lambda: self.pools.get("b"),
                     lambda: self.pools.update("b", {"weight": 2}),
                     lambda: self.pools.delete("b")):
            failure = await self.assertFailure(call(), errors.PoolDoesNotExist)
            self.assertEqual(failure.name, "b")
        self.assertEqual([p.name for p in await self.pools.list()], ["a"])

    async def test_numbers_never_reused(self):
        """Numbers go up by one per pool and are never given again: not
        after the newest pool is deleted, not after every pool is, not after
        the driver is closed and opened again."""
        self.assertEqual([(await self.pools.create(n, URI, 1)).number for n in "abc"],
                         [1, 2, 3])
        await self.pools.delete("c")
        self.assertEqual((await self.pools.create("c", URI, 1)).number, 4)
        for name in "abc":
            await self.pools.delete(name)
        self.assertEqual((await self.pools.create("d", URI, 1)).number, 5)
        await self.driver.close()
        await self.driver.open()
        self.assertEqual((await self.pools.get("d")).number, 5)
        self.assertEqual((await self.pools.create("e", URI, 1)).number, 6)

    async def test_concurrent_creates_get_distinct_numbers(self):
        """Pools created at once all get different numbers."""
        made = await concurrently(*(self.pools.create(f"p{n}", URI, 1) for n in range(6)))
        self.assertEqual(sorted(p.number for p in made), list(range(1, 7)))

    async def test_two_daemons_get_distinct_numbers(self):
        """Pools created at once by two drivers on the same database all get
        different numbers, which both read back alike."""
        second = await self.second_driver()
        made = await concurrently(*(driver.pools.create(f"p{n}{i}", URI, 1)
                                    for n in range(6)
                                    for i, driver in enumerate((self.driver, second))))
        self.assertEqual(sorted(p.number for p in made), list(range(1, 13)))
        self.assertEqual(await second.pools.list(limit=20), await self.pools.list(limit=20))

    async def test_list_pools(self):
        """Pools are listed by name, after ``marker``, at most ``limit``,
        only ``flavor``'s when it is given."""
        for name, flavor in (("d", "gold"), ("b", None), ("e", "tin"), ("a", "gold"),
                             ("c", "gold")):
            await self.pools.create(name, URI, 1, flavor=flavor)

        async def names(**query):
            return [p.name for p in await self.pools.list(**query)]

        self.assertEqual(await names(), ["a", "b", "c", "d", "e"])
        self.assertEqual(await names(limit=2), ["a", "b"])
        self.assertEqual(await names(marker="b", limit=2), ["c", "d"])
        self.assertEqual(await names(marker="bb"), ["c", "d", "e"])
        self.assertEqual(await names(marker="e"), [])
        self.assertEqual(await names(flavor="gold"), ["a", "c", "d"])
        self.assertEqual(await names(flavor="gold", marker="a", limit=1), ["c"])
        self.assertEqual(await names(flavor="none such"), [])
        listed = await self.pools.list(limit=1)
        self.assertEqual(listed, [await self.pools.get("a")])

    async def test_list_pools_is_not_limited_to_ten(self):
        """A limit above the default lists that many pools."""
        for n in range(12):
            await self.pools.create(f"p{n:02}", URI, 1)
        self.assertEqual(len(await self.pools.list(limit=20)), 12)
        self.assertEqual(len(await self.pools.list()), 10)

    async def test_update_pool(self):
        """update changes the given fields among uri, weight, flavor
        (None detaches) and options (replaced whole), ignores other keys
        (name and number included), and answers the updated pool."""
        made = await self.pools.create("a", URI, 10, flavor="gold", options={"x": 1})
        updated = await self.pools.update("a", {"weight": 0})
        self.assertEqual(updated, Pool(name="a", uri=URI, weight=0, flavor="gold",
                                       options={"x": 1}, number=made.number))
        self.assertEqual(await self.pools.get("a"), updated)
        updated = await self.pools.update("a", {
            "uri": "mongodb://h:2/y", "flavor": None, "options": {"y": 2},
            "name": "z", "number": 99, "extra": True})
        self.assertEqual(updated, Pool(name="a", uri="mongodb://h:2/y", weight=0, flavor=None,
                                       options={"y": 2}, number=made.number))
        self.assertEqual(await self.pools.get("a"), updated)
        self.assertEqual(await self.pools.list(flavor="gold"), [])
        await self.assertFailure(self.pools.get("z"), errors.PoolDoesNotExist)
        updated = await self.pools.update("a", {"flavor": "tin"})
        self.assertEqual([p.name for p in await self.pools.list(flavor="tin")], ["a"])
        self.assertEqual(await self.pools.update("a", {}), updated)

    async def test_delete_pool(self):
        """A deleted pool is gone from get and list; others stay."""
        await self.pools.create("a", URI, 1)
        kept = await self.pools.create("b", URI, 1)
        self.assertIsNone(await self.pools.delete("a"))
        await self.assertFailure(self.pools.get("a"), errors.PoolDoesNotExist)
        self.assertEqual(await self.pools.list(), [kept])

    async def test_options_round_trip_as_copies(self):
        """Options of any JSON shape read back equal; changing the dict
        given to create or update, or one read back, changes nothing
        stored."""
        given = {"nested": {"list": [1]}, **AWKWARD}
        made = await self.pools.create("a", URI, 1, options=given)
        self.assertEqual(made.options, given)
        given["nested"]["list"].append(2)
        made.options["nested"]["list"].append(3)
        read = await self.pools.get("a")
        self.assertEqual(read.options, {"nested": {"list": [1]}, **AWKWARD})
        read.options.clear()
        (await self.pools.list())[0].options["added"] = 1
        self.assertEqual((await self.pools.get("a")).options,
                         {"nested": {"list": [1]}, **AWKWARD})
        changes = {"options": {"k": [1]}}
        updated = await self.pools.update("a", changes)
        changes["options"]["k"].append(2)
        updated.options["k"].append(3)
        self.assertEqual((await self.pools.get("a")).options, {"k": [1]})

    # -- flavors ---------------------------------------------------------------

    async def test_create_and_get_flavor(self):
        """A new flavor reads back with its capabilities, {} when none are
        given; a taken name is FlavorExists (naming it), changing nothing."""
        made = await self.flavors.create("gold", {"durable": True})
        self.assertEqual(made, Flavor(name="gold", capabilities={"durable": True}))
        self.assertEqual(await self.flavors.get("gold"), made)
        self.assertEqual(await self.flavors.create("tin"), Flavor(name="tin", capabilities={}))
        failure = await self.assertFailure(self.flavors.create("gold", {"x": 1}),
                                           errors.FlavorExists)
        self.assertEqual(failure.name, "gold")
        self.assertEqual(await self.flavors.get("gold"), made)

    async def test_missing_flavor(self):
        """get and update of an unknown flavor are FlavorDoesNotExist
        naming it; update creates nothing."""
        for call in (lambda: self.flavors.get("gold"),
                     lambda: self.flavors.update("gold", {"a": 1})):
            failure = await self.assertFailure(call(), errors.FlavorDoesNotExist)
            self.assertEqual(failure.name, "gold")
        self.assertEqual(await self.flavors.list(), [])

    async def test_list_flavors(self):
        """Flavors are listed by name, after ``marker``, at most ``limit``."""
        for name in ("c", "a", "d", "b"):
            await self.flavors.create(name, {"n": name})

        async def names(**query):
            return [f.name for f in await self.flavors.list(**query)]

        self.assertEqual(await names(), ["a", "b", "c", "d"])
        self.assertEqual(await names(limit=3), ["a", "b", "c"])
        self.assertEqual(await names(marker="b"), ["c", "d"])
        self.assertEqual(await names(marker="aa", limit=1), ["b"])
        self.assertEqual(await names(marker="d"), [])
        self.assertEqual((await self.flavors.list(limit=1))[0],
                         Flavor(name="a", capabilities={"n": "a"}))

    async def test_update_flavor(self):
        """update replaces the capabilities and answers the flavor."""
        await self.flavors.create("gold", {"a": 1, "b": 2})
        updated = await self.flavors.update("gold", {"c": 3})
        self.assertEqual(updated, Flavor(name="gold", capabilities={"c": 3}))
        self.assertEqual(await self.flavors.get("gold"), updated)

    async def test_delete_flavor_detaches_its_pools(self):
        """Deleting a flavor forgets it and leaves its pools without a
        flavor; other flavors' pools keep theirs; deleting an unknown
        flavor is no error."""
        await self.flavors.create("gold")
        await self.flavors.create("tin")
        await self.pools.create("a", URI, 1, flavor="gold")
        await self.pools.create("b", URI, 1, flavor="tin")
        await self.pools.create("c", URI, 1, flavor="gold")
        self.assertIsNone(await self.flavors.delete("gold"))
        await self.assertFailure(self.flavors.get("gold"), errors.FlavorDoesNotExist)
        self.assertEqual([(p.name, p.flavor) for p in await self.pools.list()],
                         [("a", None), ("b", "tin"), ("c", None)])
        self.assertEqual(await self.pools.list(flavor="gold"), [])
        self.assertIsNone(await self.flavors.delete("gold"))
        self.assertEqual([f.name for f in await self.flavors.list()], ["tin"])

    async def test_capabilities_round_trip_as_copies(self):
        """Capabilities of any JSON shape read back equal; changing the
        dict given or one read back changes nothing stored."""
        given = {"nested": {"list": [1]}, **AWKWARD}
        made = await self.flavors.create("gold", given)
        self.assertEqual(made.capabilities, given)
        given["nested"]["list"].append(2)
        made.capabilities["nested"]["list"].append(3)
        (await self.flavors.get("gold")).capabilities.clear()
        (await self.flavors.list())[0].capabilities["added"] = 1
        self.assertEqual((await self.flavors.get("gold")).capabilities,
                         {"nested": {"list": [1]}, **AWKWARD})
        replacement = {"k": [1]}
        updated = await self.flavors.update("gold", replacement)
        replacement["k"].append(2)
        updated.capabilities["k"].append(3)
        self.assertEqual((await self.flavors.get("gold")).capabilities, {"k": [1]})

    # -- catalog ---------------------------------------------------------------

    async def test_lookup_and_insert(self):
        """An unknown queue has no pool; insert records one and answers it;
        the None project, other projects and other queues are separate
        entries."""
        self.assertIsNone(await self.catalog.lookup("p", "q"))
        self.assertEqual(await self.catalog.insert("p", "q", "a"), "a")
        self.assertEqual(await self.catalog.lookup("p", "q"), "a")
        self.assertIsNone(await self.catalog.lookup(None, "q"))
        self.assertIsNone(await self.catalog.lookup("p2", "q"))
        self.assertIsNone(await self.catalog.lookup("p", "q2"))
        self.assertEqual(await self.catalog.insert(None, "q", "b"), "b")
        self.assertEqual(await self.catalog.insert("p2", "q", "c"), "c")
        self.assertEqual([await self.catalog.lookup(p, "q") for p in ("p", None, "p2")],
                         ["a", "b", "c"])

    async def test_first_insert_wins(self):
        """Inserting an entry that exists keeps it and answers its pool, for
        the None project too."""
        for project in ("p", None):
            self.assertEqual(await self.catalog.insert(project, "q", "a"), "a")
            self.assertEqual(await self.catalog.insert(project, "q", "b"), "a")
            self.assertEqual(await self.catalog.lookup(project, "q"), "a")
        self.assertEqual(await self.catalog.entries("a"), [(None, "q"), ("p", "q")])
        self.assertEqual(await self.catalog.entries("b"), [])

    async def test_concurrent_inserts_agree(self):
        """Of inserts of one queue started at once, one wins: every one
        answers its pool."""
        answers = await concurrently(*(self.catalog.insert("p", "q", pool)
                                       for pool in ("a", "b", "c")))
        self.assertEqual(len(set(answers)), 1)
        self.assertIn(answers[0], ("a", "b", "c"))
        self.assertEqual(await self.catalog.lookup("p", "q"), answers[0])

    async def test_two_daemons_inserts_agree(self):
        """Of inserts of one queue by two drivers on the same database at
        once, one wins: both answer its pool, and both read it back."""
        second = await self.second_driver()
        for n in range(5):
            answers = await concurrently(self.catalog.insert(None, f"r{n}", "a"),
                                         second.catalog.insert(None, f"r{n}", "b"))
            self.assertEqual(answers[0], answers[1])
            self.assertEqual(await second.catalog.lookup(None, f"r{n}"), answers[0])

    async def test_entries_order_and_paging(self):
        """entries lists one pool's (project, queue) pairs by project, the
        None project first, then by queue; pages after a marker pair (one
        with the None project too) and of ``limit`` walk them all once."""
        pairs = [("p", "b"), (None, "z"), ("b", "a"), ("p", "a"), (None, "a"), ("a", "z")]
        for project, queue in pairs:
            await self.catalog.insert(project, queue, "pool")
            await self.catalog.insert(project, queue + "x", "other")
        ordered = [(None, "a"), (None, "z"), ("a", "z"), ("b", "a"), ("p", "a"), ("p", "b")]
        self.assertEqual(await self.catalog.entries("pool"), ordered)
        self.assertEqual(await self.catalog.entries("pool", limit=2), ordered[:2])
        self.assertEqual(await self.catalog.entries("pool", marker=(None, "a")), ordered[1:])
        self.assertEqual(await self.catalog.entries("pool", marker=(None, "z"), limit=2),
                         ordered[2:4])
        self.assertEqual(await self.catalog.entries("pool", marker=("b", "a")), ordered[4:])
        self.assertEqual(await self.catalog.entries("pool", marker=("a", "zz")), ordered[3:])
        self.assertEqual(await self.catalog.entries("pool", marker=("p", "b")), [])
        walked, marker = [], None
        while page := await self.catalog.entries("pool", marker=marker, limit=4):
            walked += page
            marker = page[-1]
        self.assertEqual(walked, ordered)
        self.assertEqual(await self.catalog.entries("none such"), [])
        self.assertTrue(all(type(pair) is tuple for pair in ordered))

    async def test_remove_pool(self):
        """remove_pool removes every entry of the pool and says how many;
        other pools' entries stay; a removed queue can be inserted again,
        elsewhere."""
        for project, queue in (("p", "a"), (None, "b"), ("q", "c")):
            await self.catalog.insert(project, queue, "gone")
        await self.catalog.insert("p", "kept", "stays")
        self.assertEqual(await self.catalog.remove_pool("gone"), 3)
        self.assertEqual(await self.catalog.entries("gone"), [])
        self.assertIsNone(await self.catalog.lookup(None, "b"))
        self.assertEqual(await self.catalog.lookup("p", "kept"), "stays")
        self.assertEqual(await self.catalog.remove_pool("gone"), 0)
        self.assertEqual(await self.catalog.insert(None, "b", "new"), "new")

    # -- closed ----------------------------------------------------------------

    async def test_closed_driver_is_unavailable(self):
        """With the driver closed every call fails with StorageUnavailable;
        opened again, what was stored is there."""
        await self.pools.create("a", URI, 1)
        await self.flavors.create("gold")
        await self.catalog.insert(None, "q", "a")
        await self.driver.close()
        calls = [
            self.pools.create("b", URI, 1), self.pools.get("a"), self.pools.list(),
            self.pools.update("a", {"weight": 2}), self.pools.delete("a"),
            self.flavors.create("tin"), self.flavors.get("gold"), self.flavors.list(),
            self.flavors.update("gold", {}), self.flavors.delete("gold"),
            self.catalog.lookup(None, "q"), self.catalog.insert(None, "r", "a"),
            self.catalog.entries("a"), self.catalog.remove_pool("a"),
        ]
        for d in calls:
            await self.assertFailure(d, errors.StorageUnavailable)
        await self.driver.open()
        self.assertEqual((await self.pools.get("a")).weight, 1)
        self.assertEqual([f.name for f in await self.flavors.list()], ["gold"])
        self.assertEqual(await self.catalog.entries("a"), [(None, "q")])
