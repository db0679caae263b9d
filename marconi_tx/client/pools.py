"""v2 pools and flavors as client objects: the storage backends of a pooled
deployment (an admin's business: the server serves them with ``[drivers]
admin_mode`` and ``pooling`` on, to the admin role).

``Client.create_pool``, ``Client.pools``, ``Client.get_pool`` and their
flavor counterparts make them; over v1 every call raises
L{UnsupportedByAPI} before anything is sent.
"""

from typing import TYPE_CHECKING, Any

from marconi_tx.client import batches, versions
from marconi_tx.client.errors import FlavorNotFound, PoolInUse, PoolNotFound, UnexpectedResponse
from marconi_tx.client.http import boolean, segment, with_query
from marconi_tx.client.listing import Listing
from marconi_tx.deferreds import returns_deferred

if TYPE_CHECKING:
    from marconi_tx.client.client import Client


class Pool:
    """A pool, as the server returned it.

    @ivar name: its name.
    @ivar uri: its storage URI (``sqlite:PATH``, ``mongodb://...``).
    @ivar weight: its share of new queues (0: it takes none).
    @ivar flavor: the flavor it serves, or ``None``.
    @ivar options: its options (``None`` when it was listed without them).
    """

    def __init__(self, client: "Client", name: str, uri: str | None = None,
                 weight: int | None = None, flavor: str | None = None,
                 options: dict | None = None) -> None:
        self.client = client
        self.name = name
        self.uri, self.weight, self.flavor, self.options = uri, weight, flavor, options

    @classmethod
    def parse(cls, client: "Client", document: Any) -> "Pool":
        """A Pool from a pool object of the API."""
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise UnexpectedResponse(f"not a pool object: {document!r:.200}")
        return cls(client, document["name"], document.get("uri"), document.get("weight"),
                   document.get("flavor"), document.get("options"))

    def __repr__(self) -> str:
        return f"<Pool {self.name!r} {self.uri!r}>"

    def as_dict(self) -> dict:
        """The pool as a plain dict (what ``marconi-cli --json`` prints)."""
        return {"name": self.name, "uri": self.uri, "weight": self.weight,
                "flavor": self.flavor, "options": self.options}

    @returns_deferred
    async def update(self, uri: str | None = None, weight: int | None = None,
                     flavor: str | None = None, options: dict | None = None,
                     no_flavor: bool = False) -> None:
        """Change what is given (``options`` replaces them all;
        ``no_flavor``: take the pool out of its flavor) and read the pool
        back. L{PoolNotFound}; L{BadRequest} when nothing is given, the URI's
        storage does not answer or the flavor's other pools differ."""
        changes: dict[str, Any] = {}
        for name, value in (("uri", uri), ("weight", weight), ("flavor", flavor),
                            ("options", options)):
            if value is not None:
                changes[name] = value
        if no_flavor:
            changes["flavor"] = None
        reply = await self.client.request(
            "PATCH", pool_path(self.name), body=batches.encode(changes),
            not_found=PoolNotFound, missing=_no_pool(self.name))
        changed = Pool.parse(self.client, reply.json_of(dict, "a pool"))
        self.uri, self.weight, self.flavor, self.options = (
            changed.uri, changed.weight, changed.flavor, changed.options)

    @returns_deferred
    async def delete(self) -> None:
        """Delete the pool (a missing one too). L{PoolInUse} while a flavor
        uses it or a queue lives in it."""
        await self.client.request("DELETE", pool_path(self.name), expect=(204,),
                                  forbidden=PoolInUse)


class Flavor:
    """A flavor, as the server returned it.

    @ivar name: its name.
    @ivar pool_list: the names of its pools.
    @ivar capabilities: what its pools can do (``FIFO``, ``CLAIMS``, ...),
        ``None`` when it was listed without them.
    """

    def __init__(self, client: "Client", name: str, pool_list: list | None = None,
                 capabilities: list | None = None) -> None:
        self.client = client
        self.name = name
        self.pool_list, self.capabilities = pool_list, capabilities

    @classmethod
    def parse(cls, client: "Client", document: Any) -> "Flavor":
        """A Flavor from a flavor object of the API."""
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise UnexpectedResponse(f"not a flavor object: {document!r:.200}")
        return cls(client, document["name"], document.get("pool_list"),
                   document.get("capabilities"))

    def __repr__(self) -> str:
        return f"<Flavor {self.name!r} {self.pool_list!r}>"

    def as_dict(self) -> dict:
        """The flavor as a plain dict (what ``marconi-cli --json`` prints)."""
        return {"name": self.name, "pool_list": self.pool_list,
                "capabilities": self.capabilities}

    @returns_deferred
    async def update(self, pool_list: list[str], capabilities: dict | None = None) -> None:
        """Make ``pool_list`` its pools (pools left out leave the flavor)
        and, if given, replace its ``capabilities`` object; read it back.
        L{FlavorNotFound}; L{BadRequest} for an unknown pool."""
        document: dict[str, Any] = {"pool_list": pool_list}
        if capabilities is not None:
            document["capabilities"] = capabilities
        reply = await self.client.request(
            "PATCH", flavor_path(self.name), body=batches.encode(document),
            not_found=FlavorNotFound, missing=_no_flavor(self.name))
        changed = Flavor.parse(self.client, reply.json_of(dict, "a flavor"))
        self.pool_list, self.capabilities = changed.pool_list, changed.capabilities

    @returns_deferred
    async def delete(self) -> None:
        """Delete the flavor (a missing one too); its pools serve none."""
        await self.client.request("DELETE", flavor_path(self.name), expect=(204,))


def pool_path(name: str) -> str:
    return f"pools/{segment(name)}"


def flavor_path(name: str) -> str:
    return f"flavors/{segment(name)}"


def _no_pool(name: str) -> str:
    return f"pool {name} not found"


def _no_flavor(name: str) -> str:
    return f"flavor {name} not found"


async def _v2(client: "Client", what: str) -> None:
    await client.api_version()
    client.require(versions.V2, what)


@returns_deferred
async def create_pool(client: "Client", name: str, uri: str, weight: int,
                      flavor: str | None = None, options: dict | None = None) -> Pool:
    await _v2(client, "pools")
    document: dict[str, Any] = {"uri": uri, "weight": weight}
    if flavor is not None:
        document["flavor"] = flavor
    if options is not None:
        document["options"] = options
    await client.request("PUT", pool_path(name), body=batches.encode(document),
                         expect=(201,))
    return await get_pool(client, name)


@returns_deferred
async def get_pool(client: "Client", name: str) -> Pool:
    await _v2(client, "pools")
    reply = await client.request("GET", with_query(pool_path(name), detailed=boolean(True)),
                                 not_found=PoolNotFound, missing=_no_pool(name))
    return Pool.parse(client, reply.json_of(dict, "a pool"))


@returns_deferred
async def create_flavor(client: "Client", name: str, pool_list: list[str],
                        capabilities: dict | None = None) -> Flavor:
    await _v2(client, "flavors")
    document: dict[str, Any] = {"pool_list": pool_list}
    if capabilities is not None:
        document["capabilities"] = capabilities
    await client.request("PUT", flavor_path(name), body=batches.encode(document),
                         expect=(201,))
    return await get_flavor(client, name)


@returns_deferred
async def get_flavor(client: "Client", name: str) -> Flavor:
    await _v2(client, "flavors")
    reply = await client.request("GET", flavor_path(name), not_found=FlavorNotFound,
                                 missing=_no_flavor(name))
    return Flavor.parse(client, reply.json_of(dict, "a flavor"))


def _listing(client: "Client", what: str, parse: Any, limit: int | None,
             detailed: bool) -> Listing:
    def first(api: str) -> str:
        client.require(versions.V2, what)
        return with_query(what, limit=client.page_limit(limit),
                          detailed=boolean(True) if detailed else None)

    def items(page: Any) -> list:
        found = page.get(what) if isinstance(page, dict) else None
        if not isinstance(found, list):
            raise UnexpectedResponse(f"a page without a {what!r} list: {page!r:.200}")
        return [parse(client, item) for item in found]

    return Listing(client, first, items, limit)


def pool_listing(client: "Client", limit: int | None = None,
                 detailed: bool = False) -> Listing[Pool]:
    return _listing(client, "pools", Pool.parse, limit, detailed)


def flavor_listing(client: "Client", limit: int | None = None,
                   detailed: bool = False) -> Listing[Flavor]:
    return _listing(client, "flavors", Flavor.parse, limit, detailed)
