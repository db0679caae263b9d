"""The notification hub drivers fire after changes that may wake consumers.

Every driver owns one ``QueueEvents`` as ``driver.events``; the line protocol
subscribes while it has connections waiting in ``reserve``, so a post over
HTTP wakes a TCP consumer without any polling of the database.
"""

from twisted.logger import Logger
from zope.interface import implementer

from marconi_tx.storage.interfaces import IQueueEvents


@implementer(IQueueEvents)
class QueueEvents:
    log = Logger()

    def __init__(self):
        self._listeners = []

    def subscribe(self, listener):
        if listener not in self._listeners:
            self._listeners.append(listener)

    def unsubscribe(self, listener):
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self, project, queue):
        # Called after a commit, from inside a storage call: a listener's
        # failure must not turn a committed write into an error.
        for listener in tuple(self._listeners):
            try:
                listener(project, queue)
            except Exception:
                self.log.failure("Queue event listener failed")
