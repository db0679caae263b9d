"""Queues, messages and claims as client objects.

Every method that talks to the server returns a Deferred (await it in a
coroutine, or add callbacks). Listings return a L{Listing}. The same calls
work over v1 and v2 (the shapes differ on the wire, not here); pop, purge,
delayed posts, metadata patches, sharing and subscriptions are v2's
(L{UnsupportedByAPI} over v1, before anything is sent).
"""

import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred

from marconi_tx.client import batches, subscriptions, versions
from marconi_tx.client.errors import (
    ClaimConflict,
    ClaimNotFound,
    MessageNotFound,
    QueueNotFound,
    UnexpectedResponse,
)
from marconi_tx.client.http import (
    Reply,
    boolean,
    last_segment,
    query_value,
    segment,
    with_query,
)
from marconi_tx.client.listing import Listing
from marconi_tx.deferreds import returns_deferred

if TYPE_CHECKING:
    from marconi_tx.client.client import Client
    from marconi_tx.client.subscriptions import Subscription


class Queue:
    """A queue on the server, by name. Creating this object sends nothing.

    v2 queues are lazy: posting creates one, and reading a missing one
    answers as an empty queue (its metadata the reserved defaults, its
    stats zeros) rather than L{QueueNotFound}.

    @ivar name: the queue's name.
    @ivar listed_metadata: the metadata a detailed listing returned with the
        queue; ``None`` when the queue did not come from one (call
        L{metadata} to read it from the server).
    """

    def __init__(self, client: "Client", name: str, listed_metadata: dict | None = None,
                 href: str | None = None) -> None:
        self.client = client
        self.name = name
        self._href = href
        self.listed_metadata = listed_metadata

    @property
    def href(self) -> str | None:
        """Its path, ``/v1/queues/{name}`` or ``/v2/queues/{name}``; ``None``
        while the client has not learnt its API version."""
        if self._href is None and self.client.api is not None:
            return f"/{self.client.api}/{self._path()}"
        return self._href

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}>"

    def _missing(self) -> str:
        return f"queue {self.name} does not exist"

    def _path(self, *parts: str) -> str:
        """The path of the queue or of a resource under it: the listed href,
        or one relative to the API root (resolved once the version is known)."""
        return "/".join((self._href or f"queues/{segment(self.name)}",) + parts)

    @returns_deferred
    async def create(self, metadata: dict | None = None) -> bool:
        """Create the queue (a no-op if it exists), then replace its metadata
        with ``metadata`` if that is not ``None``. Fires with ``True`` if the
        queue was new, ``False`` if it existed already."""
        api = await self.client.api_version()
        body = None if metadata is None or api == versions.V1 else batches.encode(metadata)
        reply = await self.client.request("PUT", self._path(), body=body, expect=(201, 204))
        if metadata is not None and (api == versions.V1 or reply.status == 204):
            await self.set_metadata(metadata)
        return reply.status == 201

    @returns_deferred
    async def exists(self) -> bool:
        """Fires with whether the queue exists (v2, which has no HEAD of a
        queue, looks for it in the listing filtered by its name)."""
        if await self.client.api_version() == versions.V1:
            reply = await self.client.request("HEAD", self._path(), expect=(204, 404))
            return reply.status == 204
        async for queue in self.client.queues(name=self.name):
            if queue.name == self.name:
                return True
        return False

    @returns_deferred
    async def metadata(self) -> dict:
        """Fires with the queue's metadata (a dict); L{QueueNotFound} in v1.
        v2 fills in the reserved ``_`` attributes' defaults (and answers just
        those for a missing queue)."""
        v1 = await self.client.api_version() == versions.V1
        reply = await self.client.request(
            "GET", self._path("metadata") if v1 else self._path(),
            not_found=QueueNotFound, missing=self._missing())
        return reply.json_of(dict, "metadata")

    @returns_deferred
    async def set_metadata(self, metadata: dict) -> None:
        """Replace the queue's metadata with the dict ``metadata`` (not a
        merge); L{QueueNotFound}. v2, which only patches metadata, reads it
        and sends the patch that replaces it (two requests, not atomic)."""
        if await self.client.api_version() == versions.V1:
            await self.client.request(
                "PUT", self._path("metadata"), body=batches.encode(metadata),
                expect=(204,), not_found=QueueNotFound,
                missing=self._missing())
            return
        current = await self.metadata()
        await self.patch_metadata(
            [{"op": "remove", "path": _pointer(key)} for key in current
             if key not in metadata] +
            [{"op": "add", "path": _pointer(key), "value": value}
             for key, value in metadata.items()])

    @returns_deferred
    async def patch_metadata(self, operations: Sequence[dict]) -> dict:
        """v2: apply a JSON-patch to the queue's metadata: ``operations`` as
        ``{"op": "add"|"replace"|"remove", "path": "/metadata/KEY"[, "value":
        any]}``, in order. Fires with the whole metadata after the patch;
        L{QueueNotFound} if the queue does not exist."""
        self.client.require(versions.V2, "patching queue metadata")
        reply = await self.client.request(
            "PATCH", self._path(), body=batches.encode(list(operations)),
            content_type=versions.JSON_PATCH, not_found=QueueNotFound,
            missing=self._missing())
        return reply.json_of(dict, "metadata")

    @returns_deferred
    async def stats(self) -> dict:
        """Fires with the stats document: ``{"messages": {"free", "claimed",
        "total"[, "oldest", "newest"]}}``; L{QueueNotFound} in v1 (v2 counts
        a missing queue as empty)."""
        reply = await self.client.request(
            "GET", self._path("stats"), not_found=QueueNotFound,
            missing=self._missing())
        return reply.json_of(dict, "stats")

    @returns_deferred
    async def delete(self) -> None:
        """Delete the queue with its messages and claims (no error if it
        does not exist)."""
        await self.client.request("DELETE", self._path(), expect=(204,))

    @returns_deferred
    async def post_messages(self, messages: Iterable[Any],
                            progress: Callable[[int, int], object] | None = None
                            ) -> list[str]:
        """Post ``messages``, a sequence of ``{"ttl": seconds, "body": any
        JSON}`` dicts, in order. Fires with their ids, in the same order.

        In v2 ``ttl`` may be left out (the queue's default applies) and a
        message may carry ``"delay": seconds``, before which it cannot be
        listed or claimed; the server only honours delays on queues with a
        non-zero ``_default_message_delay`` (others drop the field).

        Messages are sent in as few requests as the client's
        ``max_message_size`` allows, one after another. If a request fails
        after earlier ones succeeded, the raised error has a ``posted_ids``
        attribute listing the ids already posted.

        @param progress: called as ``progress(posted, total)`` after each
            request, with counts of messages.
        @raise MessageTooLarge: one message is too big for a request on its
            own; raised before anything is sent.
        @raise UnsupportedByAPI: v1, and a message has a ``delay``.
        """
        messages = list(messages)
        envelope = batches.OBJECT
        if await self.client.api_version() == versions.V1:
            if any(isinstance(message, dict) and "delay" in message for message in messages):
                self.client.require(versions.V2, "a delayed message")
            envelope = batches.ARRAY
        encoded = [batches.encode(message) for message in messages]
        groups = batches.pack(encoded, self.client.max_message_size, envelope)
        ids: list[str] = []
        for group in groups:
            try:
                reply = await self.client.request(
                    "POST", self._path("messages"), body=batches.body(group, envelope),
                    expect=(201,), not_found=QueueNotFound, missing=self._missing())
                resources = reply.json_of(dict, "a post result").get("resources")
                if not isinstance(resources, list) or len(resources) != len(group):
                    raise UnexpectedResponse(
                        f"POST {self._path('messages')} answered "
                        f"{len(resources or ())} resources for {len(group)} messages",
                        status=reply.status)
            except Exception as e:
                # Any exception: whatever failed, the caller learns what was posted.
                e.posted_ids = list(ids)  # type: ignore[attr-defined]
                raise
            ids.extend(last_segment(href) for href in resources)
            if progress is not None:
                progress(len(ids), len(encoded))
        return ids

    def messages(self, echo: bool = False, include_claimed: bool = False,
                 limit: int | None = None, include_delayed: bool = False
                 ) -> Listing["Message"]:
        """A L{Listing} of the queue's messages, oldest first.

        @param echo: include messages this client (its Client-ID) posted.
        @param include_claimed: include messages under a live claim.
        @param limit: most messages to yield (``None``: all of them); pages
            are requested with ``limit=min(limit, max_page_size)``.
        @param include_delayed: v2 only: include messages whose delay has
            not passed yet.
        """

        def first(api: str) -> str:
            if include_delayed:
                self.client.require(versions.V2, "listing delayed messages")
            return with_query(
                self._path("messages"), limit=self.client.page_limit(limit),
                echo=boolean(echo), include_claimed=boolean(include_claimed),
                include_delayed=boolean(True) if include_delayed else None)

        return Listing(
            self.client, first,
            lambda page: [Message.parse(self, item)
                          for item in _page_items(page, "messages")],
            limit)

    @returns_deferred
    async def get_message(self, message_id: str) -> "Message":
        """Fires with one L{Message}; L{MessageNotFound}."""
        reply = await self.client.request(
            "GET", self._path("messages", segment(message_id)),
            not_found=MessageNotFound,
            missing=f"message {message_id} not found in queue {self.name}")
        return Message.parse(self, reply.json_of(dict, "a message"))

    @returns_deferred
    async def get_messages(self, ids: Iterable[Any]) -> list["Message"]:
        """Fires with the L{Message}s among ``ids`` that exist, in the order
        of ``ids`` (unknown ids are skipped). Sends one request per
        ``max_page_size`` ids."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, Message] = {}
        for chunk in self.client.chunks(wanted):
            # None found: v1 answers 204, v2 404.
            reply = await self.client.request(
                "GET", with_query(self._path("messages"), ids=",".join(chunk)),
                expect=(200, 204, 404))
            if reply.status == 200:
                for item in _listed(reply, "a message set"):
                    message = Message.parse(self, item)
                    found[message.id] = message
        return [found[i] for i in wanted if i in found]

    @returns_deferred
    async def delete_message(self, message_id: str, claim_id: str | None = None) -> None:
        """Delete one message; with ``claim_id`` it must be the claim holding
        it. L{ClaimConflict} if the message is claimed and ``claim_id`` is
        missing or another claim's."""
        await self.client.request(
            "DELETE", with_query(self._path("messages", segment(message_id)),
                                 claim_id=claim_id),
            expect=(204,), forbidden=ClaimConflict)

    @returns_deferred
    async def delete_messages(self, ids: Iterable[Any]) -> None:
        """Delete the messages ``ids`` whether claimed or not (the API's bulk
        delete); unknown ids are ignored. One request per ``max_page_size``
        ids."""
        for chunk in self.client.chunks(list(dict.fromkeys(str(i) for i in ids))):
            await self.client.request(
                "DELETE", with_query(self._path("messages"), ids=",".join(chunk)),
                expect=(204,))

    @returns_deferred
    async def claim(self, limit: int = 10, ttl: int = 60, grace: int = 60,
                    wait: int | None = None) -> "Claim":
        """Claim up to ``limit`` free messages for ``ttl`` seconds; claimed
        messages live at least ``ttl + grace`` seconds. Fires with a
        L{Claim}, empty (falsy, ``id`` ``None``) when nothing was free.

        With ``wait`` (seconds, up to the server's ``max_claim_wait``), a
        claim that finds nothing free waits that long for a message (long
        polling) and is empty only if none came."""
        reply = await self.client.request(
            "POST", with_query(self._path("claims"), limit=limit, wait=wait or None),
            body=batches.encode({"ttl": ttl, "grace": grace}), expect=(201, 204),
            server_wait=wait or 0)
        if reply.status == 204:
            return Claim(self, None, ttl, 0, [])
        messages = [Message.parse(self, item) for item in _listed(reply, "a claim")]
        location = reply.header(b"Location")
        claim_id = last_segment(location) if location else next(
            (m.claim_id for m in messages if m.claim_id), None)
        return Claim(self, claim_id, ttl, 0, messages,
                     href=urlsplit(location).path if location else None)

    @returns_deferred
    async def get_claim(self, claim_id: str) -> "Claim":
        """Fires with the live L{Claim} ``claim_id``; L{ClaimNotFound}."""
        reply = await self.client.request(
            "GET", self._path("claims", segment(claim_id)),
            not_found=ClaimNotFound, missing=_no_claim(claim_id, self.name))
        document = reply.json_of(dict, "a claim")
        return Claim(self, claim_id, document.get("ttl"), document.get("age"),
                     [Message.parse(self, item)
                      for item in _list_field(reply, document, "messages")],
                     href=document.get("href"))


    @returns_deferred
    async def pop(self, count: int = 1) -> list["Message"]:
        """v2: remove up to ``count`` messages that no live claim holds
        (delayed ones included) and fire with them, oldest first: the
        messages have no ``href`` and carry their ``claim_count``. One
        request per ``max_page_size`` messages."""
        await self.client.api_version()
        self.client.require(versions.V2, "pop")
        popped: list[Message] = []
        while len(popped) < count:
            wanted = min(count - len(popped), self.client.max_page_size)
            reply = await self.client.request(
                "DELETE", with_query(self._path("messages"), pop=wanted))
            items = _page_items(reply.json(), "messages")
            popped.extend(Message.parse(self, item) for item in items)
            if len(items) < wanted:
                break
        return popped

    @returns_deferred
    async def purge(self, resource_types: Sequence[str] | None = None) -> None:
        """v2: delete every message no live claim holds (and the queue's
        subscriptions): ``resource_types``, a subset of ``"messages"`` and
        ``"subscriptions"``, narrows it (``None``: both)."""
        await self.client.api_version()
        self.client.require(versions.V2, "purge")
        body = None if resource_types is None else batches.encode(
            {"resource_types": list(resource_types)})
        await self.client.request("POST", self._path("purge"), body=body, expect=(204,))

    @returns_deferred
    async def share(self, paths: Sequence[str] | None = None,
                    methods: Sequence[str] | None = None,
                    expires: datetime.datetime | str | None = None) -> dict:
        """v2: pre-sign access to this queue. Fires with the share document
        ``{"project", "paths", "methods", "expires", "signature"}`` that
        L{Client.signed} turns into a client.

        @param paths: among ``"messages"``, ``"claims"`` and
            ``"subscriptions"`` (server default: messages).
        @param methods: HTTP methods allowed (server default: GET).
        @param expires: when it stops working (server default: in 24 hours);
            a naive datetime is taken as UTC.
        """
        await self.client.api_version()
        self.client.require(versions.V2, "sharing a queue (signed URLs)")
        document: dict[str, Any] = {}
        if paths is not None:
            document["paths"] = list(paths)
        if methods is not None:
            document["methods"] = list(methods)
        if isinstance(expires, datetime.datetime):
            if expires.tzinfo is not None:
                expires = expires.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            expires = expires.strftime("%Y-%m-%dT%H:%M:%S")
        if expires is not None:
            document["expires"] = expires
        reply = await self.client.request("POST", self._path("share"),
                                          body=batches.encode(document))
        return reply.json_of(dict, "a share document")

    # v2 subscriptions (marconi_tx.client.subscriptions).

    def subscribe(self, subscriber: str, ttl: int | None = None,
                  options: dict | None = None) -> Deferred["Subscription"]:
        """v2: subscribe ``subscriber`` (an http or https URL) to the queue's
        messages for ``ttl`` seconds (server default: an hour), with
        ``options`` (``post_headers``, ``post_data``, ``_retry_policy``).
        Fires with the L{Subscription} as stored; L{Conflict} when the
        subscriber already has a confirmed subscription to the queue."""
        return subscriptions.subscribe(self, subscriber, ttl, options)

    def subscriptions(self, limit: int | None = None) -> Listing["Subscription"]:
        """v2: a L{Listing} of the queue's subscriptions, oldest first."""
        return subscriptions.listing(self, limit)

    def get_subscription(self, subscription_id: str) -> Deferred["Subscription"]:
        """v2: fires with one L{Subscription}; L{SubscriptionNotFound}."""
        return subscriptions.get(self, subscription_id)


class Message:
    """A message as the server returned it.

    @ivar id: its id.
    @ivar href: its path (a claimed message's carries ``?claim_id=``);
        ``None`` for a popped message, which has none.
    @ivar age: seconds since it was posted, when it was read.
    @ivar ttl: its time to live, in seconds.
    @ivar body: its body, any JSON value.
    @ivar claim_id: the claim it came with, or ``None``.
    @ivar claim_count: how many times it was claimed, when the server said
        (v2's pop), else ``None``.
    """

    def __init__(self, queue: Queue, href: str | None, ttl: int | None, age: int | None,
                 body: Any, message_id: str | None = None, claim_id: str | None = None,
                 claim_count: int | None = None) -> None:
        self.queue = queue
        self.href = href
        self.id = last_segment(href) if href is not None else str(message_id)
        self.claim_id = query_value(href, "claim_id") if href is not None else claim_id
        self.ttl, self.age, self.body = ttl, age, body
        self.claim_count = claim_count

    @classmethod
    def parse(cls, queue: Queue, document: Any) -> "Message":
        """A Message from a message object of the API (v2's popped ones
        have an ``id`` and no ``href``)."""
        if not isinstance(document, dict) or not (
                isinstance(document.get("href"), str)
                or isinstance(document.get("id"), str)):
            raise UnexpectedResponse(f"not a message object: {document!r:.200}")
        return cls(queue, document.get("href"), document.get("ttl"),
                   document.get("age"), document.get("body"), document.get("id"),
                   document.get("claim_id"), document.get("claim_count"))

    def __repr__(self) -> str:
        return f"<Message {self.id!r} of {self.queue.name!r}>"

    def as_dict(self) -> dict:
        """The message as a plain dict (what ``marconi-cli --json`` prints;
        ``claim_count`` only when the server gave it)."""
        document = {"id": self.id, "href": self.href, "ttl": self.ttl,
                    "age": self.age, "body": self.body, "claim_id": self.claim_id}
        if self.claim_count is not None:
            document["claim_count"] = self.claim_count
        return document

    def delete(self) -> Deferred[None]:
        """Delete the message, passing its claim id when it has one.
        L{ClaimConflict} if another live claim holds it."""
        return self.queue.delete_message(self.id, self.claim_id)


class Claim:
    """A claim on some messages of a queue.

    An empty claim (nothing was free) has ``id`` ``None``, no messages and is
    falsy; updating or releasing it does nothing.

    @ivar id: the claim id, or ``None``.
    @ivar href: its path, or ``None``.
    @ivar ttl: seconds the claim lasts from its creation or last renewal.
    @ivar age: seconds since then, when it was read (0 for a new claim).
    @ivar messages: the claimed L{Message}s.
    """

    def __init__(self, queue: Queue, claim_id: str | None, ttl: int | None,
                 age: int | None, messages: Sequence[Message],
                 href: str | None = None) -> None:
        self.queue = queue
        self.id = claim_id
        self._href = href
        self.ttl, self.age, self.messages = ttl, age, messages

    @property
    def href(self) -> str | None:
        """Its path, or ``None`` for an empty claim (or while the client has
        not learnt its API version)."""
        if self._href is None and self.id is not None and self.queue.href is not None:
            return f"{self.queue.href}/claims/{segment(self.id)}"
        return self._href

    def _path(self) -> str:
        return self._href or self.queue._path("claims", segment(str(self.id)))

    def __repr__(self) -> str:
        return f"<Claim {self.id!r} of {self.queue.name!r}: {len(self.messages)} messages>"

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def as_dict(self) -> dict:
        """The claim as a plain dict, with its messages."""
        return {"id": self.id, "href": self.href, "ttl": self.ttl,
                "age": self.age,
                "messages": [message.as_dict() for message in self.messages]}

    @returns_deferred
    async def update(self, ttl: int | None = None, grace: int | None = None) -> None:
        """Renew the claim: it lasts ``ttl`` seconds from now (default: its
        current ``ttl``). ``grace`` is sent for servers that use it (v1 of
        the reference server ignores it). L{ClaimNotFound} if it expired."""
        if self.id is None:  # an empty claim
            return
        ttl = self.ttl if ttl is None else ttl
        document = {"ttl": ttl}
        if grace is not None:
            document["grace"] = grace
        await self.queue.client.request(
            "PATCH", self._path(), body=batches.encode(document), expect=(204,),
            not_found=ClaimNotFound, missing=_no_claim(self.id, self.queue.name))
        self.ttl, self.age = ttl, 0

    @returns_deferred
    async def release(self) -> None:
        """Release the claim: its messages become free at once."""
        if self.id is None:  # an empty claim
            return
        await self.queue.client.request("DELETE", self._path(), expect=(204,))


def _no_claim(claim_id: str, queue_name: str) -> str:
    return f"claim {claim_id} not found in queue {queue_name} (unknown or expired)"


def _pointer(key: str) -> str:
    """The JSON-patch path of metadata key ``key`` (RFC 6901 escapes)."""
    return "/metadata/" + key.replace("~", "~0").replace("/", "~1")


def _listed(reply: Reply, what: str) -> list:
    """The messages of a claim or an ``?ids=`` answer: v1's bare array or
    v2's ``{"messages": [...]}``."""
    document = reply.json()
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return _list_field(reply, document, "messages")
    raise UnexpectedResponse(f"{reply.method} {reply.url} answered {what} that is "
                             f"neither a JSON array nor an object", status=reply.status)


def _page_items(page: Any, key: str) -> list:
    items = page.get(key) if isinstance(page, dict) else None
    if not isinstance(items, list):
        raise UnexpectedResponse(f"a page without a {key!r} list: {page!r:.200}")
    return items


def _list_field(reply: Reply, document: dict, key: str) -> list:
    items = document.get(key)
    if not isinstance(items, list):
        raise UnexpectedResponse(
            f"{reply.method} {reply.url} answered without a {key!r} list",
            status=reply.status)
    return items
