"""The flavor routes of API v2 (api-v2.md §8), mixed into ``V2API`` after
``PoolRoutes`` (whose helpers they use), and served as the pool routes are.

What the spec leaves open, and the choices made here:

* A flavor's pools are the pools whose ``flavor`` is its name: a PUT sets
  it on each pool of ``pool_list`` (taking a pool from another flavor it
  served), a PATCH sets it on the new list and clears it on the pools
  dropped, a DELETE clears it on all. A pool listed twice counts once.
* Every pool of ``pool_list`` must exist (400) and the pools must have the
  same capabilities (400, see ``pool_input``). A PUT of an existing flavor
  is 409 and changes nothing; a PATCH of a missing one is 404. A PATCH may
  also carry ``capabilities`` (replacing the object given at creation).
* ``capabilities`` is shown (GET, and ``detailed`` listings) as a list: the
  capabilities of its pools' engine, then the keys of its ``capabilities``
  object whose value is true (empty without pools and declarations).
  DELETE of a missing flavor is 204. Queues placed by a flavor stay in
  their pools when it changes or goes.
"""

from marconi_tx import errors
from marconi_tx.transport.http import pool_input
from marconi_tx.transport.http.documents import next_link
from marconi_tx.transport.http.inputs import request_uri
from marconi_tx.transport.http.responses import empty, json_body


class FlavorRoutes:
    """Needs ``PoolRoutes`` and what it needs on the API object."""

    def flavor_routes(self, table):
        flavors = f"{self.prefix}/flavors"
        table[flavors] = {"GET": self.list_flavors}
        table[f"{flavors}/<flavor_name>"] = {
            "PUT": self.create_flavor, "GET": self.get_flavor, "PATCH": self.patch_flavor,
            "DELETE": self.delete_flavor}

    def flavor_href(self, name):
        return f"{self.prefix}/flavors/{name}"

    async def flavor_doc(self, flavor, detailed=True):
        pools = await self.all_pools(flavor.name)
        doc = {"name": flavor.name, "href": self.flavor_href(flavor.name),
               "pool_list": [pool.name for pool in pools]}
        if detailed:
            engines = pool_input.capabilities(pools[0].uri) if pools else ()
            declared = sorted(key for key, value in flavor.capabilities.items()
                              if value is True and key not in engines)
            doc["capabilities"] = [*engines, *declared]
        return doc

    async def listed_pools(self, flavor_name, names):
        """The pools ``names`` of a flavor body: 400 if one is missing or
        their capabilities differ."""
        pools = []
        for name in names:
            try:
                pools.append(await self.driver.pools.get(name))
            except errors.PoolDoesNotExist:
                raise errors.ValidationError(f"Pool {name!r} of 'pool_list' does not exist.",
                                             title="Invalid flavor")
        pool_input.check_same_capabilities({pool.name: pool.uri for pool in pools},
                                           flavor_name)
        return pools

    async def assign(self, flavor_name, pools):
        """Make ``pools`` (records) the pools of the flavor."""
        keep = {pool.name for pool in pools}
        for pool in await self.all_pools(flavor_name):
            if pool.name not in keep:
                await self.driver.pools.update(pool.name, {"flavor": None})
        for pool in pools:
            if pool.flavor != flavor_name:
                await self.driver.pools.update(pool.name, {"flavor": flavor_name})

    # -- the routes -------------------------------------------------------------

    async def list_flavors(self, request, project):
        marker, limit, detailed = self.page(request, self.limits.max_flavors_per_page)
        found = await self.driver.flavors.list(marker, limit)
        links = (next_link(f"{self.prefix}/flavors", found[-1].name, request,
                           ("limit", "detailed")) if found else [])
        return json_body(request, 200, {
            "flavors": [await self.flavor_doc(flavor, detailed) for flavor in found],
            "links": links}, Content_Location=request_uri(request))

    async def create_flavor(self, request, project, flavor_name):
        pool_input.name(flavor_name, "flavor")
        names, capabilities = pool_input.flavor_body(self.admin_body(request))
        pools = await self.listed_pools(flavor_name, names)
        await self.driver.flavors.create(flavor_name, capabilities)
        await self.assign(flavor_name, pools)
        return empty(request, 201, Location=self.flavor_href(flavor_name))

    async def get_flavor(self, request, project, flavor_name):
        pool_input.name(flavor_name, "flavor")
        flavor = await self.driver.flavors.get(flavor_name)
        return json_body(request, 200, await self.flavor_doc(flavor))

    async def patch_flavor(self, request, project, flavor_name):
        pool_input.name(flavor_name, "flavor")
        names, capabilities = pool_input.flavor_body(self.admin_body(request))
        flavor = await self.driver.flavors.get(flavor_name)
        pools = await self.listed_pools(flavor_name, names)
        if capabilities is not None:
            flavor = await self.driver.flavors.update(flavor_name, capabilities)
        await self.assign(flavor_name, pools)
        return json_body(request, 200, await self.flavor_doc(flavor))

    async def delete_flavor(self, request, project, flavor_name):
        pool_input.name(flavor_name, "flavor")
        await self.driver.flavors.delete(flavor_name)
        return empty(request, 204)
