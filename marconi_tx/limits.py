"""Descriptors: the process's open-file limit and each endpoint's share of it.

Every connection costs a descriptor. With the soft ``RLIMIT_NOFILE`` left at
its usual 1024, about a thousand idle clients on one port made every port
(and storage) fail to accept or open anything. So the soft limit is raised
to the hard one at start, and each endpoint accepts at most its
``max_connections``; beyond it a new connection is accepted and closed at
once (the client sees the close at once, rather than waiting in the listen
backlog), which keeps descriptors for the other endpoint and for storage.
"""

import resource

from twisted.internet import defer
from twisted.logger import Logger

log = Logger()

#: Descriptors kept back from the endpoints' automatic shares: storage,
#: logs, the listening sockets, worker pipes.
RESERVED_MINIMUM = 32


def raise_open_files():
    """Raise the soft RLIMIT_NOFILE to the hard limit; (before, after, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else soft
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # e.g. a hard limit above the kernel's nr_open
            wanted = soft
    after = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    log.info("Open files: soft limit {before} -> {after} (hard limit {hard})",
             before=soft, after=after, hard=_show(hard))
    return soft, after, hard


def _show(limit):
    return "unlimited" if limit == resource.RLIM_INFINITY else limit


def automatic_share(open_files, endpoints):
    """
    The connections one of ``endpoints`` endpoints may hold when its
    ``max_connections`` is 0 (automatic): an equal part of the descriptors
    left once a sixteenth of ``open_files`` (at least ``RESERVED_MINIMUM``)
    is kept back, so a full endpoint leaves the others their part.
    """
    reserved = RESERVED_MINIMUM + open_files // 16
    return max(1, (open_files - reserved) // max(1, endpoints))


class ConnectionSet:
    """
    The open connections of one endpoint, at most ``maximum`` of them.

    ``full`` is asked before a connection is built; a refusal is logged once
    each time the endpoint fills up, not once per refused client.
    """

    def __init__(self, name, maximum):
        self.name = name
        self.maximum = maximum
        self._open = set()
        self._refusing = False
        self._emptied = []

    def __len__(self):
        return len(self._open)

    def __iter__(self):
        return iter(list(self._open))

    def __contains__(self, connection):
        return connection in self._open

    def full(self):
        if len(self._open) < self.maximum:
            if self._refusing:
                self._refusing = False
                log.info("{name} endpoint accepts connections again", name=self.name)
            return False
        if not self._refusing:
            self._refusing = True
            log.warn("{name} endpoint is full ({maximum} connections): closing new "
                     "connections until one ends", name=self.name, maximum=self.maximum)
        return True

    def add(self, connection):
        self._open.add(connection)

    def discard(self, connection):
        self._open.discard(connection)
        if not self._open:
            emptied, self._emptied = self._emptied, []
            for d in emptied:
                d.callback(None)

    def emptied(self):
        """A Deferred that fires once no connection is open."""
        if not self._open:
            return defer.succeed(None)
        d = defer.Deferred()
        self._emptied.append(d)
        return d
