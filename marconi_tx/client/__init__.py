"""An asynchronous client of the Marconi API, v1 and v2, on treq.

    from marconi_tx.client import Client

    async def main(reactor):
        client = Client("http://127.0.0.1:8888", project="p1")
        queue = await client.create_queue("jobs")
        await queue.post_messages([{"ttl": 300, "body": {"task": 1}}])
        claim = await queue.claim(limit=5, ttl=60, grace=60)
        for message in claim.messages:
            await message.delete()

The client speaks v2 when the server offers it (``api="v1"`` keeps v1);
v2 adds ``queue.pop(n)``, ``queue.purge()``, delayed posts (``"delay"`` in
a message), ``queue.patch_metadata(ops)``, and ``queue.share(...)`` whose
document ``Client.signed(url, document)`` uses, and subscriptions
(``queue.subscribe(url)``, ``queue.subscriptions()``,
``queue.get_subscription(id)``), and for an admin of a pooled server
pools and flavors (``client.create_pool(...)``, ``client.pools()``,
``client.create_flavor(...)``, ...).

Every call returns a Deferred; listings (``client.queues()``,
``queue.messages()``) are async iterators with a ``collect()`` Deferred.
The ``marconi-cli`` command is in L{marconi_tx.client.cli}.
"""

from marconi_tx.client.client import DEFAULT_URL, Client
from marconi_tx.client.errors import (
    BadRequest,
    ClaimConflict,
    ClaimNotFound,
    Conflict,
    ConnectionFailed,
    FlavorNotFound,
    Forbidden,
    MarconiClientError,
    MessageNotFound,
    MessageTooLarge,
    NotFound,
    PoolInUse,
    PoolNotFound,
    QueueNotFound,
    RequestTimeout,
    ServiceUnavailable,
    SubscriptionNotFound,
    Unauthorized,
    UnexpectedResponse,
    UnsupportedByAPI,
)
from marconi_tx.client.listing import Listing
from marconi_tx.client.pools import Flavor, Pool
from marconi_tx.client.resources import Claim, Message, Queue
from marconi_tx.client.subscriptions import Subscription

__all__ = [
    "DEFAULT_URL", "Client", "Queue", "Message", "Claim", "Subscription", "Pool", "Flavor",
    "Listing",
    "MarconiClientError", "BadRequest", "Unauthorized", "Forbidden",
    "ClaimConflict", "Conflict", "NotFound", "QueueNotFound", "MessageNotFound",
    "ClaimNotFound", "SubscriptionNotFound", "PoolNotFound", "FlavorNotFound", "PoolInUse",
    "ServiceUnavailable", "ConnectionFailed",
    "RequestTimeout", "MessageTooLarge", "UnexpectedResponse", "UnsupportedByAPI",
]
