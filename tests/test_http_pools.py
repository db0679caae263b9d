"""The v2 pool and flavor admin API (api-v2.md §8), the pooled health report
(§7) and ``_flavor`` (§2.1), over HTTP, through a real ``PooledDriver``
whose catalog is a ``MemoryDriver`` and whose pools are sqlite files."""

import os

from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.pooling.driver import PooledDriver
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.testing import MemoryDriver
from tests.clock_reactor import ClockReactor
from tests.http_support import ApiClient, new_clock
from tests.mongodb_server import fresh_database_uri
from tests.test_auth_http import ROOT, token_settings, write_token_file

PROJECT = "p1"
ADMIN = (("drivers", "admin_mode", "true"), ("drivers", "pooling", "true"),
         ("drivers:storage:sqlite", "group_commit", "false"))


def settings(*extra):
    return config.load(overrides=[*ADMIN, *extra])


class PooledApiMixin:
    """``self.api``: the API over a PooledDriver (``self.driver``) whose
    catalog (``self.catalog``) starts with no pool; ``self.uri(name)``
    names a fresh sqlite file for a pool."""

    def settings(self):
        return settings()

    async def setUp(self):
        self.clock = new_clock()
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.catalog = MemoryDriver(self.clock)
        self.driver = PooledDriver(self.catalog, ClockReactor(self.clock), self.settings())
        await self.driver.open()
        self.addCleanup(self.driver.close)
        self.api = ApiClient(self.driver, self.settings(), reactor=self.clock, waits=True)

    def uri(self, name):
        return f"sqlite:{os.path.join(self.dir, name)}.db"

    def request(self, method, path, body=None, **kw):
        kw.setdefault("project", PROJECT)
        return self.api.request(method, path, body, **kw)

    async def make_pool(self, name, weight=1, **fields):
        answer = await self.request("PUT", f"/v2/pools/{name}",
                                    {"uri": self.uri(name), "weight": weight, **fields})
        self.assertEqual(answer.code, 201, answer.body)
        return answer

    async def make_flavor(self, name, pools, **fields):
        answer = await self.request("PUT", f"/v2/flavors/{name}", {"pool_list": pools, **fields})
        self.assertEqual(answer.code, 201, answer.body)
        return answer

    def assertError(self, answer, code, *fragments):
        self.assertEqual(answer.code, code, answer.body)
        self.assertEqual(set(answer.json), {"title", "description"})
        for fragment in fragments:
            self.assertIn(fragment, answer.json["description"])


class PoolTests(PooledApiMixin, unittest.TestCase):
    async def test_create_get_list(self):
        """PUT creates a pool (201, Location); GET shows it with its href
        (options only with detailed=true); the listing pages by name with
        a next link, Content-Location the request URI, and links [] when
        the page is empty."""
        empty = await self.request("GET", "/v2/pools")
        self.assertEqual((empty.code, empty.json), (200, {"pools": [], "links": []}))
        answer = await self.make_pool("b", 5, options={"tier": "ssd"})
        self.assertEqual(answer.headers["location"], "/v2/pools/b")
        await self.make_pool("a", 0)
        got = await self.request("GET", "/v2/pools/b")
        self.assertEqual(got.json, {"name": "b", "uri": self.uri("b"), "weight": 5,
                                    "flavor": None, "href": "/v2/pools/b"})
        detailed = await self.request("GET", "/v2/pools/b?detailed=true")
        self.assertEqual(detailed.json["options"], {"tier": "ssd"})

        page = await self.request("GET", "/v2/pools?limit=1")
        self.assertEqual([p["name"] for p in page.json["pools"]], ["a"])
        self.assertEqual(page.json["links"],
                         [{"rel": "next", "href": "/v2/pools?marker=a&limit=1"}])
        self.assertEqual(page.headers["content-location"], "/v2/pools?limit=1")
        following = await self.request("GET", page.json["links"][0]["href"] + "&detailed=true")
        self.assertEqual(following.json["pools"], [{**detailed.json}])
        last = await self.request("GET", "/v2/pools?marker=b")
        self.assertEqual(last.json, {"pools": [], "links": []})

    async def test_page_limit(self):
        """limit is 1 to max_pools_per_page (configurable), else 400; a
        non-boolean detailed is 400."""
        for query in ("limit=0", "limit=21", "limit=x", "detailed=maybe"):
            self.assertError(await self.request("GET", f"/v2/pools?{query}"), 400)
        self.api = ApiClient(self.driver, settings(("limits:transport", "max_pools_per_page",
                                                    "30")), reactor=self.clock, waits=True)
        self.assertEqual((await self.request("GET", "/v2/pools?limit=30")).code, 200)

    async def test_create_refusals(self):
        """A pool body needs uri (a string of at most max_pool_uri_length)
        and weight (an integer 0..2^32-1), may hold flavor and options (an
        object), nothing else; names are Zaqar's; every refusal is a 400
        and creates nothing."""
        good = {"uri": self.uri("x"), "weight": 1}
        bodies = [{}, {"uri": self.uri("x")}, {"weight": 1}, {**good, "weight": -1},
                  {**good, "weight": 2**32}, {**good, "weight": "1"}, {**good, "weight": True},
                  {**good, "uri": 5}, {**good, "uri": ""}, {**good, "options": []},
                  {**good, "flavor": "no.dots"}, {**good, "group": "g"}, [good], "x"]
        for body in bodies:
            self.assertError(await self.request("PUT", "/v2/pools/x", body), 400)
        for name in ("no.dots", "x" * 65, "catalog_reachable"):
            self.assertError(await self.request("PUT", f"/v2/pools/{name}", good), 400)
        self.assertError(await self.request("PUT", "/v2/pools/x", b"{"), 400)
        self.assertEqual((await self.request("GET", "/v2/pools")).json["pools"], [])
        self.assertEqual((await self.request("PUT", "/v2/pools/x", {
            **good, "weight": 2**32 - 1})).code, 201)

    async def test_uri_length_is_configurable(self):
        """A URI longer than [limits:transport] max_pool_uri_length is 400."""
        self.api = ApiClient(self.driver, settings(("limits:transport", "max_pool_uri_length",
                                                    "20")), reactor=self.clock, waits=True)
        answer = await self.request("PUT", "/v2/pools/x", {"uri": self.uri("x"), "weight": 1})
        self.assertError(answer, 400, "20")

    async def test_unusable_uri(self):
        """A URI the daemon does not support, or sqlite::memory: (no other
        process could see it), is 400 and creates nothing."""
        for uri in ("redis://localhost", "sqlite::memory:", "nothing"):
            answer = await self.request("PUT", "/v2/pools/x", {"uri": uri, "weight": 1})
            self.assertError(answer, 400)
        self.assertError(await self.request("GET", "/v2/pools/x"), 404)

    async def test_uri_of_another_pool(self):
        """A URI another pool has is 400, at creation as by PATCH; a PATCH
        giving a pool its own URI again is no change."""
        await self.make_pool("a")
        await self.make_pool("b")
        answer = await self.request("PUT", "/v2/pools/c", {"uri": self.uri("a"), "weight": 1})
        self.assertError(answer, 400, "'a'")
        self.assertError(await self.request("PATCH", "/v2/pools/b", {"uri": self.uri("a")}),
                         400, "'a'")
        same = await self.request("PATCH", "/v2/pools/a", {"uri": self.uri("a")})
        self.assertEqual(same.code, 200, same.body)

    async def test_exists(self):
        """A second PUT of a pool is 409 and changes nothing."""
        await self.make_pool("a", 3)
        answer = await self.request("PUT", "/v2/pools/a", {"uri": self.uri("z"), "weight": 9})
        self.assertError(answer, 409)
        self.assertEqual((await self.request("GET", "/v2/pools/a")).json["weight"], 3)

    async def test_get_missing(self):
        """GET and PATCH of a missing pool are 404."""
        self.assertError(await self.request("GET", "/v2/pools/nope"), 404)
        self.assertError(await self.request("PATCH", "/v2/pools/nope", {"weight": 1}), 404)

    async def test_patch(self):
        """PATCH changes what it names and answers the pool with its options;
        flavor null takes it out of its flavor; an empty body or another
        key is 400; a new URI must be usable (400)."""
        await self.make_pool("a", 1, flavor="gold", options={"k": 1})
        answer = await self.request("PATCH", "/v2/pools/a", {"weight": 7, "options": {"k": 2}})
        self.assertEqual(answer.code, 200, answer.body)
        self.assertEqual(answer.json, {"name": "a", "uri": self.uri("a"), "weight": 7,
                                       "flavor": "gold", "href": "/v2/pools/a",
                                       "options": {"k": 2}})
        detached = await self.request("PATCH", "/v2/pools/a", {"flavor": None})
        self.assertIsNone(detached.json["flavor"])
        moved = await self.request("PATCH", "/v2/pools/a", {"uri": self.uri("a2")})
        self.assertEqual(moved.json["uri"], self.uri("a2"))
        for body in ({}, {"name": "b"}, {"weight": -1}, {"uri": "redis://x"}):
            self.assertError(await self.request("PATCH", "/v2/pools/a", body), 400)
        self.assertEqual((await self.request("GET", "/v2/pools/a")).json["weight"], 7)

    async def test_capabilities_mismatch(self):
        """The pools of a flavor have the same capabilities: a MongoDB pool
        joining a flavor of sqlite pools is 400, at creation as by PATCH;
        a flavor over a sqlite and a MongoDB pool too."""
        await self.make_pool("a", 1, flavor="gold")
        answer = await self.request("PUT", "/v2/pools/m", {
            "uri": "mongodb://127.0.0.1:1/x", "weight": 1, "flavor": "gold"})
        self.assertError(answer, 400, "HIGH_THROUGHPUT")
        self.assertEqual(answer.json["title"], "Capabilities mismatch")
        await self.make_pool("b", 1)
        await self.catalog.pools.update("b", {"uri": "mongodb://127.0.0.1:1/x"})
        self.assertError(await self.request("PATCH", "/v2/pools/b", {"flavor": "gold"}), 400)
        self.assertError(await self.request("PUT", "/v2/flavors/gold",
                                            {"pool_list": ["a", "b"]}), 400)
        self.assertEqual((await self.request("GET", "/v2/pools/b")).json["flavor"], None)

    async def test_delete(self):
        """DELETE is 204, for a missing pool too; the pool is gone."""
        await self.make_pool("a")
        self.assertEqual((await self.request("DELETE", "/v2/pools/a")).code, 204)
        self.assertError(await self.request("GET", "/v2/pools/a"), 404)
        self.assertEqual((await self.request("DELETE", "/v2/pools/a")).code, 204)

    async def test_delete_refused_while_a_flavor_uses_it(self):
        """A pool of an existing flavor is not deleted (403); once the
        flavor is gone it is (a flavor name alone does not hold it)."""
        await self.make_pool("a", flavor="gold")
        await self.make_pool("b", flavor="silver")  # no such flavor
        await self.make_flavor("gold", ["a"])
        self.assertError(await self.request("DELETE", "/v2/pools/a"), 403, "gold")
        self.assertEqual((await self.request("GET", "/v2/pools/a")).code, 200)
        self.assertEqual((await self.request("DELETE", "/v2/pools/b")).code, 204)
        await self.request("DELETE", "/v2/flavors/gold")
        self.assertEqual((await self.request("DELETE", "/v2/pools/a")).code, 204)

    async def test_delete_refused_while_it_holds_queues(self):
        """A pool holding a queue is not deleted (403, naming the queue);
        once its queues are deleted it is, with its catalog entries: a
        queue created again, once the process has read the pools again
        ([drivers:storage:pooling] refresh_interval), goes to another
        pool."""
        await self.make_pool("a")
        self.assertEqual((await self.request("PUT", "/v2/queues/jobs")).code, 201)
        self.assertEqual(await self.catalog.catalog.lookup(PROJECT, "jobs"), "a")
        self.assertError(await self.request("DELETE", "/v2/pools/a"), 403, "jobs")
        await self.request("DELETE", "/v2/queues/jobs")
        self.assertEqual(await self.catalog.catalog.entries("a"), [(PROJECT, "jobs")])
        self.assertEqual((await self.request("DELETE", "/v2/pools/a")).code, 204)
        self.assertEqual(await self.catalog.catalog.entries("a"), [])
        await self.make_pool("b")
        self.clock.advance(self.settings().pooling.refresh_interval)
        self.assertEqual((await self.request("PUT", "/v2/queues/jobs")).code, 201)
        self.assertEqual(await self.catalog.catalog.lookup(PROJECT, "jobs"), "b")


class FlavorTests(PooledApiMixin, unittest.TestCase):
    async def test_create_get_list(self):
        """PUT makes a flavor of existing pools (201, Location) and sets
        their flavor; GET shows its pools and capabilities (its pools'
        engine's, then the keys its capabilities object sets true); the
        listing shows capabilities only when detailed, pages by name."""
        await self.make_pool("a")
        await self.make_pool("b")
        answer = await self.make_flavor("gold", ["a", "b", "a"],
                                        capabilities={"FAST_DISK": True, "TAPE": False})
        self.assertEqual(answer.headers["location"], "/v2/flavors/gold")
        self.assertEqual((await self.request("GET", "/v2/pools/a")).json["flavor"], "gold")
        got = await self.request("GET", "/v2/flavors/gold")
        self.assertEqual(got.json, {"name": "gold", "href": "/v2/flavors/gold",
                                    "pool_list": ["a", "b"],
                                    "capabilities": ["FIFO", "CLAIMS", "DURABILITY", "AOD",
                                                     "FAST_DISK"]})
        await self.make_pool("c")
        await self.make_flavor("bronze", ["c"])
        page = await self.request("GET", "/v2/flavors?limit=1")
        self.assertEqual(page.json["flavors"], [{"name": "bronze", "href": "/v2/flavors/bronze",
                                                 "pool_list": ["c"]}])
        self.assertEqual(page.headers["content-location"], "/v2/flavors?limit=1")
        following = await self.request("GET", page.json["links"][0]["href"] + "&detailed=true")
        self.assertEqual(following.json["flavors"], [got.json])
        last = await self.request("GET", "/v2/flavors?marker=gold")
        self.assertEqual(last.json, {"flavors": [], "links": []})

    async def test_create_refusals(self):
        """pool_list is required, a non-empty array of existing pools;
        capabilities an object; no other key: 400, nothing made. A second
        PUT is 409."""
        await self.make_pool("a")
        for body in ({}, {"pool_list": []}, {"pool_list": "a"}, {"pool_list": [1]},
                     {"pool_list": ["a", "nope"]}, {"pool_list": ["a"], "capabilities": []},
                     {"pool_list": ["a"], "pool_group": "g"}):
            self.assertError(await self.request("PUT", "/v2/flavors/gold", body), 400)
        self.assertError(await self.request("PUT", "/v2/flavors/a.b", {"pool_list": ["a"]}), 400)
        self.assertError(await self.request("GET", "/v2/flavors/gold"), 404)
        self.assertIsNone((await self.request("GET", "/v2/pools/a")).json["flavor"])
        await self.make_flavor("gold", ["a"])
        self.assertError(await self.request("PUT", "/v2/flavors/gold", {"pool_list": ["a"]}),
                         409)

    async def test_patch(self):
        """PATCH sets the flavor's pools: pools dropped are detached, new
        ones attached; it answers the flavor; pool_list is required (400);
        a missing flavor is 404."""
        for name in ("a", "b", "c"):
            await self.make_pool(name)
        await self.make_flavor("gold", ["a", "b"])
        answer = await self.request("PATCH", "/v2/flavors/gold", {"pool_list": ["b", "c"]})
        self.assertEqual(answer.code, 200, answer.body)
        self.assertEqual(answer.json["pool_list"], ["b", "c"])
        flavors = {p["name"]: p["flavor"]
                   for p in (await self.request("GET", "/v2/pools")).json["pools"]}
        self.assertEqual(flavors, {"a": None, "b": "gold", "c": "gold"})
        for body in ({}, {"capabilities": {}}, {"pool_list": ["nope"]}):
            self.assertError(await self.request("PATCH", "/v2/flavors/gold", body), 400)
        self.assertError(await self.request("PATCH", "/v2/flavors/nope", {"pool_list": ["a"]}),
                         404)

    async def test_delete(self):
        """DELETE is 204 (for a missing flavor too) and detaches its pools."""
        await self.make_pool("a")
        await self.make_flavor("gold", ["a"])
        self.assertEqual((await self.request("DELETE", "/v2/flavors/gold")).code, 204)
        self.assertError(await self.request("GET", "/v2/flavors/gold"), 404)
        self.assertIsNone((await self.request("GET", "/v2/pools/a")).json["flavor"])
        self.assertEqual((await self.request("DELETE", "/v2/flavors/gold")).code, 204)

    async def test_queue_flavor(self):
        """With pooling, a queue PUT's _flavor must name a flavor (400, no
        queue); a known one places the queue in that flavor's pools and
        stays in its metadata."""
        await self.make_pool("plain", 1)
        await self.make_pool("a", 1)
        await self.make_flavor("gold", ["a"])
        for flavor in ("nope", 5, "no.dots"):
            answer = await self.request("PUT", "/v2/queues/jobs", {"_flavor": flavor})
            self.assertError(answer, 400)
        self.assertIsNone(await self.catalog.catalog.lookup(PROJECT, "jobs"))
        answer = await self.request("PUT", "/v2/queues/jobs", {"_flavor": "gold"})
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(await self.catalog.catalog.lookup(PROJECT, "jobs"), "a")
        self.assertEqual((await self.request("GET", "/v2/queues/jobs")).json["_flavor"], "gold")


class MongoPoolTests(PooledApiMixin, unittest.TestCase):
    """A MongoDB pool (a database of the MongoDB-wire test server) through
    the same API."""

    async def test_mongodb_flavor(self):
        """A MongoDB pool is created (its server answers), makes a flavor
        whose capabilities add HIGH_THROUGHPUT, takes the queues of that
        flavor (their messages stored there) and is refused in a flavor of
        sqlite pools; the health report shows it."""
        uri = fresh_database_uri(self)
        answer = await self.request("PUT", "/v2/pools/m", {"uri": uri, "weight": 1})
        self.assertEqual(answer.code, 201, answer.body)
        await self.make_flavor("fast", ["m"])
        shown = (await self.request("GET", "/v2/flavors/fast")).json
        self.assertEqual(shown["capabilities"],
                         ["FIFO", "CLAIMS", "DURABILITY", "AOD", "HIGH_THROUGHPUT"])
        self.assertEqual((await self.request("PUT", "/v2/queues/jobs",
                                             {"_flavor": "fast"})).code, 201)
        self.assertEqual(await self.catalog.catalog.lookup(PROJECT, "jobs"), "m")
        posted = await self.request("POST", "/v2/queues/jobs/messages",
                                    {"messages": [{"body": "hello"}]})
        self.assertEqual(posted.code, 201, posted.body)
        await self.make_pool("s")
        self.assertError(await self.request("PATCH", "/v2/flavors/fast",
                                            {"pool_list": ["m", "s"]}), 400, "HIGH_THROUGHPUT")
        health = (await self.request("GET", "/v2/health")).json
        self.assertEqual(health["m"]["storage_reachable"], True)
        self.assertError(await self.request("DELETE", "/v2/pools/m"), 403)


class HealthTests(PooledApiMixin, unittest.TestCase):
    async def test_pooled_health(self):
        """GET /v2/health with pooling reports the catalog and each pool's
        storage as reachable."""
        await self.make_pool("a")
        await self.make_pool("b")
        answer = await self.request("GET", "/v2/health")
        self.assertEqual(answer.code, 200, answer.body)
        self.assertEqual(answer.json, {
            "catalog_reachable": True,
            "a": {"storage_reachable": True, "operation_status": {}},
            "b": {"storage_reachable": True, "operation_status": {}}})

    async def test_catalog_down(self):
        """With the catalog's storage down the report says so (200)."""
        await self.make_pool("a")
        await self.catalog.close()
        answer = await self.request("GET", "/v2/health")
        self.assertEqual((answer.code, answer.json), (200, {"catalog_reachable": False}))

    async def test_home(self):
        """The home document lists rel/pools, rel/pool, rel/flavors and
        rel/flavor with their methods."""
        resources = (await self.request("GET", "/v2")).json["resources"]
        self.assertEqual(resources["rel/pool"]["hints"]["allow"],
                         ["GET", "PUT", "PATCH", "DELETE"])
        self.assertEqual(resources["rel/flavors"]["href-template"],
                         "/v2/flavors{?detailed,limit,marker}")
        self.assertLessEqual({"rel/pools", "rel/pool", "rel/flavors", "rel/flavor",
                              "rel/health"}, set(resources))


class NotServedTests(unittest.TestCase):
    """Without admin_mode or without pooling the section is absent."""

    async def test_absent(self):
        """Either setting off: every pool and flavor path is a JSON 404, the
        home document lists none of them, and a queue's _flavor is plain
        metadata (any value, no check)."""
        clock = new_clock()
        driver = SqliteDriver(":memory:", clock)
        await driver.open()
        self.addCleanup(driver.close)
        for overrides in ([("drivers", "admin_mode", "true")],
                          [("drivers", "pooling", "true")], []):
            api = ApiClient(driver, config.load(overrides=overrides), reactor=clock)
            for method, path in (("GET", "/v2/pools"), ("PUT", "/v2/pools/a"),
                                 ("GET", "/v2/flavors"), ("DELETE", "/v2/flavors/a")):
                answer = await api.request(method, path, project=PROJECT)
                self.assertEqual(answer.code, 404, (overrides, path))
                self.assertEqual(set(answer.json), {"title", "description"})
            home = (await api.get("/v2", project=PROJECT)).json["resources"]
            self.assertNotIn("rel/pools", home)
        answer = await api.put("/v2/queues/jobs", {"_flavor": 5}, project=PROJECT)
        self.assertEqual(answer.code, 201)
        self.assertEqual((await api.get("/v2/queues/jobs", project=PROJECT)).json["_flavor"], 5)


class AdminRoleTests(PooledApiMixin, unittest.TestCase):
    """With an auth strategy, only the admin role reaches the section."""

    def settings(self):
        return token_settings(self.tokens, *ADMIN)

    async def setUp(self):
        self.tokens = write_token_file(self.mktemp())
        await super().setUp()

    async def test_admin_only(self):
        """Without a token: 401; a member's token: 403; an admin's: served."""
        for path in ("/v2/pools", "/v2/flavors", "/v2/pools/a", "/v2/health"):
            self.assertError(await self.request("GET", path), 401)
            self.assertError(await self.request(
                "GET", path, headers={"X-Auth-Token": "beta-token"}, project=None), 403)
        self.assertEqual((await self.request("GET", "/v2/pools", headers=ROOT)).code, 200)
        answer = await self.request("PUT", "/v2/pools/a", {"uri": self.uri("a"), "weight": 1},
                                    headers=ROOT)
        self.assertEqual(answer.code, 201, answer.body)
