"""Answers of every pool made one: calls run at once, sorted pages merged."""

import heapq
import itertools

from twisted.internet import defer


async def gathered(calls):
    """Run the coroutines ``calls`` at once; their results in order (or the
    first error, as it was raised)."""
    try:
        return await defer.gatherResults([defer.ensureDeferred(call) for call in calls],
                                         consumeErrors=True)
    except defer.FirstError as e:
        e.subFailure.raiseException()


def first(pages, key, limit):
    """The ``limit`` first items of ``pages`` (lists each sorted by ``key``)
    in ``key`` order."""
    return list(itertools.islice(heapq.merge(*pages, key=key), limit))
