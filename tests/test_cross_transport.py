"""One storage, two transports: jobs over the line protocol and messages
over the HTTP API (``build_resource`` through StubTreq) are the same, and a
line ``put``'s delay and priority are the message's delay and priority."""

import base64

from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.http_support import ApiClient, claim_id_of, message_id
from tests.test_line_protocol import LineTestCase, parse_job, parse_yaml


class SharedDriverTestCase(LineTestCase):
    """One sqlite file driver shared by the line factory and the HTTP
    resource (``self.api``)."""

    def make_driver(self):
        return SqliteDriver(self.mktemp(), self.clock)

    def setUp(self):
        super().setUp()
        self.api = ApiClient(self.driver, self.config)


class CrossTransportTests(SharedDriverTestCase):
    """The line protocol and HTTP API v1 (the global namespace of both)."""

    async def listed(self, queue, query="echo=true"):
        """The ids (ints) a v1 listing of ``queue`` shows."""
        answer = await self.api.get(f"/v1/queues/{queue}/messages?{query}")
        if answer.code == 204:
            return []
        return [int(message_id(m["href"])) for m in answer.json["messages"]]

    async def claimed(self, queue):
        """The ids (ints) a v1 claim on ``queue`` takes."""
        answer = await self.api.post(f"/v1/queues/{queue}/claims", {"ttl": 60, "grace": 60})
        return [] if answer.code == 204 else [int(message_id(m["href"])) for m in answer.json]

    async def test_tcp_put_read_over_http(self):
        """A job put over TCP is a message over HTTP with the same id: a
        UTF-8 body as a JSON string, other bytes as {"base64": ...}; the
        configured ttl applies."""
        self.c.ask(b"use shared")
        text = self.c.put("héllo".encode())
        raw = self.c.put(b"\xff\xfe\x00")
        answer = await self.api.get(f"/v1/queues/shared/messages/{text}")
        self.assertEqual(answer.code, 200)
        self.assertEqual((answer.json["body"], answer.json["ttl"]),
                         ("héllo", self.config.line.message_ttl))
        answer = await self.api.get(f"/v1/queues/shared/messages/{raw}")
        self.assertEqual(answer.json["body"],
                         {"base64": base64.b64encode(b"\xff\xfe\x00").decode()})

    async def test_http_post_reserved_over_tcp(self):
        """Messages posted over HTTP are reserved over TCP with the same id:
        a string body as its UTF-8, {"base64": ...} decoded, other JSON as
        compact text; priority 1024 and ttr 60 by default."""
        await self.api.put("/v1/queues/web")
        answer = await self.api.post("/v1/queues/web/messages", [
            {"ttl": 300, "body": "plain"},
            {"ttl": 300, "body": {"base64": base64.b64encode(b"\x00\x01").decode()}},
            {"ttl": 300, "body": {"a": [1, "é"]}}])
        self.assertEqual(answer.code, 201)
        ids = [int(message_id(href)) for href in answer.json["resources"]]
        self.c.ask(b"watch web")
        got = [self.c.reserve() for _ in ids]
        self.assertEqual(got, list(zip(ids, [b"plain", b"\x00\x01",
                                             '{"a":[1,"é"]}'.encode()])))
        stats = parse_yaml(self.c.ask(b"stats-job %d" % ids[0]))
        self.assertEqual((stats["pri"], stats["ttr"], stats["tube"]), ("1024", "60", "web"))

    async def test_http_post_wakes_waiting_reserve(self):
        """A POST through the HTTP API wakes a reserve blocked on the tube."""
        self.c.ask(b"watch wake", b"ignore default")
        self.assertEqual(self.c.ask(b"reserve"), b"")
        [mid] = await self.api.post_messages("wake", 1)
        self.assertEqual(parse_job(self.c.take()), (int(mid), b'{"n":0}'))

    async def test_tcp_reservation_hides_message_from_http(self):
        """A reserved job is skipped by HTTP claims and hidden from listings;
        deleted over TCP it is gone over HTTP."""
        self.c.ask(b"use hide", b"watch hide")
        first = self.c.put(b"1")
        second = self.c.put(b"2")
        self.assertEqual(self.c.reserve()[0], first)
        answer = await self.api.post("/v1/queues/hide/claims", {"ttl": 60, "grace": 60})
        self.assertEqual([int(message_id(m["href"])) for m in answer.json], [second])
        answer = await self.api.get("/v1/queues/hide/messages?echo=true")
        self.assertEqual(answer.code, 204)
        self.assertEqual(self.c.ask(b"delete %d" % first), b"DELETED\r\n")
        answer = await self.api.get(f"/v1/queues/hide/messages/{first}")
        self.assertEqual(answer.code, 404)

    async def test_http_claim_hides_job_and_its_release_wakes(self):
        """A message under an HTTP claim is not reserved; DELETE of the claim
        over HTTP wakes the waiting reserve with it."""
        self.c.ask(b"use claimed", b"watch claimed", b"ignore default")
        job_id = self.c.put(b"c")
        answer = await self.api.post("/v1/queues/claimed/claims", {"ttl": 60, "grace": 60})
        self.assertEqual(answer.code, 201)
        claim = claim_id_of(answer)
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        self.assertEqual(parse_yaml(self.c.ask(b"stats-job %d" % job_id))["state"], "reserved")
        self.assertEqual(self.c.ask(b"delete %d" % job_id), b"NOT_FOUND\r\n")
        self.assertEqual(self.c.ask(b"reserve"), b"")
        answer = await self.api.delete(f"/v1/queues/claimed/claims/{claim}")
        self.assertEqual(answer.code, 204)
        self.assertEqual(parse_job(self.c.take()), (job_id, b"c"))

    async def test_queue_deleted_over_http(self):
        """Deleting the queue over HTTP removes its jobs; the tube still
        exists while a connection uses it, and a put re-creates the queue."""
        self.c.ask(b"use gone")
        job_id = self.c.put(b"g")
        answer = await self.api.delete("/v1/queues/gone")
        self.assertEqual(answer.code, 204)
        self.assertEqual(self.c.ask(b"peek %d" % job_id), b"NOT_FOUND\r\n")
        self.assertEqual(parse_yaml(self.c.ask(b"stats-tube gone"))["current-jobs-ready"], "0")
        self.assertIn("gone", parse_yaml(self.c.ask(b"list-tubes")))
        again = self.c.put(b"again")
        answer = await self.api.get(f"/v1/queues/gone/messages/{again}")
        self.assertEqual(answer.json["body"], "again")

    async def test_line_delay_hides_message_from_http_until_due(self):
        """A job put with a delay is a delayed message: HTTP v1 lists and
        claims it only once the delay is over, while GET by id shows it all
        along."""
        self.c.ask(b"use later")
        job_id = self.c.put(b"later", delay=30)
        self.assertEqual(await self.listed("later"), [])
        self.assertEqual(await self.claimed("later"), [])
        answer = await self.api.get(f"/v1/queues/later/messages/{job_id}")
        self.assertEqual((answer.code, answer.json["body"]), (200, "later"))
        self.clock.advance(29)
        self.assertEqual(await self.listed("later"), [])
        self.clock.advance(1)
        self.assertEqual(await self.listed("later"), [job_id])
        self.assertEqual(await self.claimed("later"), [job_id])

    async def test_line_release_with_delay_hides_message_from_http(self):
        """A job released with a delay is hidden from HTTP listings and
        claims until due; a kick over the line makes it claimable at once."""
        self.c.ask(b"use back", b"watch back")
        job_id = self.c.put(b"b")
        self.assertEqual(self.c.reserve()[0], job_id)
        self.assertEqual(self.c.ask(b"release %d 1024 300" % job_id), b"RELEASED\r\n")
        self.assertEqual(await self.listed("back"), [])
        self.assertEqual(await self.claimed("back"), [])
        self.assertEqual(self.c.ask(b"kick 1"), b"KICKED 1\r\n")
        self.assertEqual(await self.claimed("back"), [job_id])

    async def test_priority_orders_reserve_not_http_claims(self):
        """A line job's priority is the message's: reserve takes a low
        priority job before an older HTTP message (priority 1024), while an
        HTTP claim keeps marker (FIFO) order."""
        await self.api.put("/v1/queues/prio")
        [posted] = await self.api.post_messages("prio", 1)
        self.c.ask(b"use prio", b"watch prio")
        urgent = self.c.put(b"u", priority=10)
        answer = await self.api.get("/v1/queues/prio/messages?echo=true")
        self.assertEqual([int(message_id(m["href"])) for m in answer.json["messages"]],
                         [int(posted), urgent])
        self.assertEqual(self.c.reserve()[0], urgent)
        self.assertEqual(await self.claimed("prio"), [int(posted)])

    async def test_claims_and_reserves_share_one_count(self):
        """HTTP claims and line reservations count on the same message: a
        message claimed over HTTP (claim released) and then reserved shows
        2 reserves in stats-job."""
        await self.api.put("/v1/queues/count")
        [posted] = await self.api.post_messages("count", 1)
        answer = await self.api.post("/v1/queues/count/claims", {"ttl": 60, "grace": 60})
        await self.api.delete(f"/v1/queues/count/claims/{claim_id_of(answer)}")
        self.c.ask(b"watch count")
        self.assertEqual(self.c.reserve()[0], int(posted))
        stats = parse_yaml(self.c.ask(b"stats-job %s" % posted.encode()))
        self.assertEqual((stats["state"], stats["reserves"]), ("reserved", "2"))


class V2CrossTransportTests(SharedDriverTestCase):
    """The line protocol and HTTP API v1.1 and v2: the line endpoint serves
    the project the requests name (v1.1 on require one)."""

    settings = (("project", "tenant"),)

    def request(self, method, path, body=None):
        return self.api.request(method, path, body, project="tenant")

    async def listed(self, version, queue, query=""):
        """The ids (ints) a listing of ``queue`` shows (echo on)."""
        answer = await self.request("GET", f"/{version}/queues/{queue}/messages?echo=true"
                                    + query)
        self.assertEqual(answer.code, 200)
        return [int(m["id"]) for m in answer.json["messages"]]

    async def claimed(self, queue):
        """The ids (ints) a v2 claim on ``queue`` takes."""
        answer = await self.request("POST", f"/v2/queues/{queue}/claims",
                                    {"ttl": 60, "grace": 60})
        return [] if answer.code == 204 else [int(m["id"]) for m in answer.json["messages"]]

    async def test_line_delay_is_v2_delay(self):
        """A job put with a delay is hidden from v1.1 and v2 listings and
        from v2 claims until due; v2 lists it with include_delayed=true."""
        self.c.ask(b"use later")
        job_id = self.c.put(b"later", delay=30)
        self.assertEqual(await self.listed("v1.1", "later"), [])
        self.assertEqual(await self.listed("v2", "later"), [])
        self.assertEqual(await self.listed("v2", "later", "&include_delayed=true"), [job_id])
        self.assertEqual(await self.claimed("later"), [])
        self.clock.advance(30)
        self.assertEqual(await self.listed("v1.1", "later"), [job_id])
        self.assertEqual(await self.claimed("later"), [job_id])

    async def test_v2_delayed_post_is_delayed_job(self):
        """A message posted over v2 with a delay (on a queue with
        _default_message_delay) is a delayed job for the line protocol:
        peek-delayed finds it, stats-job says delayed with the time left,
        reserve does not take it, and a kick makes it ready at once."""
        answer = await self.request("PUT", "/v2/queues/slow", {"_default_message_delay": 60})
        self.assertEqual(answer.code, 201)
        answer = await self.request("POST", "/v2/queues/slow/messages",
                                    {"messages": [{"ttl": 300, "body": "d", "delay": 20}]})
        self.assertEqual(answer.code, 201, answer.body)
        posted = int(message_id(answer.json["resources"][0]))
        self.c.ask(b"use slow", b"watch slow", b"ignore default")
        self.assertEqual(parse_job(self.c.ask(b"peek-delayed"), b"FOUND"), (posted, b"d"))
        stats = parse_yaml(self.c.ask(b"stats-job %d" % posted))
        self.assertEqual((stats["state"], stats["time-left"]), ("delayed", "20"))
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        self.assertEqual(self.c.ask(b"kick 1"), b"KICKED 1\r\n")
        self.assertEqual(self.c.reserve(), (posted, b"d"))

    async def test_v2_default_delay_is_delayed_job(self):
        """A v2 post without a delay field on a queue with
        _default_message_delay gets that delay: a delayed job until due,
        then reserved over the line."""
        await self.request("PUT", "/v2/queues/dflt", {"_default_message_delay": 15})
        answer = await self.request("POST", "/v2/queues/dflt/messages",
                                    {"messages": [{"ttl": 300, "body": "x"}]})
        posted = int(message_id(answer.json["resources"][0]))
        self.c.ask(b"watch dflt", b"ignore default")
        self.assertEqual(self.c.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        stats = parse_yaml(self.c.ask(b"stats-job %d" % posted))
        self.assertEqual((stats["state"], stats["time-left"]), ("delayed", "15"))
        self.clock.advance(15)
        self.assertEqual(self.c.reserve(b"reserve-with-timeout 0"), (posted, b"x"))

    async def test_v2_pop_takes_reserved_count_and_delayed_jobs(self):
        """v2 pop shows a line reservation in claim_count and pops a delayed
        job too."""
        self.c.ask(b"use popped", b"watch popped")
        reserved = self.c.put(b"r", ttr=5)
        self.assertEqual(self.c.reserve()[0], reserved)
        self.clock.advance(5)
        delayed = self.c.put(b"d", delay=100)
        answer = await self.request("DELETE", "/v2/queues/popped/messages?pop=5")
        self.assertEqual(answer.code, 200, answer.body)
        self.assertEqual([(int(m["id"]), m["claim_count"]) for m in answer.json["messages"]],
                         [(reserved, 1), (delayed, 0)])
        self.assertEqual(self.c.ask(b"peek %d" % delayed), b"NOT_FOUND\r\n")

    async def test_line_reserves_count_toward_dead_letter(self):
        """Line reservations count as claims for v2's dead-letter policy: a
        job reserved once (timed out) is moved by the next v2 claim of a
        queue with _max_claim_count 1, and the line protocol sees it in the
        dead-letter tube with its count restarted."""
        answer = await self.request("PUT", "/v2/queues/work", {
            "_max_claim_count": 1, "_dead_letter_queue": "dead"})
        self.assertEqual(answer.code, 201, answer.body)
        self.c.ask(b"use work", b"watch work")
        job_id = self.c.put(b"w", ttr=5)
        self.assertEqual(self.c.reserve()[0], job_id)
        self.clock.advance(5)
        answer = await self.request("POST", "/v2/queues/work/claims", {"ttl": 60, "grace": 60})
        self.assertEqual(answer.code, 204, answer.body)
        stats = parse_yaml(self.c.ask(b"stats-job %d" % job_id))
        self.assertEqual((stats["tube"], stats["state"], stats["reserves"]),
                         ("dead", "ready", "0"))
