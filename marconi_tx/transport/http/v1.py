"""The Marconi queuing API v1 (``api-v1.md``): one handler per route and method.

Handlers are ``async def``, save those of the busiest requests (posting,
listing and claiming messages, deleting them by ids), which return a
Deferred themselves (see ``app.dispatcher``). They get the
request (a ``site.ApiRequest``), the checked project (None: global namespace)
and the path parameters; they return the body bytes after setting status and
headers, and let domain errors propagate to the one error table
(``responses.ERROR_ANSWERS``). They render the storage's records
(``marconi_tx.storage.records``) as api-v1.md's documents.

Reserved queue attributes: metadata keys starting with ``_`` (v2's
``_default_message_ttl``, ``_max_claim_count``...) are stored by v1's
metadata PUT as any other key, unchecked, and v1 applies none of them (its
posts need a ttl, its claims move nothing to a dead-letter queue). The same
queue used over v2 does apply them, v1.1 validates them on PUT only.
api-v1.md's [later] 400 for such keys is not followed: it would break v1
clients that store them.
"""

from marconi_tx import errors, validation
from marconi_tx.deferreds import returns_deferred
from marconi_tx.transport.http import responses
from marconi_tx.transport.http.documents import json_home, next_link, queue_href, stats_doc
from marconi_tx.transport.http.inputs import (
    client_uuid,
    query,
    query_ids,
    read_json,
    request_uri,
)
from marconi_tx.transport.http.long_poll import LongPoll
from marconi_tx.transport.http.metadata_cache import MetadataCache
from marconi_tx.transport.http.responses import (
    body_text,
    empty,
    encoded_body,
    json_array,
    json_body,
    text_body,
    text_of,
    with_member,
)

PREFIX = "/v1"


def messages_json(prefix, queue, messages, claim_id=None):
    """A JSON array of messages' documents (href, ttl, age, body) as text,
    their hrefs naming ``claim_id``."""
    # Nothing in an href needs escaping: queue names are letters, digits,
    # "_", "-" and "."; message ids are digits, claim ids hex (made by the
    # storage, or found there).
    head = f'{{"href": "{prefix}/queues/{queue}/messages/'
    tail = '"' if claim_id is None else f'?claim_id={claim_id}"'
    return json_array([f'{head}{m.id}{tail}, "ttl": {m.ttl}, "age": {m.age}, '
                       f'"body": {m.body_json or body_text(m)}}}' for m in messages])


def message_json(prefix, queue, message):
    """A message's document (href, ttl, age, body) as JSON text."""
    return messages_json(prefix, queue, (message,))[1:-1]


def queue_doc(prefix, queue, metadata=None):
    """A queue of a listing; with ``metadata`` (a dict) when detailed."""
    doc = {"name": queue.name}
    if metadata is not None:
        doc["metadata"] = metadata
    doc["href"] = queue_href(prefix, queue.name)
    return doc


def accepts_json(accept):
    """True if an Accept header value admits application/json."""
    if accept is None:
        return True
    for item in accept.split(b","):
        media, *params = item.strip().split(b";")
        if media.strip().lower() not in (b"*/*", b"application/*", b"application/json"):
            continue
        quality = [p.strip()[2:] for p in params if p.strip().startswith(b"q=")]
        try:
            if not quality or float(quality[0]) > 0:
                return True
        except ValueError:
            continue
    return False


def project_id(header):
    """The namespace named by an X-Project-ID header value (None: global)."""
    if header is None:
        return None
    if not header:
        raise errors.ValidationError("The X-Project-ID header may not be empty.",
                                     title="Empty project header not allowed")
    try:
        return header.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ValidationError("The X-Project-ID header must be UTF-8.",
                                     title="Invalid project header")


class V1API:
    prefix = PREFIX
    #: The error answers of this version (``responses.ERROR_ANSWERS``: 404s
    #: without a body, as api-v1.md §1.5).
    error_answers = responses.ERROR_ANSWERS
    #: 404 and 405 without a body.
    json_errors = False

    def __init__(self, driver, config, metadata=None, long_poll=None):
        self.driver = driver
        #: Queue metadata for v2's posts and claims (one per site: every
        #: version's writes forget what it keeps).
        self.metadata = metadata or MetadataCache(
            driver, config.drivers.queue_metadata_cache_seconds)
        self.limits = config.transport
        #: Claims waiting for messages (``?wait=N``; one per site).
        self.long_poll = long_poll or LongPoll(driver, self.limits)
        self.paging = config.storage
        self.health_timeout = config.drivers.health_timeout
        self.message_nesting = validation.message_nesting(
            self.limits, validation.V1_MESSAGE_ENVELOPE)
        self.metadata_nesting = validation.metadata_nesting(self.limits)

    def checks(self, request, params):
        """The per-request checks of api-v1.md §1.2 (Accept, X-Project-ID,
        queue identification); the request's project."""
        if not accepts_json(request.header(b"Accept")):
            raise responses.NotAcceptable()
        project = project_id(request.header(b"X-Project-Id"))
        if "queue_name" in params:
            validation.queue_identification(params["queue_name"], project)
        return project

    def routes(self):
        """(path, {method: handler}) of every v1 route."""
        q = f"{PREFIX}/queues/<queue_name>"
        return [
            (PREFIX, {"GET": self.home}),
            (f"{PREFIX}/health", {"GET": self.health, "HEAD": self.health_head}),
            (f"{PREFIX}/queues", {"GET": self.list_queues}),
            (q, {"PUT": self.create_queue, "GET": self.queue_exists,
                 "HEAD": self.queue_exists, "DELETE": self.delete_queue}),
            (f"{q}/metadata", {"GET": self.get_metadata, "PUT": self.set_metadata}),
            (f"{q}/stats", {"GET": self.stats}),
            (f"{q}/messages", {"POST": self.post_messages, "GET": self.get_messages,
                               "DELETE": self.bulk_delete}),
            (f"{q}/messages/<message_id>", {"GET": self.get_message,
                                            "DELETE": self.delete_message}),
            (f"{q}/claims", {"POST": self.create_claim}),
            (f"{q}/claims/<claim_id>", {"GET": self.get_claim, "PATCH": self.renew_claim,
                                        "DELETE": self.release_claim}),
        ]

    # -- home and health ------------------------------------------------------

    async def home(self, request, project):
        q = f"{PREFIX}/queues/{{queue_name}}"
        return json_home(request, {
            "rel/queues": (f"{PREFIX}/queues{{?marker,limit,detailed}}",
                           ["GET"], {"marker": "param/marker", "limit": "param/queue_limit",
                                     "detailed": "param/detailed"}),
            "rel/queue": (q, ["GET", "HEAD", "PUT", "DELETE"],
                          {"queue_name": "param/queue_name"}),
            "rel/queue-metadata": (f"{q}/metadata", ["GET", "PUT"],
                                   {"queue_name": "param/queue_name"}),
            "rel/queue-stats": (f"{q}/stats", ["GET"], {"queue_name": "param/queue_name"}),
            "rel/messages": (f"{q}/messages{{?marker,limit,echo,include_claimed}}", ["GET"],
                             {"queue_name": "param/queue_name", "marker": "param/marker",
                              "limit": "param/messages_limit", "echo": "param/echo",
                              "include_claimed": "param/include_claimed"}),
            "rel/post-messages": (f"{q}/messages", ["POST"],
                                  {"queue_name": "param/queue_name"}),
            "rel/claim": (f"{q}/claims{{?limit,wait}}", ["POST"],
                          {"queue_name": "param/queue_name", "limit": "param/claim_limit",
                           "wait": "param/claim_wait"}),
        })

    async def storage_reachable(self, request):
        """Whether the storage answers its health check within
        ``[drivers] health_timeout``.

        The storage's own timeout (MongoDB's operation_timeout, 10 s) is too
        long for a load balancer's probe: give up sooner, on the site's
        clock."""
        probe = self.driver.is_alive()
        probe.addTimeout(self.health_timeout, request.site.reactor,
                         onTimeoutCancel=lambda result, timeout: False)
        return await probe

    async def health(self, request, project):
        if not await self.storage_reachable(request):
            raise errors.StorageUnavailable("the storage did not answer the health check")
        return empty(request, 204)

    async def health_head(self, request, project):
        return empty(request, 204)

    # -- queues ---------------------------------------------------------------

    async def list_queues(self, request, project):
        limit = validation.query_int("limit", query(request, "limit"),
                                     self.paging.default_queue_paging)
        detailed = validation.query_bool("detailed", query(request, "detailed"))
        validation.page_limit("limit", limit, self.limits.max_queues_per_page)
        queues = await self.driver.queues.list(project, query(request, "marker"), limit,
                                               detailed)
        location = request_uri(request)
        if not queues:
            return empty(request, 204, Content_Location=location)
        links = next_link(f"{PREFIX}/queues", queues[-1].name, request,
                          ("limit", "detailed"))
        return json_body(request, 200, {"queues": [queue_doc(PREFIX, q, q.metadata)
                                                   for q in queues],
                                        "links": links},
                         Content_Location=location)

    async def create_queue(self, request, project, queue_name):
        created = await self.driver.queues.create(project, queue_name)
        self.metadata.forget(project, queue_name)
        return empty(request, 201 if created else 204,
                     Location=queue_href(PREFIX, queue_name))

    async def queue_exists(self, request, project, queue_name):
        exists = await self.driver.queues.exists(project, queue_name)
        return empty(request, 204 if exists else 404, Content_Location=request_uri(request))

    async def delete_queue(self, request, project, queue_name):
        await self.driver.queues.delete(project, queue_name)
        self.metadata.forget(project, queue_name)
        return empty(request, 204)

    async def get_metadata(self, request, project, queue_name):
        metadata = await self.driver.queues.get_metadata(project, queue_name)
        return json_body(request, 200, metadata, Content_Location=request_uri(request))

    async def set_metadata(self, request, project, queue_name):
        # Keys starting with "_" are stored unchecked (see the module's doc).
        metadata = validation.document_type(
            read_json(request, self.limits.max_queue_metadata, self.metadata_nesting), dict)
        await self.driver.queues.set_metadata(project, queue_name, metadata)
        self.metadata.forget(project, queue_name)
        return empty(request, 204, Location=f"{queue_href(PREFIX, queue_name)}/metadata")

    async def stats(self, request, project, queue_name):
        stats = await self.driver.queues.stats(project, queue_name)
        return json_body(request, 200, {"messages": stats_doc(PREFIX, queue_name, stats)},
                         Content_Location=request_uri(request))

    # -- messages -------------------------------------------------------------

    def post_messages(self, request, project, queue_name):
        # A Deferred, not a coroutine: the busiest request, spared driving a
        # coroutine (see app.dispatcher).
        client = client_uuid(request)
        messages = validation.messages(
            read_json(request, self.limits.max_message_size, self.message_nesting), self.limits)
        posted = self.driver.messages.post(project, queue_name, messages, client)
        return posted.addCallback(self._posted, request, queue_name)

    def _posted(self, ids, request, queue_name):
        base = f"{PREFIX}/queues/{queue_name}/messages"
        # The busiest answer, written without the JSON encoder: queue names
        # are [a-zA-Z0-9_-] and ids are digits, so nothing needs escaping.
        resources = ", ".join(f'"{base}/{i}"' for i in ids)
        return encoded_body(request, 201,
                            f'{{"partial": false, "resources": [{resources}]}}'.encode(),
                            Location=f"{base}?ids={','.join(ids)}")

    def listing_query(self, request):
        """The message listing's query parameters, as ``messages.list``
        keywords."""
        limit = validation.query_int("limit", query(request, "limit"),
                                     self.paging.default_message_paging)
        validation.page_limit("limit", limit, self.limits.max_messages_per_page)
        return {"marker": query(request, "marker"), "limit": limit,
                "echo": validation.query_bool("echo", query(request, "echo")),
                "client_uuid": client_uuid(request),
                "include_claimed": validation.query_bool("include_claimed",
                                                         query(request, "include_claimed"))}

    def include_delayed(self, request):
        """Whether a listing shows delayed messages (v1, v1.1: never)."""
        return False

    def get_messages(self, request, project, queue_name):
        # A Deferred, not a coroutine, as posts: a busy read.
        if any(request.args.get(b"ids", ())):  # an empty ?ids= lists, as before
            return self._get_by_ids(request, project, queue_name, query_ids(request))
        listed = self.driver.messages.list(project, queue_name,
                                           include_delayed=self.include_delayed(request),
                                           **self.listing_query(request))
        return listed.addCallback(self._listed, request, queue_name)

    def _listed(self, messages, request, queue_name):
        """The answer of a listing of ``messages``."""
        location = request_uri(request)
        if not messages:
            return empty(request, 204, Content_Location=location)
        links = next_link(f"{queue_href(PREFIX, queue_name)}/messages", messages[-1].id,
                          request, ("limit", "echo", "include_claimed"))
        docs = messages_json(PREFIX, queue_name, messages)
        return text_body(request, 200, f'{{"messages": {docs}, "links": {text_of(links)}}}',
                         Content_Location=location)

    def check_ids(self, ids):
        validation.page_limit("The number of ids", len(ids), self.limits.max_messages_per_page)

    @returns_deferred
    async def _get_by_ids(self, request, project, queue_name, ids):
        self.check_ids(ids)
        messages = await self.driver.messages.bulk_get(project, queue_name, ids)
        if not messages:
            return empty(request, 204)
        return text_body(request, 200, messages_json(PREFIX, queue_name, messages))

    def bulk_delete(self, request, project, queue_name):
        ids = query_ids(request)
        if not ids:
            raise errors.ValidationError("The 'ids' query parameter is required.",
                                         title="Missing query parameter")
        self.check_ids(ids)
        deleted = self.driver.messages.bulk_delete(project, queue_name, ids)
        return deleted.addCallback(lambda _: empty(request, 204))

    async def get_message(self, request, project, queue_name, message_id):
        message = await self.driver.messages.get(project, queue_name, message_id)
        return text_body(request, 200, message_json(PREFIX, queue_name, message),
                         Content_Location=request_uri(request))

    async def delete_message(self, request, project, queue_name, message_id):
        try:
            await self.driver.messages.delete(project, queue_name, message_id,
                                              claim_id=query(request, "claim_id"))
        except errors.ClaimDoesNotExist:
            pass  # v1 (2014.1): a malformed claim id deletes nothing and says 204
        return empty(request, 204)

    # -- claims ---------------------------------------------------------------

    def create_claim(self, request, project, queue_name):
        # A Deferred, not a coroutine, as posts: the busiest write after them.
        limit = validation.query_int("limit", query(request, "limit"),
                                     self.paging.default_claim_limit)
        ttl, grace = self.claim_terms(request, limit)
        wait = self.long_poll.wait(request)
        claim = self.long_poll.claim(
            request, project, queue_name, wait,
            lambda: self.claim(request, project, queue_name, ttl, grace, limit))
        return claim.addCallback(self._claimed, request, queue_name)

    def claim_terms(self, request, limit):
        """The ``(ttl, grace)`` of a claim request, its ``limit`` checked."""
        doc = read_json(request)
        ttl = validation.claim_ttl(doc, self.limits)
        validation.page_limit("limit", limit, self.limits.max_messages_per_claim)
        return ttl, validation.claim_grace(doc, self.limits)

    def _claimed(self, claim, request, queue_name):
        """The answer of a claim: 204 if it took nothing."""
        if claim is None:
            return empty(request, 204)
        return text_body(request, 201, self.claimed_json(queue_name, claim),
                         Location=f"{queue_href(self.prefix, queue_name)}/claims/{claim.id}")

    def claimed_json(self, queue_name, claim):
        """The JSON text of a claim's answer."""
        return messages_json(PREFIX, queue_name, claim.messages, claim.id)

    def claim(self, request, project, queue_name, ttl, grace, limit):
        """Claim messages (v2 adds the queue's dead-letter policy)."""
        return self.driver.claims.create(project, queue_name, ttl, grace, limit)

    async def get_claim(self, request, project, queue_name, claim_id):
        claim = await self.driver.claims.get(project, queue_name, claim_id)
        head = text_of({"href": f"{queue_href(PREFIX, queue_name)}/claims/{claim_id}",
                          "ttl": claim.ttl, "age": claim.age})
        docs = messages_json(PREFIX, queue_name, claim.messages, claim_id)
        return text_body(request, 200, with_member(head, "messages", docs),
                         Content_Location=request_uri(request))

    async def renew_claim(self, request, project, queue_name, claim_id):
        ttl = validation.claim_ttl(read_json(request), self.limits)
        await self.driver.claims.update(project, queue_name, claim_id, ttl, grace=0)
        return empty(request, 204)

    async def release_claim(self, request, project, queue_name, claim_id):
        await self.driver.claims.delete(project, queue_name, claim_id)
        return empty(request, 204)
