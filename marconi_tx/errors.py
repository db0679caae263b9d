"""Domain errors raised by storage drivers and validation.

Transports map them to answers in one place each (for HTTP: the table in
``marconi_tx.transport.http.responses.ERROR_ANSWERS``); storage never
knows about status codes.
"""


class MarconiError(Exception):
    """Base of every error a client's request can cause."""


class StorageUnavailable(MarconiError):
    """The storage engine could not be reached or failed; retry later."""


class ServiceUnavailable(StorageUnavailable):
    """A service other than storage that a request needs (the identity
    service) could not answer; retry later. A kind of StorageUnavailable so
    that every transport already answers it as an outage (HTTP 503)."""


class DoesNotExist(MarconiError):
    """A looked-up resource does not exist (or is expired, or foreign)."""


class QueueDoesNotExist(DoesNotExist):
    def __init__(self, name, project=None):
        super().__init__(f"queue {name!r} does not exist")
        self.name, self.project = name, project


class MessageDoesNotExist(DoesNotExist):
    def __init__(self, message_id, queue=None):
        super().__init__(f"message {message_id!r} does not exist")
        self.message_id, self.queue = message_id, queue


class ClaimDoesNotExist(DoesNotExist):
    """The claim id is unknown, malformed, expired or of another queue."""

    def __init__(self, claim_id, queue=None):
        super().__init__(f"claim {claim_id!r} does not exist or has expired")
        self.claim_id, self.queue = claim_id, queue


class MessageIsClaimed(MarconiError):
    """Delete without a claim id of a message under a live claim."""

    def __init__(self, message_id):
        super().__init__(f"message {message_id!r} is claimed; a valid claim_id is needed")
        self.message_id = message_id


class MessageNotClaimed(MarconiError):
    """Delete with a claim id of a message that has no recorded claim."""

    def __init__(self, message_id):
        super().__init__(f"message {message_id!r} is not claimed")
        self.message_id = message_id


class ClaimMismatch(MarconiError):
    """Delete with a claim id that is not the one recorded on the message."""

    def __init__(self, message_id):
        super().__init__(f"message {message_id!r} is held by another claim")
        self.message_id = message_id


class ValidationError(MarconiError):
    """Client input breaks a rule of ``marconi_tx.validation``.

    ``title`` is a short fixed label, ``description`` free text.
    """

    def __init__(self, description, title="Invalid API call"):
        super().__init__(description)
        self.title, self.description = title, description


class Conflict(MarconiError):
    """The request contradicts the resource's current state (a JSON-patch
    replacing or removing a queue metadata key that is not there)."""


class UnsupportedMediaType(MarconiError):
    """The request body's Content-Type is not one the resource accepts; the
    message names the accepted type."""


class SubscriptionDoesNotExist(DoesNotExist):
    """The subscription id is unknown, expired or of another queue."""

    def __init__(self, subscription_id):
        super().__init__(f"subscription {subscription_id!r} does not exist")
        self.subscription_id = subscription_id


class SubscriptionExists(Conflict):
    """A subscriber already subscribed to the queue (confirmed, for a
    create; any, for an update)."""

    def __init__(self, subscriber):
        super().__init__(f"{subscriber!r} is already subscribed to this queue")
        self.subscriber = subscriber


class PoolDoesNotExist(DoesNotExist):
    def __init__(self, name):
        super().__init__(f"pool {name!r} does not exist")
        self.name = name


class PoolExists(Conflict):
    def __init__(self, name):
        super().__init__(f"pool {name!r} already exists")
        self.name = name


class PoolInUse(MarconiError):
    """Deleting a pool that still holds queues or serves a flavor (HTTP 403)."""


class FlavorDoesNotExist(DoesNotExist):
    def __init__(self, name):
        super().__init__(f"flavor {name!r} does not exist")
        self.name = name


class FlavorExists(Conflict):
    def __init__(self, name):
        super().__init__(f"flavor {name!r} already exists")
        self.name = name


class NoPoolAvailable(StorageUnavailable):
    """Pooling is on and no pool (of the queue's flavor) has a weight above
    0: a new queue has nowhere to go (HTTP 503)."""
