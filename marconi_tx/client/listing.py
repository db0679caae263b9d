"""Paged listings: an async iterator that follows the API's ``next`` links.

Twisted code reads these in one of two ways::

    async for queue in client.queues():       # inside an async def
        ...
    d = client.queues().collect()              # a Deferred firing with a list
"""

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from marconi_tx.deferreds import returns_deferred

if TYPE_CHECKING:
    from marconi_tx.client.client import Client

#: The type of a listing's items.
Item = TypeVar("Item")


class Listing(Generic[Item]):
    """The items of a paged collection, fetched a page at a time.

    Each page is one GET; a 200 page's ``links`` entry with ``rel`` ``next``
    gives the following page; a 204, an empty page (v2's end) or a page
    without a ``next`` link ends the listing. A listing can be iterated more
    than once; every iteration starts again from the first page.

    @ivar limit: most items to yield in all (``None``: until the end).
    """

    def __init__(self, client: "Client", first: Callable[[str], str],
                 items: Callable[[Any], list[Item]], limit: int | None = None) -> None:
        """
        @param client: the L{Client} sending the requests.
        @param first: called with the client's API version, the path (and
            query) of the first page.
        @param items: callable turning a page's JSON document into a list
            of items.
        @param limit: most items to yield, or ``None``.
        """
        self._client = client
        self._first = first
        self._items = items
        self.limit = limit

    def __aiter__(self) -> AsyncIterator[Item]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Item]:
        path: str | None = self._first(await self._client.api_version())
        seen: set[str] = set()
        count = 0
        while path is not None and (self.limit is None or count < self.limit):
            reply = await self._client.request("GET", path, expect=(200, 204))
            if reply.status == 204:
                return
            document = reply.json()
            items = self._items(document)
            if not items:
                return
            for item in items:
                yield item
                count += 1
                if self.limit is not None and count >= self.limit:
                    return
            # A server repeating a page's own link would loop forever.
            seen.add(path)
            path = next_link(document)
            if path in seen:
                return

    @returns_deferred
    async def collect(self) -> list[Item]:
        """A Deferred firing with every item of the listing, as a list."""
        return [item async for item in self]


def next_link(document: Any) -> str | None:
    """The ``href`` of the ``next`` link of a page document, or ``None``."""
    links = document.get("links") if isinstance(document, dict) else None
    for link in links or ():
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
            if isinstance(href, str) and href:
                return href
    return None
