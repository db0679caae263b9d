"""The storage conformance suite: what every ``IStorageDriver`` must do.

``StorageConformanceMixin`` runs no test by itself. A driver's test module
combines it with ``twisted.trial.unittest.TestCase`` and provides:

``make_driver(clock)``
    A new, *unopened* driver whose only source of time is ``clock``. The
    mixin opens it in ``setUp`` and closes it at cleanup. Each test needs an
    empty database (a fresh file, a fresh MongoDB database, ...).
``make_second_driver(clock)`` (optional)
    Another unopened driver on the *same* database as the first, as a second
    daemon would have; tests about two daemons are skipped when it returns
    None (the default).

Every storage call is awaited: drivers may answer over a network, so no test
assumes a Deferred has already fired. Time is a ``task.Clock`` started at a
realistic epoch and advanced by hand. The rules come from
``docs/spec/semantics.md`` (cited as §n) and the storage interfaces.
"""

import uuid
from collections import Counter

from twisted.internet import defer, task
from twisted.trial.unittest import SkipTest
from zope.interface.verify import verifyObject

from marconi_tx import errors, json_text
from marconi_tx.storage.interfaces import (
    DEFAULT_PRIORITY,
    IClaimController,
    IMessageController,
    IQueueController,
    IStorageDriver,
)
from marconi_tx.storage.records import Claim, DeadLetter, MessageStamp, Queue, QueueStats

#: The clock's starting time: a realistic epoch, so that a driver mixing up
#: seconds and "since start" shows it.
START = 1_700_000_000
#: The queue most tests use.
QUEUE = "fizbit"
#: Ids no message can have: not decimal, zero, negative, past 64 bits.
BAD_MESSAGE_IDS = ("a", "zz", "0" * 24, "-1", "99999999999999999999", "0", "", "1.5")
#: Markers no listing can start from (the same, less "0" and "").
BAD_MARKERS = ("a", "zz", "0" * 24, "-1", "99999999999999999999", "1.5")
#: Ids no claim can have, plus a well-formed one never issued.
BAD_CLAIM_IDS = ("a", "zz", "-1", "", "0" * 24)
#: One client's UUID in three spellings (§2.3: echo compares UUID values).
CLIENT_SPELLINGS = (
    "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
    "3f2504e04f8911d39a0c0305e82c3301",
)


def ids_of(messages):
    """The ids of a list of messages (or of a claim's messages; [] for a
    claim that is None)."""
    if messages is None:
        return []
    if isinstance(messages, Claim):
        messages = messages.messages
    return [m.id for m in messages]


def concurrently(*calls):
    """Start every call (Deferreds and coroutines) before waiting for any,
    and fire with their results in order."""
    return defer.gatherResults([defer.ensureDeferred(c) for c in calls],
                               consumeErrors=True)


class DriverCaseMixin:
    """A driver (``make_driver(clock)``) opened on a ``task.Clock`` at
    ``START`` for each test, closed after it; ``second_driver`` opens a
    second one on the same database when the test case can make one."""

    def make_second_driver(self, clock):
        """Override to return a second unopened driver on the same database."""
        return None

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = self.make_driver(self.clock)
        return self._open(self.driver)

    def _open(self, driver):
        d = driver.open()
        d.addCallback(lambda _: self.addCleanup(driver.close))
        return d

    async def second_driver(self):
        """The opened second driver, or skip the test."""
        driver = self.make_second_driver(self.clock)
        if driver is None:
            raise SkipTest("this driver has no second connection to one database")
        await self._open(driver)
        return driver


class StorageConformanceMixin(DriverCaseMixin):
    """Driver-agnostic storage tests; see the module docstring."""

    def setUp(self):
        d = super().setUp()
        self.queues = self.driver.queues
        self.messages = self.driver.messages
        self.claims = self.driver.claims
        return d

    # -- helpers ---------------------------------------------------------

    async def make_queue(self, name=QUEUE, project=None, metadata=None):
        created = await self.queues.create(project, name, metadata)
        self.assertTrue(created)
        return name

    async def post(self, count, queue=QUEUE, project=None, ttl=120, client_uuid=None,
                   tag="m", driver=None):
        """Post ``count`` messages with bodies ``{"tag": tag, "n": i}``."""
        batch = [{"ttl": ttl, "body": {"tag": tag, "n": i}} for i in range(count)]
        return await (driver or self.driver).messages.post(project, queue, batch, client_uuid)

    async def listed(self, queue=QUEUE, project=None, **kwargs):
        """Ids on the first page (limit 20) of a listing."""
        kwargs.setdefault("limit", 20)
        return ids_of(await self.messages.list(project, queue, **kwargs))

    async def everything(self, queue=QUEUE, project=None):
        """Ids of every live message of a queue, claimed or not."""
        return await self.listed(queue, project, echo=True, include_claimed=True)

    async def claim(self, ttl=60, grace=60, limit=10, queue=QUEUE, project=None):
        return await self.claims.create(project, queue, ttl, grace, limit)

    async def gone(self, message_id, queue=QUEUE, project=None):
        """Assert that a message cannot be read by id."""
        await self.assertFailure(self.messages.get(project, queue, message_id),
                                 errors.MessageDoesNotExist)

    async def claim_gone(self, claim_id, queue=QUEUE, project=None):
        """Assert that a claim cannot be read."""
        await self.assertFailure(self.claims.get(project, queue, claim_id),
                                 errors.ClaimDoesNotExist)

    # -- the driver --------------------------------------------------------

    async def test_provides_interfaces(self):
        """The driver and its three controllers implement the storage interfaces."""
        self.assertTrue(verifyObject(IStorageDriver, self.driver))
        self.assertTrue(verifyObject(IQueueController, self.queues))
        self.assertTrue(verifyObject(IMessageController, self.messages))
        self.assertTrue(verifyObject(IClaimController, self.claims))

    async def test_is_alive(self):
        """An opened driver reports its engine alive."""
        self.assertIs(await self.driver.is_alive(), True)

    # -- queues (§5) -------------------------------------------------------

    async def test_queue_create_is_idempotent(self):
        """Create reports True for a new queue, False when it already exists."""
        self.assertIs(await self.queues.exists(None, QUEUE), False)
        self.assertIs(await self.queues.create(None, QUEUE), True)
        self.assertIs(await self.queues.exists(None, QUEUE), True)
        self.assertIs(await self.queues.create(None, QUEUE), False)
        self.assertEqual(await self.queues.list(None), [Queue(QUEUE)])

    async def test_queue_recreate_leaves_metadata(self):
        """Re-creating a queue never touches its metadata; new queues start with {}."""
        await self.make_queue(metadata={"a": 1})
        self.assertIs(await self.queues.create(None, QUEUE, {"b": 2}), False)
        self.assertEqual(await self.queues.get_metadata(None, QUEUE), {"a": 1})
        await self.make_queue("plain")
        self.assertEqual(await self.queues.get_metadata(None, "plain"), {})

    async def test_queue_names_are_case_sensitive(self):
        """Names differing only in case are different queues (§1.2)."""
        await self.make_queue("Jobs")
        self.assertIs(await self.queues.exists(None, "jobs"), False)
        self.assertIs(await self.queues.create(None, "jobs"), True)
        self.assertEqual(len(await self.queues.list(None)), 2)

    async def test_queue_delete_is_idempotent(self):
        """Deleting removes the queue; deleting a missing queue succeeds."""
        await self.queues.delete(None, "never-was")
        await self.make_queue()
        await self.queues.delete(None, QUEUE)
        self.assertIs(await self.queues.exists(None, QUEUE), False)
        await self.assertFailure(self.queues.get_metadata(None, QUEUE), errors.QueueDoesNotExist)
        await self.queues.delete(None, QUEUE)
        self.assertEqual(await self.queues.list(None), [])

    async def test_queue_list_sorted_by_name_bytes(self):
        """Queues are listed by name in byte order (upper case before lower)."""
        names = ["b", "_x", "B", "a-1", "a_1", "A", "9", "a"]
        for name in names:
            await self.make_queue(name)
        listed = [q.name for q in await self.queues.list(None, limit=20)]
        self.assertEqual(listed, sorted(names, key=lambda n: n.encode()))

    async def test_queue_list_marker_and_limit(self):
        """Pages hold at most ``limit`` names strictly after ``marker``."""
        for name in ["e", "c", "a", "d", "b"]:
            await self.make_queue(name)

        async def page(marker, limit):
            return [q.name for q in await self.queues.list(None, marker, limit)]

        self.assertEqual(await page(None, 2), ["a", "b"])
        self.assertEqual(await page("b", 2), ["c", "d"])
        self.assertEqual(await page("d", 2), ["e"])
        self.assertEqual(await page("e", 2), [])
        self.assertEqual(await page("bb", 10), ["c", "d", "e"])
        self.assertEqual(await page("zzz", 10), [])

    async def test_queue_list_default_limit(self):
        """Without a limit, a queue listing holds ten names."""
        for i in range(12):
            await self.make_queue(f"q{i:02}")
        listed = await self.queues.list(None)
        self.assertEqual([q.name for q in listed], [f"q{i:02}" for i in range(10)])

    async def test_queue_list_detailed(self):
        """A detailed listing carries each queue's metadata; a plain one does not."""
        await self.make_queue("a", metadata={"owner": "ops", "n": [1, 2]})
        await self.make_queue("b")
        self.assertEqual(await self.queues.list(None, detailed=True),
                         [Queue("a", {"owner": "ops", "n": [1, 2]}), Queue("b", {})])
        self.assertEqual(await self.queues.list(None), [Queue("a"), Queue("b")])

    async def test_queue_project_isolation(self):
        """The global namespace and each project see only their own queues (§1.2)."""
        await self.make_queue("q", None, {"who": "global"})
        await self.make_queue("q", "p1", {"who": "p1"})
        await self.make_queue("only", "p2")
        self.assertEqual(await self.queues.list(None), [Queue("q")])
        self.assertEqual(await self.queues.list("p1"), [Queue("q")])
        self.assertEqual(await self.queues.list("p2"), [Queue("only")])
        self.assertIs(await self.queues.exists("p2", "q"), False)
        self.assertIs(await self.queues.exists(None, "only"), False)
        self.assertEqual(await self.queues.get_metadata(None, "q"), {"who": "global"})
        self.assertEqual(await self.queues.get_metadata("p1", "q"), {"who": "p1"})
        await self.queues.set_metadata("p1", "q", {"who": "changed"})
        self.assertEqual(await self.queues.get_metadata(None, "q"), {"who": "global"})
        await self.queues.delete("p1", "q")
        self.assertIs(await self.queues.exists(None, "q"), True)
        self.assertIs(await self.queues.exists("p1", "q"), False)
        await self.assertFailure(self.queues.stats("p2", "q"), errors.QueueDoesNotExist)

    async def test_metadata_replace(self):
        """Setting metadata replaces the whole object; values round-trip as JSON."""
        await self.make_queue()
        await self.queues.set_metadata(None, QUEUE, {"a": 1, "b": 2})
        await self.queues.set_metadata(None, QUEUE, {"c": 3})
        self.assertEqual(await self.queues.get_metadata(None, QUEUE), {"c": 3})
        rich = {"ünï": "☃", "nested": {"list": [1, None, True, 2.5]}, "big": 2**63 - 1}
        await self.queues.set_metadata(None, QUEUE, rich)
        self.assertEqual(await self.queues.get_metadata(None, QUEUE), rich)
        await self.queues.set_metadata(None, QUEUE, {})
        self.assertEqual(await self.queues.get_metadata(None, QUEUE), {})

    async def test_metadata_missing_queue(self):
        """Metadata of a missing queue raises QueueDoesNotExist and creates nothing."""
        await self.assertFailure(self.queues.get_metadata(None, "nope"), errors.QueueDoesNotExist)
        await self.assertFailure(self.queues.set_metadata(None, "nope", {"a": 1}),
                                 errors.QueueDoesNotExist)
        self.assertIs(await self.queues.exists(None, "nope"), False)

    async def test_stats_empty_queue(self):
        """An empty queue has zero counts and no oldest/newest."""
        await self.make_queue()
        self.assertEqual(await self.queues.stats(None, QUEUE),
                         QueueStats(free=0, claimed=0, total=0))

    async def test_stats_missing_queue(self):
        """Stats of a missing queue raise QueueDoesNotExist."""
        await self.assertFailure(self.queues.stats(None, "nope"), errors.QueueDoesNotExist)

    async def test_stats_counts_follow_claims(self):
        """free/claimed/total follow claims, releases, claim expiry and deletes."""
        await self.make_queue()
        ids = await self.post(5)

        async def counts():
            stats = await self.queues.stats(None, QUEUE)
            return stats.free, stats.claimed, stats.total

        self.assertEqual(await counts(), (5, 0, 5))
        first = await self.claim(ttl=60, limit=2)
        self.assertEqual(await counts(), (3, 2, 5))
        self.clock.advance(10)
        await self.claim(ttl=60, limit=1)
        self.assertEqual(await counts(), (2, 3, 5))
        await self.claims.delete(None, QUEUE, first.id)
        self.assertEqual(await counts(), (4, 1, 5))
        self.clock.advance(60)
        self.assertEqual(await counts(), (5, 0, 5))
        await self.messages.delete(None, QUEUE, ids[0])
        self.assertEqual(await counts(), (4, 0, 4))

    async def test_stats_oldest_newest(self):
        """oldest/newest are the lowest/highest marker, claimed ones included,
        with their creation time and age."""
        await self.make_queue()
        [first] = await self.post(1)
        self.clock.advance(10)
        second, third = await self.post(2)
        self.clock.advance(5)
        await self.claim(limit=1)
        stats = await self.queues.stats(None, QUEUE)
        self.assertEqual(stats.oldest, MessageStamp(id=first, created=START, age=15))
        self.assertEqual(stats.newest, MessageStamp(id=third, created=START + 10, age=5))
        await self.messages.bulk_delete(None, QUEUE, [first, third])
        stats = await self.queues.stats(None, QUEUE)
        self.assertEqual(stats.oldest.id, second)
        self.assertEqual(stats.newest.id, second)
        self.assertEqual((stats.free, stats.claimed, stats.total), (1, 0, 1))

    # -- posting (§2.4, §4.1) ---------------------------------------------

    async def test_post_returns_ids_in_submission_order(self):
        """A batch's ids come back in submission order with increasing markers,
        and a later batch gets higher markers."""
        await self.make_queue()
        first = await self.post(4, tag="first")
        second = await self.post(3, tag="second")
        for batch in (first, second):
            self.assertTrue(all(isinstance(i, str) for i in batch))
            self.assertEqual([int(i) for i in batch], sorted({int(i) for i in batch}))
        self.assertLess(int(first[-1]), int(second[0]))
        listed = await self.messages.list(None, QUEUE, limit=20)
        self.assertEqual(ids_of(listed), first + second)
        self.assertEqual([m.body for m in listed],
                         [{"tag": "first", "n": i} for i in range(4)]
                         + [{"tag": "second", "n": i} for i in range(3)])

    async def test_post_to_missing_queue(self):
        """Posting to a missing queue raises QueueDoesNotExist, also when a
        queue of that name exists in another project, and stores nothing."""
        await self.assertFailure(defer.ensureDeferred(self.post(1, queue="nope")),
                                 errors.QueueDoesNotExist)
        await self.make_queue(QUEUE, "p1")
        await self.assertFailure(defer.ensureDeferred(self.post(1)), errors.QueueDoesNotExist)
        self.assertIs(await self.queues.exists(None, QUEUE), False)
        self.assertEqual(await self.everything(QUEUE, "p1"), [])

    async def test_post_bodies_round_trip(self):
        """Any JSON value is a body and reads back unchanged."""
        bodies = [{"a": [1, {"b": None}]}, [1, "two", 3.5], "text", 42, -2**63,
                  2**63 - 1, True, False, None, "ünïcødé ☃", {}, []]
        await self.make_queue()
        ids = await self.messages.post(None, QUEUE, [{"ttl": 60, "body": b} for b in bodies])
        self.assertEqual(len(ids), len(bodies))
        for mid, body in zip(ids, bodies):
            self.assertEqual((await self.messages.get(None, QUEUE, mid)).body, body)
        listed = await self.messages.list(None, QUEUE, limit=20)
        self.assertEqual([m.body for m in listed], bodies)

    async def test_deepest_bodies_read_everywhere(self):
        """Bodies and metadata nested as deep as the API can ever accept
        (json_text.READ_NESTING, strings full of brackets beside them) read
        back unchanged by list, get, bulk_get, claim create and claim get."""
        deep, meta = "[[{", {"s": "]]}"}
        for level in range(json_text.READ_NESTING):
            deep = [deep] if level % 2 else {"k": deep}
            if level < json_text.READ_NESTING - 1:
                meta = {"m": meta}
        bodies = ["[" * 5000, deep, {"after": 1}]
        await self.make_queue(metadata=meta)
        ids = await self.messages.post(None, QUEUE, [{"ttl": 60, "body": b} for b in bodies])
        self.assertEqual([m.body for m in await self.messages.list(None, QUEUE)], bodies)
        self.assertEqual([(await self.messages.get(None, QUEUE, i)).body for i in ids],
                         bodies)
        self.assertEqual([m.body for m in await self.messages.bulk_get(None, QUEUE, ids)],
                         bodies)
        claim = await self.claim()
        self.assertEqual([m.body for m in claim.messages], bodies)
        claimed = await self.claims.get(None, QUEUE, claim.id)
        self.assertEqual([m.body for m in claimed.messages], bodies)
        self.assertEqual(await self.queues.get_metadata(None, QUEUE), meta)
        [listed] = await self.queues.list(None, detailed=True)
        self.assertEqual(listed.metadata, meta)

    async def test_message_fields(self):
        """A fresh message has the documented fields: no claim, default
        priority, available at once, not buried."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=300)
        expected = {"id": mid, "ttl": 300, "age": 0, "created": START,
                    "body": {"tag": "m", "n": 0}, "claim_id": None, "claimed": False,
                    "claim_count": 0, "priority": DEFAULT_PRIORITY,
                    "available_at": START, "buried": False}
        reads = [await self.messages.get(None, QUEUE, mid),
                 (await self.messages.bulk_get(None, QUEUE, [mid]))[0],
                 (await self.messages.list(None, QUEUE))[0]]
        for message in reads:
            self.assertEqual({k: getattr(message, k) for k in expected}, expected)

    async def test_age_grows_ttl_constant(self):
        """Age counts whole seconds since posting; ttl stays as posted."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=300)
        self.clock.advance(7.9)
        message = await self.messages.get(None, QUEUE, mid)
        self.assertEqual((message.age, message.ttl, message.created), (7, 300, START))

    # -- listing (§2.3, §4.1) ---------------------------------------------

    async def test_list_pages_with_marker(self):
        """Ten messages paged with limit 3 come as 3, 3, 3, 1, then nothing,
        each page resuming after the last id of the previous one."""
        await self.make_queue()
        ids = await self.post(10)
        marker, sizes, seen = None, [], []
        for _ in range(5):
            page = ids_of(await self.messages.list(None, QUEUE, marker=marker, limit=3))
            sizes.append(len(page))
            seen += page
            marker = page[-1] if page else marker
        self.assertEqual(sizes, [3, 3, 3, 1, 0])
        self.assertEqual(seen, ids)

    async def test_list_default_limit(self):
        """Without a limit, a message listing holds the ten oldest."""
        await self.make_queue()
        ids = await self.post(12)
        self.assertEqual(ids_of(await self.messages.list(None, QUEUE)), ids[:10])

    async def test_list_malformed_marker(self):
        """A malformed marker gives an empty page, never an error."""
        await self.make_queue()
        await self.post(2)
        for marker in BAD_MARKERS:
            self.assertEqual(await self.messages.list(None, QUEUE, marker=marker), [], marker)

    async def test_list_missing_queue(self):
        """Listing a missing queue gives []."""
        self.assertEqual(await self.messages.list(None, "nope"), [])
        self.assertEqual(await self.messages.list(None, "nope", include_claimed=True,
                                                  echo=True), [])

    async def test_list_echo_by_uuid_value(self):
        """Own messages are hidden unless echo, comparing clients by UUID value
        whatever the spelling; claims still take them (§9 item 8)."""
        await self.make_queue()
        poster, same, also_same = (uuid.UUID(s) for s in CLIENT_SPELLINGS)
        other = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
        own = await self.post(2, client_uuid=poster)
        anonymous = await self.post(1)
        for reader in (same, also_same):
            self.assertEqual(await self.listed(client_uuid=reader), anonymous)
            self.assertEqual(await self.listed(client_uuid=reader, echo=True), own + anonymous)
        self.assertEqual(await self.listed(client_uuid=other), own + anonymous)
        self.assertEqual(await self.listed(), own + anonymous)
        self.assertEqual(ids_of(await self.claim(limit=2)), own)

    async def test_list_include_claimed(self):
        """Claimed messages are hidden by default and shown, marked as claimed,
        with include_claimed."""
        await self.make_queue()
        ids = await self.post(4)
        claim = await self.claim(limit=2)
        self.assertEqual(await self.listed(), ids[2:])
        listed = await self.messages.list(None, QUEUE, include_claimed=True)
        self.assertEqual(ids_of(listed), ids)
        self.assertEqual([(m.claimed, m.claim_id) for m in listed],
                         [(True, claim.id)] * 2 + [(False, None)] * 2)

    # -- reading by id ----------------------------------------------------

    async def test_get_claimed_message(self):
        """Get returns a claimed message, with its claim."""
        await self.make_queue()
        [mid] = await self.post(1)
        claim = await self.claim()
        message = await self.messages.get(None, QUEUE, mid)
        self.assertEqual((message.id, message.claimed, message.claim_id),
                         (mid, True, claim.id))

    async def test_get_malformed_and_foreign_ids(self):
        """Malformed ids and ids of another queue, project or a missing queue
        raise MessageDoesNotExist (§1.3, §9 item 14)."""
        await self.make_queue()
        await self.make_queue("other")
        await self.make_queue(QUEUE, "p1")
        [mine] = await self.post(1)
        [foreign] = await self.post(1, queue="other")
        [other_project] = await self.post(1, project="p1")
        # Only the canonical form names a message: no leading zeros.
        for mid in BAD_MESSAGE_IDS + (foreign, other_project, "0" + mine):
            await self.gone(mid)
        await self.gone(foreign, queue="nope")

    async def test_bulk_get_skips_bad_ids(self):
        """bulk_get returns the existing messages among the ids, claimed ones
        included, skipping malformed, unknown and foreign ids."""
        await self.make_queue()
        await self.make_queue("other")
        ids = await self.post(3)
        [foreign] = await self.post(1, queue="other")
        await self.claim(limit=1)
        await self.messages.delete(None, QUEUE, ids[1])
        found = await self.messages.bulk_get(
            None, QUEUE, list(BAD_MESSAGE_IDS) + [ids[2], foreign, ids[1], ids[0]])
        self.assertEqual(sorted(ids_of(found), key=int), [ids[0], ids[2]])
        self.assertEqual(await self.messages.bulk_get(None, QUEUE, list(BAD_MESSAGE_IDS)), [])
        self.assertEqual(await self.messages.bulk_get(None, "nope", ids), [])

    async def test_message_project_isolation(self):
        """Messages of one queue name in two namespaces never mix: list, get,
        bulk_get, delete, bulk_delete, pop and stats see only their own."""
        await self.make_queue(QUEUE, None)
        await self.make_queue(QUEUE, "p1")
        [mine] = await self.post(1, tag="global")
        [theirs] = await self.post(1, project="p1", tag="p1")
        self.assertEqual(await self.everything(), [mine])
        self.assertEqual(await self.everything(project="p1"), [theirs])
        await self.gone(theirs)
        self.assertEqual(await self.messages.bulk_get(None, QUEUE, [theirs]), [])
        await self.messages.delete(None, QUEUE, theirs)
        await self.messages.bulk_delete(None, QUEUE, [theirs])
        self.assertEqual(ids_of(await self.messages.pop("p2", QUEUE, 10)), [])
        self.assertEqual((await self.queues.stats("p1", QUEUE)).total, 1)
        self.assertEqual(ids_of(await self.messages.pop(None, QUEUE, 10)), [mine])
        self.assertEqual(await self.everything(project="p1"), [theirs])

    # -- deleting (§2.5) --------------------------------------------------

    async def test_delete_unclaimed(self):
        """Deleting an unclaimed message without a claim id removes it, once."""
        await self.make_queue()
        ids = await self.post(2)
        await self.messages.delete(None, QUEUE, ids[0])
        await self.gone(ids[0])
        self.assertEqual(await self.everything(), ids[1:])
        await self.messages.delete(None, QUEUE, ids[0])

    async def test_delete_unknown_ids_silently(self):
        """Deleting malformed or unknown ids, or in a missing queue, succeeds
        and removes nothing."""
        await self.make_queue()
        ids = await self.post(2)
        for mid in BAD_MESSAGE_IDS + (str(int(ids[-1]) + 1000),):
            await self.messages.delete(None, QUEUE, mid)
        await self.messages.delete(None, "nope", ids[0])
        self.assertEqual(await self.everything(), ids)

    async def test_delete_claimed_without_claim_id(self):
        """A message under a live claim cannot be deleted without its claim id."""
        await self.make_queue()
        [mid] = await self.post(1)
        await self.claim()
        await self.assertFailure(self.messages.delete(None, QUEUE, mid),
                                 errors.MessageIsClaimed)
        self.assertEqual(await self.everything(), [mid])

    async def test_delete_with_malformed_claim_id(self):
        """A malformed claim id raises ClaimDoesNotExist and keeps the message,
        claimed or not."""
        await self.make_queue()
        claimed, free = await self.post(2)
        await self.claim(limit=1)
        for claim_id in ("a", "zz", "-1", "", "not a claim"):
            for mid in (claimed, free):
                await self.assertFailure(self.messages.delete(None, QUEUE, mid, claim_id),
                                         errors.ClaimDoesNotExist)
        self.assertEqual(await self.everything(), [claimed, free])

    async def test_delete_unclaimed_with_claim_id(self):
        """A claim id given for a message that never was claimed raises
        MessageNotClaimed and keeps it."""
        await self.make_queue()
        [mid] = await self.post(1)
        [other] = await self.post(1, queue=await self.make_queue("other"))
        claim = await self.claim(queue="other")
        self.assertEqual(ids_of(claim), [other])
        for claim_id in (claim.id, "0" * 24):
            await self.assertFailure(self.messages.delete(None, QUEUE, mid, claim_id),
                                     errors.MessageNotClaimed)
        self.assertEqual(await self.everything(), [mid])

    async def test_delete_with_other_claim_id(self):
        """A claim id that is not the one recorded on the message raises
        ClaimMismatch and keeps it."""
        await self.make_queue()
        first, second = await self.post(2)
        await self.claim(limit=1)
        other = await self.claim(limit=1)
        for claim_id in (other.id, "0" * 24):
            await self.assertFailure(self.messages.delete(None, QUEUE, first, claim_id),
                                     errors.ClaimMismatch)
        self.assertEqual(await self.everything(), [first, second])

    async def test_delete_with_own_claim_id(self):
        """The claim id recorded on a claimed message deletes it."""
        await self.make_queue()
        first, second = await self.post(2)
        claim = await self.claim()
        await self.messages.delete(None, QUEUE, first, claim.id)
        await self.gone(first)
        self.assertEqual(ids_of(await self.claims.get(None, QUEUE, claim.id)), [second])

    async def test_delete_with_expired_recorded_claim_id(self):
        """A claim that expired but was neither released nor replaced still
        deletes its messages (§2.5, §9 item 5)."""
        await self.make_queue()
        [mid] = await self.post(1)
        claim = await self.claim(ttl=60)
        self.clock.advance(60)
        await self.claim_gone(claim.id)
        await self.messages.delete(None, QUEUE, mid, claim.id)
        await self.gone(mid)

    async def test_delete_with_superseded_claim_id(self):
        """Once another claim took the message, the old claim id raises
        ClaimMismatch and the new one deletes."""
        await self.make_queue()
        [mid] = await self.post(1)
        old = await self.claim(ttl=60)
        self.clock.advance(60)
        new = await self.claim(ttl=60)
        self.assertEqual(ids_of(new), [mid])
        await self.assertFailure(self.messages.delete(None, QUEUE, mid, old.id),
                                 errors.ClaimMismatch)
        await self.messages.delete(None, QUEUE, mid, new.id)
        await self.gone(mid)

    async def test_delete_with_released_claim_id(self):
        """Releasing clears the recorded claim: its id then raises
        MessageNotClaimed and the message is kept."""
        await self.make_queue()
        [mid] = await self.post(1)
        claim = await self.claim()
        await self.claims.delete(None, QUEUE, claim.id)
        await self.assertFailure(self.messages.delete(None, QUEUE, mid, claim.id),
                                 errors.MessageNotClaimed)
        self.assertEqual((await self.messages.get(None, QUEUE, mid)).claim_id, None)

    async def test_delete_after_claim_expiry_without_claim_id(self):
        """After its claim expired a message is deletable without a claim id."""
        await self.make_queue()
        [mid] = await self.post(1)
        await self.claim(ttl=60)
        self.clock.advance(59)
        await self.assertFailure(self.messages.delete(None, QUEUE, mid),
                                 errors.MessageIsClaimed)
        self.clock.advance(1)
        await self.messages.delete(None, QUEUE, mid)
        await self.gone(mid)

    async def test_delete_through_other_queue(self):
        """Deleting a message id through another queue, one by one or in bulk,
        leaves the message alone."""
        await self.make_queue()
        await self.make_queue("other")
        [mid] = await self.post(1)
        await self.messages.delete(None, "other", mid)
        await self.messages.bulk_delete(None, "other", [mid])
        await self.messages.bulk_delete(None, "nope", [mid])
        self.assertEqual(await self.everything(), [mid])

    async def test_bulk_delete_ignores_claims(self):
        """Bulk delete removes the listed messages, claimed or not, ignoring
        malformed, unknown and foreign ids."""
        await self.make_queue()
        await self.make_queue("other")
        ids = await self.post(4)
        [foreign] = await self.post(1, queue="other")
        await self.claim(limit=2)
        await self.messages.bulk_delete(
            None, QUEUE, list(BAD_MESSAGE_IDS) + [ids[0], ids[2], foreign, "123456789"])
        self.assertEqual(await self.everything(), [ids[1], ids[3]])
        self.assertEqual(await self.everything("other"), [foreign])
        self.assertEqual((await self.queues.stats(None, QUEUE)).claimed, 1)

    # -- pop (§6) ----------------------------------------------------------

    async def test_pop_oldest_unclaimed_first(self):
        """Pop removes and returns unclaimed messages oldest first, never a
        claimed one; claimed ones become poppable when their claim expires."""
        await self.make_queue()
        ids = await self.post(5)
        await self.claim(ttl=60, limit=2)
        popped = await self.messages.pop(None, QUEUE, 2)
        self.assertEqual(ids_of(popped), ids[2:4])
        self.assertEqual([m.body for m in popped], [{"tag": "m", "n": n} for n in (2, 3)])
        await self.gone(ids[2])
        self.assertEqual(ids_of(await self.messages.pop(None, QUEUE, 10)), ids[4:])
        self.assertEqual(await self.messages.pop(None, QUEUE, 10), [])
        self.assertEqual(await self.everything(), ids[:2])
        self.clock.advance(60)
        self.assertEqual(ids_of(await self.messages.pop(None, QUEUE, 10)), ids[:2])
        self.assertEqual(await self.everything(), [])

    async def test_pop_missing_or_empty_queue(self):
        """Pop on a missing or empty queue returns []."""
        self.assertEqual(await self.messages.pop(None, "nope", 5), [])
        await self.make_queue()
        self.assertEqual(await self.messages.pop(None, QUEUE, 5), [])

    async def check_pops_disjoint(self, first, second):
        await self.make_queue()
        ids = await self.post(8)
        a, b = await concurrently(first.messages.pop(None, QUEUE, 3),
                                  second.messages.pop(None, QUEUE, 3))
        a, b = ids_of(a), ids_of(b)
        self.assertFalse(set(a) & set(b))
        for popped in (a, b):
            self.assertLessEqual(len(popped), 3)
            self.assertEqual(popped, sorted(popped, key=int))
        self.assertTrue(a or b)
        remaining = await self.everything()
        self.assertEqual(sorted(a + b + remaining, key=int), ids)

    async def test_pops_concurrent_disjoint(self):
        """Two pops in flight at once never return the same message, and
        nothing is lost (§9 item 11)."""
        await self.check_pops_disjoint(self.driver, self.driver)

    # -- expiry (§2.2, §9 item 9) -------------------------------------------

    async def test_message_expiry(self):
        """A ttl-60 message is visible everywhere for 59 s and hidden from
        list, get, bulk_get, claim, pop and stats at 60 s."""
        await self.make_queue()
        [short] = await self.post(1, ttl=60)
        [long] = await self.post(1, ttl=120)
        self.clock.advance(59)
        self.assertEqual(await self.listed(), [short, long])
        self.assertEqual((await self.messages.get(None, QUEUE, short)).age, 59)
        self.assertEqual(len(await self.messages.bulk_get(None, QUEUE, [short])), 1)
        stats = await self.queues.stats(None, QUEUE)
        self.assertEqual((stats.total, stats.oldest.id), (2, short))
        self.clock.advance(1)
        self.assertEqual(await self.everything(), [long])
        await self.gone(short)
        self.assertEqual(await self.messages.bulk_get(None, QUEUE, [short]), [])
        stats = await self.queues.stats(None, QUEUE)
        self.assertEqual((stats.free, stats.total, stats.oldest.id), (1, 1, long))
        claim = await self.claim()
        self.assertEqual(ids_of(claim), [long])
        await self.claims.delete(None, QUEUE, claim.id)
        self.assertEqual(ids_of(await self.messages.pop(None, QUEUE, 10)), [long])

    # -- claims (§3) ---------------------------------------------------------

    async def test_claim_fifo_and_limit(self):
        """Claims take up to ``limit`` free messages oldest first; when none is
        free the claim is None."""
        await self.make_queue()
        ids = await self.post(5)
        self.assertEqual(ids_of(await self.claim(limit=2)), ids[0:2])
        self.assertEqual(ids_of(await self.claim(limit=2)), ids[2:4])
        self.assertEqual(ids_of(await self.claim(limit=10)), ids[4:])
        self.assertIsNone(await self.claim(limit=10))

    async def test_claim_fields(self):
        """A new claim has a fresh id, its ttl, age 0, its expiry instant and
        its messages marked as claimed by it."""
        await self.make_queue()
        ids = await self.post(2)
        self.clock.advance(3)
        claim = await self.claim(ttl=90, grace=60)
        self.assertIsInstance(claim.id, str)
        self.assertEqual((claim.ttl, claim.age, claim.expires),
                         (90, 0, START + 3 + 90))
        self.assertEqual(ids_of(claim), ids)
        for n, message in enumerate(claim.messages):
            self.assertEqual((message.claimed, message.claim_id, message.age,
                              message.body), (True, claim.id, 3, {"tag": "m", "n": n}))
        [later] = await self.post(1)
        another = await self.claim()
        self.assertNotEqual(another.id, claim.id)
        self.assertEqual(ids_of(another), [later])

    async def test_claim_nothing_free(self):
        """Claiming an empty queue, or one whose messages are all claimed, gives None."""
        await self.make_queue()
        self.assertIsNone(await self.claim())
        await self.post(2)
        await self.claim()
        self.assertIsNone(await self.claim())

    async def test_claim_missing_queue(self):
        """Claiming a missing queue gives None, even if another project has it."""
        self.assertIsNone(await self.claim(queue="nope"))
        await self.make_queue(QUEUE, "p1")
        await self.post(1, project="p1")
        self.assertIsNone(await self.claim())

    async def test_claim_extension_examples(self):
        """§3.3 on fresh ttl-120 messages: claim (60, 30) keeps ttl 120,
        (100, 22) makes it 122, (777, 0) makes it 777; age keeps growing."""
        await self.make_queue()
        results = []
        for ttl, grace in ((60, 30), (100, 22), (777, 0)):
            [mid] = await self.post(1, ttl=120)
            claim = await self.claim(ttl=ttl, grace=grace, limit=1)
            self.assertEqual(ids_of(claim), [mid])
            results.append((mid, claim.messages[0].ttl))
            self.clock.advance(10)
        self.assertEqual([ttl for _, ttl in results], [120, 122, 777])
        for (mid, ttl), age in zip(results, (30, 20, 10)):
            message = await self.messages.get(None, QUEUE, mid)
            self.assertEqual((message.ttl, message.age), (ttl, age))

    async def test_claim_extension_of_aged_message(self):
        """A message that would die before claim expiry plus grace lives until
        exactly then, with ttl = claim ttl + grace and its age untouched."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=120)
        self.clock.advance(50)
        claim = await self.claim(ttl=60, grace=30)
        self.assertEqual((claim.messages[0].ttl, claim.messages[0].age), (90, 50))
        self.clock.advance(89)
        message = await self.messages.get(None, QUEUE, mid)
        self.assertEqual((message.ttl, message.age, message.claimed), (90, 139, False))
        self.clock.advance(1)
        await self.gone(mid)

    async def test_claim_never_shortens_life(self):
        """A message outliving claim expiry plus grace keeps its ttl and expiry,
        also when expiry plus grace equals its end exactly."""
        await self.make_queue()
        [exact] = await self.post(1, ttl=130)
        [long] = await self.post(1, ttl=300)
        self.clock.advance(10)
        claim = await self.claim(ttl=60, grace=60)
        self.assertEqual([m.ttl for m in claim.messages], [130, 300])
        self.clock.advance(119)
        self.assertEqual(await self.listed(), [exact, long])
        self.clock.advance(1)
        self.assertEqual(await self.everything(), [long])
        self.assertEqual((await self.messages.get(None, QUEUE, long)).ttl, 300)

    async def test_claim_mixing_extended_and_kept_messages(self):
        """One claim over messages of which only some need extending holds
        them all, in marker order, each with its own resulting ttl."""
        await self.make_queue()
        ids = [(await self.post(1, ttl=ttl))[0] for ttl in (300, 60, 300, 90)]
        claim = await self.claim(ttl=60, grace=60)
        self.assertEqual([(m.id, m.ttl) for m in claim.messages],
                         list(zip(ids, (300, 120, 300, 120))))
        held = await self.claims.get(None, QUEUE, claim.id)
        self.assertEqual(ids_of(held.messages), ids)
        self.assertEqual(await self.listed(), [])

    async def test_claim_get_age_and_ttl(self):
        """A claim read later reports its ttl, its age since creation, and its
        messages with their own ages."""
        await self.make_queue()
        ids = await self.post(2)
        claim = await self.claim(ttl=90)
        self.clock.advance(25)
        got = await self.claims.get(None, QUEUE, claim.id)
        self.assertEqual((got.id, got.ttl, got.age, got.expires),
                         (claim.id, 90, 25, START + 90))
        self.assertEqual(ids_of(got), ids)
        self.assertEqual([m.age for m in got.messages], [25, 25])

    async def test_claim_get_lists_remaining_messages(self):
        """A claim lists only the messages still held: deleted ones vanish."""
        await self.make_queue()
        ids = await self.post(3)
        claim = await self.claim()
        await self.messages.delete(None, QUEUE, ids[0], claim.id)
        self.assertEqual(ids_of(await self.claims.get(None, QUEUE, claim.id)), ids[1:])
        await self.messages.bulk_delete(None, QUEUE, [ids[2]])
        self.assertEqual(ids_of(await self.claims.get(None, QUEUE, claim.id)), [ids[1]])

    async def test_claim_get_bad_ids(self):
        """Malformed, unknown and foreign claim ids raise ClaimDoesNotExist."""
        await self.make_queue()
        await self.make_queue("other")
        await self.make_queue(QUEUE, "p1")
        await self.post(1)
        claim = await self.claim()
        for claim_id in BAD_CLAIM_IDS:
            await self.claim_gone(claim_id)
        await self.claim_gone(claim.id, queue="other")
        await self.claim_gone(claim.id, queue="nope")
        await self.claim_gone(claim.id, project="p1")
        self.assertEqual((await self.claims.get(None, QUEUE, claim.id)).id, claim.id)

    async def test_claim_update_renews(self):
        """Renewing sets the claim's ttl and expiry from now (age restarts) and,
        without grace, extends its messages to the new expiry (§9 item 7)."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=120)
        claim = await self.claim(ttl=60, grace=0)
        self.assertEqual(claim.messages[0].ttl, 120)
        self.clock.advance(30)
        await self.claims.update(None, QUEUE, claim.id, 300)
        got = await self.claims.get(None, QUEUE, claim.id)
        self.assertEqual((got.ttl, got.age, got.expires), (300, 0, START + 330))
        self.assertEqual([(m.ttl, m.age) for m in got.messages], [(300, 30)])
        self.clock.advance(299)
        self.assertEqual((await self.claims.get(None, QUEUE, claim.id)).age, 299)
        self.assertEqual(await self.listed(), [])
        message = await self.messages.get(None, QUEUE, mid)
        self.assertEqual((message.claimed, message.claim_id), (True, claim.id))
        self.clock.advance(1)
        await self.claim_gone(claim.id)

    async def test_claim_update_extends_messages_with_grace(self):
        """Renewing with a grace extends messages to the new expiry plus grace,
        with ttl = new claim ttl + grace; the claim expires on its own ttl."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=120)
        claim = await self.claim(ttl=60, grace=60)
        self.clock.advance(10)
        await self.claims.update(None, QUEUE, claim.id, 100, grace=50)
        self.assertEqual((await self.messages.get(None, QUEUE, mid)).ttl, 150)
        self.clock.advance(99)
        self.assertEqual(await self.listed(), [])
        self.clock.advance(1)
        await self.claim_gone(claim.id)
        self.assertEqual(await self.listed(), [mid])
        self.clock.advance(49)
        self.assertEqual(await self.listed(), [mid])
        self.clock.advance(1)
        await self.gone(mid)

    async def test_claim_update_never_shortens_life(self):
        """Renewing with a short ttl leaves longer-lived messages unchanged."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=600)
        claim = await self.claim(ttl=60, grace=60)
        await self.claims.update(None, QUEUE, claim.id, 60)
        self.assertEqual((await self.messages.get(None, QUEUE, mid)).ttl, 600)

    async def test_claim_update_bad_ids(self):
        """Renewing a malformed, unknown, released, expired or foreign claim
        raises ClaimDoesNotExist and renews nothing."""
        await self.make_queue()
        await self.make_queue("other")
        await self.post(3)
        live = await self.claim(ttl=60, limit=1)
        released = await self.claim(ttl=60, limit=1)
        await self.claims.delete(None, QUEUE, released.id)
        self.clock.advance(10)
        expired = await self.claim(ttl=60, limit=1)
        for claim_id in BAD_CLAIM_IDS + (released.id,):
            await self.assertFailure(self.claims.update(None, QUEUE, claim_id, 300),
                                     errors.ClaimDoesNotExist)
        await self.assertFailure(self.claims.update(None, "other", live.id, 300),
                                 errors.ClaimDoesNotExist)
        await self.assertFailure(self.claims.update("p1", QUEUE, live.id, 300),
                                 errors.ClaimDoesNotExist)
        got = await self.claims.get(None, QUEUE, live.id)
        self.assertEqual((got.ttl, got.age), (60, 10))
        self.clock.advance(60)
        await self.assertFailure(self.claims.update(None, QUEUE, expired.id, 300),
                                 errors.ClaimDoesNotExist)
        await self.claim_gone(expired.id)

    async def test_claim_delete_releases(self):
        """Releasing makes the messages listable and claimable at once, with
        their extended ttl kept and no claim recorded (§9 item 6)."""
        await self.make_queue()
        ids = await self.post(3, ttl=120)
        claim = await self.claim(ttl=100, grace=22, limit=2)
        await self.claims.delete(None, QUEUE, claim.id)
        await self.claim_gone(claim.id)
        listed = await self.messages.list(None, QUEUE)
        self.assertEqual(ids_of(listed), ids)
        self.assertEqual([(m.ttl, m.claimed, m.claim_id) for m in listed],
                         [(122, False, None)] * 2 + [(120, False, None)])
        self.assertEqual((await self.queues.stats(None, QUEUE)).free, 3)
        self.assertEqual(ids_of(await self.claim(limit=2)), ids[:2])

    async def test_claim_delete_bad_ids_and_foreign(self):
        """Releasing unknown or malformed ids succeeds; releasing through
        another queue or project leaves the claim live."""
        await self.make_queue()
        await self.make_queue("other")
        ids = await self.post(2)
        claim = await self.claim()
        for claim_id in BAD_CLAIM_IDS:
            await self.claims.delete(None, QUEUE, claim_id)
        await self.claims.delete(None, "other", claim.id)
        await self.claims.delete(None, "nope", claim.id)
        await self.claims.delete("p1", QUEUE, claim.id)
        self.assertEqual(ids_of(await self.claims.get(None, QUEUE, claim.id)), ids)
        self.assertEqual(await self.listed(), [])

    async def test_claim_expiry_is_exact(self):
        """A claim of ttl 60 holds its messages for 59 s; at 60 s they are
        listable and claimable again and the claim is gone (§3.2, §9 item 5)."""
        await self.make_queue()
        ids = await self.post(3)
        first = await self.claim(ttl=60, limit=2)
        self.clock.advance(59)
        self.assertEqual(await self.listed(), ids[2:])
        self.assertEqual((await self.claims.get(None, QUEUE, first.id)).age, 59)
        second = await self.claim(ttl=60, limit=10)
        self.assertEqual(ids_of(second), ids[2:])
        self.clock.advance(1)
        self.assertEqual(await self.listed(), ids[:2])
        await self.claim_gone(first.id)
        stats = await self.queues.stats(None, QUEUE)
        self.assertEqual((stats.free, stats.claimed), (2, 1))
        third = await self.claim(ttl=60, limit=10)
        self.assertEqual(ids_of(third), ids[:2])
        self.assertEqual([m.claim_id for m in third.messages], [third.id] * 2)

    async def test_claim_takes_oldest_free_past_live_claims(self):
        """With many live claims at the head, a claim still takes the oldest
        free messages in FIFO order: unclaimed ones, released ones and ones
        whose claim expired, merged by id whatever order the claims expire
        in."""
        await self.make_queue()
        ids = await self.post(40)
        # ids[0..19] held one by one; the later ones expire first.
        singles = [await self.claim(ttl=100 - n, limit=1) for n in range(20)]
        self.assertEqual([ids_of(c) for c in singles], [[i] for i in ids[:20]])
        self.assertEqual(ids_of(await self.claim(ttl=200, limit=3)), ids[20:23])
        await self.claims.delete(None, QUEUE, singles[7].id)
        self.assertEqual(ids_of(await self.claim(ttl=200, limit=3)), [ids[7], *ids[23:25]])
        # At +90 the claims of ttl <= 90 (ids[10..19]) have expired, the
        # others (ids[0..6], ids[8], ids[9]) are still live.
        self.clock.advance(90)
        self.assertEqual(ids_of(await self.claim(limit=4)), ids[10:14])
        self.assertEqual(ids_of(await self.claim(limit=8)), [*ids[14:20], *ids[25:27]])
        self.assertEqual(ids_of(await self.claim(limit=100)), ids[27:40])
        self.assertIsNone(await self.claim())

    async def test_claim_project_isolation(self):
        """A claim takes messages of its own namespace only and is invisible,
        unrenewable and unreleasable from another."""
        await self.make_queue(QUEUE, None)
        await self.make_queue(QUEUE, "p1")
        [mine] = await self.post(1)
        [theirs] = await self.post(1, project="p1")
        claim = await self.claim(project="p1")
        self.assertEqual(ids_of(claim), [theirs])
        await self.claim_gone(claim.id)
        await self.assertFailure(self.claims.update(None, QUEUE, claim.id, 300),
                                 errors.ClaimDoesNotExist)
        await self.claims.delete(None, QUEUE, claim.id)
        self.assertEqual(ids_of(await self.claims.get("p1", QUEUE, claim.id)), [theirs])
        self.assertEqual(ids_of(await self.claim()), [mine])
        self.assertIsNone(await self.claim(project="p1"))

    async def check_claims_disjoint(self, first, second):
        await self.make_queue()
        ids = await self.post(8)
        a, b = await concurrently(first.claims.create(None, QUEUE, 60, 60, 5),
                                  second.claims.create(None, QUEUE, 60, 60, 5))
        held_a, held_b = set(ids_of(a)), set(ids_of(b))
        self.assertFalse(held_a & held_b)
        self.assertLessEqual(len(held_a), 5)
        self.assertLessEqual(len(held_b), 5)
        self.assertTrue(held_a or held_b)
        self.assertLessEqual(held_a | held_b, set(ids))
        rest = [i for i in ids if i not in held_a | held_b]
        third = await self.claim(limit=10)
        self.assertEqual(ids_of(third), rest)
        self.assertIsNone(await second.claims.create(None, QUEUE, 60, 60, 10))

    async def test_claims_concurrent_disjoint(self):
        """Two claims of limit 5 in flight at once on 8 messages never share a
        message; whatever they left is all a later claim gets (§9 item 3)."""
        await self.check_claims_disjoint(self.driver, self.driver)

    # -- queue delete, gc -----------------------------------------------------

    async def test_queue_delete_wipes_messages_and_claims(self):
        """Deleting a queue deletes its messages and claims: a re-created queue
        is empty and old ids are unknown (§9 item 10)."""
        await self.make_queue(metadata={"old": True})
        ids = await self.post(3)
        claim = await self.claim(limit=2)
        await self.queues.delete(None, QUEUE)
        await self.claim_gone(claim.id)
        await self.make_queue()
        self.assertEqual(await self.queues.get_metadata(None, QUEUE), {})
        self.assertEqual(await self.everything(), [])
        self.assertEqual(await self.queues.stats(None, QUEUE),
                         QueueStats(free=0, claimed=0, total=0))
        await self.claim_gone(claim.id)
        await self.assertFailure(self.claims.update(None, QUEUE, claim.id, 300),
                                 errors.ClaimDoesNotExist)
        for mid in ids:
            await self.gone(mid)
        self.assertEqual(await self.messages.bulk_get(None, QUEUE, ids), [])
        self.assertIsNone(await self.claim())
        self.assertEqual(await self.messages.pop(None, QUEUE, 10), [])

    async def test_gc_removes_expired_only(self):
        """gc removes nothing live, then expired messages and claims, and
        reports how many records it removed."""
        await self.make_queue()
        await self.make_queue("other")
        short = await self.post(2, ttl=60)
        [long] = await self.post(1, queue="other", ttl=300)
        claim = await self.claim(ttl=60, grace=60, queue="other")
        self.assertEqual(claim.messages[0].ttl, 300)
        self.clock.advance(59)
        self.assertEqual(await self.driver.gc(), 0)
        self.assertEqual(await self.everything(), short)
        self.assertEqual(ids_of(await self.claims.get(None, "other", claim.id)), [long])
        self.clock.advance(1)
        removed = await self.driver.gc()
        self.assertIsInstance(removed, int)
        self.assertGreaterEqual(removed, 2)
        self.assertLessEqual(removed, 3)
        self.assertEqual(await self.everything(), [])
        await self.claim_gone(claim.id, queue="other")
        self.assertEqual(await self.listed("other"), [long])
        self.assertEqual(await self.driver.gc(), 0)
        self.assertEqual(await self.listed("other"), [long])

    async def test_gc_keeps_extended_message(self):
        """gc respects a claim's extension of a message's life."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=60)
        await self.claim(ttl=100, grace=60)
        self.clock.advance(159)
        await self.driver.gc()
        self.assertEqual(await self.listed(), [mid])
        self.clock.advance(1)
        await self.driver.gc()
        await self.gone(mid)

    async def test_release_after_gc_clears_claim(self):
        """Releasing an expired claim clears it from its messages even after gc
        ran: its id then no longer deletes them."""
        await self.make_queue()
        [mid] = await self.post(1)
        claim = await self.claim(ttl=60)
        self.clock.advance(60)
        await self.driver.gc()
        await self.claims.delete(None, QUEUE, claim.id)
        self.assertIsNone((await self.messages.get(None, QUEUE, mid)).claim_id)
        await self.assertFailure(self.messages.delete(None, QUEUE, mid, claim.id),
                                 errors.MessageNotClaimed)

    # -- producers and observers (§4.1, §9 items 1-2) -------------------------

    async def test_batch_visible_all_at_once(self):
        """An observer listing while a batch of 5 is posted sees none or all of
        it, contiguous and in order (§9 item 1)."""
        await self.make_queue()
        before = await self.post(2, tag="before")
        batch = [{"ttl": 60, "body": n} for n in range(5)]
        posting = self.messages.post(None, QUEUE, batch)
        observed = []
        for _ in range(100):
            observed.append(await self.listed(marker=before[-1], include_claimed=True))
            if posting.called:
                break
        ids = await posting
        observed.append(await self.listed(marker=before[-1], include_claimed=True))
        for seen in observed:
            self.assertIn(seen, ([], ids))
        self.assertEqual(observed[-1], ids)
        self.assertEqual([int(i) for i in ids], sorted(int(i) for i in ids))

    async def check_producers_and_observer(self, producer_a, producer_b, observer):
        await self.make_queue()
        rounds, size = 5, 4
        posted = {"a": [], "b": []}
        seen, marker = [], None

        async def produce(driver, tag):
            ids = await self.post(size, tag=tag, driver=driver)
            posted[tag].append(ids)

        async def observe():
            nonlocal marker
            page = ids_of(await observer.messages.list(
                None, QUEUE, marker=marker, limit=10, echo=True, include_claimed=True))
            seen.extend(page)
            marker = page[-1] if page else marker
            return page

        for _ in range(rounds):
            await concurrently(produce(producer_a, "a"), observe(), produce(producer_b, "b"))
        while await observe():
            pass

        everything = [i for tag in "ab" for batch in posted[tag] for i in batch]
        self.assertEqual(Counter(seen), Counter(everything))
        self.assertEqual(len(seen), 2 * rounds * size)
        markers = [int(i) for i in seen]
        self.assertEqual(markers, sorted(set(markers)))
        for tag in "ab":
            mine = [i for batch in posted[tag] for i in batch]
            self.assertEqual([i for i in seen if i in set(mine)], mine)
            for batch in posted[tag]:
                start = seen.index(batch[0])
                self.assertEqual(seen[start:start + size], batch)

    async def test_concurrent_producers_keep_order(self):
        """Two producers interleaving batches: an observer paging by marker sees
        every id once, markers strictly increase, each producer's messages and
        each batch stay in order and contiguous (§9 item 2)."""
        await self.check_producers_and_observer(self.driver, self.driver, self.driver)

    # -- two daemons on one database ------------------------------------------

    async def test_two_drivers_claims_disjoint(self):
        """Two daemons claiming on one database never hold the same message."""
        other = await self.second_driver()
        await self.check_claims_disjoint(self.driver, other)

    async def test_two_drivers_share_claims(self):
        """A claim made through one daemon is read, renewed and released
        through another, and honoured by its deletes."""
        other = await self.second_driver()
        await self.make_queue()
        ids = await self.post(3)
        claim = await self.claim(ttl=60, limit=2)
        self.assertEqual(ids_of(await other.claims.get(None, QUEUE, claim.id)), ids[:2])
        self.assertEqual(ids_of(await other.claims.create(None, QUEUE, 60, 60, 10)), ids[2:])
        await self.assertFailure(other.messages.delete(None, QUEUE, ids[0]),
                                 errors.MessageIsClaimed)
        self.clock.advance(30)
        await other.claims.update(None, QUEUE, claim.id, 120)
        self.assertEqual((await self.claims.get(None, QUEUE, claim.id)).ttl, 120)
        await other.messages.delete(None, QUEUE, ids[0], claim.id)
        await self.gone(ids[0])
        await other.claims.delete(None, QUEUE, claim.id)
        self.assertEqual(await self.listed(), [ids[1]])

    async def test_two_drivers_producers_keep_order(self):
        """Producers on two daemons sharing a database keep the §4.1 guarantees
        for an observer on either."""
        other = await self.second_driver()
        await self.check_producers_and_observer(self.driver, other, other)

    async def test_two_drivers_pops_disjoint(self):
        """Two daemons popping at once never return the same message."""
        other = await self.second_driver()
        await self.check_pops_disjoint(self.driver, other)

    # -- API v1.1 and v2: queue listing filters and count ---------------------

    async def make_filtered_queues(self, project=None):
        """Twelve filler queues ``f00``..``f11`` (owner dev) around three
        matches ``a-x``, ``g-x``, ``h-x`` (owner ops): a page limited before
        filtering would come out short."""
        for i in range(12):
            await self.make_queue(f"f{i:02}", project, {"owner": "dev", "n": i})
        for name in ("a-x", "g-x", "h-x"):
            await self.make_queue(name, project, {"owner": "ops", "name": name})

    async def test_queue_list_name_filter(self):
        """``name`` keeps the queues whose name contains it; pages hold
        ``limit`` matches after ``marker`` however many queues do not match."""
        await self.make_filtered_queues()

        async def page(marker=None, limit=10, **filters):
            return [q.name for q in await self.queues.list(None, marker, limit, **filters)]

        self.assertEqual(await page(name="-x"), ["a-x", "g-x", "h-x"])
        self.assertEqual(await page(limit=2, name="-x"), ["a-x", "g-x"])
        self.assertEqual(await page("g-x", 2, name="-x"), ["h-x"])
        self.assertEqual(await page("h-x", 2, name="-x"), [])
        self.assertEqual(await page(name="f1"), ["f10", "f11"])
        self.assertEqual(await page(name="nothing"), [])
        self.assertEqual(await self.queues.list("p1", name="-x"), [])

    async def test_queue_list_metadata_filter(self):
        """``metadata`` keeps the queues having every given key with an equal
        value; it pages like the name filter, combines with it, and detailed
        listings still carry the metadata."""
        await self.make_filtered_queues()

        async def page(marker=None, limit=10, **filters):
            return [q.name for q in await self.queues.list(None, marker, limit, **filters)]

        ops = {"owner": "ops"}
        self.assertEqual(await page(metadata=ops), ["a-x", "g-x", "h-x"])
        self.assertEqual(await page(limit=2, metadata=ops), ["a-x", "g-x"])
        self.assertEqual(await page("g-x", 2, metadata=ops), ["h-x"])
        self.assertEqual(await page(metadata={"owner": "ops", "name": "g-x"}), ["g-x"])
        self.assertEqual(await page(metadata={"owner": "dev", "name": "g-x"}), [])
        self.assertEqual(await page(metadata={"owner": "dev", "n": 11}), ["f11"])
        self.assertEqual(await page(name="f0", metadata={"owner": "dev"}),
                         [f"f0{i}" for i in range(10)])
        self.assertEqual(await page(name="a", metadata=ops), ["a-x"])
        self.assertEqual(await page(metadata={"missing": "ops"}), [])
        detailed = await self.queues.list(None, limit=1, detailed=True, metadata=ops)
        self.assertEqual(detailed, [Queue("a-x", {"owner": "ops", "name": "a-x"})])

    async def test_queue_list_metadata_filter_json_equality(self):
        """Metadata filters compare JSON values: 1 equals 1.0, but not "1" nor
        true; null matches only a key that is there and null; lists and
        objects match whole."""
        values = {"int": 1, "float": 1.0, "text": "1", "true": True, "null": None,
                  "list": [1, "a"], "object": {"k": [1]}}
        for name, value in values.items():
            await self.make_queue(name, metadata={"v": value})
        await self.make_queue("without", metadata={"other": 1})

        async def matching(value):
            return [q.name for q in await self.queues.list(None, metadata={"v": value})]

        self.assertEqual(await matching(1), ["float", "int"])
        self.assertEqual(await matching(1.0), ["float", "int"])
        self.assertEqual(await matching("1"), ["text"])
        self.assertEqual(await matching(True), ["true"])
        self.assertEqual(await matching(None), ["null"])
        self.assertEqual(await matching([1, "a"]), ["list"])
        self.assertEqual(await matching(["a", 1]), [])
        self.assertEqual(await matching({"k": [1]}), ["object"])

    async def test_queue_count(self):
        """count gives the number of queues of one project, the global
        namespace being a project of its own."""
        self.assertEqual(await self.queues.count(None), 0)
        for name in ("a", "b", "c"):
            await self.make_queue(name)
        await self.make_queue("a", "p1")
        await self.make_queue("z", "p1")
        self.assertEqual(await self.queues.count(None), 3)
        self.assertEqual(await self.queues.count("p1"), 2)
        self.assertEqual(await self.queues.count("p2"), 0)
        await self.queues.delete(None, "b")
        self.assertEqual(await self.queues.count(None), 2)
        await self.messages.post("p2", "lazy", [{"ttl": 60, "body": 1}], create=True)
        self.assertEqual(await self.queues.count("p2"), 1)

    # -- API v1.1 and v2: lazy queues, purge, delays ---------------------------

    async def test_post_create_makes_missing_queue(self):
        """Posting with create makes a missing queue (metadata {}, in the
        poster's project only) holding the batch; an existing queue keeps its
        metadata."""
        ids = await self.messages.post("p1", QUEUE, [{"ttl": 60, "body": n} for n in range(3)],
                                       create=True)
        self.assertIs(await self.queues.exists("p1", QUEUE), True)
        self.assertIs(await self.queues.exists(None, QUEUE), False)
        self.assertEqual(await self.queues.get_metadata("p1", QUEUE), {})
        self.assertEqual(await self.listed(project="p1"), ids)
        await self.make_queue("kept", metadata={"a": 1})
        [kept] = await self.messages.post(None, "kept", [{"ttl": 60, "body": 0}], create=True)
        self.assertEqual(await self.queues.get_metadata(None, "kept"), {"a": 1})
        self.assertEqual(await self.listed("kept"), [kept])

    async def test_post_create_failed_batch_creates_nothing(self):
        """A batch that fails (a message without a ttl) stores none of its
        messages and, with create, creates no queue."""
        batch = [{"ttl": 60, "body": "fine"}, {"body": "no ttl"}]
        await self.assertFailure(
            defer.maybeDeferred(self.messages.post, None, QUEUE, batch, create=True),
            Exception)
        self.assertIs(await self.queues.exists(None, QUEUE), False)
        self.assertEqual(await self.queues.count(None), 0)
        await self.make_queue()
        await self.assertFailure(defer.maybeDeferred(self.messages.post, None, QUEUE, batch),
                                 Exception)
        self.assertEqual(await self.listed(include_delayed=True, include_claimed=True), [])

    async def test_purge(self):
        """Purge removes free, delayed, buried and formerly claimed messages,
        keeps those under a live claim, and returns how many it removed; other
        queues and projects are untouched."""
        await self.make_queue()
        await self.make_queue("other")
        await self.make_queue(QUEUE, "p1")
        expiring, held, buried, *free = await self.post(5)
        [delayed] = await self.messages.post(None, QUEUE, [{"ttl": 300, "body": 0, "delay": 60}])
        [other] = await self.post(1, queue="other")
        [foreign] = await self.post(1, project="p1")
        self.assertEqual(ids_of(await self.claim(ttl=30, limit=1)), [expiring])
        live = await self.claim(ttl=600, limit=1)
        self.assertEqual(ids_of(live), [held])
        job = await self.driver.jobs.reserve(None, [QUEUE])
        self.assertEqual(str(job.id), buried)
        self.assertIs(await self.driver.jobs.bury(None, job.id, job.claim_id, 5), True)
        self.clock.advance(30)
        self.assertEqual(await self.messages.purge(None, QUEUE), 5)
        self.assertEqual(await self.listed(echo=True, include_claimed=True,
                                           include_delayed=True), [held])
        for mid in (expiring, buried, delayed, *free):
            await self.gone(mid)
        self.assertEqual(ids_of(await self.claims.get(None, QUEUE, live.id)), [held])
        self.assertEqual(await self.messages.purge(None, QUEUE), 0)
        self.assertEqual(await self.everything("other"), [other])
        self.assertEqual(await self.everything(project="p1"), [foreign])

    async def test_purge_missing_queue(self):
        """Purging a missing queue removes nothing, returns 0 and creates nothing."""
        self.assertEqual(await self.messages.purge(None, "nope"), 0)
        self.assertIs(await self.queues.exists(None, "nope"), False)

    async def test_pop_takes_delayed_messages(self):
        """Pop removes delayed messages too, in marker order with the others
        (api-v2.md §3.2)."""
        await self.make_queue()
        [delayed] = await self.messages.post(None, QUEUE, [{"ttl": 300, "body": 0, "delay": 60}])
        [ready] = await self.post(1)
        self.assertEqual(ids_of(await self.messages.pop(None, QUEUE, 10)), [delayed, ready])
        await self.gone(delayed)

    async def test_line_delay_is_posted_delay(self):
        """A job put with a delay and a message posted with one are alike:
        hidden from listing and claims until due, listed with include_delayed,
        readable by id, delayed jobs for the line protocol, then claimable."""
        await self.make_queue()
        [posted] = await self.messages.post(None, QUEUE, [{"ttl": 300, "body": "p", "delay": 30}])
        put = str(await self.driver.jobs.put(None, QUEUE, "j", 300, DEFAULT_PRIORITY, 30, 60))
        both = [posted, put]
        self.assertEqual(await self.listed(), [])
        self.assertEqual(await self.listed(include_delayed=True), both)
        self.assertIsNone(await self.claim())
        for mid in both:
            self.assertEqual((await self.messages.get(None, QUEUE, mid)).available_at,
                             START + 30)
            self.assertEqual((await self.driver.jobs.peek(None, int(mid))).state, "delayed")
        self.clock.advance(29)
        self.assertEqual(await self.listed(), [])
        self.assertIsNone(await self.claim())
        self.clock.advance(1)
        self.assertEqual(await self.listed(), both)
        self.assertEqual(ids_of(await self.claim()), both)

    # -- API v2: claim counts and dead-letter queues (§3.4 of api-v2.md) ------

    async def claim_or_dead_letter(self, dead_letter, limit=10, ttl=60, queue=QUEUE,
                                   project=None, driver=None):
        return await (driver or self.driver).claims.create(project, queue, ttl, 60, limit,
                                                           dead_letter)

    async def claim_and_release(self, times, limit=10, queue=QUEUE, project=None):
        """Claim and release ``times`` times: each claim counts."""
        for _ in range(times):
            claim = await self.claim(limit=limit, queue=queue, project=project)
            await self.claims.delete(project, queue, claim.id)

    async def test_claim_count_grows_on_every_claim(self):
        """claim_count grows by one on each claim, whether released, expired
        or a line-protocol reservation, and shows on every read."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=600)
        self.assertEqual((await self.claim()).messages[0].claim_count, 1)
        self.clock.advance(60)
        claim = await self.claim()
        self.assertEqual(claim.messages[0].claim_count, 2)
        await self.claims.delete(None, QUEUE, claim.id)
        job = await self.driver.jobs.reserve(None, [QUEUE])
        self.assertIs(await self.driver.jobs.abandon(None, job.id, job.claim_id, False), True)
        self.assertEqual((await self.messages.get(None, QUEUE, mid)).claim_count, 3)
        self.assertEqual((await self.listed_messages())[0].claim_count, 3)
        self.assertEqual([m.claim_count for m in await self.messages.pop(None, QUEUE, 1)], [3])

    async def listed_messages(self, queue=QUEUE, project=None):
        return await self.messages.list(project, queue, echo=True, include_claimed=True)

    async def test_dead_letter_moves_message(self):
        """A message claimed max_claims times is moved by the next claim: the
        claim is None, the message leaves its queue and is in the dead-letter
        queue (created with {}) with the same id and body, free, claim_count 0,
        and the DeadLetter's ttl from the move; it is claimable there."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=600)
        dead_letter = DeadLetter(max_claims=2, queue="dlq", ttl=100)
        for count in (1, 2):
            claim = await self.claim_or_dead_letter(dead_letter)
            self.assertEqual([(m.id, m.claim_count) for m in claim.messages], [(mid, count)])
            await self.claims.delete(None, QUEUE, claim.id)
        self.assertIs(await self.queues.exists(None, "dlq"), False)
        self.clock.advance(5)
        self.assertIsNone(await self.claim_or_dead_letter(dead_letter))
        self.assertEqual(await self.everything(), [])
        await self.gone(mid)
        self.assertEqual(await self.queues.get_metadata(None, "dlq"), {})
        self.assertEqual(await self.listed("dlq"), [mid])
        moved = await self.messages.get(None, "dlq", mid)
        self.assertEqual((moved.body, moved.ttl, moved.claim_count, moved.claimed,
                          moved.claim_id), ({"tag": "m", "n": 0}, 100, 0, False, None))
        self.assertEqual((await self.queues.stats(None, "dlq")).free, 1)
        claim = await self.claim(queue="dlq", ttl=10, grace=0)
        self.assertEqual([(m.id, m.claim_count) for m in claim.messages], [(mid, 1)])
        await self.claims.delete(None, "dlq", claim.id)
        self.clock.advance(99)
        self.assertEqual(await self.listed("dlq"), [mid])
        self.clock.advance(1)
        await self.gone(mid, queue="dlq")

    async def test_dead_letter_partial_claim(self):
        """A claim holds only the selected messages that were not moved; the
        moved ones are in the dead-letter queue only, the others stay."""
        await self.make_queue()
        first, second, third = await self.post(3)
        await self.claim_and_release(1, limit=1)
        claim = await self.claim_or_dead_letter(DeadLetter(1, "dlq"), limit=2)
        self.assertEqual([(m.id, m.claim_count) for m in claim.messages], [(second, 1)])
        self.assertEqual(ids_of(await self.claims.get(None, QUEUE, claim.id)), [second])
        self.assertEqual(await self.everything(), [second, third])
        self.assertEqual(await self.everything("dlq"), [first])
        await self.gone(first)
        await self.gone(second, queue="dlq")
        await self.gone(third, queue="dlq")

    async def test_dead_letter_without_ttl_keeps_expiry(self):
        """A DeadLetter without ttl moves a message with its ttl and expiry."""
        await self.make_queue()
        [mid] = await self.post(1, ttl=300)
        await self.claim_and_release(1)
        self.clock.advance(100)
        self.assertIsNone(await self.claim_or_dead_letter(DeadLetter(1, "dlq")))
        self.assertEqual((await self.messages.get(None, "dlq", mid)).ttl, 300)
        self.clock.advance(199)
        self.assertEqual(await self.listed("dlq"), [mid])
        self.clock.advance(1)
        self.assertEqual(await self.everything("dlq"), [])

    async def test_dead_letter_below_max_claims(self):
        """Messages claimed fewer than max_claims times are claimed, not moved;
        without a DeadLetter nothing is ever moved."""
        await self.make_queue()
        [mid] = await self.post(1)
        await self.claim_and_release(3)
        claim = await self.claim_or_dead_letter(DeadLetter(5, "dlq"))
        self.assertEqual([(m.id, m.claim_count) for m in claim.messages], [(mid, 4)])
        await self.claims.delete(None, QUEUE, claim.id)
        self.assertEqual([m.claim_count for m in (await self.claim()).messages], [5])
        self.assertIs(await self.queues.exists(None, "dlq"), False)

    async def test_dead_letter_existing_queue_same_project(self):
        """Messages move to the dead-letter queue of their own project; an
        existing one keeps its metadata and messages."""
        await self.make_queue(QUEUE, "p1")
        await self.make_queue("dlq", "p1", {"kind": "dead"})
        [old] = await self.post(1, queue="dlq", project="p1")
        [mid] = await self.post(1, project="p1")
        await self.claim_and_release(1, project="p1")
        self.assertIsNone(await self.claim_or_dead_letter(DeadLetter(1, "dlq"), project="p1"))
        self.assertEqual(await self.queues.get_metadata("p1", "dlq"), {"kind": "dead"})
        self.assertEqual(await self.everything("dlq", "p1"), [old, mid])
        self.assertIs(await self.queues.exists(None, "dlq"), False)
        self.assertEqual(await self.queues.count("p1"), 2)

    async def check_dead_letter_claims_disjoint(self, first, second):
        await self.make_queue()
        ids = await self.post(8)
        await self.claim_and_release(1, limit=4)
        dead_letter = DeadLetter(1, "dlq")
        a, b = await concurrently(
            self.claim_or_dead_letter(dead_letter, limit=5, driver=first),
            self.claim_or_dead_letter(dead_letter, limit=5, driver=second))
        held_a, held_b = set(ids_of(a)), set(ids_of(b))
        self.assertFalse(held_a & held_b)
        self.assertLessEqual(held_a | held_b, set(ids[4:]))
        moved = await self.everything("dlq")
        self.assertEqual(len(moved), len(set(moved)))
        self.assertLessEqual(set(moved), set(ids[:4]))
        self.assertTrue(moved or held_a or held_b)
        kept = await self.everything()
        self.assertFalse(set(kept) & set(moved))
        self.assertEqual(sorted(kept + moved, key=int), ids)

    async def test_dead_letter_concurrent_claims(self):
        """Two claims with a DeadLetter in flight at once never both move or
        both claim a message; every message is in exactly one queue."""
        await self.check_dead_letter_claims_disjoint(self.driver, self.driver)

    async def test_two_drivers_dead_letter_claims(self):
        """Two daemons claiming with a DeadLetter on one database never both
        move or both claim a message."""
        other = await self.second_driver()
        await self.check_dead_letter_claims_disjoint(self.driver, other)
