"""Where queues live, as far as this process has asked: a bounded cache of
the catalog.

Catalog entries never change while their pool exists (ICatalogController),
so a cached route is never stale: it is dropped only when the pool goes,
or when the cache is full and it is the least recently used.
"""

from collections import OrderedDict


class RouteCache:
    """(project, queue) -> pool name, at most ``size`` routes."""

    def __init__(self, size):
        self.size = size
        self._routes = OrderedDict()

    def get(self, project, queue):
        """The cached pool name of the queue, or None."""
        key = (project, queue)
        name = self._routes.get(key)
        if name is not None:
            self._routes.move_to_end(key)
        return name

    def put(self, project, queue, name):
        self._routes[(project, queue)] = name
        self._routes.move_to_end((project, queue))
        if len(self._routes) > self.size:
            self._routes.popitem(last=False)

    def forget_pool(self, name):
        """Drop every route to the pool ``name`` (it was removed)."""
        for key in [key for key, kept in self._routes.items() if kept == name]:
            del self._routes[key]

    def __len__(self):
        return len(self._routes)
