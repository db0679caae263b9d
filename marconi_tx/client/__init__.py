"""An asynchronous client of the Marconi v1 API, on treq.

    from marconi_tx.client import Client

    async def main(reactor):
        client = Client("http://127.0.0.1:8888", project="p1")
        queue = await client.create_queue("jobs")
        await queue.post_messages([{"ttl": 300, "body": {"task": 1}}])
        claim = await queue.claim(limit=5, ttl=60, grace=60)
        for message in claim.messages:
            await message.delete()

Every call returns a Deferred; listings (``client.queues()``,
``queue.messages()``) are async iterators with a ``collect()`` Deferred.
The ``marconi-cli`` command is in L{marconi_tx.client.cli}.
"""

from marconi_tx.client.client import DEFAULT_URL, Client
from marconi_tx.client.errors import (
    BadRequest,
    ClaimConflict,
    ClaimNotFound,
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
)
from marconi_tx.client.listing import Listing
from marconi_tx.client.resources import Claim, Message, Queue

__all__ = [
    "DEFAULT_URL", "Client", "Queue", "Message", "Claim", "Listing",
    "MarconiClientError", "BadRequest", "Unauthorized", "Forbidden",
    "ClaimConflict", "NotFound", "QueueNotFound", "MessageNotFound",
    "ClaimNotFound", "ServiceUnavailable", "ConnectionFailed",
    "RequestTimeout", "MessageTooLarge", "UnexpectedResponse",
]
