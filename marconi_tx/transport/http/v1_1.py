"""The queuing API v1.1 (``api-v1.1.md``): v1's handlers where nothing
changed, new ones where v1.1 differs.

``V1_1API`` extends ``V1API`` (queue DELETE, claim DELETE and the storage
probe are v1's) and is itself extended by ``v2.V2API``: every path it
builds starts with ``self.prefix`` and every document it renders goes
through a method v2 may override (``message_json``, ``popped_json``,
``shown``).

What api-v1.1.md leaves open, and the choices made here:

* Every error, 404 and 405 included, has a JSON ``{title, description}``
  body (the spec's [later] behaviour; Juno's 404s had none).
* ``Client-ID`` must be a UUID on every request, ``GET /v1.1`` included
  (the [later] exemption and ``client_id_uuid_safe`` are not offered).
* ``GET /v1.1/health`` exists only with ``[drivers] admin_mode``. Its report
  has ``storage_reachable`` and the ``message_volume`` of the caller's
  project (summed over its queues); ``operation_status`` is ``{}``: no
  self-test writes throwaway queues into a production store.
* Reserved ``_`` queue attributes are validated on PUT (``queue_attributes.
  check``) and have no effect in v1.1, as its spec says; v1 stores them as
  plain metadata without checking them.
* Messages are listed without delayed ones (v2's ``include_delayed`` false):
  the line protocol's delayed ``put`` is the same thing in storage.
* The single-message DELETE matrix (§3.11) needs to know, for a claim id
  that is not the recorded one, whether another claim holds the message
  now: on that error path only, the message is read once more.
* A popped message's ``claim_id`` is the claim recorded on it (expired or
  released), or null.
"""

from marconi_tx import errors, queue_attributes, validation
from marconi_tx.deferreds import returns_deferred
from marconi_tx.storage.ids import parse_message_id
from marconi_tx.transport.http import responses
from marconi_tx.transport.http.documents import json_home, next_link, queue_href, stats_doc
from marconi_tx.transport.http.inputs import (
    client_uuid,
    optional_json,
    query,
    query_ids,
    read_json,
)
from marconi_tx.transport.http.responses import (
    body_text,
    empty,
    encoded_body,
    json_array,
    json_body,
    json_string,
    text_body,
    text_of,
    with_member,
)
from marconi_tx.transport.http.v1 import V1API, accepts_json, project_id, queue_doc

PREFIX = "/v1.1"
#: Arrays and objects around each message body in a POST:
#: ``{"messages": [{"body": ...}]}``.
MESSAGE_ENVELOPE = 3
#: Stats of a queue that does not exist (lazy queues: it is empty).
NO_MESSAGES = {"claimed": 0, "free": 0, "total": 0}


def required_project(request):
    """The X-Project-ID header's project: required from v1.1 on."""
    header = request.header(b"X-Project-Id")
    if header is None:
        raise errors.ValidationError("The X-Project-ID header is required.",
                                     title="Project-Id Missing")
    return project_id(header)


class V1_1API(V1API):
    prefix = PREFIX
    error_answers = responses.JSON_ERROR_ANSWERS
    json_errors = True
    #: Whether queue names may hold dots (v2).
    dotted_names = False
    #: The listing parameters a ``next`` link repeats.
    listing_params: tuple[str, ...] = ("limit", "echo", "include_claimed")

    def __init__(self, driver, config, metadata=None, long_poll=None):
        super().__init__(driver, config, metadata, long_poll)
        self.admin_mode = config.drivers.admin_mode
        self.message_nesting = validation.message_nesting(self.limits, MESSAGE_ENVELOPE)

    def checks(self, request, params):
        """api-v1.1.md §1: Accept, Client-ID (a UUID, on every request),
        X-Project-ID (required), queue identification."""
        if not accepts_json(request.header(b"Accept")):
            raise responses.NotAcceptable()
        client_uuid(request)
        project = required_project(request)
        if "queue_name" in params:
            # (positional: the check's cache hashes a shorter key)
            validation.queue_identification(params["queue_name"], project,
                                            self.dotted_names)
        return project

    def route_table(self):
        """{path: {method: handler}} of every route of this version."""
        p = self.prefix
        q = f"{p}/queues/<queue_name>"
        table = {
            p: {"GET": self.home},
            f"{p}/ping": {"GET": self.ping, "HEAD": self.health_head},
            f"{p}/queues": {"GET": self.list_queues},
            q: {"PUT": self.create_queue, "GET": self.get_queue, "DELETE": self.delete_queue},
            f"{q}/stats": {"GET": self.stats},
            f"{q}/messages": {"POST": self.post_messages, "GET": self.get_messages,
                              "DELETE": self.bulk_delete},
            f"{q}/messages/<message_id>": {"GET": self.get_message,
                                           "DELETE": self.delete_message},
            f"{q}/claims": {"POST": self.create_claim},
            f"{q}/claims/<claim_id>": {"GET": self.get_claim, "PATCH": self.renew_claim,
                                       "DELETE": self.release_claim},
        }
        if self.admin_mode:
            table[f"{p}/health"] = {"GET": self.health_report}
        return table

    def routes(self):
        return list(self.route_table().items())

    # -- home, ping and health ------------------------------------------------

    def home_resources(self):
        """{rel: (href template, methods, href variables)} of the home document."""
        q = f"{self.prefix}/queues/{{queue_name}}"
        name = {"queue_name": "param/queue_name"}
        claim = {**name, "claim_id": "param/claim_id"}
        message = {**name, "message_id": "param/message_id"}
        return {
            "rel/queues": (f"{self.prefix}/queues{{?marker,limit,detailed}}", ["GET"],
                           {"marker": "param/marker", "limit": "param/queue_limit",
                            "detailed": "param/detailed"}),
            "rel/queue": (q, ["PUT", "DELETE"], name),
            "rel/queue_stats": (f"{q}/stats", ["GET"], name),
            "rel/messages": (f"{q}/messages{{?marker,limit,echo,include_claimed}}", ["GET"],
                             {**name, "marker": "param/marker",
                              "limit": "param/messages_limit", "echo": "param/echo",
                              "include_claimed": "param/include_claimed"}),
            "rel/post_messages": (f"{q}/messages", ["POST"], name),
            "rel/messages_delete": (f"{q}/messages{{?ids,pop}}", ["DELETE"],
                                    {**name, "ids": "param/ids", "pop": "param/pop"}),
            "rel/message_delete": (f"{q}/messages/{{message_id}}{{?claim}}", ["DELETE"],
                                   {**message, "claim": "param/claim_id"}),
            "rel/claim": (f"{q}/claims/{{claim_id}}", ["GET"], claim),
            "rel/post_claim": (f"{q}/claims{{?limit,wait}}", ["POST"],
                               {**name, "limit": "param/claim_limit",
                                "wait": "param/claim_wait"}),
            "rel/patch_claim": (f"{q}/claims/{{claim_id}}", ["PATCH"], claim),
            "rel/delete_claim": (f"{q}/claims/{{claim_id}}", ["DELETE"], claim),
        }

    async def home(self, request, project):
        return json_home(request, self.home_resources())

    #: 204 while the storage answers, else 503 (v1's health).
    ping = V1API.health

    async def health_report(self, request, project):
        """The admin health report (api-v1.1.md §3.1)."""
        if not await self.storage_reachable(request):
            raise errors.StorageUnavailable("the storage did not answer the health check")
        volume = {"free": 0, "claimed": 0, "total": 0}
        marker = None
        while True:
            queues = await self.driver.queues.list(project, marker,
                                                   self.limits.max_queues_per_page)
            for queue in queues:
                try:
                    stats = await self.driver.queues.stats(project, queue.name)
                except errors.QueueDoesNotExist:
                    continue  # deleted meanwhile
                volume["free"] += stats.free
                volume["claimed"] += stats.claimed
                volume["total"] += stats.total
            if len(queues) < self.limits.max_queues_per_page:
                break
            marker = queues[-1].name
        return json_body(request, 200, {"storage_reachable": True, "message_volume": volume,
                                        "operation_status": {}})

    # -- queues ---------------------------------------------------------------

    def shown(self, metadata):
        """Queue metadata as this version shows it (v1.1: as stored)."""
        return metadata

    async def queue_listing(self, request, project, name=None, metadata=None, repeated=()):
        """The ``queues`` and ``links`` of a listing (``name`` and
        ``metadata``: v2's filters, whose parameters ``repeated`` the next
        link repeats)."""
        limit = validation.query_int("limit", query(request, "limit"),
                                     self.paging.default_queue_paging)
        detailed = validation.query_bool("detailed", query(request, "detailed"))
        validation.page_limit("limit", limit, self.limits.max_queues_per_page)
        queues = await self.driver.queues.list(project, query(request, "marker"), limit,
                                               detailed, name=name, metadata=metadata)
        path = f"{self.prefix}/queues"
        links = next_link(path, queues[-1].name, request, ("limit", "detailed", *repeated)
                          ) if queues else []
        return {"queues": [queue_doc(self.prefix, q, self.shown(q.metadata) if detailed
                                     else None) for q in queues],
                "links": links}

    async def list_queues(self, request, project):
        return json_body(request, 200, await self.queue_listing(request, project))

    async def create_queue(self, request, project, queue_name):
        """201 with the body's metadata, or 204: an existing queue's
        metadata is left as it is (api-v1.1.md §3.3)."""
        metadata = optional_json(request, self.limits.max_queue_metadata,
                                 self.metadata_nesting)
        metadata = {} if metadata is None else validation.document_type(metadata, dict)
        await self.check_new_queue(metadata)
        created = await self.driver.queues.create(project, queue_name, metadata)
        self.metadata.forget(project, queue_name)
        return empty(request, 201 if created else 204,
                     Location=queue_href(self.prefix, queue_name))

    async def check_new_queue(self, metadata):
        """Refuse (400) the metadata of a queue PUT."""
        queue_attributes.check(metadata, self.limits)

    async def queue_metadata(self, project, queue_name):
        """The queue's metadata; {} for a missing queue (lazy queues)."""
        try:
            return await self.driver.queues.get_metadata(project, queue_name)
        except errors.QueueDoesNotExist:
            return {}

    async def get_queue(self, request, project, queue_name):
        metadata = await self.queue_metadata(project, queue_name)
        return json_body(request, 200, self.shown(metadata))

    async def stats(self, request, project, queue_name):
        try:
            stats = await self.driver.queues.stats(project, queue_name)
        except errors.QueueDoesNotExist:
            return json_body(request, 200, {"messages": NO_MESSAGES})
        return json_body(request, 200, {"messages": stats_doc(self.prefix, queue_name, stats)})

    # -- messages -------------------------------------------------------------

    def message_json(self, queue, message):
        """A message's document as JSON text: its ``href`` names the claim
        recorded on it."""
        # Message ids are digits: no escaping (see v1.messages_json).
        href = f"{self.prefix}/queues/{queue}/messages/{message.id}"
        if message.claim_id is not None:
            href += f"?claim_id={message.claim_id}"
        return (f'{{"id": "{message.id}", "href": {json_string(href)}, "ttl": {message.ttl}, '
                f'"age": {message.age}, "body": {message.body_json or body_text(message)}}}')

    def messages_json(self, queue, messages):
        """``{"messages": [...]}`` of ``messages``, as JSON text."""
        docs = json_array([self.message_json(queue, m) for m in messages])
        return f'{{"messages": {docs}}}'

    def popped_json(self, message):
        """A popped message (no href: it is gone) as JSON text."""
        return with_member(
            f'{{"id": {json_string(message.id)}, "ttl": {message.ttl}, "age": {message.age}, '
            f'"body": {body_text(message)}}}', "claim_id", text_of(message.claim_id))

    def post_messages(self, request, project, queue_name):
        # A Deferred, not a coroutine, as v1's (see app.dispatcher).
        client = client_uuid(request)
        messages = validation.messages_v1_1(
            read_json(request, self.limits.max_message_size, self.message_nesting),
            self.limits, self.limits.default_message_ttl)
        return self.post_to_storage(request, project, queue_name, messages, client)

    def post_to_storage(self, request, project, queue_name, messages, client):
        """Post ``messages`` (creating the queue); the 201 answer."""
        posted = self.driver.messages.post(project, queue_name, messages, client, create=True)
        return posted.addCallback(self._posted, request, queue_name)

    def _posted(self, ids, request, queue_name):
        base = f"{self.prefix}/queues/{queue_name}/messages"
        # Written without the JSON encoder, as v1's: queue names are
        # [a-zA-Z0-9_.-] and ids are digits, so nothing needs escaping.
        resources = ", ".join(f'"{base}/{i}"' for i in ids)
        return encoded_body(request, 201, f'{{"resources": [{resources}]}}'.encode(),
                            Location=f"{base}?ids={','.join(ids)}")

    @returns_deferred
    async def _get_by_ids(self, request, project, queue_name, ids):
        self.check_ids(ids)
        messages = await self.driver.messages.bulk_get(project, queue_name, ids)
        if not messages:
            raise errors.MessageDoesNotExist(",".join(ids), queue_name)
        return text_body(request, 200, self.messages_json(queue_name, messages))

    def _listed(self, messages, request, queue_name):
        links = next_link(f"{queue_href(self.prefix, queue_name)}/messages", messages[-1].id,
                          request, self.listing_params) if messages else []
        return text_body(request, 200, with_member(self.messages_json(queue_name, messages),
                                                   "links", text_of(links)))

    def bulk_delete(self, request, project, queue_name):
        """Delete by ``ids``, or ``pop`` up to N free messages: exactly one
        of the two (api-v1.1.md §3.9)."""
        ids = query_ids(request)
        pop = query(request, "pop")
        if bool(ids) == (pop is not None):
            raise errors.ValidationError("Exactly one of the 'ids' and 'pop' query "
                                         "parameters is required.",
                                         title="Invalid query parameter")
        if ids:
            return super().bulk_delete(request, project, queue_name)
        limit = validation.query_int("pop", pop, None)
        validation.page_limit("pop", limit, self.limits.max_messages_per_claim)
        popped = self.driver.messages.pop(project, queue_name, limit)
        return popped.addCallback(lambda messages: text_body(
            request, 200, f'{{"messages": {json_array(map(self.popped_json, messages))}}}'))

    async def get_message(self, request, project, queue_name, message_id):
        message = await self.driver.messages.get(project, queue_name, message_id)
        return text_body(request, 200, self.message_json(queue_name, message))

    async def delete_message(self, request, project, queue_name, message_id):
        """The matrix of api-v1.1.md §3.11."""
        if parse_message_id(message_id) is None:
            return empty(request, 204)
        try:
            await self.driver.messages.delete(project, queue_name, message_id,
                                              claim_id=query(request, "claim_id"))
        except errors.ClaimDoesNotExist:
            raise errors.ValidationError("The claim does not exist or has expired.",
                                         title="Invalid claim id")
        except errors.MessageNotClaimed:
            raise errors.ValidationError("A claim_id was given but the message is not "
                                         "claimed.", title="Message not claimed")
        except errors.ClaimMismatch:
            try:
                message = await self.driver.messages.get(project, queue_name, message_id)
            except errors.MessageDoesNotExist:
                return empty(request, 204)  # gone meanwhile
            if message.claimed:
                raise  # held by another live claim: 403
            raise errors.ValidationError("The message is not claimed by that claim (it "
                                         "has expired or was released).",
                                         title="Message not claimed")
        return empty(request, 204)

    # -- claims ---------------------------------------------------------------

    def claim_terms(self, request, limit):
        validation.page_limit("limit", limit, self.limits.max_messages_per_claim)
        return validation.claim_body_v1_1(optional_json(request), self.limits)

    def claimed_json(self, queue_name, claim):
        return self.messages_json(queue_name, claim.messages)

    async def get_claim(self, request, project, queue_name, claim_id):
        claim = await self.driver.claims.get(project, queue_name, claim_id)
        head = text_of({"href": f"{queue_href(self.prefix, queue_name)}/claims/{claim_id}",
                          "ttl": claim.ttl, "age": claim.age})
        return text_body(request, 200, with_member(
            head, "messages", json_array(self.message_json(queue_name, m)
                                         for m in claim.messages)))

    async def renew_claim(self, request, project, queue_name, claim_id):
        """A body is required (an object; ``{}`` renews with the defaults)."""
        doc = validation.document_type(read_json(request), dict)
        ttl, grace = validation.claim_body_v1_1(doc, self.limits)
        await self.driver.claims.update(project, queue_name, claim_id, ttl, grace)
        return empty(request, 204)
