"""``IJobController`` and the notification hub: the storage the line protocol
needs, as a mixin any driver can run (``JobConformanceMixin``), plus the
sqlite specifics (schema, query plans)."""

from twisted.internet import task
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from marconi_tx.storage.interfaces import (
    DEFAULT_PRIORITY,
    DEFAULT_TTR,
    IJobController,
    ILineStorageDriver,
    IQueueEvents,
)
from marconi_tx.storage.records import JobCounts
from marconi_tx.storage.sqlite.driver import SqliteDriver

START = 1_700_000_000
TUBE = "jobs"
TTL = 3600


class JobConformanceMixin:
    """Job storage rules; combine with a TestCase providing
    ``make_driver(clock)`` (a new, unopened driver on an empty database)."""

    def setUp(self):
        super().setUp()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = self.make_driver(self.clock)
        self.jobs = self.driver.jobs
        self.events = []
        self.driver.events.subscribe(lambda project, queue: self.events.append((project, queue)))
        d = self.driver.open()
        d.addCallback(lambda _: self.addCleanup(self.driver.close))
        return d

    def put(self, body="b", priority=DEFAULT_PRIORITY, delay=0, ttr=30, queue=TUBE,
            project=None, ttl=TTL):
        return self.jobs.put(project, queue, body, ttl, priority, delay, ttr)

    async def state(self, job_id, project=None):
        job = await self.jobs.peek(project, job_id)
        return None if job is None else job.state

    async def test_provides_interface(self):
        """The driver provides ILineStorageDriver, its ``jobs``
        IJobController and its ``events`` IQueueEvents."""
        self.assertTrue(verifyObject(ILineStorageDriver, self.driver))
        self.assertTrue(verifyObject(IJobController, self.jobs))
        self.assertTrue(verifyObject(IQueueEvents, self.driver.events))

    async def test_put_creates_queue_and_is_a_message(self):
        """put creates a missing queue; the job is a message with the same id
        (as a string), its body, ttl and priority."""
        job_id = await self.put({"k": 1}, priority=7)
        self.assertIsInstance(job_id, int)
        self.assertTrue(await self.driver.queues.exists(None, TUBE))
        message = await self.driver.messages.get(None, TUBE, str(job_id))
        self.assertEqual((message.body, message.ttl, message.priority),
                         ({"k": 1}, TTL, 7))
        self.assertIn((None, TUBE), self.events)

    async def test_reserve_takes_lowest_priority_then_oldest(self):
        """reserve takes the lowest priority first and, within a priority,
        the oldest job (FIFO)."""
        a = await self.put(priority=5)
        b = await self.put(priority=1)
        c = await self.put(priority=5)
        d = await self.put(priority=1)
        order = [(await self.jobs.reserve(None, [TUBE])).id for _ in range(4)]
        self.assertEqual(order, [b, d, a, c])
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))

    async def test_reserve_across_tubes(self):
        """With several tubes the lowest (priority, id) over all of them
        wins; a missing tube is ignored."""
        await self.put(priority=3, queue="a")
        best = await self.put(priority=2, queue="b")
        job = await self.jobs.reserve(None, ["a", "b", "nope"])
        self.assertEqual((job.id, job.queue), (best, "b"))

    async def test_reserved_job_shape(self):
        """A reserved job carries its claim, ttr and reserve count, and
        claim_expires is ttr seconds ahead."""
        job_id = await self.put("body", ttr=45)
        job = await self.jobs.reserve(None, [TUBE])
        self.assertEqual((job.id, job.body, job.state, job.ttr, job.reserves),
                         (job_id, "body", "reserved", 45, 1))
        self.assertEqual(job.claim_expires, START + 45)
        self.assertIsNotNone(job.claim_id)
        self.assertEqual((await self.jobs.peek(None, job_id)).state, "reserved")

    async def test_fractional_clock_never_shortens_ttr_or_delay(self):
        """With the clock inside a second, a claim and a delay still last at
        least their whole length."""
        self.clock.advance(0.9)
        job_id = await self.put(delay=1, ttr=1)
        self.clock.advance(1.0)
        self.assertEqual(await self.state(job_id), "delayed")
        self.clock.advance(0.2)
        job = await self.jobs.reserve(None, [TUBE])
        self.assertEqual(job.id, job_id)
        self.clock.advance(0.95)
        self.assertEqual(await self.state(job_id), "reserved")

    async def test_delay_hides_until_due(self):
        """A delayed job is not reserved before its delay ends; next_change
        names that instant."""
        job_id = await self.put(delay=10)
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))
        self.assertEqual(await self.state(job_id), "delayed")
        self.assertEqual(await self.jobs.next_change(None, [TUBE]), START + 10)
        self.clock.advance(10)
        self.assertEqual((await self.jobs.reserve(None, [TUBE])).id, job_id)

    async def test_next_change_sees_claim_expiry(self):
        """next_change names when a claim (a reservation or an HTTP claim)
        ends, and None when nothing is pending."""
        self.assertIsNone(await self.jobs.next_change(None, [TUBE]))
        await self.put(ttr=20)
        await self.jobs.reserve(None, [TUBE])
        self.assertEqual(await self.jobs.next_change(None, [TUBE]), START + 20)

    async def test_reservation_hides_from_http_and_back(self):
        """A reservation hides the message from HTTP claims and listings, and
        an HTTP claim hides a message from reserve."""
        first = await self.put()
        second = await self.put()
        await self.jobs.reserve(None, [TUBE])
        claim = await self.driver.claims.create(None, TUBE, 60, 60, 10)
        self.assertEqual([m.id for m in claim.messages], [str(second)])
        self.assertEqual(await self.driver.messages.list(None, TUBE, echo=True), [])
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))
        self.assertEqual(await self.state(first), "reserved")
        self.assertEqual(await self.state(second), "reserved")

    async def test_reservation_expires_like_a_claim(self):
        """After ttr a reserved job is ready again without any call."""
        job_id = await self.put(ttr=5)
        await self.jobs.reserve(None, [TUBE])
        self.clock.advance(5)
        self.assertEqual(await self.state(job_id), "ready")

    async def test_touch_extends_the_claim(self):
        """touch restarts the ttr of a live claim; a wrong claim id or an
        ended claim is refused."""
        job_id = await self.put(ttr=10)
        job = await self.jobs.reserve(None, [TUBE])
        self.clock.advance(8)
        self.assertTrue(await self.jobs.touch(None, job_id, job.claim_id))
        self.assertFalse(await self.jobs.touch(None, job_id, "0" * 24))
        self.clock.advance(8)
        self.assertEqual(await self.state(job_id), "reserved")
        self.clock.advance(2)
        self.assertFalse(await self.jobs.touch(None, job_id, job.claim_id))

    async def test_release_sets_priority_and_delay(self):
        """release needs the recorded claim, sets priority and delay, counts
        a release and notifies."""
        job_id = await self.put(priority=1)
        job = await self.jobs.reserve(None, [TUBE])
        self.assertFalse(await self.jobs.release(None, job_id, "f" * 24, 9, 0))
        self.events.clear()
        self.assertTrue(await self.jobs.release(None, job_id, job.claim_id, 9, 5))
        self.assertEqual(self.events, [(None, TUBE)])
        peeked = await self.jobs.peek(None, job_id)
        self.assertEqual((peeked.state, peeked.priority, peeked.delay,
                          peeked.releases, peeked.claim_id),
                         ("delayed", 9, 5, 1, None))
        self.assertFalse(await self.jobs.release(None, job_id, job.claim_id, 9, 0))

    async def test_bury_and_kick_in_burial_order(self):
        """Buried jobs are hidden from reserve and HTTP claims, peek-buried
        and kick go in burial order, and kick prefers buried over delayed."""
        ids = [await self.put(priority=p) for p in (3, 1, 2)]
        delayed = await self.put(delay=100)
        reserved = [await self.jobs.reserve(None, [TUBE]) for _ in ids]
        for job in reversed(reserved):
            self.assertTrue(await self.jobs.bury(None, job.id, job.claim_id, 4))
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))
        self.assertIsNone(await self.driver.claims.create(None, TUBE, 60, 60, 10))
        burial = [job.id for job in reversed(reserved)]
        self.assertEqual((await self.jobs.peek_buried(None, TUBE)).id, burial[0])
        self.assertEqual(await self.jobs.kick(None, TUBE, 2), 2)
        self.assertEqual([await self.state(i) for i in burial], ["ready", "ready", "buried"])
        self.assertEqual(await self.jobs.kick(None, TUBE, 10), 1)
        self.assertEqual(await self.state(delayed), "delayed")
        self.assertEqual(await self.jobs.kick(None, TUBE, 10), 1)
        self.assertEqual(await self.state(delayed), "ready")
        job = await self.jobs.peek(None, burial[0])
        self.assertEqual((job.priority, job.buries, job.kicks), (4, 1, 1))

    async def test_kick_job_only_buried_or_delayed(self):
        """kick-job moves a delayed or buried job to ready and refuses a
        ready or reserved one."""
        ready = await self.put()
        delayed = await self.put(delay=50)
        self.assertFalse(await self.jobs.kick_job(None, ready))
        self.assertTrue(await self.jobs.kick_job(None, delayed))
        self.assertEqual(await self.state(delayed), "ready")
        job = await self.jobs.reserve(None, [TUBE])
        self.assertFalse(await self.jobs.kick_job(None, job.id))

    async def test_abandon_counts_timeouts(self):
        """abandon ends the claim; a timed-out one counts a timeout."""
        job_id = await self.put()
        job = await self.jobs.reserve(None, [TUBE])
        self.assertTrue(await self.jobs.abandon(None, job_id, job.claim_id, True))
        self.assertEqual((await self.jobs.peek(None, job_id)).timeouts, 1)
        job = await self.jobs.reserve(None, [TUBE])
        self.assertTrue(await self.jobs.abandon(None, job_id, job.claim_id, False))
        peeked = await self.jobs.peek(None, job_id)
        self.assertEqual((peeked.state, peeked.timeouts, peeked.reserves),
                         ("ready", 1, 2))

    async def test_delete_rules(self):
        """delete without a claim id refuses a reserved job; with the
        recorded claim id it deletes it; unknown ids are refused."""
        job_id = await self.put()
        job = await self.jobs.reserve(None, [TUBE])
        self.assertIsNone(await self.jobs.delete(None, job_id))
        self.assertIsNone(await self.jobs.delete(None, job_id, "0" * 24))
        self.assertEqual(await self.jobs.delete(None, job_id, job.claim_id), TUBE)
        self.assertIsNone(await self.jobs.peek(None, job_id))
        for bad in (0, -1, 2**63, 2**64 - 1, job_id):
            self.assertIsNone(await self.jobs.delete(None, bad))
        delayed = await self.put(delay=9)
        self.assertEqual(await self.jobs.delete(None, delayed), TUBE)

    async def test_reserve_job_by_id(self):
        """reserve_job takes a ready, delayed or buried job by id, not a
        reserved one."""
        delayed = await self.put(delay=60)
        job = await self.jobs.reserve_job(None, delayed)
        self.assertEqual((job.id, job.state), (delayed, "reserved"))
        self.assertIsNone(await self.jobs.reserve_job(None, delayed))
        self.assertTrue(await self.jobs.abandon(None, delayed, job.claim_id, False))
        self.assertEqual(await self.state(delayed), "ready")

    async def test_project_scoping(self):
        """Jobs of another project are not found by id, and tubes of the same
        name in two projects are separate."""
        job_id = await self.put(project="p1")
        self.assertIsNone(await self.jobs.peek(None, job_id))
        self.assertIsNone(await self.jobs.peek("p2", job_id))
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))
        self.assertIsNone(await self.jobs.delete("p2", job_id))
        self.assertEqual((await self.jobs.reserve("p1", [TUBE])).id, job_id)

    async def test_expired_messages_are_not_jobs(self):
        """A job whose message expired is gone for every job call."""
        job_id = await self.put(ttl=5)
        self.clock.advance(5)
        self.assertIsNone(await self.jobs.peek(None, job_id))
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))
        self.assertEqual((await self.jobs.counts(None, TUBE)).ready, 0)

    async def test_reservation_outlives_message_ttl(self):
        """A reservation longer than the message's remaining life extends
        the message (it never expires under its reserver)."""
        job_id = await self.put(ttl=10, ttr=100)
        await self.jobs.reserve(None, [TUBE])
        self.clock.advance(50)
        self.assertEqual(await self.state(job_id), "reserved")

    async def test_http_posted_message_defaults(self):
        """A message posted over HTTP is a job with the default priority and
        ttr and no counters."""
        await self.driver.queues.create(None, TUBE)
        [mid] = await self.driver.messages.post(None, TUBE, [{"ttl": 60, "body": [1]}])
        job = await self.jobs.reserve(None, [TUBE])
        self.assertEqual((job.id, job.priority, job.ttr, job.body),
                         (int(mid), DEFAULT_PRIORITY, DEFAULT_TTR, [1]))

    async def test_counts(self):
        """counts sorts jobs by state (urgent = ready below 1024) per tube or
        for the whole project."""
        await self.put(priority=5)
        await self.put(priority=2000)
        await self.put(delay=10)
        await self.put(queue="other", priority=3)
        job = await self.jobs.reserve(None, [TUBE])
        await self.put(priority=1)
        buried = await self.jobs.reserve(None, [TUBE])
        await self.jobs.bury(None, buried.id, buried.claim_id, 1)
        self.assertEqual(job.priority, 5)
        self.assertEqual(await self.jobs.counts(None, TUBE),
                         JobCounts(urgent=0, ready=1, reserved=1, delayed=1, buried=1,
                                   queues=1))
        whole = await self.jobs.counts(None)
        self.assertEqual((whole.ready, whole.urgent, whole.queues), (2, 1, 2))
        self.assertEqual((await self.jobs.counts(None, "missing")).queues, 0)

    async def test_notifications(self):
        """Posts over HTTP, released HTTP claims, job puts, kicks and
        abandons notify; reserve does not."""
        await self.driver.queues.create(None, TUBE)
        await self.driver.messages.post(None, TUBE, [{"ttl": 60, "body": 1}])
        claim = await self.driver.claims.create(None, TUBE, 60, 60, 1)
        self.events.clear()
        await self.jobs.reserve(None, [TUBE])
        self.assertEqual(self.events, [])
        await self.driver.claims.delete(None, TUBE, claim.id)
        self.assertEqual(self.events, [(None, TUBE)])

    async def test_a_failing_listener_does_not_break_a_write(self):
        """A listener that raises is logged; the write still succeeds and
        later listeners still hear."""
        def broken(project, queue):
            raise RuntimeError("listener bug")
        self.driver.events.subscribe(broken)
        heard = []
        self.driver.events.subscribe(lambda p, q: heard.append(q))
        job_id = await self.put()
        self.assertEqual(heard, [TUBE])
        self.assertIsNotNone(await self.jobs.peek(None, job_id))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.driver.events.unsubscribe(broken)


class SqliteJobTests(JobConformanceMixin, unittest.TestCase):
    """The job rules on a sqlite file."""

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp(), clock)

    async def test_reserve_walks_the_priority_index(self):
        """The ready-job query of reserve and peek-ready uses the
        (queue_id, priority, id) index: no scan, no sort."""
        await self.put()
        statements = []
        self.driver.db.set_trace_callback(statements.append)
        try:
            await self.jobs.reserve(None, [TUBE])
        finally:
            self.driver.db.set_trace_callback(None)
        [ready] = [s for s in statements if "ORDER BY priority, id" in s]
        plan = " | ".join(row[3] for row in self.driver.db.execute("EXPLAIN QUERY PLAN " + ready))
        self.assertIn("messages_by_priority", plan)
        self.assertNotIn("TEMP B-TREE", plan)

    async def test_jobs_rows_follow_message_deletes(self):
        """The per-job row goes with its message, whoever deletes it."""
        job_id = await self.put(ttr=99)
        await self.driver.messages.bulk_delete(None, TUBE, [str(job_id)])
        rows = self.driver.db.execute("SELECT count(*) FROM jobs").fetchone()[0]
        self.assertEqual(rows, 0)

    async def test_schema_reopens(self):
        """Reopening a database that has the job schema keeps the jobs."""
        path = self.mktemp()
        first = SqliteDriver(path, self.clock)
        await first.open()
        job_id = await first.jobs.put(None, TUBE, "x", TTL, 1, 0, 77)
        await first.close()
        again = SqliteDriver(path, self.clock)
        await again.open()
        self.addCleanup(again.close)
        self.assertEqual((await again.jobs.peek(None, job_id)).ttr, 77)
