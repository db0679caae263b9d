"""The client library over API v2, against the real server resource
(StubTreq): version discovery, the v1 behaviours again over v2's shapes,
and what only v2 has (pop, purge, delayed posts, metadata patches, signed
URLs, subscriptions)."""

import datetime
import json

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import NOT_DONE_YET

import tests.test_client as v1
from marconi_tx.client import (
    BadRequest,
    Client,
    Conflict,
    ConnectionFailed,
    NotFound,
    QueueNotFound,
    SubscriptionNotFound,
    UnsupportedByAPI,
    batches,
    versions,
)
from tests.test_client_support import (
    BASE_URL,
    Delegating,
    Hiding,
    Recording,
    RefusingTreq,
    Server,
)

#: What GET of a queue without metadata shows in v2 (the reserved defaults).
DEFAULTS = {"_default_message_ttl": 3600, "_max_messages_post_size": 262144,
            "_default_message_delay": 0, "_dead_letter_queue": None,
            "_dead_letter_queue_messages_ttl": None, "_max_claim_count": None,
            "_enable_encrypt_messages": False}

#: The setting that enables pre-signed URLs.
SECRET = ("signed_url", "secret_key", "not-a-real-secret")


class DiscoveryTests(SynchronousTestCase):
    def setUp(self):
        self.server = Server(self, api=None)

    def result(self, deferred):
        return self.successResultOf(deferred)

    def test_discovers_v2(self):
        """A client without ``api`` asks GET / once, then speaks v2 (its
        queue paths are /v2's) for every request."""
        recording = Recording(self.server.resource)
        client = self.server.client(recording)
        self.assertIsNone(client.api)
        self.assertIsNone(client.queue("jobs").href)
        self.result(client.queue("jobs").post_messages([{"body": 1}]))
        self.result(client.queue("jobs").stats())
        self.assertEqual(client.api, "v2")
        self.assertEqual(client.queue("jobs").href, "/v2/queues/jobs")
        self.assertEqual([(r["method"], r["uri"]) for r in recording.requests],
                         [("GET", "/"), ("POST", "/v2/queues/jobs/messages"),
                          ("GET", "/v2/queues/jobs/stats")])

    def test_concurrent_requests_discover_once(self):
        """Requests made while the discovery is under way wait for it: one
        GET /, then each request over v2."""
        held = HeldRoot(self.server.resource)
        recording = Recording(held)
        stub = StubTreq(recording)
        client = Client(BASE_URL, treq=stub, reactor=self.server.clock)
        first, second = client.health(), client.queue("jobs").stats()
        self.assertNoResult(first)
        held.answer()
        stub.flush()
        self.assertIs(self.result(first), True)
        self.assertEqual(self.result(second)["messages"]["total"], 0)
        self.assertEqual(sorted(r["uri"] for r in recording.requests),
                         ["/", "/v2/ping", "/v2/queues/jobs/stats"])

    def test_falls_back_to_the_v2_home(self):
        """A server without a versions document at / is asked GET /v2: the
        client speaks v2 when it answers."""
        recording = Recording(Hiding(self.server.resource, "/"))
        client = self.server.client(recording)
        self.assertIs(self.result(client.health()), True)
        self.assertEqual(client.api, "v2")
        self.assertEqual([r["uri"] for r in recording.requests], ["/", "/v2", "/v2/ping"])

    def test_v1_only_server(self):
        """A server answering neither / nor /v2 is spoken to in v1; v2's
        operations then raise UnsupportedByAPI without a request."""
        recording = Recording(Hiding(self.server.resource, "/", "/v2"))
        client = self.server.client(recording)
        queue = self.result(client.create_queue("jobs"))
        self.assertEqual((client.api, queue.href), ("v1", "/v1/queues/jobs"))
        sent = len(recording.requests)
        for deferred in (queue.pop(), queue.purge(), queue.share(),
                         queue.patch_metadata([]), queue.subscribe("http://h.example/"),
                         queue.get_subscription("1"), queue.subscriptions().collect(),
                         queue.post_messages([{"ttl": 60, "body": 1, "delay": 5}])):
            error = self.failureResultOf(deferred, UnsupportedByAPI).value
            self.assertIn("v2", str(error))
        self.assertEqual(len(recording.requests), sent)

    def test_failed_discovery_is_asked_again(self):
        """A discovery that could not reach the server is not remembered:
        the next request discovers again."""
        refusing = RefusingTreq(StubTreq(self.server.resource), refusals=1)
        client = Client(BASE_URL, treq=refusing, reactor=self.server.clock, retries=0)
        self.failureResultOf(client.health(), ConnectionFailed)
        self.assertIsNone(client.api)
        self.assertIs(self.result(client.health()), True)
        self.assertEqual(client.api, "v2")

    def test_version_given(self):
        """``api=`` or a URL ending in /v1 or /v2 fixes the version without
        asking; a contradiction or an unknown version is a ValueError."""
        recording = Recording(self.server.resource)
        for url, api, expected in ((BASE_URL, "v1", "v1"), (BASE_URL + "/v2/", None, "v2"),
                                   (BASE_URL + "/v1", None, "v1")):
            client = Client(url, api=api, treq=StubTreq(recording),
                            reactor=self.server.clock)
            self.assertEqual((client.url, client.api), (BASE_URL, expected))
            self.assertIs(self.result(client.health()), True)
        self.assertEqual([r["uri"] for r in recording.requests],
                         ["/v1/health", "/v2/ping", "/v1/health"])
        for url, api in ((BASE_URL + "/v1", "v2"), (BASE_URL, "v1.1")):
            self.assertRaises(ValueError, Client, url, api=api)


class HeldRoot(Delegating):
    """Holds GET / until ``answer()``, which answers it with a versions
    document offering v2; delegates other paths."""

    def __init__(self, real):
        super().__init__(real)
        self.held = []

    def render(self, request):
        if request.path == b"/":
            self.held.append(request)
            return NOT_DONE_YET
        return super().render(request)

    def answer(self):
        for request in self.held:
            request.setResponseCode(300)
            request.write(json.dumps({"versions": [{"id": "2", "status": "CURRENT"}]})
                          .encode())
            request.finish()


class V2Mixin:
    """Runs a v1 test class over v2; overrides the tests whose v1
    expectations v2 changes."""

    api = "v2"


class ClientSetupTests(V2Mixin, v1.ClientSetupTests):
    def test_headers_sent(self):
        """v2 requires X-Project-ID: a client given no project sends
        versions.DEFAULT_PROJECT, one given a project sends it."""
        recording = Recording(self.server.resource)
        self.result(self.server.client(recording).queue("a").stats())
        self.result(self.server.client(recording, project="p1").queue("a").stats())
        without, with_project = (r["headers"] for r in recording.requests)
        self.assertEqual(without["x-project-id"], [versions.DEFAULT_PROJECT])
        self.assertEqual(with_project["x-project-id"], ["p1"])
        self.assertIn("client-id", without)

    def test_base_url_forms(self):
        """A base URL with a trailing slash or ending in /v2 means the same
        server."""
        for url in (BASE_URL + "/", BASE_URL + "/v2", BASE_URL + "/v2/"):
            client = Client(url, treq=StubTreq(self.server.resource), api=self.api,
                            reactor=self.server.clock)
            self.assertEqual(client.url, BASE_URL)
            self.assertTrue(self.result(client.health()))

    def test_versions_share_the_storage(self):
        """A message posted over v1 in project p1 is read over v2 in p1."""
        v1_queue = self.result(self.server.client(api="v1", project="p1")
                               .create_queue("jobs"))
        [posted] = self.result(v1_queue.post_messages([{"ttl": 60, "body": "x"}]))
        [read] = self.result(self.server.client(project="p1").queue("jobs").pop())
        self.assertEqual((read.id, read.body), (posted, "x"))


class QueueTests(V2Mixin, v1.QueueTests):
    def test_create_queue(self):
        """create_queue returns the Queue (href under /v2); create() says
        whether it was new."""
        queue = self.result(self.client.create_queue("jobs"))
        self.assertEqual((queue.name, queue.href), ("jobs", "/v2/queues/jobs"))
        self.assertIs(self.result(queue.create()), False)
        self.assertIs(self.result(self.client.queue("other").create()), True)

    def test_create_queue_with_metadata(self):
        """create_queue(name, metadata) stores the metadata (v2 shows the
        reserved defaults beside it); on an existing queue it replaces it."""
        queue = self.result(self.client.create_queue("jobs", {"owner": "ops"}))
        self.assertEqual(self.result(queue.metadata()), {**DEFAULTS, "owner": "ops"})
        self.assertIs(self.result(queue.create({"owner": "dev"})), False)
        self.assertEqual(self.result(queue.metadata())["owner"], "dev")

    def test_set_metadata_replaces(self):
        """set_metadata replaces the whole document (no merge), keys with
        ``/`` and ``~`` included, and a reserved attribute it sets applies."""
        queue = self.result(self.client.create_queue("jobs", {"a": 1, "x/y~z": 2}))
        self.result(queue.set_metadata({"b": "\u00e9", "_default_message_ttl": 120,
                                        "c/d": 3}))
        self.assertEqual(self.result(queue.metadata()),
                         {**DEFAULTS, "b": "\u00e9", "_default_message_ttl": 120, "c/d": 3})
        self.result(queue.post_messages([{"body": 1}]))
        [message] = self.result(queue.messages(echo=True).collect())
        self.assertEqual(message.ttl, 120)

    def test_exists_matches_the_whole_name(self):
        """exists() (the name-filtered listing) is not fooled by a queue
        whose name contains the one asked."""
        self.result(self.client.create_queue("jobs2"))
        self.assertIs(self.result(self.client.queue("jobs").exists()), False)
        self.assertIs(self.result(self.client.queue("obs2").exists()), False)
        self.assertIs(self.result(self.client.queue("jobs2").exists()), True)

    def test_missing_queue_errors(self):
        """v2 queues are lazy: a missing queue reads as its defaults and zero
        stats, a post creates it; replacing its metadata (a PATCH) raises
        QueueNotFound."""
        queue = self.client.queue("nope")
        self.assertEqual(self.result(queue.metadata()), DEFAULTS)
        self.assertEqual(self.result(queue.stats())["messages"]["total"], 0)
        error = self.failureResultOf(queue.set_metadata({}), QueueNotFound).value
        self.assertEqual(error.status, 404)
        self.assertEqual(len(self.result(queue.post_messages([{"body": 1}]))), 1)
        self.assertIs(self.result(queue.exists()), True)


class QueueListingTests(V2Mixin, v1.QueueListingTests):
    def test_collect_follows_next_links(self):
        """collect() gathers every page, sorted; hrefs are /v2's."""
        queues = self.result(self.client.queues().collect())
        self.assertEqual([q.name for q in queues], self.names)
        self.assertEqual(queues[0].href, "/v2/queues/q00")
        self.assertIsNone(queues[0].listed_metadata)

    def test_marker_and_detailed(self):
        """marker starts after that name; detailed fills listed_metadata
        (with the reserved defaults)."""
        queues = self.result(self.client.queues(marker="q20", detailed=True).collect())
        self.assertEqual([q.name for q in queues], self.names[21:])
        self.assertEqual(queues[0].listed_metadata, {**DEFAULTS, "n": "q21"})

    def test_name_filter(self):
        """name= keeps the queues whose name contains it (v2 only)."""
        self.assertEqual([q.name for q in self.result(
            self.client.queues(name="2").collect())], ["q02", "q12", "q20", "q21",
                                                       "q22", "q23", "q24"])
        v1_client = self.server.client(api="v1")
        self.failureResultOf(v1_client.queues(name="2").collect(), UnsupportedByAPI)


class PostTests(V2Mixin, v1.PostTests):
    def test_message_exactly_at_the_limit(self):
        """A message whose v2 request body (``{"messages": [...]}``) is
        exactly max_message_size bytes is accepted by the server."""
        server = Server(self, self.api, max_message_size=100)
        queue = self.result(server.client(max_message_size=100).create_queue("jobs"))
        empty = batches.body([batches.encode({"ttl": 60, "body": ""})], batches.OBJECT)
        message = {"ttl": 60, "body": "y" * (100 - len(empty))}
        self.assertEqual(len(batches.body([batches.encode(message)], batches.OBJECT)), 100)
        self.assertEqual(len(self.result(queue.post_messages([message]))), 1)

    def test_progress_and_partial_failure(self):
        """progress(posted, total) is called after each request; when a later
        request fails (the server's size limit is lower than the client's,
        and only the second request exceeds it), the error lists the ids
        already posted."""
        server = Server(self, self.api, max_message_size=100)
        queue = server.client(max_message_size=120).queue("jobs")
        calls = []
        messages = [{"ttl": 60, "body": "m" * 40}, {"ttl": 60, "body": "m" * 80}]
        error = self.failureResultOf(queue.post_messages(
            messages, progress=lambda *call: calls.append(call)), BadRequest).value
        self.assertEqual(calls, [(1, 2)])
        self.assertEqual(len(error.posted_ids), 1)
        self.assertEqual(self.result(queue.stats())["messages"]["total"], 1)

    def test_ttl_may_be_left_out(self):
        """A message without ttl gets the queue's default."""
        queue = self.result(self.client.create_queue("jobs", {"_default_message_ttl": 99}))
        self.result(queue.post_messages([{"body": 1}]))
        [message] = self.result(queue.messages(echo=True).collect())
        self.assertEqual(message.ttl, 99)


class MessageTests(V2Mixin, v1.MessageTests):
    def test_message_fields(self):
        """A listed Message has id, href (under /v2), age, ttl, body and no
        claim_id."""
        queue = self.result(self.client.create_queue("jobs"))
        [message_id] = self.result(queue.post_messages([{"ttl": 120, "body": {"a": 1}}]))
        self.server.clock.advance(7)
        [message] = self.result(queue.messages(echo=True).collect())
        self.assertEqual(
            (message.id, message.href, message.ttl, message.age, message.body,
             message.claim_id),
            (message_id, f"/v2/queues/jobs/messages/{message_id}", 120, 7, {"a": 1}, None))

    def test_empty_listing_and_unknown_ids(self):
        """An empty (or missing) queue lists nothing (v2's 200 with an empty
        page) and ids that are all unknown find nothing (v2's 404)."""
        recording = Recording(self.server.resource)
        queue = self.server.client(recording).queue("nope")
        self.assertEqual(self.result(queue.messages().collect()), [])
        self.assertEqual(self.result(queue.get_messages(["a", "b"])), [])
        self.assertEqual(len(recording.requests), 2)


class ClaimTests(V2Mixin, v1.ClaimTests):
    def test_claim(self):
        """claim() returns a Claim holding up to ``limit`` messages (v2's
        object body), each carrying the claim id; its href is /v2's."""
        queue = self.queue_with("jobs", 3)
        claim = self.result(queue.claim(limit=2, ttl=120, grace=60))
        self.assertEqual((claim.ttl, claim.age, len(claim)), (120, 0, 2))
        self.assertEqual(claim.href, f"/v2/queues/jobs/claims/{claim.id}")
        self.assertEqual([m.body for m in claim], [0, 1])
        self.assertEqual({m.claim_id for m in claim.messages}, {claim.id})


class V2OnlyTests(v1.ClientTestCase):
    api = "v2"

    def test_pop(self):
        """pop(n) removes and returns the n oldest free messages (id, body,
        claim_count, no href); claimed ones stay; an empty queue pops []."""
        queue = self.queue_with("jobs", 5)
        self.result(queue.claim(limit=1))
        popped = self.result(queue.pop(3))
        self.assertEqual([m.body for m in popped], [1, 2, 3])
        self.assertEqual({(m.href, m.claim_count) for m in popped}, {(None, 1 - 1)})
        self.assertEqual(popped[0].as_dict()["claim_count"], 0)
        self.assertEqual([m.body for m in self.result(queue.pop(5))], [4])
        self.assertEqual(self.result(queue.pop()), [])
        self.assertEqual(self.result(queue.stats())["messages"]["total"], 1)

    def test_pop_more_than_a_request_allows(self):
        """pop(n) above max_page_size sends several requests."""
        recording = Recording(self.server.resource)
        queue = self.queue_with("jobs", 7, self.server.client(recording, max_page_size=3))
        del recording.requests[:]
        self.assertEqual([m.body for m in self.result(queue.pop(8))], list(range(7)))
        self.assertEqual([r["uri"].rsplit("?", 1)[1] for r in recording.requests],
                         ["pop=3", "pop=3", "pop=2"])

    def test_purge(self):
        """purge() deletes every unclaimed message; claimed ones survive;
        an unknown resource type is a BadRequest."""
        queue = self.queue_with("jobs", 4)
        claim = self.result(queue.claim(limit=1))
        self.result(queue.purge())
        self.result(queue.post_messages([{"body": "new"}]))
        self.result(queue.purge(["messages"]))
        counts = self.result(queue.stats())["messages"]
        self.assertEqual((counts["total"], counts["claimed"]), (1, 1))
        self.assertEqual(self.result(queue.get_claim(claim.id)).messages[0].body, 0)
        self.failureResultOf(queue.purge(["everything"]), BadRequest)

    def test_delayed_post(self):
        """A message posted with a delay (on a queue with a default delay)
        is hidden from listing and claims until it passes, but listed with
        include_delayed."""
        queue = self.result(self.client.create_queue("jobs", {"_default_message_delay": 1}))
        self.result(queue.post_messages([{"body": "later", "delay": 30}]))
        self.assertEqual(self.result(queue.messages(echo=True).collect()), [])
        self.assertFalse(self.result(queue.claim()))
        [listed] = self.result(queue.messages(echo=True, include_delayed=True).collect())
        self.assertEqual(listed.body, "later")
        self.server.clock.advance(30)
        self.assertEqual([m.body for m in self.result(queue.claim())], ["later"])

    def test_patch_metadata(self):
        """patch_metadata sends the JSON-patch Content-Type and returns the
        metadata after the patch; a missing key to replace is a Conflict, a
        bad path a BadRequest, a missing queue a QueueNotFound."""
        recording = Recording(self.server.resource)
        queue = self.result(self.server.client(recording).create_queue("jobs", {"a": 1}))
        patched = self.result(queue.patch_metadata([
            {"op": "add", "path": "/metadata/owner", "value": "ops"},
            {"op": "replace", "path": "/metadata/_default_message_ttl", "value": 300},
            {"op": "remove", "path": "/metadata/a"}]))
        self.assertEqual(patched, {**DEFAULTS, "owner": "ops", "_default_message_ttl": 300})
        self.assertEqual(recording.requests[-1]["headers"]["content-type"],
                         [versions.JSON_PATCH])
        self.assertEqual(self.result(queue.metadata()), patched)
        self.failureResultOf(queue.patch_metadata(
            [{"op": "replace", "path": "/metadata/nope", "value": 1}]), Conflict)
        self.failureResultOf(queue.patch_metadata(
            [{"op": "add", "path": "/a", "value": 1}]), BadRequest)
        self.failureResultOf(self.client.queue("missing").patch_metadata(
            [{"op": "add", "path": "/metadata/a", "value": 1}]), QueueNotFound)

    def test_subscriptions(self):
        """subscribe() stores a subscriber with its ttl and options and fires
        with it as stored; subscriptions() lists them oldest first across
        pages; update() and confirm() change them, delete() removes one;
        an unknown id is SubscriptionNotFound, a second subscription of a
        confirmed subscriber a Conflict, a mailto: subscriber a BadRequest."""
        queue = self.result(self.server.client(max_page_size=2).create_queue("jobs"))
        made = self.result(queue.subscribe("http://a.example/hook", ttl=600,
                                           options={"post_headers": {"X-K": "v"}}))
        self.assertEqual((made.subscriber, made.ttl, made.options, made.confirmed),
                         ("http://a.example/hook", 600, {"post_headers": {"X-K": "v"}},
                          False))
        for name in "bcd":
            self.result(queue.subscribe(f"https://{name}.example/"))
        listed = self.result(queue.subscriptions().collect())
        self.assertEqual([s.subscriber for s in listed],
                         ["http://a.example/hook"] + [f"https://{n}.example/" for n in "bcd"])
        self.assertEqual(len(self.result(queue.subscriptions(limit=3).collect())), 3)

        self.result(made.update(ttl=900, options={}))
        self.result(made.confirm())
        again = self.result(queue.get_subscription(made.id))
        self.assertEqual((again.ttl, again.options, again.confirmed), (900, {}, True))
        self.failure(queue.subscribe("http://a.example/hook"), Conflict)
        self.failure(queue.subscribe("mailto:ops@example.net"), BadRequest)

        self.result(made.delete())
        self.failure(queue.get_subscription(made.id), SubscriptionNotFound)
        self.failure(made.update(ttl=900), SubscriptionNotFound)
        self.assertEqual(len(self.result(queue.subscriptions().collect())), 3)


class SignedURLTests(v1.ClientTestCase):
    api = "v2"

    def setUp(self):
        self.server = Server(self, self.api, overrides=[SECRET])
        self.client = self.server.client(project="p1")

    def test_share_and_use(self):
        """share() returns the signed document for the queue; a client built
        from it (Client.signed, no project given) may list and post messages
        of that queue, and nothing else (the server answers 404)."""
        queue = self.queue_with("jobs", 2)
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        document = self.result(queue.share(["messages"], ["GET", "POST"], expires))
        self.assertEqual(document["project"], "p1")
        self.assertEqual(document["paths"], ["/v2/queues/jobs/messages"])
        self.assertEqual(document["expires"], expires.strftime("%Y-%m-%dT%H:%M:%S"))
        signed = Client.signed(BASE_URL, document, treq=StubTreq(self.server.resource),
                               reactor=self.server.clock)
        shared = signed.queue("jobs")
        self.assertEqual([m.body for m in self.result(shared.messages().collect())], [0, 1])
        self.assertEqual(len(self.result(shared.post_messages([{"body": 2}]))), 1)
        self.failureResultOf(shared.claim(), NotFound)
        self.failureResultOf(signed.queue("other").messages().collect(), NotFound)
        self.failureResultOf(shared.delete_messages(["x"]), NotFound)

    def test_share_defaults_and_bad_input(self):
        """share() without arguments grants GET of messages; an expiry that
        is not a date is a BadRequest; a timezone-aware one is sent in UTC.
        (StubTreq's site has its own clock at 1970, so "the past" cannot be
        exercised here: tests.http_v2_tests covers it.)"""
        document = self.result(self.client.queue("jobs").share())
        self.assertEqual((document["paths"], document["methods"]),
                         (["/v2/queues/jobs/messages"], ["GET"]))
        self.failureResultOf(self.client.queue("jobs").share(expires="12345"), BadRequest)
        paris = datetime.timezone(datetime.timedelta(hours=1))
        document = self.result(self.client.queue("jobs").share(
            expires=datetime.datetime(2031, 1, 1, 1, 30, tzinfo=paris)))
        self.assertEqual(document["expires"], "2031-01-01T00:30:00")

    def test_not_a_share_document(self):
        """Client.signed refuses a document missing a field."""
        self.assertRaises(ValueError, Client.signed, BASE_URL,
                          {"project": "p1", "paths": ["/v2/queues/q/messages"]})

    def test_share_without_a_secret_key(self):
        """A server without [signed_url] secret_key refuses to share (400)."""
        client = Server(self, self.api).client()
        self.failureResultOf(client.queue("jobs").share(), BadRequest)


class LongPollClaimTests(V2Mixin, v1.ClientTestCase):
    def test_claim_waits_for_a_post(self):
        """claim(wait=N) on an empty queue fires when another client posts,
        with the posted message; the query carries wait."""
        recording = Recording(self.server.resource)
        queue = self.queue_with("jobs", 0, self.server.client(recording))
        waiting = queue.claim(wait=10)
        self.assertNoResult(waiting)
        self.assertIn("wait=10", recording.requests[-1]["uri"])
        self.result(self.client.queue("jobs").post_messages([{"ttl": 300, "body": "hi"}]))
        self.server.flush()
        claim = self.result(waiting)
        self.assertEqual([m.body for m in claim], ["hi"])

    def test_claim_wait_runs_out_empty(self):
        """A claim whose wait runs out is empty (falsy); the client's own
        timeout (5 s here) is extended by the wait, not cut short."""
        queue = self.queue_with("jobs", 0, self.server.client(timeout=5))
        waiting = queue.claim(wait=10)
        self.server.clock.advance(9)
        self.assertNoResult(waiting)
        self.server.clock.advance(1)
        self.server.flush()
        self.assertFalse(self.result(waiting))

    def test_wait_above_the_maximum_is_bad_request(self):
        """A wait above the server's max_claim_wait is BadRequest."""
        queue = self.queue_with("jobs", 0)
        self.failure(queue.claim(wait=21), BadRequest)
