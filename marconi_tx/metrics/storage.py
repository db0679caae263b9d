"""Counting what storage calls did, for the transports' driver.

``CountedDriver`` stands in front of a driver: the transports (HTTP, line)
and the expiry job call it, and it counts messages posted, claimed, deleted
and expired, and the calls that failed with ``StorageUnavailable``. Counting
here, where the results are, serves both transports alike; the driver and
its storage code know nothing of metrics. The counts are plain integers
(everything runs on the reactor thread) exposed by ``StorageCollector``.
"""

from prometheus_client.core import CounterMetricFamily
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from marconi_tx import errors
from marconi_tx.storage.interfaces import (
    IClaimController,
    IJobController,
    IMessageController,
    IQueueController,
)


def _many(result):
    return len(result)


def _claimed(claim):
    return 0 if claim is None else len(claim.messages)


def _one_if(result):
    return 1 if result else 0


def _one(result):
    return 1


#: controller -> (interface, {method: (Counts attribute, amount of its result)}).
#: HTTP deletes succeed for messages that do not exist: they count what
#: they named (the storage does not say more). Line deletes say.
_COUNTED = {
    "queues": (IQueueController, {}),
    "messages": (IMessageController, {"post": ("posted", _many), "delete": ("deleted", _one),
                                      "pop": ("deleted", _many)}),
    "claims": (IClaimController, {"create": ("claimed", _claimed)}),
    "jobs": (IJobController, {"put": ("posted", _one), "reserve": ("claimed", _one_if),
                              "reserve_job": ("claimed", _one_if),
                              "delete": ("deleted", _one_if)}),
}


class Tally:
    """One count."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Counts:
    """What the storage calls did: a Tally each, and one per operation
    that failed (created on its first failure)."""

    def __init__(self):
        self.posted, self.claimed, self.deleted, self.expired = (Tally() for _ in range(4))
        self.storage_errors = {}  # operation -> Tally

    def failures(self, operation):
        tally = self.storage_errors.get(operation)
        if tally is None:
            tally = self.storage_errors[operation] = Tally()
        return tally


#: Counter name -> (Counts attribute, help).
_FAMILIES = (
    ("marconi_messages_posted", "posted", "Messages posted (HTTP) and jobs put (line)."),
    ("marconi_messages_claimed", "claimed", "Messages claimed (HTTP) and jobs reserved "
                                            "(line)."),
    ("marconi_messages_deleted", "deleted", "Messages named by successful HTTP deletes, "
                                            "and jobs deleted (line)."),
    ("marconi_expired_records", "expired", "Records the expiry job removed: expired "
                                           "messages and claims."),
)


class StorageCollector:
    def __init__(self, counts):
        self.counts = counts

    def collect(self):
        for name, attribute, help_text in _FAMILIES:
            yield CounterMetricFamily(name, help_text,
                                      value=getattr(self.counts, attribute).value)
        failures = CounterMetricFamily(
            "marconi_storage_errors", "Storage calls failed because the storage was "
            "unavailable (HTTP answers 503), by operation.", labels=("operation",))
        for operation, tally in sorted(self.counts.storage_errors.items()):
            failures.add_metric((operation,), tally.value)
        yield failures


def _counted(result, tally, amount):
    tally.value += amount(result)
    return result


def _failed(failure, counts, operation):
    if failure.check(errors.StorageUnavailable):
        counts.failures(operation).value += 1
    return failure


def watched(call, counts, operation, tally=None, amount=None):
    """``call``, whose Deferred result is counted: in ``tally``
    (``amount(result)``) when it succeeds, as a failure of ``operation`` when
    the storage was unavailable. Any other result is returned as it is."""

    # Plain Deferred callbacks on purpose, not a coroutine: this runs on
    # every storage call of both transports.
    def watching(*args, **kwargs):
        result = call(*args, **kwargs)
        if not isinstance(result, Deferred):
            return result
        if result.called and not isinstance(result.result, (Failure, Deferred)):
            # Answered already (sqlite's reads): counted now, sparing a
            # callback run per read.
            if tally is not None:
                tally.value += amount(result.result)
            return result
        if tally is None:
            result.addErrback(_failed, counts, operation)
        else:
            result.addCallbacks(_counted, _failed, (tally, amount), None,
                                (counts, operation))
        return result

    return watching


class _Controller:
    """A controller's interface methods, watched; anything else is the
    controller's own."""

    def __init__(self, inner, name, interface, counted, counts):
        self._inner = inner
        for method in interface.names():
            tally, amount = counted.get(method, (None, None))
            if tally is not None:
                tally = getattr(counts, tally)
            setattr(self, method, watched(getattr(inner, method), counts, f"{name}.{method}",
                                          tally, amount))

    def __getattr__(self, name):
        return getattr(self._inner, name)


class CountedDriver:
    """A driver whose controllers and ``gc`` are counted in ``counts`` (see
    the module)."""

    def __init__(self, driver, counts):
        self._driver = driver
        for name, (interface, counted) in _COUNTED.items():
            inner = getattr(driver, name, None)
            if inner is not None:
                setattr(self, name, _Controller(inner, name, interface, counted, counts))
        self.messages.bulk_delete = self._bulk_delete(driver.messages.bulk_delete, counts)
        self.gc = watched(driver.gc, counts, "gc", counts.expired, int)

    @staticmethod
    def _bulk_delete(call, counts):
        # The amount is the ids named, not in the result.
        watching = watched(call, counts, "messages.bulk_delete")

        def bulk_delete(project, queue, message_ids):
            d = watching(project, queue, message_ids)
            return d.addCallback(_counted, counts.deleted, lambda _: len(set(message_ids)))

        return bulk_delete

    def __getattr__(self, name):
        return getattr(self._driver, name)
