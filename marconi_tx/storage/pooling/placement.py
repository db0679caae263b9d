"""Choosing the pool of a new queue: by weight, among its flavor's pools."""

import bisect
import itertools

from marconi_tx import errors

#: The metadata key naming the flavor of a new queue (api-v2.md §8).
FLAVOR = "_flavor"


def candidates(pools, flavor):
    """
    The pools that may take a new queue of ``flavor``: those of that flavor
    (for None: those without one) whose weight is above 0, by name.

    A queue without a flavor never goes to a flavored pool: a flavor's pools
    are kept for the queues that ask for it.
    """
    return sorted((pool for pool in pools if pool.flavor == flavor and pool.weight > 0),
                  key=lambda pool: pool.name)


def choose(pools, flavor, random):
    """
    A pool for a new queue of ``flavor``: each candidate with a chance of its
    weight over the candidates' total. ``random`` is a ``random.Random``
    (tests give one a seed).

    @raise errors.NoPoolAvailable: no candidate.
    """
    found = candidates(pools, flavor)
    if not found:
        raise errors.NoPoolAvailable(
            f"no pool {'of flavor ' + repr(flavor) if flavor is not None else 'without a flavor'}"
            " has a weight above 0")
    bounds = list(itertools.accumulate(pool.weight for pool in found))
    return found[bisect.bisect_right(bounds, random.randrange(bounds[-1]))]
