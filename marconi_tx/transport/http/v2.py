"""The queuing API v2 (``api-v2.md``): v1.1 (``V1_1API``) plus its additions.

Added to v1.1: the checks of api-v2.md §1.2 (a ``URL-Signature`` first, then
a form Content-Type, then v1.1's; queue names may hold dots), the reserved
queue attributes applied (``marconi_tx.queue_attributes``: per-queue default
ttl, post size cap and delay, the dead-letter queue), queue metadata
GET/PATCH (``marconi_tx.json_patch``), listing filters and counts, purge,
pre-signed URLs (``signed_urls``), checksums and claim counts in messages.

What api-v2.md leaves open, and the choices made here:

* Routing comes first: 404, 405 and OPTIONS are answered before any check
  (as in v1), then the checks run in the spec's order, the signature first.
  A request whose signature fails is 404 (JSON), whatever else it carries;
  a valid signature grants the project it was made for (the signed
  ``X-Project-ID``), and the usual checks still apply (Client-ID).
* A post applies the queue's metadata (its default ttl, size cap and
  delay) and a claim its dead-letter policy, both read through the
  process's ``MetadataCache``: this process's own changes apply to the next
  request, another process's within ``[drivers]
  queue_metadata_cache_seconds``. A PATCH racing a post may apply to it or
  not.
* PATCH is read, patched, validated and written back without a lock: two
  concurrent PATCHes of one queue may lose one's changes (upstream did the
  same). Its Content-Type is compared on the media type alone (parameters
  such as ``charset`` are ignored, case-insensitively).
* Listing messages hides delayed ones unless ``include_delayed=true``, on
  every queue: the line protocol's delayed ``put`` is the same in storage,
  so the filter does not depend on the queue's ``_default_message_delay``.
* Metadata filters of the queue listing are the query parameters other than
  ``marker``, ``limit``, ``detailed``, ``name`` and ``with_count``; a value
  of at most 19 digits (with an optional sign) is compared as an integer.
  The ``next`` link repeats them.
* ``checksum`` (``[drivers] enable_checksum``) is computed when a message is
  read: ``MD5:`` and the hex MD5 of its body as ``json.dumps`` writes it
  (upstream computed it at post time from the same text).
* Subscriptions (``transport/http/subscriptions.py``): purging
  ``subscriptions`` removes every one of the queue (not the first 10 as
  upstream); deleting the queue keeps them (api-v2.md §2.6).
* With ``[drivers] pooling``, a queue PUT's ``_flavor`` must name a
  flavor (400 otherwise, even when the queue exists and the body is
  ignored); the pooled driver places a new queue by it. It acts at
  creation only: a PATCH may change the stored value, which moves
  nothing. Without pooling it is plain metadata. (v1 and v1.1 PUTs do not
  check it: with pooling, an unknown flavor there leaves the new queue no
  pool, a 503.) The pool and flavor routes: ``pools``, ``flavors``.
* ``503`` answers still carry ``Retry-After`` (v2 dropped it; a hint costs
  clients nothing).
"""

import hashlib
import json
import re

from marconi_tx import errors, json_patch, queue_attributes, validation
from marconi_tx.transport.http import signed_urls
from marconi_tx.transport.http.flavors import FlavorRoutes
from marconi_tx.transport.http.inputs import (
    client_uuid,
    optional_json,
    queries,
    query,
    read_json,
)
from marconi_tx.transport.http.pools import PoolRoutes
from marconi_tx.transport.http.responses import empty, json_body, json_string, with_member
from marconi_tx.transport.http.subscriptions import SubscriptionRoutes
from marconi_tx.transport.http.v1_1 import V1_1API

PREFIX = "/v2"
PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch"
_FORM_TYPE = b"application/x-www-form-urlencoded"
_JSON_TYPE = b"application/json"  # the usual Content-Type, spared a parse
#: The queue listing's own parameters; any other is a metadata filter.
_LISTING_PARAMS = frozenset({"marker", "limit", "detailed", "name", "with_count"})
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
#: The headers a pre-signed URL's verification reads: name -> canonical name.
_SIGNED_HEADERS = {"URL-Signature": b"Url-Signature", "URL-Expires": b"Url-Expires",
                   "URL-Methods": b"Url-Methods", "URL-Paths": b"Url-Paths",
                   "X-Project-ID": b"X-Project-Id"}


def media_type(header):
    """The media type of a Content-Type header value (no parameters,
    lower case), or None."""
    if header is None:
        return None
    return header.split(b";", 1)[0].strip().lower()


def checksum(body):
    return "MD5:" + hashlib.md5(json.dumps(body).encode("utf-8"),
                                usedforsecurity=False).hexdigest()


class V2API(FlavorRoutes, PoolRoutes, SubscriptionRoutes, V1_1API):
    prefix = PREFIX
    dotted_names = True
    listing_params = (*V1_1API.listing_params, "include_delayed")

    def __init__(self, driver, config, metadata=None, long_poll=None):
        super().__init__(driver, config, metadata, long_poll)
        self.enable_checksum = config.drivers.enable_checksum
        self.secret_key = config.signed_url.secret_key
        self.subscription_config = config
        #: The pool and flavor routes are served (``[drivers] admin_mode``
        #: and ``pooling``); the driver is then an IPooledDriver.
        self.pool_admin = self.admin_mode and config.drivers.pooling
        self.pooling = config.drivers.pooling
        #: The post policy of a queue without reserved attributes.
        self.default_policy = queue_attributes.post_policy({}, self.limits)

    def checks(self, request, params):
        """api-v2.md §1.2: a URL-Signature (404 unless valid), a form
        Content-Type (400), then v1.1's checks."""
        if request.header(b"Url-Signature") is not None:
            self.verify_signature(request)
        content_type = request.header(b"Content-Type")
        if (content_type is not None and content_type != _JSON_TYPE
                and media_type(content_type) == _FORM_TYPE
                and request.header(b"Content-Length") is not None):
            raise errors.ValidationError("Form submissions are not accepted: send JSON.",
                                         title="Invalid Content-Type")
        return super().checks(request, params)

    def verify_signature(self, request):
        headers = {}
        for name, canonical in _SIGNED_HEADERS.items():
            value = request.header(canonical)
            headers[name] = None if value is None else value.decode("latin-1")
        project = signed_urls.verify(request.method.decode("ascii", "replace"),
                                     request.path.decode("utf-8", "replace"), headers,
                                     self.secret_key, request.site.reactor.seconds())
        if project is None:
            raise errors.DoesNotExist("The URL signature does not grant this request.")

    def route_table(self):
        table = super().route_table()
        q = f"{self.prefix}/queues/<queue_name>"
        table[q]["PATCH"] = self.patch_queue
        table[f"{q}/purge"] = {"POST": self.purge}
        table[f"{q}/share"] = {"POST": self.share}
        self.subscription_routes(table)
        if self.pool_admin:
            self.pool_routes(table)
            self.flavor_routes(table)
        return table

    def home_resources(self):
        resources = super().home_resources()
        q = f"{self.prefix}/queues/{{queue_name}}"
        name = {"queue_name": "param/queue_name"}
        subscription = {**name, "subscription_id": "param/subscription_id"}
        resources["rel/queue"] = (q, ["GET", "PUT", "DELETE", "PATCH"], name)
        resources.update({
            "rel/queue_share": (f"{q}/share", ["POST"], name),
            "rel/queue_purge": (f"{q}/purge", ["POST"], name),
            "rel/message_get": (f"{q}/messages/{{message_id}}", ["GET"],
                                {**name, "message_id": "param/message_id"}),
            "rel/subscriptions_get": (f"{q}/subscriptions{{?marker,limit}}", ["GET"],
                                      {**name, "marker": "param/marker",
                                       "limit": "param/subscription_limit"}),
            "rel/subscriptions_post": (f"{q}/subscriptions", ["POST"], name),
            "rel/subscription": (f"{q}/subscriptions/{{subscription_id}}",
                                 ["GET", "DELETE"], subscription),
            "rel/subscription_patch": (f"{q}/subscriptions/{{subscription_id}}", ["PATCH"],
                                       subscription),
            "rel/ping": (f"{self.prefix}/ping", ["GET", "HEAD"], {}),
        })
        if self.admin_mode:
            resources["rel/health"] = (f"{self.prefix}/health", ["GET"], {})
        if self.pool_admin:
            resources.update(self.pool_home())
        return resources

    # -- queues ---------------------------------------------------------------

    def shown(self, metadata):
        return queue_attributes.shown(metadata, self.limits)

    async def check_new_queue(self, metadata):
        """With pooling, a ``_flavor`` must name a flavor (400)."""
        await super().check_new_queue(metadata)
        flavor = queue_attributes.flavor(metadata) if self.pooling else None
        if flavor is not None:
            try:
                await self.driver.flavors.get(flavor)
            except errors.FlavorDoesNotExist:
                raise errors.ValidationError(f"Flavor {flavor!r} does not exist.",
                                             title="Invalid queue attribute")

    async def list_queues(self, request, project):
        filters = {key: int(value) if _INTEGER.fullmatch(value) else value
                   for key, value in queries(request).items() if key not in _LISTING_PARAMS}
        with_count = validation.query_bool("with_count", query(request, "with_count"))
        doc = await self.queue_listing(request, project, query(request, "name"),
                                       filters or None, ("name", "with_count", *filters))
        if with_count:
            count = await self.driver.queues.count(project)
            if count:
                doc["count"] = count
        return json_body(request, 200, doc)

    async def patch_queue(self, request, project, queue_name):
        """JSON-patch of the queue's metadata (api-v2.md §2.5)."""
        if media_type(request.header(b"Content-Type")) != PATCH_TYPE.encode():
            raise errors.UnsupportedMediaType(
                f"The Content-Type of a queue PATCH must be {PATCH_TYPE}.")
        ops = json_patch.parse(read_json(request, self.limits.max_queue_metadata,
                                         self.metadata_nesting))
        metadata = await self.driver.queues.get_metadata(project, queue_name)
        patched = json_patch.apply(metadata, ops, queue_attributes.RESERVED)
        queue_attributes.check(patched, self.limits)
        await self.driver.queues.set_metadata(project, queue_name, patched)
        self.metadata.forget(project, queue_name)
        return json_body(request, 200, self.shown(patched))

    async def purge(self, request, project, queue_name):
        types = validation.purge_types(optional_json(request, self.limits.max_queue_metadata))
        if "messages" in types:
            await self.driver.messages.purge(project, queue_name)
        if "subscriptions" in types:
            await self.driver.subscriptions.purge(project, queue_name)
        return empty(request, 204)

    async def share(self, request, project, queue_name):
        doc = optional_json(request, self.limits.max_queue_metadata)
        doc = {} if doc is None else validation.document_type(doc, dict)
        return json_body(request, 200, signed_urls.share(
            doc, project, queue_name, self.secret_key, request.site.reactor.seconds()))

    # -- messages -------------------------------------------------------------

    def message_json(self, queue, message):
        text = super().message_json(queue, message)
        if self.enable_checksum:
            text = with_member(text, "checksum", json_string(checksum(message.body)))
        return text

    def popped_json(self, message):
        text = with_member(super().popped_json(message), "claim_count", str(message.claim_count))
        if self.enable_checksum:
            text = with_member(text, "checksum", json_string(checksum(message.body)))
        return text

    def post_messages(self, request, project, queue_name):
        # A Deferred, not a coroutine, as v1's: the queue's policy, then the
        # post. A read that has answered already (sqlite's do) is used at
        # once, sparing a Deferred chained into another for every post.
        client = client_uuid(request)
        metadata = self.metadata.get(project, queue_name, request.site.reactor.seconds())
        if isinstance(metadata, dict):
            return self._post_with_policy(metadata, request, project, queue_name, client)
        return metadata.addCallback(self._post_with_policy, request, project, queue_name,
                                    client)

    def _post_with_policy(self, metadata, request, project, queue_name, client):
        # Most queues have no reserved attribute: their policy is computed once.
        policy = (self.default_policy if queue_attributes.RESERVED.isdisjoint(metadata)
                  else queue_attributes.post_policy(metadata, self.limits))
        messages = validation.messages_v1_1(
            read_json(request, policy.max_post_size, self.message_nesting), self.limits,
            policy.default_ttl, policy.default_delay)
        return self.post_to_storage(request, project, queue_name, messages, client)

    def include_delayed(self, request):
        return validation.query_bool("include_delayed", query(request, "include_delayed"))

    # -- claims ---------------------------------------------------------------

    def claim(self, request, project, queue_name, ttl, grace, limit):
        # A Deferred, as posts: the queue's dead-letter policy, then the claim.
        metadata = self.metadata.get(project, queue_name, request.site.reactor.seconds())
        if isinstance(metadata, dict):
            return self._claim_with_policy(metadata, project, queue_name, ttl, grace, limit)
        return metadata.addCallback(self._claim_with_policy, project, queue_name, ttl, grace,
                                    limit)

    def _claim_with_policy(self, metadata, project, queue_name, ttl, grace, limit):
        return self.driver.claims.create(project, queue_name, ttl, grace, limit,
                                         dead_letter=queue_attributes.dead_letter(metadata))
