"""The pool routes of API v2 (api-v2.md §8) and the pooled health report
(§7), mixed into ``V2API``: served only with ``[drivers] admin_mode`` and
``[drivers] pooling`` on (404 otherwise, as unknown paths), and with an
auth strategy only to the admin role (``auth.route_kind``).

What the spec leaves open, and the choices made here (the bodies: see
``pool_input``):

* A PUT checks the body, the flavor's capabilities (the pools of a flavor
  share their engine's), that no other pool has the URI (the same text:
  two pools on one storage would list its queues twice), then that the
  storage answers (``IPooledDriver.check_uri``), each a 400, and creates
  the pool (409 if it exists). A PATCH checks the same of what it changes and answers the
  pool as a detailed GET does.
* DELETE of a missing pool is 204 (as every DELETE of the API). It is 403
  while the pool's flavor exists, and while a queue lives in the pool: the
  catalog's entries of the pool are sticky (they outlive their queues), so
  each is asked whether its queue still exists. When none does, the
  entries go, then the pool. A queue created in the pool between that
  check and the delete, or before each process's driver has read the
  pools again (``[drivers:storage:pooling] refresh_interval``), is lost
  to the API: set the pool's weight to 0 and let the clients of its
  queues finish before deleting it.
* ``GET /v2/health`` with pooling reports whether the catalog answers
  (``catalog_reachable``: the pools could be read within ``[drivers]
  health_timeout``) and each pool's storage; it is 200 whatever they say
  (it is a report). Pool names may not be ``catalog_reachable``.
"""

from marconi_tx import errors, validation
from marconi_tx.transport.http import pool_input
from marconi_tx.transport.http.documents import next_link
from marconi_tx.transport.http.inputs import query, read_json, request_uri
from marconi_tx.transport.http.responses import empty, json_body

#: Catalog entries read at a time when a pool's queues are looked for.
ENTRIES_PAGE = 100


class PoolRoutes:
    """Needs ``driver`` (an IPooledDriver), ``limits``, ``paging``,
    ``prefix``, ``metadata_nesting`` and ``health_timeout`` on the API
    object."""

    def pool_routes(self, table):
        pools = f"{self.prefix}/pools"
        table[pools] = {"GET": self.list_pools}
        table[f"{pools}/<pool_name>"] = {"PUT": self.create_pool, "GET": self.get_pool,
                                         "PATCH": self.patch_pool,
                                         "DELETE": self.delete_pool}
        table[f"{self.prefix}/health"] = {"GET": self.pooled_health}

    def pool_home(self):
        """The JSON-home resources of the pool and flavor routes."""
        return {
            "rel/pools": (f"{self.prefix}/pools{{?detailed,limit,marker}}", ["GET"],
                          {"detailed": "param/detailed", "limit": "param/pool_limit",
                           "marker": "param/marker"}),
            "rel/pool": (f"{self.prefix}/pools/{{pool_name}}",
                         ["GET", "PUT", "PATCH", "DELETE"], {"pool_name": "param/pool_name"}),
            "rel/flavors": (f"{self.prefix}/flavors{{?detailed,limit,marker}}", ["GET"],
                            {"detailed": "param/detailed", "limit": "param/flavor_limit",
                             "marker": "param/marker"}),
            "rel/flavor": (f"{self.prefix}/flavors/{{flavor_name}}",
                           ["GET", "PUT", "PATCH", "DELETE"],
                           {"flavor_name": "param/flavor_name"}),
        }

    def pool_href(self, name):
        return f"{self.prefix}/pools/{name}"

    def admin_body(self, request):
        """The JSON body of a pool or flavor PUT/PATCH."""
        return read_json(request, self.limits.max_queue_metadata, self.metadata_nesting)

    def page(self, request, maximum):
        """The ``(marker, limit, detailed)`` of a pool or flavor listing."""
        limit = validation.query_int("limit", query(request, "limit"),
                                     self.paging.default_pool_paging)
        validation.page_limit("limit", limit, maximum)
        return (query(request, "marker"), limit,
                validation.query_bool("detailed", query(request, "detailed")))

    def pool_doc(self, pool, detailed):
        doc = {"name": pool.name, "uri": pool.uri, "weight": pool.weight,
               "flavor": pool.flavor, "href": self.pool_href(pool.name)}
        if detailed:
            doc["options"] = pool.options
        return doc

    async def all_pools(self, flavor=None):
        """Every pool (of ``flavor`` if given), by name."""
        found, marker = [], None
        while True:
            page = await self.driver.pools.list(marker, self.limits.max_pools_per_page,
                                                flavor=flavor)
            found += page
            if len(page) < self.limits.max_pools_per_page:
                return found
            marker = page[-1].name

    async def check_uri(self, pool_name, uri):
        """400 unless ``uri`` is usable and no other pool has it (its
        queues would be listed twice)."""
        for pool in await self.all_pools():
            if pool.uri == uri and pool.name != pool_name:
                raise errors.ValidationError(f"Pool {pool.name!r} has that URI already.",
                                             title="Invalid pool URI")
        await self.driver.check_uri(uri)

    async def check_capabilities(self, flavor, pool_name, uri):
        """400 unless a pool at ``uri`` has the capabilities of the other
        pools of ``flavor``."""
        uris = {pool.name: pool.uri for pool in await self.all_pools(flavor)}
        uris[pool_name] = uri
        pool_input.check_same_capabilities(uris, flavor)

    # -- the routes -------------------------------------------------------------

    async def list_pools(self, request, project):
        marker, limit, detailed = self.page(request, self.limits.max_pools_per_page)
        found = await self.driver.pools.list(marker, limit)
        links = (next_link(f"{self.prefix}/pools", found[-1].name, request,
                           ("limit", "detailed")) if found else [])
        return json_body(request, 200, {"pools": [self.pool_doc(p, detailed) for p in found],
                                        "links": links},
                         Content_Location=request_uri(request))

    async def create_pool(self, request, project, pool_name):
        pool_input.pool_name(pool_name)
        fields = pool_input.pool_create(self.admin_body(request), self.limits)
        if fields.get("flavor") is not None:
            await self.check_capabilities(fields["flavor"], pool_name, fields["uri"])
        await self.check_uri(pool_name, fields["uri"])
        await self.driver.pools.create(pool_name, **fields)
        return empty(request, 201, Location=self.pool_href(pool_name))

    async def get_pool(self, request, project, pool_name):
        pool_input.pool_name(pool_name)
        detailed = validation.query_bool("detailed", query(request, "detailed"))
        pool = await self.driver.pools.get(pool_name)
        return json_body(request, 200, self.pool_doc(pool, detailed))

    async def patch_pool(self, request, project, pool_name):
        pool_input.pool_name(pool_name)
        changes = pool_input.pool_patch(self.admin_body(request), self.limits)
        pool = await self.driver.pools.get(pool_name)
        uri = changes.get("uri", pool.uri)
        flavor = changes.get("flavor", pool.flavor)
        if flavor is not None and (uri != pool.uri or flavor != pool.flavor):
            await self.check_capabilities(flavor, pool_name, uri)
        if uri != pool.uri:
            await self.check_uri(pool_name, uri)
        pool = await self.driver.pools.update(pool_name, changes)
        return json_body(request, 200, self.pool_doc(pool, detailed=True))

    async def delete_pool(self, request, project, pool_name):
        pool_input.pool_name(pool_name)
        try:
            pool = await self.driver.pools.get(pool_name)
        except errors.PoolDoesNotExist:
            return empty(request, 204)
        if pool.flavor is not None and await self.flavor_exists(pool.flavor):
            raise errors.PoolInUse(f"pool {pool_name!r} serves flavor {pool.flavor!r}: take "
                                   "it out of the flavor (PATCH its pool_list, or delete "
                                   "the flavor) first")
        queue = await self.a_queue_of(pool_name)
        if queue is not None:
            raise errors.PoolInUse(f"pool {pool_name!r} still holds queues (queue "
                                   f"{queue[1]!r} of project {queue[0]!r}): delete them first")
        await self.driver.catalog.remove_pool(pool_name)
        try:
            await self.driver.pools.delete(pool_name)
        except errors.PoolDoesNotExist:
            pass  # deleted meanwhile
        return empty(request, 204)

    async def flavor_exists(self, name):
        try:
            await self.driver.flavors.get(name)
        except errors.FlavorDoesNotExist:
            return False
        return True

    async def a_queue_of(self, pool_name):
        """A ``(project, queue)`` living in the pool, or None."""
        marker = None
        while True:
            entries = await self.driver.catalog.entries(pool_name, marker, ENTRIES_PAGE)
            for project, queue in entries:
                if await self.driver.queues.exists(project, queue):
                    return project, queue
            if len(entries) < ENTRIES_PAGE:
                return None
            marker = entries[-1]

    async def pooled_health(self, request, project):
        probe = self.driver.pool_health()
        probe.addTimeout(self.health_timeout, request.site.reactor,
                         onTimeoutCancel=lambda result, timeout: None)
        try:
            health = await probe
        except errors.StorageUnavailable:
            health = None
        doc = {pool_input.CATALOG_REACHABLE: health is not None}
        for name, reachable in sorted((health or {}).items()):
            doc[name] = {"storage_reachable": reachable, "operation_status": {}}
        return json_body(request, 200, doc)
