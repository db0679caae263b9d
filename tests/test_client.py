"""The client library against the real server resource, through StubTreq."""

import json
import uuid

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from marconi_tx.client import (
    BadRequest,
    ClaimConflict,
    ClaimNotFound,
    Client,
    ConnectionFailed,
    Forbidden,
    MarconiClientError,
    MessageNotFound,
    MessageTooLarge,
    NotFound,
    QueueNotFound,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnexpectedResponse,
    batches,
)
from marconi_tx.deferreds import returns_deferred
from tests.test_client_support import (
    BASE_URL,
    Fixed,
    Hanging,
    Recording,
    RefusingTreq,
    Server,
    UnavailableFirst,
)


class ClientTestCase(SynchronousTestCase):
    #: The API version the tests' clients speak.
    api = "v1"

    def setUp(self):
        self.server = Server(self, self.api)
        self.client = self.server.client()

    def result(self, deferred):
        return self.successResultOf(deferred)

    def failure(self, deferred, *kinds):
        return self.failureResultOf(deferred, *kinds).value

    def queue_with(self, name, count, client=None):
        """A new queue holding ``count`` messages with bodies 0..count-1."""
        queue = self.result((client or self.client).create_queue(name))
        self.result(queue.post_messages([{"ttl": 300, "body": n} for n in range(count)]))
        return queue


class ClientSetupTests(ClientTestCase):
    def test_client_id_is_a_uuid_per_client(self):
        """Without client_id each Client has its own UUID; one given is kept."""
        other = self.server.client()
        self.assertEqual(str(uuid.UUID(self.client.client_id)), self.client.client_id)
        self.assertNotEqual(self.client.client_id, other.client_id)
        given = str(uuid.uuid4())
        self.assertEqual(self.server.client(client_id=given).client_id, given)

    def test_headers_sent(self):
        """Every request carries Accept JSON and the Client-ID; X-Project-ID
        only when a project is set."""
        recording = Recording(self.server.resource)
        self.result(self.server.client(recording).queue("a").exists())
        self.result(self.server.client(recording, project="p1").queue("a").exists())
        without, with_project = (r["headers"] for r in recording.requests)
        self.assertEqual(without["accept"], ["application/json"])
        self.assertIn("client-id", without)
        self.assertNotIn("x-project-id", without)
        self.assertEqual(with_project["x-project-id"], ["p1"])

    def test_projects_are_separate_namespaces(self):
        """A queue created for project p1 is not listed for the global
        namespace nor for p2."""
        self.result(self.server.client(project="p1").create_queue("jobs"))
        self.assertEqual(self.result(self.client.queues().collect()), [])
        self.assertEqual(
            self.result(self.server.client(project="p2").queues().collect()), [])
        names = [q.name for q in self.result(
            self.server.client(project="p1").queues().collect())]
        self.assertEqual(names, ["jobs"])

    def test_base_url_forms(self):
        """A base URL with a trailing slash or ending in /v1 means the same
        server."""
        for url in (BASE_URL + "/", BASE_URL + "/v1", BASE_URL + "/v1/"):
            client = Client(url, treq=StubTreq(self.server.resource), api=self.api,
                            reactor=self.server.clock)
            self.assertEqual(client.url, BASE_URL)
            self.assertTrue(self.result(client.health()))

    def test_hrefs_resolved_against_base_url_path(self):
        """Server hrefs (``/v1/...``) are resolved against the base URL, so a
        server mounted under a path prefix works, next links included."""
        root = Resource()
        root.putChild(b"marconi", self.server.resource)
        client = Client(BASE_URL + "/marconi", treq=StubTreq(root), api=self.api,
                        reactor=self.server.clock)
        for n in range(12):
            self.result(client.create_queue(f"q{n:02d}"))
        self.assertEqual(len(self.result(client.queues().collect())), 12)
        queue = self.result(client.create_queue("jobs"))
        self.result(queue.post_messages([{"ttl": 60, "body": 1}]))
        claim = self.result(queue.claim())
        self.result(claim.messages[0].delete())
        self.assertEqual(self.result(queue.stats())["messages"]["total"], 0)

    def test_home_and_health(self):
        """home() returns the JSON-home document; health() is True when the
        storage is up."""
        home = self.result(self.client.home())
        self.assertIn("rel/queues", home["resources"])
        self.assertIs(self.result(self.client.health()), True)

    def test_health_false_when_storage_down(self):
        """health() is False, without retrying, when the server answers 503."""
        recording = Recording(self.server.resource)
        client = self.server.client(recording)
        self.result(self.server.driver.close())
        self.assertIs(self.result(client.health()), False)
        self.assertEqual(recording.methods(), ["GET"])


class QueueTests(ClientTestCase):
    def test_create_queue(self):
        """create_queue returns the Queue; create() says whether it was new."""
        queue = self.result(self.client.create_queue("jobs"))
        self.assertEqual((queue.name, queue.href), ("jobs", "/v1/queues/jobs"))
        self.assertIs(self.result(queue.create()), False)
        self.assertIs(self.result(self.client.queue("other").create()), True)

    def test_create_queue_with_metadata(self):
        """create_queue(name, metadata) stores the metadata."""
        queue = self.result(self.client.create_queue("jobs", {"owner": "ops"}))
        self.assertEqual(self.result(queue.metadata()), {"owner": "ops"})

    def test_exists(self):
        """exists() is True for a created queue and False otherwise."""
        self.result(self.client.create_queue("jobs"))
        self.assertIs(self.result(self.client.queue("jobs").exists()), True)
        self.assertIs(self.result(self.client.queue("nope").exists()), False)

    def test_set_metadata_replaces(self):
        """set_metadata replaces the whole document (no merge)."""
        queue = self.result(self.client.create_queue("jobs", {"a": 1}))
        self.result(queue.set_metadata({"b": "\u00e9"}))
        self.assertEqual(self.result(queue.metadata()), {"b": "\u00e9"})

    def test_missing_queue_errors(self):
        """metadata, set_metadata, stats and post_messages of a missing queue
        raise QueueNotFound (a NotFound) with status 404."""
        queue = self.client.queue("nope")
        for deferred in (queue.metadata(), queue.set_metadata({}), queue.stats(),
                         queue.post_messages([{"ttl": 60, "body": 1}])):
            error = self.failure(deferred, QueueNotFound)
            self.assertIsInstance(error, NotFound)
            self.assertEqual(error.status, 404)
            self.assertIn("nope", str(error))

    def test_stats(self):
        """stats() counts free and claimed messages."""
        queue = self.queue_with("jobs", 3)
        self.result(queue.claim(limit=1))
        counts = self.result(queue.stats())["messages"]
        self.assertEqual((counts["free"], counts["claimed"], counts["total"]), (2, 1, 3))

    def test_delete(self):
        """delete() removes the queue; deleting a missing queue is no error."""
        queue = self.queue_with("jobs", 1)
        self.result(queue.delete())
        self.assertIs(self.result(queue.exists()), False)
        self.assertIsNone(self.result(queue.delete()))


class QueueListingTests(ClientTestCase):
    def setUp(self):
        super().setUp()
        self.names = [f"q{n:02d}" for n in range(25)]
        for name in reversed(self.names):
            self.result(self.client.create_queue(name, {"n": name}))

    def test_collect_follows_next_links(self):
        """collect() gathers every page (the server's pages hold 10), sorted."""
        queues = self.result(self.client.queues().collect())
        self.assertEqual([q.name for q in queues], self.names)
        self.assertEqual(queues[0].href, "/v1/queues/q00")
        self.assertIsNone(queues[0].listed_metadata)

    def test_async_iteration(self):
        """``async for`` over queues() yields the queues across pages."""

        @returns_deferred
        async def names():
            return [queue.name async for queue in self.client.queues()]

        self.assertEqual(self.result(names()), self.names)

    def test_limit_caps_the_total(self):
        """limit is the most queues yielded, also above the page maximum."""
        self.assertEqual(
            [q.name for q in self.result(self.client.queues(limit=7).collect())],
            self.names[:7])
        self.assertEqual(len(self.result(self.client.queues(limit=22).collect())), 22)

    def test_page_size_follows_limit(self):
        """Pages are asked with limit=min(limit, max_page_size)."""
        recording = Recording(self.server.resource)
        client = self.server.client(recording, max_page_size=4)
        self.assertEqual(len(self.result(client.queues(limit=9).collect())), 9)
        self.assertEqual(len(recording.requests), 3)
        self.assertTrue(all("limit=4" in r["uri"] for r in recording.requests))

    def test_marker_and_detailed(self):
        """marker starts after that name; detailed fills listed_metadata."""
        queues = self.result(self.client.queues(marker="q20", detailed=True).collect())
        self.assertEqual([q.name for q in queues], self.names[21:])
        self.assertEqual(queues[0].listed_metadata, {"n": "q21"})

    def test_empty_listing(self):
        """A listing past the end is empty."""
        self.assertEqual(self.result(self.client.queues(marker="zz").collect()), [])

    def test_listing_restarts(self):
        """Iterating a Listing twice fetches it twice from the start."""
        recording = Recording(self.server.resource)
        listing = self.server.client(recording).queues(limit=3)
        for _ in range(2):
            self.assertEqual([q.name for q in self.result(listing.collect())],
                             self.names[:3])
        self.assertEqual(len(recording.requests), 2)


class PostTests(ClientTestCase):
    def test_post_returns_ids_in_order(self):
        """post_messages returns one id per message, in order; bodies of any
        JSON type come back as posted."""
        queue = self.result(self.client.create_queue("jobs"))
        bodies = [{"event": "x"}, "text", 3, None, [1, 2], "\u00e9"]
        ids = self.result(queue.post_messages([{"ttl": 60, "body": b} for b in bodies]))
        self.assertEqual(len(ids), len(bodies))
        messages = self.result(queue.messages(echo=True).collect())
        self.assertEqual([m.id for m in messages], ids)
        self.assertEqual([m.body for m in messages], bodies)

    def test_post_nothing_sends_nothing(self):
        """Posting an empty list returns [] without a request."""
        recording = Recording(self.server.resource)
        queue = self.server.client(recording).queue("jobs")
        self.assertEqual(self.result(queue.post_messages([])), [])
        self.assertEqual(recording.requests, [])

    def test_batches_fit_the_server_limit(self):
        """With the server's max_message_size lowered to 200 bytes, a post is
        split into requests the server accepts, each at most 200 bytes, and
        keeps the order."""
        server = Server(self, self.api, max_message_size=200)
        recording = Recording(server.resource)
        client = server.client(recording, max_message_size=200)
        queue = self.result(client.create_queue("jobs"))
        messages = [{"ttl": 60, "body": "x" * 40 + str(n)} for n in range(10)]
        ids = self.result(queue.post_messages(messages))
        posts = [r for r in recording.requests if r["method"] == "POST"]
        self.assertGreater(len(posts), 2)
        self.assertTrue(all(len(r["body"]) <= 200 for r in posts))
        listed = self.result(queue.messages(echo=True).collect())
        self.assertEqual([m.id for m in listed], ids)
        self.assertEqual([m.body for m in listed], [m["body"] for m in messages])

    def test_message_exactly_at_the_limit(self):
        """A message whose request body is exactly max_message_size bytes is
        accepted by the server."""
        server = Server(self, self.api, max_message_size=100)
        queue = self.result(server.client(max_message_size=100).create_queue("jobs"))
        filler = 100 - len(batches.body([batches.encode({"ttl": 60, "body": ""})]))
        message = {"ttl": 60, "body": "y" * filler}
        self.assertEqual(len(batches.body([batches.encode(message)])), 100)
        self.assertEqual(len(self.result(queue.post_messages([message]))), 1)

    def test_too_large_message_sends_nothing(self):
        """A message too big on its own raises MessageTooLarge before any
        request, even when it comes after small ones."""
        recording = Recording(self.server.resource)
        client = self.server.client(recording, max_message_size=100)
        queue = client.queue("jobs")
        error = self.failure(queue.post_messages(
            [{"ttl": 60, "body": 1}, {"ttl": 60, "body": "z" * 200}]), MessageTooLarge)
        self.assertIsInstance(error, MarconiClientError)
        self.assertIsNone(error.status)
        self.assertEqual(recording.requests, [])

    def test_progress_and_partial_failure(self):
        """progress(posted, total) is called after each request; when a later
        request fails, the error lists the ids already posted."""
        server = Server(self, self.api, max_message_size=120)
        client = server.client(max_message_size=120)
        queue = self.result(client.create_queue("jobs"))
        calls = []

        def progress(posted, total):
            calls.append((posted, total))
            # The queue vanishes after the first request: the second fails.
            self.result(queue.delete())

        error = self.failure(queue.post_messages(
            [{"ttl": 60, "body": "m" * 40} for _ in range(3)], progress=progress),
            QueueNotFound)
        self.assertEqual(len(calls), 1)
        posted, total = calls[0]
        self.assertEqual(total, 3)
        self.assertEqual(len(error.posted_ids), posted)
        self.assertTrue(0 < posted < 3)

    def test_bad_message_is_a_bad_request(self):
        """A ttl the server refuses raises BadRequest carrying status, title
        and description."""
        queue = self.result(self.client.create_queue("jobs"))
        error = self.failure(queue.post_messages([{"ttl": 5, "body": 1}]), BadRequest)
        self.assertEqual(error.status, 400)
        self.assertTrue(error.title)
        self.assertTrue(error.description)
        self.assertIn(error.title, str(error))


class MessageTests(ClientTestCase):
    def test_echo_hides_own_messages(self):
        """Without echo a client does not see its own messages; another
        client does; with echo the poster does."""
        queue = self.queue_with("jobs", 3)
        self.assertEqual(self.result(queue.messages().collect()), [])
        self.assertEqual(len(self.result(queue.messages(echo=True).collect())), 3)
        other = self.server.client().queue("jobs")
        self.assertEqual([m.body for m in self.result(other.messages().collect())],
                         [0, 1, 2])

    def test_listing_pages_and_limit(self):
        """messages() follows next links across pages; limit caps the total."""
        queue = self.queue_with("jobs", 25)
        bodies = [m.body for m in self.result(queue.messages(echo=True).collect())]
        self.assertEqual(bodies, list(range(25)))
        limited = self.result(queue.messages(echo=True, limit=13).collect())
        self.assertEqual([m.body for m in limited], list(range(13)))

    def test_include_claimed(self):
        """Claimed messages are listed only with include_claimed."""
        queue = self.queue_with("jobs", 3)
        self.result(queue.claim(limit=2))
        self.assertEqual(
            [m.body for m in self.result(queue.messages(echo=True).collect())], [2])
        self.assertEqual(len(self.result(
            queue.messages(echo=True, include_claimed=True).collect())), 3)

    def test_message_fields(self):
        """A listed Message has id, href, age, ttl, body and no claim_id."""
        queue = self.result(self.client.create_queue("jobs"))
        [message_id] = self.result(queue.post_messages([{"ttl": 120, "body": {"a": 1}}]))
        self.server.clock.advance(7)
        [message] = self.result(queue.messages(echo=True).collect())
        self.assertEqual(
            (message.id, message.href, message.ttl, message.age, message.body,
             message.claim_id),
            (message_id, f"/v1/queues/jobs/messages/{message_id}", 120, 7, {"a": 1},
             None))

    def test_get_message(self):
        """get_message returns one message; an unknown id raises
        MessageNotFound."""
        queue = self.queue_with("jobs", 1)
        [listed] = self.result(queue.messages(echo=True).collect())
        self.assertEqual(self.result(queue.get_message(listed.id)).body, 0)
        self.failure(queue.get_message("999999"), MessageNotFound)

    def test_get_messages_in_chunks(self):
        """get_messages sends at most 20 ids a request, returns the found
        messages in the order asked and skips unknown ids."""
        recording = Recording(self.server.resource)
        client = self.server.client(recording)
        queue = self.queue_with("jobs", 45, client)
        ids = self.result(queue.post_messages([{"ttl": 60, "body": "x"}]))
        listed = self.result(queue.messages(echo=True).collect())
        wanted = [m.id for m in reversed(listed)] + ["unknown"]
        del recording.requests[:]
        found = self.result(queue.get_messages(wanted))
        self.assertEqual([m.id for m in found], wanted[:-1])
        self.assertEqual(found[0].id, ids[0])
        self.assertEqual(len(recording.requests), 3)
        self.assertEqual(self.result(queue.get_messages([])), [])
        self.assertEqual(len(recording.requests), 3)

    def test_get_messages_returns_claimed(self):
        """get_messages returns claimed messages too."""
        queue = self.queue_with("jobs", 2)
        claim = self.result(queue.claim(limit=2))
        found = self.result(queue.get_messages([m.id for m in claim.messages]))
        self.assertEqual(len(found), 2)

    def test_delete_messages_in_chunks(self):
        """delete_messages deletes 25 ids in two requests, claimed ones too."""
        recording = Recording(self.server.resource)
        queue = self.queue_with("jobs", 26, self.server.client(recording))
        self.result(queue.claim(limit=5))
        ids = [m.id for m in self.result(
            queue.messages(echo=True, include_claimed=True).collect())]
        del recording.requests[:]
        self.result(queue.delete_messages(ids[:25]))
        self.assertEqual(recording.methods(), ["DELETE", "DELETE"])
        remaining = self.result(queue.messages(echo=True, include_claimed=True).collect())
        self.assertEqual([m.id for m in remaining], ids[25:])

    def test_delete_message(self):
        """delete_message deletes an unclaimed message."""
        queue = self.queue_with("jobs", 2)
        first = self.result(queue.messages(echo=True).collect())[0]
        self.result(first.delete())
        self.failure(queue.get_message(first.id), MessageNotFound)


class ClaimTests(ClientTestCase):
    def test_claim(self):
        """claim() returns a Claim holding up to ``limit`` messages, each
        carrying the claim id."""
        queue = self.queue_with("jobs", 3)
        claim = self.result(queue.claim(limit=2, ttl=120, grace=60))
        self.assertTrue(claim)
        self.assertEqual((claim.ttl, claim.age, len(claim)), (120, 0, 2))
        self.assertEqual(claim.href, f"/v1/queues/jobs/claims/{claim.id}")
        self.assertEqual([m.body for m in claim], [0, 1])
        self.assertEqual({m.claim_id for m in claim.messages}, {claim.id})

    def test_empty_claim(self):
        """When nothing is free (or the queue is missing) the Claim is empty
        and falsy; updating or releasing it sends nothing."""
        recording = Recording(self.server.resource)
        client = self.server.client(recording)
        for queue in (self.queue_with("jobs", 0, client), client.queue("nope")):
            claim = self.result(queue.claim())
            self.assertFalse(claim)
            self.assertEqual((claim.id, claim.messages), (None, []))
            sent = len(recording.requests)
            self.result(claim.update(ttl=100))
            self.result(claim.release())
            self.assertEqual(len(recording.requests), sent)

    def test_message_delete_passes_claim_id(self):
        """A claimed message's delete() passes its claim id and succeeds;
        without it the server refuses with ClaimConflict (403)."""
        queue = self.queue_with("jobs", 2)
        first, second = self.result(queue.claim(limit=2)).messages
        error = self.failure(queue.delete_message(first.id), ClaimConflict)
        self.assertIsInstance(error, Forbidden)
        self.assertEqual((error.status, error.title), (403, "Unable to delete"))
        self.result(first.delete())
        self.failure(queue.get_message(first.id), MessageNotFound)

    def test_delete_with_another_claim_conflicts(self):
        """Deleting with a claim id that is not the message's is a
        ClaimConflict."""
        queue = self.queue_with("jobs", 2)
        mine = self.result(queue.claim(limit=1))
        theirs = self.result(queue.claim(limit=1))
        self.failure(queue.delete_message(mine.messages[0].id, theirs.id), ClaimConflict)

    def test_get_claim(self):
        """get_claim returns the claim with ttl, age and messages; an unknown
        id raises ClaimNotFound."""
        queue = self.queue_with("jobs", 2)
        claim = self.result(queue.claim(limit=2, ttl=90))
        self.server.clock.advance(10)
        read = self.result(queue.get_claim(claim.id))
        self.assertEqual((read.id, read.ttl, read.age), (claim.id, 90, 10))
        self.assertEqual([m.id for m in read.messages], [m.id for m in claim.messages])
        error = self.failure(queue.get_claim("0123456789abcdef01234567"), ClaimNotFound)
        self.assertEqual(error.status, 404)

    def test_update_renews(self):
        """update(ttl) renews the claim: its ttl changes and its age restarts."""
        queue = self.queue_with("jobs", 1)
        claim = self.result(queue.claim(ttl=60))
        self.server.clock.advance(50)
        self.result(claim.update(ttl=200, grace=60))
        self.assertEqual((claim.ttl, claim.age), (200, 0))
        self.server.clock.advance(100)
        read = self.result(queue.get_claim(claim.id))
        self.assertEqual((read.ttl, read.age), (200, 100))

    def test_expired_claim_is_not_found(self):
        """Once its ttl has passed a claim cannot be read nor updated."""
        queue = self.queue_with("jobs", 1)
        claim = self.result(queue.claim(ttl=60))
        self.server.clock.advance(61)
        self.failure(queue.get_claim(claim.id), ClaimNotFound)
        self.failure(claim.update(), ClaimNotFound)

    def test_release(self):
        """release() frees the messages at once."""
        queue = self.queue_with("jobs", 2)
        claim = self.result(queue.claim(limit=2))
        self.assertFalse(self.result(queue.claim()))
        self.result(claim.release())
        self.assertEqual(len(self.result(queue.claim())), 2)


class ErrorTests(ClientTestCase):
    def test_bad_request(self):
        """A 400 raises BadRequest with the server's title and description."""
        error = self.failure(self.client.queue("jobs").claim(limit=50), BadRequest)
        self.assertEqual(error.status, 400)
        self.assertEqual(error.title, "Invalid API call")
        self.assertIn("limit", error.description)
        self.assertEqual(error.method, "POST")

    def test_invalid_queue_name(self):
        """A queue name the server refuses raises BadRequest."""
        self.failure(self.client.create_queue("no.dots"), BadRequest)

    def test_unknown_path_is_not_found(self):
        """A 404 where nothing more specific applies raises NotFound."""
        error = self.failure(self.client.request("GET", "/v1/nothing/here"), NotFound)
        self.assertEqual((error.status, error.title), (404, None))

    def test_unexpected_status(self):
        """An answer the API does not define here (405) raises
        UnexpectedResponse with its status."""
        error = self.failure(self.client.request("POST", "/v1/queues/jobs"),
                             UnexpectedResponse)
        self.assertEqual(error.status, 405)

    def test_body_not_json(self):
        """A 200 whose body is not JSON raises UnexpectedResponse."""
        client = self.server.client(Fixed(200, b"<html>", b"text/html"))
        self.failure(client.home(), UnexpectedResponse)
        self.failure(client.queue("jobs").metadata(), UnexpectedResponse)

    def test_unauthorized(self):
        """A 401 (auth middleware) raises Unauthorized, not retried."""
        resource = Fixed(401, b'{"title": "Unauthorized"}', b"application/json")
        error = self.failure(self.server.client(resource).home(), Unauthorized)
        self.assertEqual((error.status, error.title), (401, "Unauthorized"))
        self.assertEqual(resource.count, 1)

    def test_every_error_is_a_marconi_client_error(self):
        """All the typed errors share the MarconiClientError base."""
        for kind in (BadRequest, ClaimConflict, ClaimNotFound, ConnectionFailed,
                     Forbidden, MessageNotFound, MessageTooLarge, NotFound,
                     QueueNotFound, RequestTimeout, ServiceUnavailable, Unauthorized,
                     UnexpectedResponse):
            self.assertTrue(issubclass(kind, MarconiClientError), kind)


class RetryTests(ClientTestCase):
    def test_503_retried_then_succeeds(self):
        """503 answers are retried after the backoff; then the request goes
        through (the post lands once)."""
        flaky = UnavailableFirst(self.server.resource, failures=2)
        client = self.server.client(flaky, backoff=0.5, max_backoff=8)
        self.result(self.client.create_queue("jobs"))
        posted = client.queue("jobs").post_messages([{"ttl": 60, "body": 1}])
        self.assertNoResult(posted)
        self.server.clock.advance(0.5)
        self.assertNoResult(posted)
        self.server.clock.advance(1)
        self.assertEqual(len(self.result(posted)), 1)
        self.assertEqual(flaky.answered_503, 2)
        self.assertEqual(self.result(self.client.queue("jobs").stats())
                         ["messages"]["total"], 1)

    def test_backoff_doubles_and_is_bounded(self):
        """Waits double from ``backoff`` up to ``max_backoff``; after
        ``retries`` retries ServiceUnavailable is raised."""
        always = Fixed(503, b'{"title": "Service temporarily unavailable"}',
                       b"application/json")
        client = self.server.client(always, retries=4, backoff=1, max_backoff=3)
        deferred = client.home()
        for wait in (1, 2, 3, 3):
            self.server.clock.advance(wait - 0.001)
            self.assertNoResult(deferred)
            self.server.clock.advance(0.001)
        error = self.failure(deferred, ServiceUnavailable)
        self.assertEqual(always.count, 5)
        self.assertEqual((error.status, error.title),
                         (503, "Service temporarily unavailable"))

    def test_retry_after_lengthens_the_wait(self):
        """A Retry-After header longer than the backoff is waited (within
        max_backoff)."""
        flaky = UnavailableFirst(self.server.resource, failures=1, retry_after=5)
        client = self.server.client(flaky, backoff=0.5, max_backoff=8)
        deferred = client.home()
        self.server.clock.advance(4.9)
        self.assertNoResult(deferred)
        self.server.clock.advance(0.1)
        self.assertIn("resources", self.result(deferred))

    def test_zero_backoff_retries_at_once(self):
        """With backoff 0 the retries need no clock at all."""
        flaky = UnavailableFirst(self.server.resource, failures=3)
        client = self.server.client(flaky, retries=3, backoff=0)
        self.assertIn("resources", self.result(client.home()))

    def test_real_storage_failure(self):
        """The real server's 503 (storage closed) is retried, then raised as
        ServiceUnavailable with the Retry-After it sent."""
        client = self.server.client(retries=1, backoff=0, max_backoff=0)
        self.result(self.server.driver.close())
        error = self.failure(client.queue("jobs").stats(), ServiceUnavailable)
        self.assertEqual(error.retry_after, 30)
        self.assertTrue(error.title)

    def test_refused_connection_retried(self):
        """Refused connections are retried with the backoff."""
        refusing = RefusingTreq(StubTreq(self.server.resource), refusals=2)
        client = Client(BASE_URL, treq=refusing, reactor=self.server.clock, backoff=1,
                        api=self.api)
        deferred = client.health()
        self.server.clock.advance(1)
        self.assertNoResult(deferred)
        self.server.clock.advance(2)
        self.assertIs(self.result(deferred), True)
        self.assertEqual(refusing.attempts, 3)

    def test_refused_connection_gives_up(self):
        """After the retries a refused connection raises ConnectionFailed."""
        refusing = RefusingTreq(StubTreq(self.server.resource), refusals=10)
        client = Client(BASE_URL, treq=refusing, reactor=self.server.clock, api=self.api,
                        retries=2, backoff=0)
        error = self.failure(client.health(), ConnectionFailed)
        self.assertIsNone(error.status)
        self.assertIn("refused", str(error))
        self.assertEqual(refusing.attempts, 3)

    def test_timeout(self):
        """A request without an answer within ``timeout`` raises
        RequestTimeout (and is not retried)."""
        client = self.server.client(Hanging(), timeout=5)
        deferred = client.home()
        self.server.clock.advance(4.9)
        self.assertNoResult(deferred)
        self.server.clock.advance(0.1)
        error = self.failure(deferred, RequestTimeout)
        self.assertIn("5", str(error))

    def test_timeout_timer_cancelled_on_answer(self):
        """An answered request leaves no pending timer on the clock."""
        self.result(self.client.home())
        self.assertEqual(self.server.clock.getDelayedCalls(), [])


class BatchTests(SynchronousTestCase):
    def test_pack_sizes(self):
        """pack() fills each batch up to the limit, in order, and the body of
        each batch is valid JSON of the messages it holds."""
        encoded = [batches.encode({"ttl": 60, "body": n}) for n in range(50)]
        groups = batches.pack(encoded, 100)
        self.assertEqual([item for group in groups for item in group], encoded)
        for index, group in enumerate(groups):
            body = batches.body(group)
            self.assertLessEqual(len(body), 100)
            self.assertEqual(len(json.loads(body)), len(group))
            if index + 1 < len(groups):
                # Greedy: the next message would not have fitted.
                self.assertGreater(len(batches.body(group + groups[index + 1][:1])), 100)

    def test_batch_exactly_at_the_limit(self):
        """Messages whose array is exactly max_size bytes share one batch; one
        byte less splits them."""
        item = batches.encode({"ttl": 60, "body": "same"})
        limit = len(batches.body([item, item]))
        self.assertEqual(batches.pack([item, item], limit), [[item, item]])
        self.assertEqual(batches.pack([item, item], limit - 1), [[item], [item]])
