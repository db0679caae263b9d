"""GET /metrics: the exposition, and each count moved by real requests
through the real app, line commands, the expiry job and the depth refresh."""

from klein import Klein
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from marconi_tx import config, tap
from marconi_tx.expiry import ExpiryService
from marconi_tx.metrics import Metrics, daemon_metrics
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.http.app import Router, build_resource
from marconi_tx.transport.http.site import make_site
from marconi_tx.transport.line import make_factory
from tests.http_support import ApiClient, new_clock
from tests.test_line_protocol import Connection

MESSAGES = "/v1/queues/<queue_name>/messages"

#: Every family the README documents (without the _total of counters).
FAMILIES = ("marconi_http_requests", "marconi_http_request_duration_seconds",
            "marconi_messages_posted", "marconi_messages_claimed",
            "marconi_messages_deleted", "marconi_expired_records",
            "marconi_storage_errors", "marconi_queue_messages",
            "marconi_line_connections", "marconi_line_connections_accepted",
            "marconi_line_commands")


def parse(text):
    """{(sample name, sorted label items): value} of an exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def families(text):
    return {family.name for family in text_string_to_metric_families(text)}


class MetricsTestCase(unittest.TestCase):
    """The real app over an in-memory sqlite driver, with metrics."""

    def setUp(self):
        self.clock = new_clock()
        self.driver = SqliteDriver(":memory:", self.clock)
        self.driver.open_now()
        self.addCleanup(self.driver.close)
        self.settings = config.load()
        self.metrics = Metrics(self.clock, depth_interval=15, depth_queues=2)
        self.served = self.metrics.watch_storage(self.driver)
        self.api = ApiClient(self.served, self.settings)
        self.api.stub = StubTreq(build_resource(self.served, self.settings, self.metrics))

    async def scrape(self):
        answer = await self.api.get("/metrics")
        self.assertEqual(answer.code, 200)
        return answer.body.decode("utf-8")

    async def samples(self):
        return parse(await self.scrape())

    def value(self, samples, name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class ExpositionTests(MetricsTestCase):
    async def test_text_parses_with_every_documented_family(self):
        """/metrics answers the text format (version 0.0.4) that
        prometheus_client's parser reads, with every documented family and
        the process metrics."""
        factory = make_factory(self.served, self.settings, self.clock)
        self.metrics.watch_line(factory)
        await self.api.put("/v1/queues/q")  # a counted request
        answer = await self.api.get("/metrics")
        self.assertEqual(answer.headers["content-type"],
                         "text/plain; version=0.0.4; charset=utf-8")
        names = families(answer.body.decode("utf-8"))
        for name in FAMILIES + ("process_cpu_seconds",):
            self.assertIn(name, names)

    async def test_other_methods_are_405(self):
        """/metrics takes GET and HEAD only; others get 405 with Allow."""
        answer = await self.api.post("/metrics", b"")
        self.assertEqual(answer.code, 405)
        self.assertEqual(answer.headers["allow"], "GET, HEAD")
        self.assertEqual((await self.api.request("HEAD", "/metrics")).code, 200)

    async def test_apps_have_their_own_registries(self):
        """Two daemons in one process count apart (no global registry)."""
        other = Metrics(self.clock)
        other_api = ApiClient(self.driver, self.settings)
        other_api.stub = StubTreq(build_resource(other.watch_storage(self.driver),
                                                 self.settings, other))
        await other_api.put("/v1/queues/q")
        samples = await self.samples()
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route="/v1/queues/<queue_name>", method="PUT",
                                    status="201"), 0)

    def test_metrics_off(self):
        """With [drivers] metrics = false there is no Metrics and no
        /metrics route (404)."""
        off = config.load(overrides=[("drivers", "metrics", "false")])
        self.assertIsNone(daemon_metrics(off, self.clock))
        self.assertIsNotNone(daemon_metrics(self.settings, self.clock))
        site = make_site(build_resource(self.driver, off), max_body=1000)
        site.timeOut = None
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 404 "))

    def test_daemon_serves_metrics(self):
        """``twistd marconi`` with default settings builds the metrics: a
        depth refresh service and a counted driver behind the HTTP site."""
        options = tap.Options()
        options.parseOptions(["--storage", "sqlite:" + self.mktemp()])
        root = tap.makeService(options)
        names = [type(s).__name__ for s in root]
        self.assertIn("QueueDepths", names)


class RequestCountTests(MetricsTestCase):
    async def test_requests_by_route_template_method_and_status(self):
        """Requests are counted by the route template (never the path),
        method and status, and each is timed once."""
        for queue in ("q1", "q2"):
            await self.api.put(f"/v1/queues/{queue}")
        await self.api.post_messages("q1", 1)
        await self.api.post_messages("q1", 2)
        await self.api.post_messages("q2", 1)
        await self.api.post("/v1/queues/missing/messages", [{"ttl": 60, "body": 1}])
        samples = await self.samples()
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route=MESSAGES, method="POST", status="201"), 3)
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route=MESSAGES, method="POST", status="404"), 1)
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route="/v1/queues/<queue_name>", method="PUT",
                                    status="201"), 2)
        self.assertEqual(self.value(samples, "marconi_http_request_duration_seconds_count",
                                    route=MESSAGES, method="POST"), 4)
        self.assertNotIn("q1", "".join(str(key) for key in samples))

    async def test_unknown_paths_share_one_label(self):
        """Paths matching no route (404), and odd methods, are counted under
        fixed labels: clients cannot grow the set of series."""
        for path in ("/nope", "/nope/again", "/v1/queues/q/messages/1/2/3"):
            self.assertEqual((await self.api.get(path)).code, 404)
        await self.api.put("/v1/queues/q")
        for method in ("FOO", "BAR"):
            await self.api.request(method, "/v1/queues/q")
        samples = await self.samples()
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route="unmatched", method="GET", status="404"), 3)
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route="/v1/queues/<queue_name>", method="other",
                                    status="405"), 2)
        routes = {dict(labels).get("route") for _, labels in samples}
        self.assertNotIn("/nope", routes)

    async def test_scrapes_are_counted_too(self):
        """/metrics is a route like the others: the second scrape shows the
        first."""
        await self.scrape()
        samples = await self.samples()
        self.assertEqual(self.value(samples, "marconi_http_requests_total",
                                    route="/metrics", method="GET", status="200"), 1)


class LatencyTests(unittest.SynchronousTestCase):
    def test_latency_is_clock_time_from_routing_to_answer(self):
        """The histogram records the injected clock's seconds between the
        routing of a request and its answer."""
        clock = new_clock()
        metrics = Metrics(clock)
        pending = Deferred()
        app = Klein()
        app.route("/slow", endpoint="/slow")(lambda request: pending)
        site = make_site(Router(app, metrics), max_body=1000)
        site.timeOut = None
        channel = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        clock.advance(0.003)
        pending.callback(b"done")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
        samples = parse(generate_latest(metrics.registry).decode())
        labels = {"route": "/slow", "method": "GET"}

        def bucket(le):
            return samples[("marconi_http_request_duration_seconds_bucket",
                            tuple(sorted({**labels, "le": le}.items())))]

        self.assertEqual((bucket("0.0025"), bucket("0.005")), (0, 1))
        self.assertAlmostEqual(
            samples[("marconi_http_request_duration_seconds_sum",
                     tuple(sorted(labels.items())))], 0.003, places=6)


class MessageCountTests(MetricsTestCase):
    async def test_posted_claimed_deleted(self):
        """Messages posted, claimed and deleted over HTTP move their counters
        by the number of messages."""
        await self.api.put("/v1/queues/q")
        ids = await self.api.post_messages("q", 5)
        claim = await self.api.post("/v1/queues/q/claims?limit=2", {"ttl": 60, "grace": 60})
        self.assertEqual(claim.code, 201)
        href = claim.json[0]["href"]
        self.assertEqual((await self.api.delete(href)).code, 204)
        await self.api.delete(f"/v1/queues/q/messages?ids={ids[3]},{ids[4]}")
        samples = await self.samples()
        self.assertEqual(self.value(samples, "marconi_messages_posted_total"), 5)
        self.assertEqual(self.value(samples, "marconi_messages_claimed_total"), 2)
        self.assertEqual(self.value(samples, "marconi_messages_deleted_total"), 3)

    async def test_storage_errors_by_operation(self):
        """A storage outage (the database closed) is a 503, counted as a
        storage error of the failed operation."""
        await self.api.put("/v1/queues/q")
        self.driver.close()
        answer = await self.api.post("/v1/queues/q/messages", [{"ttl": 60, "body": 1}])
        self.assertEqual(answer.code, 503)
        samples = await self.samples()
        self.assertEqual(self.value(samples, "marconi_storage_errors_total",
                                    operation="messages.post"), 1)
        self.assertEqual(self.value(samples, "marconi_messages_posted_total"), 0)
        self.assertEqual(self.value(samples, "marconi_http_requests_total", route=MESSAGES,
                                    method="POST", status="503"), 1)

    async def test_expired_after_an_expiry_run(self):
        """The expiry job, driven by the clock, adds what it removed."""
        await self.api.put("/v1/queues/q")
        await self.api.post_messages("q", 3, ttl=60)
        await self.api.post_messages("q", 1, ttl=600)
        service = ExpiryService(self.served, 30, self.clock)
        service.startService()
        self.addCleanup(service.stopService)
        self.clock.advance(30)
        self.assertEqual(self.value(await self.samples(), "marconi_expired_records_total"), 0)
        self.clock.advance(30)
        self.assertEqual(self.value(await self.samples(), "marconi_expired_records_total"), 3)


class LineTests(MetricsTestCase):
    async def test_commands_and_connections(self):
        """Line commands are counted by name, connections are a gauge, and
        jobs put, reserved and deleted count as messages."""
        factory = make_factory(self.served, self.settings, self.clock)
        self.metrics.watch_line(factory)
        first, second = Connection(factory), Connection(factory)
        job = first.put(b"hello")
        self.assertEqual(first.reserve()[0], job)
        self.assertEqual(first.ask(b"delete %d" % job), b"DELETED\r\n")
        self.assertEqual(first.ask(b"delete %d" % job), b"NOT_FOUND\r\n")
        second.close()
        samples = await self.samples()
        for command, count in (("put", 1), ("reserve", 1), ("delete", 2)):
            self.assertEqual(self.value(samples, "marconi_line_commands_total",
                                        command=command), count, command)
        self.assertEqual(self.value(samples, "marconi_line_connections"), 1)
        self.assertEqual(self.value(samples, "marconi_line_connections_accepted_total"), 2)
        for name in ("posted", "claimed", "deleted"):
            self.assertEqual(self.value(samples, f"marconi_messages_{name}_total"), 1, name)
        first.close()
        self.assertEqual(self.value(await self.samples(), "marconi_line_connections"), 0)


class DepthTests(MetricsTestCase):
    def setUp(self):
        super().setUp()
        self.metrics.depths.startService()
        self.addCleanup(self.metrics.depths.stopService)

    def depth(self, samples, queue, state):
        return samples.get(("marconi_queue_messages",
                            (("project", ""), ("queue", queue), ("state", state))))

    async def test_refreshed_in_the_background_not_per_scrape(self):
        """A scrape shows the depths last read, every depth_interval seconds
        of the clock; posting more changes nothing until the next read."""
        await self.api.put("/v1/queues/q")
        await self.api.post_messages("q", 2)
        self.assertIsNone(self.depth(await self.samples(), "q", "free"))
        self.clock.advance(15)
        samples = await self.samples()
        self.assertEqual((self.depth(samples, "q", "free"),
                          self.depth(samples, "q", "claimed")), (2, 0))
        await self.api.post_messages("q", 3)
        await self.api.post("/v1/queues/q/claims?limit=1", {"ttl": 60, "grace": 60})
        self.clock.advance(14)
        self.assertEqual(self.depth(await self.samples(), "q", "free"), 2)
        self.clock.advance(1)
        samples = await self.samples()
        self.assertEqual((self.depth(samples, "q", "free"),
                          self.depth(samples, "q", "claimed")), (4, 1))

    async def test_bounded_to_recent_queues_and_deleted_ones_go(self):
        """Only the depth_queues most recently active queues are shown; a
        queue that falls out, or is deleted, loses its series."""
        for queue in ("a", "b", "c"):
            await self.api.put(f"/v1/queues/{queue}")
            await self.api.post_messages(queue, 1)
        self.clock.advance(15)
        samples = await self.samples()
        self.assertEqual([self.depth(samples, q, "free") for q in "abc"], [None, 1, 1])
        await self.api.post_messages("a", 1)  # a is back in, b (the oldest) out
        await self.api.delete("/v1/queues/c")
        self.clock.advance(15)
        samples = await self.samples()
        self.assertEqual([self.depth(samples, q, "free") for q in "abc"], [2, None, None])
