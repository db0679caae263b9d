"""v2 subscriptions as client objects: a queue's webhook subscribers.

``Queue.subscribe``, ``Queue.subscriptions`` and ``Queue.get_subscription``
(in L{marconi_tx.client.resources}) make them; over v1 every call raises
L{UnsupportedByAPI} before anything is sent.
"""

from typing import TYPE_CHECKING, Any

from marconi_tx.client import batches, versions
from marconi_tx.client.errors import SubscriptionNotFound, UnexpectedResponse
from marconi_tx.client.http import segment, with_query
from marconi_tx.client.listing import Listing
from marconi_tx.deferreds import returns_deferred

if TYPE_CHECKING:
    from marconi_tx.client.resources import Queue

WHAT = "subscriptions"


class Subscription:
    """A subscription of a queue, as the server returned it.

    @ivar id: its id.
    @ivar subscriber: the URL the queue's messages are posted to.
    @ivar ttl: seconds it lasts from its creation (or last ttl change).
    @ivar age: seconds since it was created, when it was read.
    @ivar options: its options (``post_headers``, ``post_data``,
        ``_retry_policy`` and anything else the creator stored).
    @ivar confirmed: whether the subscriber confirmed it (it matters when
        the server requires confirmation).
    """

    def __init__(self, queue: "Queue", subscription_id: str, subscriber: str | None = None,
                 ttl: int | None = None, age: int | None = None,
                 options: dict | None = None, confirmed: bool | None = None) -> None:
        self.queue = queue
        self.id = subscription_id
        self.subscriber, self.ttl, self.age = subscriber, ttl, age
        self.options = options
        self.confirmed = confirmed

    @classmethod
    def parse(cls, queue: "Queue", document: Any) -> "Subscription":
        """A Subscription from a subscription object of the API."""
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            raise UnexpectedResponse(f"not a subscription object: {document!r:.200}")
        return cls(queue, document["id"], document.get("subscriber"), document.get("ttl"),
                   document.get("age"), document.get("options"), document.get("confirmed"))

    def __repr__(self) -> str:
        return f"<Subscription {self.id!r} of {self.queue.name!r}>"

    def as_dict(self) -> dict:
        """The subscription as a plain dict (what ``marconi-cli --json`` prints)."""
        return {"id": self.id, "queue": self.queue.name, "subscriber": self.subscriber,
                "ttl": self.ttl, "age": self.age, "options": self.options,
                "confirmed": self.confirmed}

    def _path(self, *more: str) -> str:
        return path(self.queue, segment(self.id), *more)

    @returns_deferred
    async def update(self, subscriber: str | None = None, ttl: int | None = None,
                     options: dict | None = None) -> None:
        """Change what is given (``options`` replaces them all; a new
        ``ttl`` counts from now; a new subscriber must confirm again).
        L{SubscriptionNotFound}; L{Conflict} when the queue already has a
        subscription for the new subscriber."""
        changes: dict[str, Any] = {}
        if subscriber is not None:
            changes["subscriber"] = subscriber
        if ttl is not None:
            changes["ttl"] = ttl
        if options is not None:
            changes["options"] = options
        await self.queue.client.request(
            "PATCH", self._path(), body=batches.encode(changes), expect=(204,),
            not_found=SubscriptionNotFound, missing=_missing(self.id, self.queue))
        for name, value in changes.items():
            setattr(self, name, value)

    @returns_deferred
    async def confirm(self, confirmed: bool = True) -> None:
        """Confirm the subscription (``False``: unconfirm it, which stops
        deliveries where confirmation is required)."""
        await self.queue.client.request(
            "PUT", self._path("confirm"), body=batches.encode({"confirmed": confirmed}),
            expect=(204,), not_found=SubscriptionNotFound,
            missing=_missing(self.id, self.queue))
        self.confirmed = confirmed

    @returns_deferred
    async def delete(self) -> None:
        """Delete the subscription (a missing one too)."""
        await self.queue.client.request("DELETE", self._path(), expect=(204,))


def path(queue: "Queue", *parts: str) -> str:
    """The path of ``queue``'s subscriptions (and ``parts`` below it)."""
    return queue._path(WHAT, *parts)


def _missing(subscription_id: str, queue: "Queue") -> str:
    return (f"subscription {subscription_id} not found in queue {queue.name} "
            f"(unknown or expired)")


def _v2(queue: "Queue") -> None:
    queue.client.require(versions.V2, "subscriptions")


@returns_deferred
async def subscribe(queue: "Queue", subscriber: str, ttl: int | None = None,
                    options: dict | None = None) -> Subscription:
    document: dict[str, Any] = {"subscriber": subscriber}
    if ttl is not None:
        document["ttl"] = ttl
    if options is not None:
        document["options"] = options
    await queue.client.api_version()
    _v2(queue)
    reply = await queue.client.request("POST", path(queue), body=batches.encode(document),
                                       expect=(201,))
    created = reply.json_of(dict, "a created subscription")
    if not isinstance(created.get("subscription_id"), str):
        raise UnexpectedResponse(f"POST {path(queue)} answered without a subscription_id",
                                 status=reply.status)
    return await get(queue, created["subscription_id"])


@returns_deferred
async def get(queue: "Queue", subscription_id: str) -> Subscription:
    await queue.client.api_version()
    _v2(queue)
    reply = await queue.client.request(
        "GET", path(queue, segment(subscription_id)), not_found=SubscriptionNotFound,
        missing=_missing(subscription_id, queue))
    return Subscription.parse(queue, reply.json_of(dict, "a subscription"))


def listing(queue: "Queue", limit: int | None = None) -> Listing[Subscription]:
    def first(api: str) -> str:
        _v2(queue)
        return with_query(path(queue), limit=queue.client.page_limit(limit))

    def items(page: Any) -> list[Subscription]:
        found = page.get(WHAT) if isinstance(page, dict) else None
        if not isinstance(found, list):
            raise UnexpectedResponse(f"a page without a {WHAT!r} list: {page!r:.200}")
        return [Subscription.parse(queue, item) for item in found]

    return Listing(queue.client, first, items, limit)
