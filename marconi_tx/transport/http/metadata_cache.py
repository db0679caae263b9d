"""Queue metadata kept for a moment, for the reads on v2's busiest paths.

Every v2 post reads its queue's metadata (the post policy: default ttl, size
cap and delay) and every v2 claim reads it too (the dead-letter policy). A
``MetadataCache`` answers those two reads from memory for
``[drivers] queue_metadata_cache_seconds`` after a storage read.

What a kept value can miss: this process forgets a queue's entry when it
writes that queue's metadata, creates or deletes it (``forget``), so its own
changes apply to the next request; a change made by another process
(``--workers``) applies within the configured seconds. Reads that must be
current (GET of a queue or its metadata, a PATCH) go to storage.
"""

from marconi_tx import errors

#: Most queues kept at once; past it the cache starts again empty.
MAX_KEPT = 4096


def _missing_is_empty(failure):
    failure.trap(errors.QueueDoesNotExist)
    return {}


class MetadataCache:
    def __init__(self, driver, seconds, max_kept=MAX_KEPT):
        #: The storage driver (``queues.get_metadata``).
        self.driver = driver
        self.seconds = seconds
        self.max_kept = max_kept
        self._kept = {}
        # Counts forgets, so a read answered after one is not kept.
        self._generation = 0

    def get(self, project, queue, now):
        """The queue's metadata ({} when it does not exist) at ``now``
        (seconds): a dict when kept, else a Deferred of it. Callers must
        not change the dict."""
        kept = self._kept.get((project, queue))
        if kept is not None and kept[0] > now:
            return kept[1]
        read = self.driver.queues.get_metadata(project, queue)
        read.addErrback(_missing_is_empty)
        if self.seconds > 0:
            read.addCallback(self._keep, (project, queue), now + self.seconds,
                             self._generation)
        return read

    def _keep(self, metadata, key, until, generation):
        if generation == self._generation:
            if len(self._kept) >= self.max_kept:
                self._kept.clear()
            self._kept[key] = (until, metadata)
        return metadata

    def forget(self, project, queue):
        """Drop the kept metadata of a queue this process has changed."""
        self._generation += 1
        self._kept.pop((project, queue), None)
