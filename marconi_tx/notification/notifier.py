"""Delivery of posted messages to v2 subscribers (api-v2.md §6.2-6.4).

Each subscription has a persisted cursor: the id (marker) of the last
message delivered or given up on. A ``Courier`` per subscription reads the
queue's messages after its cursor, oldest first, POSTs each as JSON to the
subscriber (``Webhook``) and advances the cursor after a 2xx answer (or
once the retry policy is spent). Hence:

* **At least once, in order.** A message is delivered before the cursor
  moves past it; a daemon killed between the subscriber's 2xx and the
  cursor's write delivers it again after its restart. One message at a
  time per subscription, so a subscription sees its messages in order.
* **Restarts lose nothing.** On start, and every ``sweep_interval``
  seconds, ``Notifier.sweep`` walks every subscription and wakes its
  courier, which finds what was posted while the daemon was down (or by
  another process) after the cursor. Messages deleted, claimed-and-deleted
  or expired before their turn are not delivered: delivery reads what the
  queue holds.
* **Posting never waits.** A post only calls ``Notifier.posted`` through
  ``driver.events`` after its commit: a dictionary look-up for queues
  without subscriptions, a wake-up of their couriers for the others.
  Deliveries run on their own, ``max_concurrent_deliveries`` requests at a
  time, each bounded by ``delivery_timeout``.
* **Retries** follow the retry policy (``marconi_tx.retry_policy``): the
  subscription's ``options._retry_policy``, else the queue's
  ``_retry_policy``, else ``[notification]``'s. Timeouts, connection
  failures, 3xx, 5xx, 408 and 429 answers are retried; other 4xx answers
  mean the subscriber refuses the message, which is given up on at once.
* **Confirmation** (``[notification] require_confirmation``): couriers of
  unconfirmed subscriptions deliver nothing; ``Confirmations`` sends the
  pre-signed confirmation request (and the unsubscribe notice).

Time and timers come from the injected reactor. The body delivered is
upstream's (the message's ``ttl`` and ``body``, ``"Message_Type":
"Notification"``, ``"queue_name"``) plus the message ``id``, so that a
subscriber can drop what it receives twice.
"""

import dataclasses
import json
from datetime import datetime, timezone

from treq.client import HTTPClient
from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.defer import DeferredSemaphore
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool

from marconi_tx import errors
from marconi_tx.notification import retry_policy
from marconi_tx.transport.http import signed_urls

#: Subscriptions one storage call of the sweep reads.
SCAN_PAGE = 100
#: The placeholder of ``options.post_data`` replaced by the message (upstream's).
PLACEHOLDER = '"$zaqar_message$"'
#: 4xx answers that are worth retrying.
RETRIED_4XX = frozenset({408, 429})


class Webhook:
    """POSTs JSON to subscribers with treq: at most ``limit`` requests in
    flight, each answered within ``timeout`` seconds of ``reactor``."""

    log = Logger()

    def __init__(self, reactor, limit, timeout, client=None, persistent=True):
        self.reactor = reactor
        self.timeout = timeout
        self.slots = DeferredSemaphore(limit)
        if client is None:
            pool = HTTPConnectionPool(reactor, persistent=persistent)
            client = HTTPClient(Agent(reactor, pool=pool))
            self.pool = pool
        else:
            self.pool = None
        self.client = client
        self.in_flight = set()

    async def attempt(self, url, data, headers):
        """One POST: "ok" (2xx), "refused" (a 4xx not worth retrying) or
        "failed"."""
        await self.slots.acquire()
        try:
            d = self.client.post(url, data=data, headers=headers)
            d.addCallback(lambda response: response.content().addCallback(
                lambda _: response.code))
            d.addTimeout(self.timeout, self.reactor)
            self.in_flight.add(d)
            try:
                code = await d
            finally:
                self.in_flight.discard(d)
        except Exception as e:
            self.log.info("delivery to {url} failed: {error}", url=url,
                          error=str(e) or type(e).__name__)
            return "failed"
        finally:
            self.slots.release()
        if 200 <= code < 300:
            return "ok"
        self.log.info("delivery to {url} answered {code}", url=url, code=code)
        if 400 <= code < 500 and code not in RETRIED_4XX:
            return "refused"
        return "failed"

    async def deliver(self, url, data, headers, policy, stopped=lambda: False):
        """POST until a 2xx, retrying as ``policy`` says; whether delivered."""
        outcome = await self.attempt(url, data, headers)
        for delay in retry_policy.delays(policy):
            if outcome != "failed" or stopped():
                break
            await task.deferLater(self.reactor, delay)
            outcome = await self.attempt(url, data, headers)
        return outcome == "ok"

    def close(self):
        """Abandon the requests in flight (they are retried after a restart:
        the cursor has not moved) and close the idle connections."""
        for d in list(self.in_flight):
            d.cancel()
        return self.pool.closeCachedConnections() if self.pool else defer.succeed(None)


def payload(doc, options):
    """The bytes POSTed for ``doc``: its JSON, or ``options.post_data`` with
    the placeholder replaced by it."""
    text = json.dumps(doc)
    template = options.get("post_data")
    if isinstance(template, str):
        text = template.replace(PLACEHOLDER, text)
    return text.encode("utf-8")


def headers_of(options):
    headers = {"Content-Type": "application/json"}
    extra = options.get("post_headers")
    if isinstance(extra, dict):
        headers.update({k: v for k, v in extra.items() if isinstance(v, str)})
    return headers


class Courier:
    """Delivers one subscription's messages, one at a time, in order."""

    log = Logger()

    def __init__(self, notifier, subscription):
        self.notifier = notifier
        self.subscription = subscription
        self.running = False
        self.again = False
        self.stopped = False

    def refresh(self, subscription):
        """A newer record (from the sweep); the cursor never goes back."""
        self.subscription = dataclasses.replace(
            subscription, cursor=max(subscription.cursor, self.subscription.cursor))

    def wake(self):
        if self.running:
            self.again = True
            return
        self.running = True
        d = defer.ensureDeferred(self._run())
        d.addErrback(self._failed)

    def _failed(self, failure):
        self.running = False
        if not failure.check(errors.StorageUnavailable):
            self.log.failure("delivery to {subscriber} failed", failure,
                             subscriber=self.subscription.subscriber)

    async def _run(self):
        while True:
            self.again = False
            await self._deliver_pending()
            if not self.again or self.stopped:
                break
        self.running = False

    async def _deliver_pending(self):
        notifier = self.notifier
        sub = self.subscription
        if self.stopped or (notifier.require_confirmation and not sub.confirmed):
            return
        policy = None
        while not self.stopped:
            marker = str(self.subscription.cursor) if self.subscription.cursor else None
            messages = await notifier.driver.messages.list(
                sub.project, sub.queue, marker=marker, limit=notifier.batch, echo=True,
                include_claimed=True, include_delayed=True)
            if not messages:
                return
            if policy is None:
                policy = await notifier.policy(sub)
            for message in messages:
                if self.stopped:
                    return
                doc = {"id": message.id, "ttl": message.ttl, "body": message.body,
                       "queue_name": sub.queue, "Message_Type": "Notification"}
                delivered = await notifier.webhook.deliver(
                    sub.subscriber, payload(doc, sub.options), headers_of(sub.options),
                    policy, lambda: self.stopped)
                if not delivered and not self.stopped:
                    self.log.warn("gave up delivering message {id} of {queue} to "
                                  "{subscriber}", id=message.id, queue=sub.queue,
                                  subscriber=sub.subscriber)
                if self.stopped:
                    return
                cursor = int(message.id)
                await notifier.driver.subscriptions.advance(sub.project, sub.queue, sub.id,
                                                            cursor)
                self.subscription = dataclasses.replace(self.subscription, cursor=cursor)


class Notifier(Service):
    """
    Delivers to every subscription of the storage ``driver`` (see the
    module docstring): hears this process's posts through
    ``driver.events`` and sweeps every ``sweep_interval`` seconds.

    Only one process should deliver: with ``--workers`` it is the daemon's
    own (the workers' posts reach it through the sweep, or at once when the
    line endpoint has the workers report their changes).
    """

    log = Logger()

    def __init__(self, driver, config, reactor, webhook=None, opened=None):
        settings = config.notification
        self.driver = driver
        self.reactor = reactor
        self.require_confirmation = settings.require_confirmation
        self.batch = settings.delivery_batch
        self.interval = settings.sweep_interval
        self.default_policy = retry_policy.defaults(settings)
        self.webhook = webhook or Webhook(reactor, settings.max_concurrent_deliveries,
                                          settings.delivery_timeout)
        self.opened = opened
        self.couriers = {}  # subscription id -> Courier
        self.by_queue = {}  # (project, queue) -> [Courier]
        self._loop = None
        self._sweeping = None

    def startService(self):
        super().startService()
        self.driver.events.subscribe(self.posted)
        self._loop = task.LoopingCall(self._sweep_logged)
        self._loop.clock = self.reactor
        if self.opened is None:
            self._loop.start(self.interval, now=True)
        else:
            self.opened.addCallback(lambda _: self.running and self._loop.start(
                self.interval, now=True))

    def stopService(self):
        super().stopService()
        self.driver.events.unsubscribe(self.posted)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for courier in self.couriers.values():
            courier.stopped = True
        self.couriers, self.by_queue = {}, {}
        return self.webhook.close()

    def posted(self, project, queue):
        """``driver.events`` listener: wake the couriers of the queue."""
        couriers = self.by_queue.get((project, queue))
        if couriers:
            for courier in couriers:
                courier.wake()

    def _sweep_logged(self):
        if self._sweeping is not None:  # the last one is still walking
            return None
        d = self._sweeping = defer.ensureDeferred(self.sweep())
        d.addErrback(lambda f: None if f.check(errors.StorageUnavailable)
                     else self.log.failure("subscription sweep failed", f))
        d.addBoth(self._swept)
        return None

    def _swept(self, _):
        self._sweeping = None

    async def sweep(self):
        """Walk every live subscription: start, refresh and wake couriers,
        stop those of subscriptions gone."""
        found = {}
        marker = None
        while True:
            page = await self.driver.subscriptions.scan(marker, SCAN_PAGE)
            found.update((s.id, s) for s in page)
            if len(page) < SCAN_PAGE:
                break
            marker = page[-1].id
        if not self.running:
            return
        for sid in set(self.couriers) - set(found):
            self.couriers.pop(sid).stopped = True
        by_queue = {}
        for sid, subscription in found.items():
            courier = self.couriers.get(sid)
            if courier is None:
                courier = self.couriers[sid] = Courier(self, subscription)
            else:
                courier.refresh(subscription)
            by_queue.setdefault((subscription.project, subscription.queue), []).append(courier)
        self.by_queue = by_queue
        for courier in self.couriers.values():
            courier.wake()

    async def policy(self, subscription):
        """The retry policy of deliveries to ``subscription``."""
        try:
            metadata = await self.driver.queues.get_metadata(subscription.project,
                                                             subscription.queue)
        except errors.QueueDoesNotExist:
            metadata = {}
        return retry_policy.chosen(subscription.options.get("_retry_policy") or {},
                                   metadata.get("_retry_policy") or {}, self.default_policy)


class Confirmations:
    """Sends the confirmation request of a new subscription, and the notice
    of an unsubscription, when ``[notification] require_confirmation`` is on
    (api-v2.md §6.2): once, with the default retry policy, not persisted (a
    subscriber that missed it is sent it again by a repeated POST)."""

    log = Logger()

    def __init__(self, config, webhook):
        settings = config.notification
        self.enabled = settings.require_confirmation
        self.secret_key = config.signed_url.secret_key
        self.expires = settings.confirmation_expires
        self.public_endpoint = settings.public_endpoint.rstrip("/")
        self.policy = retry_policy.defaults(settings)
        self.webhook = webhook

    def document(self, prefix, project, subscription, now, unsubscribed=False):
        queue = subscription.queue
        path = f"{prefix}/queues/{queue}/subscriptions/{subscription.id}/confirm"
        expires = datetime.fromtimestamp(now + self.expires, timezone.utc).strftime(
            signed_urls.EXPIRES_FORMAT)
        signature = signed_urls.signature(self.secret_key, [path], ["PUT"], project, expires)
        doc = {}
        if self.public_endpoint:
            doc["WSGISubscribeURL"] = self.public_endpoint + path
        if unsubscribed:
            kind = "UnsubscribeConfirmation"
            text = (f"You have unsubscribed successfully to the queue: {queue}, you can "
                    "resubscribe it by using confirmed=True.")
        else:
            kind = "SubscriptionConfirmation"
            text = f"You have chosen to subscribe to the queue: {queue}"
        doc.update({"Message_Type": kind, "Message": text,
                    "URL-Signature": signature, "URL-Methods": "PUT",
                    "URL-Paths": path, "X-Project-ID": project, "URL-Expires": expires,
                    "SubscribeBody": {"confirmed": True},
                    "UnsubscribeBody": {"confirmed": False}, "queue_name": queue})
        return doc

    def send(self, prefix, project, subscription, now, unsubscribed=False):
        """Start sending (nobody waits); a Deferred of whether delivered."""
        if not self.enabled:
            return defer.succeed(False)
        doc = self.document(prefix, project, subscription, now, unsubscribed)
        d = defer.ensureDeferred(self.webhook.deliver(
            subscription.subscriber, payload(doc, subscription.options),
            headers_of(subscription.options), self.policy))
        d.addErrback(lambda f: self.log.failure("confirmation request failed", f))
        return d
