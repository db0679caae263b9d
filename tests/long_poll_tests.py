"""Long-poll claims (``POST .../claims?wait=N``), as a mixin run on every
driver: a concrete TestCase mixes ``LongPollMixin`` with trial's TestCase
and provides ``make_driver(clock)``.

The clock is the site's and the driver's: a wait runs out, a claim expires
and a delay ends when the test advances it.
"""

import json

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from marconi_tx import config
from tests.http_support import CLIENT_ID, ApiOverDriverMixin, claim_id_of

PROJECT = "p1"
QUEUE = "/v2/queues/jobs"
CLAIM = {"ttl": 60, "grace": 60}  # v1 needs both


class LongPollMixin(ApiOverDriverMixin):

    async def setUp(self):
        await super().setUp()
        settings = config.load(overrides=[("limits:transport", "max_claim_wait", "100")])
        self.api = self.api_client(settings)
        for prefix in ("/v1", "/v1.1", "/v2"):
            answer = await self.api.put(f"{prefix}/queues/jobs", project=PROJECT)
            self.assertIn(answer.code, (201, 204))

    def wait_claim(self, wait, prefix="/v2", body=None, limit=None):
        """Start a claim of ``jobs`` waiting ``wait`` seconds; its Deferred."""
        query = f"?wait={wait}" + ("" if limit is None else f"&limit={limit}")
        return self.api.start("POST", f"{prefix}/queues/jobs/claims{query}",
                              json.dumps(body if body is not None else CLAIM).encode(),
                              project=PROJECT)

    async def post(self, *bodies, prefix="/v2"):
        messages = [{"ttl": 300, "body": b} for b in bodies]
        answer = await self.api.post(f"{prefix}/queues/jobs/messages",
                                     messages if prefix == "/v1" else {"messages": messages},
                                     project=PROJECT)
        self.assertEqual(answer.code, 201, answer.body)
        return answer

    async def pump(self):
        """Deliver what is on the way and let the waiting room finish its
        round (storage may answer on the real reactor)."""
        await self.api.get("/v2/ping", project=PROJECT)
        room = self.api.site.resource.long_poll.room
        while room is not None and room.busy:
            await self.api.settle(task.deferLater(reactor, 0.001, lambda: None))

    async def pending(self, d):
        """Pump the exchanges and check ``d`` is still unanswered."""
        await self.pump()
        self.assertNoResult(d)

    def bodies(self, answer, prefix="/v2"):
        messages = answer.json if prefix == "/v1" else answer.json["messages"]
        return [m["body"] for m in messages]

    # -- what wakes a waiting claim ------------------------------------------

    async def test_post_answers_waiting_claim_on_every_version(self):
        """On v1, v1.1 and v2, a claim with ?wait on an empty queue is not
        answered until a message is posted, then it is 201 with the message
        and a Location."""
        for prefix in ("/v1", "/v1.1", "/v2"):
            d = self.wait_claim(10, prefix)
            await self.pending(d)
            await self.post(prefix, prefix=prefix)
            answer = await self.api.settle(d)
            self.assertEqual(answer.code, 201, prefix)
            self.assertEqual(self.bodies(answer, prefix), [prefix])
            self.assertIn(f"{prefix}/queues/jobs/claims/", answer.headers["location"])

    async def test_free_message_is_claimed_at_once(self):
        """A message already free is claimed without waiting."""
        await self.post("ready")
        answer = await self.api.settle(self.wait_claim(10))
        self.assertEqual(self.bodies(answer), ["ready"])

    async def test_wait_runs_out_with_204(self):
        """Nothing posted: the claim is answered 204 when its wait runs
        out, not before."""
        d = self.wait_claim(5)
        await self.pending(d)
        self.clock.advance(4.9)
        await self.pending(d)
        self.clock.advance(0.1)
        answer = await self.api.settle(d)
        self.assertEqual(answer.code, 204)

    async def test_released_claim_wakes_waiting_claim(self):
        """A claim released over HTTP makes its message claimable: the
        waiting claim gets it at once."""
        await self.post("m")
        first = await self.api.post(QUEUE + "/claims", {"ttl": 60}, project=PROJECT)
        d = self.wait_claim(10)
        await self.pending(d)
        await self.api.delete(f"{QUEUE}/claims/{claim_id_of(first)}", project=PROJECT)
        answer = await self.api.settle(d)
        self.assertEqual(answer.code, 201)
        self.assertEqual(self.bodies(answer), ["m"])

    async def test_expired_claim_wakes_waiting_claim(self):
        """A claim that expires frees its message: the claim waiting on
        the queue gets it when the first claim's ttl ends, no later."""
        await self.post("m")
        first = await self.api.post(QUEUE + "/claims", {"ttl": 60}, project=PROJECT)
        self.assertEqual(first.code, 201)
        self.clock.advance(50)
        d = self.wait_claim(30)
        await self.pending(d)
        self.clock.advance(9)
        await self.pending(d)
        self.clock.advance(1)
        answer = await self.api.settle(d)
        self.assertEqual(answer.code, 201)
        self.assertEqual(self.bodies(answer), ["m"])

    async def patch_queue(self, **attributes):
        answer = await self.api.patch(
            QUEUE, [{"op": "add", "path": f"/metadata/{name}", "value": value}
                    for name, value in attributes.items()],
            project=PROJECT,
            headers={"Content-Type": "application/openstack-messaging-v2.0-json-patch"})
        self.assertEqual(answer.code, 200, answer.body)

    async def test_delay_ending_wakes_waiting_claim(self):
        """A delayed message (v2: the queue's _default_message_delay) is
        claimed by the waiting claim when its delay ends."""
        await self.patch_queue(_default_message_delay=5)
        await self.post("later")
        d = self.wait_claim(10)
        await self.pending(d)
        self.clock.advance(4)
        await self.pending(d)
        self.clock.advance(1)
        answer = await self.api.settle(d)
        self.assertEqual(self.bodies(answer), ["later"])

    async def test_line_put_wakes_waiting_claim(self):
        """A job put by the line port's storage call (``jobs.put``) wakes a
        waiting HTTP claim: any transport's post notifies the same hub."""
        d = self.wait_claim(10)
        await self.pending(d)
        await self.api.settle(self.driver.jobs.put(PROJECT, "jobs", "from tcp", 300, 0, 0, 60))
        answer = await self.api.settle(d)
        self.assertEqual(self.bodies(answer), ["from tcp"])

    async def test_other_queue_or_project_does_not_wake(self):
        """A post to another queue, or to the same queue name of another
        project, leaves the claim waiting."""
        d = self.wait_claim(10)
        await self.api.put("/v2/queues/other", project=PROJECT)
        await self.api.post("/v2/queues/other/messages", {"messages": [{"body": 1}]},
                            project=PROJECT)
        await self.api.post(QUEUE + "/messages", {"messages": [{"body": 2}]}, project="p2")
        await self.pending(d)
        self.clock.advance(10)
        self.assertEqual((await self.api.settle(d)).code, 204)

    async def test_waiting_claims_served_in_arrival_order(self):
        """Two claims wait; each posted message goes to the earliest claim
        still waiting, and a claim takes up to its limit."""
        first, second = self.wait_claim(10, limit=1), self.wait_claim(10, limit=5)
        await self.pending(first)
        await self.post("a")
        self.assertEqual(self.bodies(await self.api.settle(first)), ["a"])
        await self.pending(second)
        await self.post("b", "c")
        self.assertEqual(self.bodies(await self.api.settle(second)), ["b", "c"])

    async def test_dead_letter_policy_applies_to_waiting_v2_claim(self):
        """A v2 waiting claim goes through the queue's dead-letter policy:
        a message claimed _max_claim_count times is moved, not claimed."""
        await self.patch_queue(_max_claim_count=1, _dead_letter_queue="dead")
        await self.post("m")
        first = await self.api.post(QUEUE + "/claims", {"ttl": 60}, project=PROJECT)
        d = self.wait_claim(10)
        await self.api.delete(f"{QUEUE}/claims/{claim_id_of(first)}", project=PROJECT)
        await self.pending(d)  # the message went to "dead", not to the claim
        moved = await self.api.post("/v2/queues/dead/claims", {"ttl": 60}, project=PROJECT)
        self.assertEqual(self.bodies(moved), ["m"])
        self.clock.advance(10)
        self.assertEqual((await self.api.settle(d)).code, 204)

    # -- bounds -------------------------------------------------------------

    async def test_wait_out_of_bounds_is_400(self):
        """wait above max_claim_wait, negative or not an integer is 400 with
        a JSON title, on every version; wait=0 and the maximum are taken."""
        for prefix in ("/v1", "/v1.1", "/v2"):
            for wait in ("101", "-1", "1.5", "x", "9" * 30):
                answer = await self.api.post(f"{prefix}/queues/jobs/claims?wait={wait}",
                                             CLAIM, project=PROJECT)
                self.assertEqual(answer.code, 400, (prefix, wait))
                self.assertEqual(answer.json["title"], "Invalid query parameter")
                self.assertIn("wait", answer.json["description"])
            answer = await self.api.post(f"{prefix}/queues/jobs/claims?wait=0",
                                         CLAIM, project=PROJECT)
            self.assertEqual(answer.code, 204)
        d = self.wait_claim(100)
        await self.pending(d)
        self.clock.advance(100)
        self.assertEqual((await self.api.settle(d)).code, 204)

    async def test_max_claim_wait_zero_refuses_waiting(self):
        """With max_claim_wait 0 any wait above 0 is 400."""
        api = self.api_client(config.load(overrides=[
            ("limits:transport", "max_claim_wait", "0")]))
        answer = await api.post(QUEUE + "/claims?wait=1", {"ttl": 60}, project=PROJECT)
        self.assertEqual(answer.code, 400)
        self.assertIn("more than 0", answer.json["description"])

    # -- clients that leave --------------------------------------------------

    def connection(self, wait):
        """A client on a StringTransport whose claim waits ``wait`` s."""
        channel = self.api.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = StringTransport()
        channel.makeConnection(transport)
        body = b'{"ttl": 60}'
        channel.dataReceived(
            b"POST /v2/queues/jobs/claims?wait=%d HTTP/1.1\r\nHost: localhost\r\n"
            b"Client-ID: %s\r\nX-Project-ID: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (wait, CLIENT_ID.encode(), PROJECT.encode(), len(body), body))
        return channel, transport

    async def test_client_leaving_stops_its_wait(self):
        """A client that disconnects while its claim waits is forgotten: a
        message posted next is claimable by another consumer at once."""
        channel, transport = self.connection(10)
        await self.pump()
        self.assertEqual(transport.value(), b"")
        channel.connectionLost(Failure(ConnectionLost()))
        await self.post("m")
        answer = await self.api.post(QUEUE + "/claims", {"ttl": 60}, project=PROJECT)
        self.assertEqual(answer.code, 201)
        self.assertEqual(self.bodies(answer), ["m"])
        self.assertEqual(len(self.api.site.resource.long_poll.room), 0)

    async def test_claim_made_as_client_leaves_is_released(self):
        """A client that disconnects while its waiting claim is being made
        (storage answering) leaves no claim: it is released, and another
        consumer claims the message at once."""
        channel, transport = self.connection(10)
        await self.pump()

        def leave(project, queue):
            # Called after the room's listener: the waiting claim's try is
            # in flight in storage now.
            self.driver.events.unsubscribe(leave)
            channel.connectionLost(Failure(ConnectionLost()))

        self.driver.events.subscribe(leave)
        await self.post("m")
        await self.pump()  # the release is done
        answer = await self.api.post(QUEUE + "/claims", {"ttl": 60}, project=PROJECT)
        self.assertEqual(answer.code, 201)
        self.assertEqual(self.bodies(answer), ["m"])
        self.assertNotIn(b"201", transport.value())

    async def test_stop_answers_waiting_claims(self):
        """At a stop (the drain calls ``stop_all``) every waiting claim is
        answered 204 at once, not at the end of its wait."""
        d = self.wait_claim(10)
        await self.pending(d)
        self.api.site.resource.long_poll.stop_all()
        self.assertEqual((await self.api.settle(d)).code, 204)
        self.assertEqual(len(self.api.site.resource.long_poll.room), 0)
