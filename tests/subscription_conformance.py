"""The subscription storage conformance suite (``ISubscriptionController``).

``SubscriptionConformanceMixin`` runs no test by itself: a driver's test
case combines it with ``twisted.trial.unittest.TestCase`` and provides
``make_driver(clock)`` (a new, unopened driver on an empty database whose
only source of time is ``clock``), as ``tests.storage_conformance`` does.
"""

from twisted.internet import task
from zope.interface.verify import verifyObject

from marconi_tx import errors
from marconi_tx.storage.interfaces import ISubscriptionController
from tests.storage_conformance import START

QUEUE = "fizbit"
HOOK = "http://127.0.0.1:9/hook"


class SubscriptionConformanceMixin:
    def setUp(self):
        super().setUp()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = self.make_driver(self.clock)
        self.subs = self.driver.subscriptions
        d = self.driver.open()
        d.addCallback(lambda _: self.addCleanup(self.driver.close))
        return d

    async def subscribe(self, subscriber=HOOK, ttl=3600, options=None, project="p",
                        queue=QUEUE):
        sid, created = await self.subs.create(project, queue, subscriber, ttl, options or {})
        self.assertTrue(created)
        return sid

    def test_provides_interface(self):
        """The driver's ``subscriptions`` provides ISubscriptionController."""
        self.assertTrue(verifyObject(ISubscriptionController, self.subs))

    async def test_create_and_get(self):
        """A new subscription reads back with its subscriber, ttl, age 0,
        options, the queue's name, unconfirmed; its id is 24 hex digits; the
        queue is created if missing."""
        sid = await self.subscribe(options={"post_headers": {"X-A": "1"}})
        self.assertRegex(sid, "^[0-9a-f]{24}$")
        self.clock.advance(5)
        got = await self.subs.get("p", QUEUE, sid)
        self.assertEqual((got.id, got.project, got.queue, got.subscriber, got.ttl, got.age,
                          got.expires, got.options, got.confirmed),
                         (sid, "p", QUEUE, HOOK, 3600, 5, START + 3600,
                          {"post_headers": {"X-A": "1"}}, False))
        self.assertTrue(await self.driver.queues.exists("p", QUEUE))

    async def test_cursor_starts_after_existing_messages(self):
        """A new subscription's cursor is the newest message id handed out:
        messages posted before it are not its to deliver."""
        ids = await self.driver.messages.post("p", QUEUE, [{"ttl": 60, "body": 1}] * 2,
                                              create=True)
        sid = await self.subscribe()
        self.assertEqual((await self.subs.get("p", QUEUE, sid)).cursor, int(ids[-1]))

    async def test_unknown_and_foreign_ids(self):
        """Unknown, malformed and other queues' or projects' ids are
        SubscriptionDoesNotExist for get, update and confirm; delete has no
        effect on them."""
        sid = await self.subscribe()
        for project, queue, wanted in (("p", "other", sid), ("q", QUEUE, sid),
                                       ("p", QUEUE, "0" * 24), ("p", QUEUE, "nope"),
                                       (None, QUEUE, sid)):
            await self.assertFailure(self.subs.get(project, queue, wanted),
                                     errors.SubscriptionDoesNotExist)
            await self.assertFailure(self.subs.update(project, queue, wanted, ttl=100),
                                     errors.SubscriptionDoesNotExist)
            await self.assertFailure(self.subs.confirm(project, queue, wanted, True),
                                     errors.SubscriptionDoesNotExist)
            await self.subs.delete(project, queue, wanted)
        self.assertEqual((await self.subs.get("p", QUEUE, sid)).id, sid)

    async def test_duplicate_unconfirmed_gives_existing_id(self):
        """Subscribing the same subscriber again while unconfirmed gives the
        existing id, not a second subscription, and changes nothing."""
        sid = await self.subscribe(ttl=100)
        self.assertEqual(await self.subs.create("p", QUEUE, HOOK, 500, {"a": 1}), (sid, False))
        got = await self.subs.list("p", QUEUE)
        self.assertEqual([(s.id, s.ttl, s.options) for s in got], [(sid, 100, {})])

    async def test_duplicate_confirmed_conflicts(self):
        """Subscribing a confirmed subscriber again is SubscriptionExists."""
        sid = await self.subscribe()
        await self.subs.confirm("p", QUEUE, sid, True)
        await self.assertFailure(self.subs.create("p", QUEUE, HOOK, 60, {}),
                                 errors.SubscriptionExists)

    async def test_same_subscriber_other_queue_or_project(self):
        """Uniqueness is per (project, queue, subscriber)."""
        first = await self.subscribe()
        second = await self.subscribe(queue="other")
        third = await self.subscribe(project="q")
        self.assertEqual(len({first, second, third}), 3)

    async def test_list_pages_by_id(self):
        """Listing gives the queue's subscriptions ascending by id (the
        order they were made in, within one second too), after the marker,
        at most ``limit``; other queues' are not listed."""
        made = [await self.subscribe(f"http://h/{n}") for n in range(5)]
        self.assertEqual(sorted(made), made)
        await self.subscribe(queue="other")
        self.assertEqual([s.id for s in await self.subs.list("p", QUEUE, limit=3)],
                         sorted(made)[:3])
        self.assertEqual([s.id for s in await self.subs.list("p", QUEUE,
                                                             marker=sorted(made)[2])],
                         sorted(made)[3:])
        self.assertEqual(await self.subs.list("p", "nothing"), [])

    async def test_update(self):
        """Update changes what is given: a new ttl restarts the age and the
        expiry, a new subscriber unconfirms, options are replaced."""
        sid = await self.subscribe(options={"a": 1})
        await self.subs.confirm("p", QUEUE, sid, True)
        self.clock.advance(10)
        await self.subs.update("p", QUEUE, sid, ttl=120)
        got = await self.subs.get("p", QUEUE, sid)
        self.assertEqual((got.ttl, got.age, got.expires, got.confirmed, got.options),
                         (120, 0, START + 130, True, {"a": 1}))
        await self.subs.update("p", QUEUE, sid, subscriber="https://h/x", options={"b": 2})
        got = await self.subs.get("p", QUEUE, sid)
        self.assertEqual((got.subscriber, got.confirmed, got.options),
                         ("https://h/x", False, {"b": 2}))

    async def test_update_collision(self):
        """Changing the subscriber to one subscribed by another subscription
        of the queue is SubscriptionExists, and changes nothing."""
        sid = await self.subscribe()
        await self.subscribe("http://h/other")
        await self.assertFailure(self.subs.update("p", QUEUE, sid, subscriber="http://h/other",
                                                  ttl=99), errors.SubscriptionExists)
        got = await self.subs.get("p", QUEUE, sid)
        self.assertEqual((got.subscriber, got.ttl), (HOOK, 3600))

    async def test_expiry(self):
        """An expired subscription is invisible (get, list, scan), no longer
        blocks its subscriber, and gc removes it."""
        sid = await self.subscribe(ttl=60)
        self.clock.advance(60)
        await self.assertFailure(self.subs.get("p", QUEUE, sid),
                                 errors.SubscriptionDoesNotExist)
        self.assertEqual(await self.subs.list("p", QUEUE), [])
        self.assertEqual(await self.subs.scan(), [])
        self.assertGreaterEqual(await self.driver.gc(), 1)
        again = await self.subscribe(ttl=60)
        self.assertNotEqual(again, sid)

    async def test_confirm_moves_cursor(self):
        """Confirming an unconfirmed subscription moves its cursor to the
        newest message: what was posted while unconfirmed is skipped.
        Unconfirming keeps the cursor."""
        sid = await self.subscribe()
        ids = await self.driver.messages.post("p", QUEUE, [{"ttl": 60, "body": 1}])
        await self.subs.confirm("p", QUEUE, sid, True)
        got = await self.subs.get("p", QUEUE, sid)
        self.assertEqual((got.confirmed, got.cursor), (True, int(ids[0])))
        await self.subs.confirm("p", QUEUE, sid, False)
        got = await self.subs.get("p", QUEUE, sid)
        self.assertEqual((got.confirmed, got.cursor), (False, int(ids[0])))

    async def test_advance_only_forward(self):
        """The cursor moves forward only."""
        sid = await self.subscribe()
        start = (await self.subs.get("p", QUEUE, sid)).cursor
        await self.subs.advance("p", QUEUE, sid, start + 7)
        await self.subs.advance("p", QUEUE, sid, start + 3)
        self.assertEqual((await self.subs.get("p", QUEUE, sid)).cursor, start + 7)
        await self.subs.advance("p", QUEUE, "0" * 24, 99)  # unknown: no effect, no error

    async def test_delete_and_purge(self):
        """Delete removes one; purge removes every subscription of the queue
        and says how many; others' stay."""
        a = await self.subscribe("http://h/a")
        await self.subscribe("http://h/b")
        await self.subscribe("http://h/c")
        kept = await self.subscribe(queue="other")
        await self.subs.delete("p", QUEUE, a)
        self.assertEqual(len(await self.subs.list("p", QUEUE)), 2)
        self.assertEqual(await self.subs.purge("p", QUEUE), 2)
        self.assertEqual(await self.subs.list("p", QUEUE), [])
        self.assertEqual([s.id for s in await self.subs.list("p", "other")], [kept])

    async def test_queue_delete_keeps_subscriptions(self):
        """Deleting the queue keeps its subscriptions (api-v2.md §2.6)."""
        sid = await self.subscribe()
        await self.driver.queues.delete("p", QUEUE)
        self.assertEqual([s.id for s in await self.subs.list("p", QUEUE)], [sid])

    async def test_scan_walks_every_project(self):
        """scan pages through every project's live subscriptions by id."""
        made = sorted([await self.subscribe(project=p, queue=q)
                       for p, q in (("p", "a"), ("q", "b"), (None, "c"))])
        self.assertEqual([s.id for s in await self.subs.scan(limit=2)], made[:2])
        rest = await self.subs.scan(marker=made[1])
        self.assertEqual([(s.id, s.project) for s in rest][:1][0][0], made[2])
        self.assertIn(None, [s.project for s in await self.subs.scan()])
