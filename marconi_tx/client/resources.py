"""Queues, messages and claims as client objects.

Every method that talks to the server returns a Deferred (await it in a
coroutine, or add callbacks). Listings return a L{Listing}.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred

from marconi_tx.client import batches
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


class Queue:
    """A queue on the server, by name. Creating this object sends nothing.

    @ivar name: the queue's name.
    @ivar href: its path, ``/v1/queues/{name}``.
    @ivar listed_metadata: the metadata a detailed listing returned with the
        queue; ``None`` when the queue did not come from one (call
        L{metadata} to read it from the server).
    """

    def __init__(self, client: "Client", name: str, listed_metadata: dict | None = None,
                 href: str | None = None) -> None:
        self.client = client
        self.name = name
        self.href = href or f"/v1/queues/{segment(name)}"
        self.listed_metadata = listed_metadata

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}>"

    def _missing(self) -> str:
        return f"queue {self.name} does not exist"

    def _path(self, *parts: str) -> str:
        return "/".join((self.href,) + parts)

    @returns_deferred
    async def create(self, metadata: dict | None = None) -> bool:
        """Create the queue (a no-op if it exists), then replace its metadata
        with ``metadata`` if that is not ``None``. Fires with ``True`` if the
        queue was new, ``False`` if it existed already."""
        reply = await self.client.request("PUT", self.href, expect=(201, 204))
        if metadata is not None:
            await self.set_metadata(metadata)
        return reply.status == 201

    @returns_deferred
    async def exists(self) -> bool:
        """Fires with whether the queue exists."""
        reply = await self.client.request("HEAD", self.href, expect=(204, 404))
        return reply.status == 204

    @returns_deferred
    async def metadata(self) -> dict:
        """Fires with the queue's metadata (a dict); L{QueueNotFound}."""
        reply = await self.client.request(
            "GET", self._path("metadata"), not_found=QueueNotFound,
            missing=self._missing())
        return reply.json_of(dict, "metadata")

    @returns_deferred
    async def set_metadata(self, metadata: dict) -> None:
        """Replace the queue's metadata with the dict ``metadata`` (not a
        merge); L{QueueNotFound}."""
        await self.client.request(
            "PUT", self._path("metadata"), body=batches.encode(metadata),
            expect=(204,), not_found=QueueNotFound,
            missing=self._missing())

    @returns_deferred
    async def stats(self) -> dict:
        """Fires with the stats document: ``{"messages": {"free", "claimed",
        "total"[, "oldest", "newest"]}}``; L{QueueNotFound}."""
        reply = await self.client.request(
            "GET", self._path("stats"), not_found=QueueNotFound,
            missing=self._missing())
        return reply.json_of(dict, "stats")

    @returns_deferred
    async def delete(self) -> None:
        """Delete the queue with its messages and claims (no error if it
        does not exist)."""
        await self.client.request("DELETE", self.href, expect=(204,))

    @returns_deferred
    async def post_messages(self, messages: Iterable[Any],
                            progress: Callable[[int, int], object] | None = None
                            ) -> list[str]:
        """Post ``messages``, a sequence of ``{"ttl": seconds, "body": any
        JSON}`` dicts, in order. Fires with their ids, in the same order.

        Messages are sent in as few requests as the client's
        ``max_message_size`` allows, one after another. If a request fails
        after earlier ones succeeded, the raised error has a ``posted_ids``
        attribute listing the ids already posted.

        @param progress: called as ``progress(posted, total)`` after each
            request, with counts of messages.
        @raise MessageTooLarge: one message is too big for a request on its
            own; raised before anything is sent.
        """
        encoded = [batches.encode(message) for message in messages]
        groups = batches.pack(encoded, self.client.max_message_size)
        ids: list[str] = []
        for group in groups:
            try:
                reply = await self.client.request(
                    "POST", self._path("messages"), body=batches.body(group),
                    expect=(201,), not_found=QueueNotFound,
            missing=self._missing())
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
                 limit: int | None = None) -> Listing["Message"]:
        """A L{Listing} of the queue's messages, oldest first.

        @param echo: include messages this client (its Client-ID) posted.
        @param include_claimed: include messages under a live claim.
        @param limit: most messages to yield (``None``: all of them); pages
            are requested with ``limit=min(limit, max_page_size)``.
        """
        first = with_query(
            self._path("messages"), limit=self.client.page_limit(limit),
            echo=boolean(echo), include_claimed=boolean(include_claimed))
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
            reply = await self.client.request(
                "GET", with_query(self._path("messages"), ids=",".join(chunk)),
                expect=(200, 204))
            if reply.status == 200:
                for item in reply.json_of(list, "a message set"):
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
    async def claim(self, limit: int = 10, ttl: int = 60, grace: int = 60) -> "Claim":
        """Claim up to ``limit`` free messages for ``ttl`` seconds; claimed
        messages live at least ``ttl + grace`` seconds. Fires with a
        L{Claim}, empty (falsy, ``id`` ``None``) when nothing was free."""
        reply = await self.client.request(
            "POST", with_query(self._path("claims"), limit=limit),
            body=batches.encode({"ttl": ttl, "grace": grace}), expect=(201, 204))
        if reply.status == 204:
            return Claim(self, None, ttl, 0, [])
        messages = [Message.parse(self, item)
                    for item in reply.json_of(list, "a claim")]
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


class Message:
    """A message as the server returned it.

    @ivar id: its id (the last segment of ``href``).
    @ivar href: its path; a claimed message's carries ``?claim_id=``.
    @ivar age: seconds since it was posted, when it was read.
    @ivar ttl: its time to live, in seconds.
    @ivar body: its body, any JSON value.
    @ivar claim_id: the claim it came with, or ``None``.
    """

    def __init__(self, queue: Queue, href: str, ttl: int | None, age: int | None,
                 body: Any) -> None:
        self.queue = queue
        self.href = href
        self.id = last_segment(href)
        self.claim_id = query_value(href, "claim_id")
        self.ttl, self.age, self.body = ttl, age, body

    @classmethod
    def parse(cls, queue: Queue, document: Any) -> "Message":
        """A Message from a message object of the API."""
        if not isinstance(document, dict) or not isinstance(document.get("href"), str):
            raise UnexpectedResponse(f"not a message object: {document!r:.200}")
        return cls(queue, document["href"], document.get("ttl"),
                   document.get("age"), document.get("body"))

    def __repr__(self) -> str:
        return f"<Message {self.id!r} of {self.queue.name!r}>"

    def as_dict(self) -> dict:
        """The message as a plain dict (what ``marconi-cli --json`` prints)."""
        return {"id": self.id, "href": self.href, "ttl": self.ttl,
                "age": self.age, "body": self.body, "claim_id": self.claim_id}

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
        self.href = href or (
            f"{queue.href}/claims/{segment(claim_id)}" if claim_id else None)
        self.ttl, self.age, self.messages = ttl, age, messages

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
        if self.id is None or self.href is None:  # an empty claim
            return
        ttl = self.ttl if ttl is None else ttl
        document = {"ttl": ttl}
        if grace is not None:
            document["grace"] = grace
        await self.queue.client.request(
            "PATCH", self.href, body=batches.encode(document), expect=(204,),
            not_found=ClaimNotFound, missing=_no_claim(self.id, self.queue.name))
        self.ttl, self.age = ttl, 0

    @returns_deferred
    async def release(self) -> None:
        """Release the claim: its messages become free at once."""
        if self.id is None or self.href is None:  # an empty claim
            return
        await self.queue.client.request("DELETE", self.href, expect=(204,))


def _no_claim(claim_id: str, queue_name: str) -> str:
    return f"claim {claim_id} not found in queue {queue_name} (unknown or expired)"


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
