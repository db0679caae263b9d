"""The subscription routes of API v2 (api-v2.md §6.1), mixed into ``V2API``.

What the spec leaves open, and the choices made here (see also
``marconi_tx.subscription_input`` for the bodies):

* A create names the queue lazily (it is created if missing, as a post
  does). With ``require_confirmation`` the confirmation request goes out
  for a new subscription and again for a repeated POST of an unconfirmed
  one; nobody waits for it.
* A PATCH that changes the subscriber makes the subscription unconfirmed
  (with ``require_confirmation`` a confirmation request goes to the new
  subscriber): a confirmed subscription cannot be handed to an address that
  never agreed.
* ``PUT .../confirm`` is served whatever ``require_confirmation`` says; it
  only matters to delivery when it is on. ``false`` sends the
  unsubscription notice (when on) and keeps the subscription, unconfirmed.
* Listings page by subscription id (creation order); the ``next`` link is
  present whenever the page is not empty.
"""

from marconi_tx import validation
from marconi_tx.notification import subscription_input
from marconi_tx.notification.notifier import Confirmations, Webhook
from marconi_tx.transport.http.documents import next_link
from marconi_tx.transport.http.inputs import query, read_json
from marconi_tx.transport.http.responses import empty, json_body


class SubscriptionRoutes:
    """Needs ``driver``, ``limits``, ``paging``, ``prefix`` and
    ``subscription_config`` (the settings) on the API object."""

    _confirmations = None

    def subscription_routes(self, table):
        q = f"{self.prefix}/queues/<queue_name>"
        collection = f"{q}/subscriptions"
        table[collection] = {"GET": self.list_subscriptions, "POST": self.create_subscription}
        table[f"{collection}/<subscription_id>"] = {
            "GET": self.get_subscription, "PATCH": self.patch_subscription,
            "DELETE": self.delete_subscription}
        table[f"{collection}/<subscription_id>/confirm"] = {"PUT": self.confirm_subscription}

    def subscriptions_href(self, queue_name):
        return f"{self.prefix}/queues/{queue_name}/subscriptions"

    def confirmations(self, request):
        """This API's sender of confirmation requests (made at first use,
        on the site's reactor; rare, so on connections not kept open)."""
        if self._confirmations is None:
            settings = self.subscription_config.notification
            webhook = Webhook(request.site.reactor, settings.max_concurrent_deliveries,
                              settings.delivery_timeout, persistent=False)
            self._confirmations = Confirmations(self.subscription_config, webhook)
        return self._confirmations

    def _send_confirmation(self, request, project, queue_name, subscription_id,
                           unsubscribed=False):
        if not self.subscription_config.notification.require_confirmation:
            return None
        d = self.driver.subscriptions.get(project, queue_name, subscription_id)
        d.addCallback(lambda subscription: self.confirmations(request).send(
            self.prefix, project, subscription, request.site.reactor.seconds(), unsubscribed))
        d.addErrback(lambda _: None)  # gone meanwhile: nothing to confirm
        return d

    def _body(self, request):
        return read_json(request, self.limits.max_subscription_body, self.metadata_nesting)

    async def create_subscription(self, request, project, queue_name):
        subscriber, ttl, options = subscription_input.create_body(self._body(request),
                                                                  self.limits)
        subscription_id, _ = await self.driver.subscriptions.create(
            project, queue_name, subscriber, ttl, options)
        self._send_confirmation(request, project, queue_name, subscription_id)
        return json_body(request, 201, {"subscription_id": subscription_id},
                         Location=self.subscriptions_href(queue_name))

    async def list_subscriptions(self, request, project, queue_name):
        limit = validation.query_int("limit", query(request, "limit"),
                                     self.paging.default_subscription_paging)
        validation.page_limit("limit", limit, self.limits.max_subscriptions_per_page)
        found = await self.driver.subscriptions.list(project, queue_name,
                                                     query(request, "marker"), limit)
        links = (next_link(self.subscriptions_href(queue_name), found[-1].id, request,
                           ("limit",)) if found else [])
        return json_body(request, 200, {"subscriptions": [subscription_doc(s) for s in found],
                                        "links": links})

    async def get_subscription(self, request, project, queue_name, subscription_id):
        found = await self.driver.subscriptions.get(project, queue_name, subscription_id)
        return json_body(request, 200, subscription_doc(found))

    async def patch_subscription(self, request, project, queue_name, subscription_id):
        changes = subscription_input.patch_body(self._body(request), self.limits)
        before = await self.driver.subscriptions.get(project, queue_name, subscription_id)
        await self.driver.subscriptions.update(project, queue_name, subscription_id, **changes)
        if changes.get("subscriber", before.subscriber) != before.subscriber:
            self._send_confirmation(request, project, queue_name, subscription_id)
        return empty(request, 204, Location=self.subscription_href(queue_name,
                                                                   subscription_id))

    def subscription_href(self, queue_name, subscription_id):
        return f"{self.subscriptions_href(queue_name)}/{subscription_id}"

    async def delete_subscription(self, request, project, queue_name, subscription_id):
        await self.driver.subscriptions.delete(project, queue_name, subscription_id)
        return empty(request, 204)

    async def confirm_subscription(self, request, project, queue_name, subscription_id):
        confirmed = subscription_input.confirm_body(
            read_json(request, self.limits.max_subscription_body))
        await self.driver.subscriptions.confirm(project, queue_name, subscription_id,
                                                confirmed)
        if not confirmed:
            self._send_confirmation(request, project, queue_name, subscription_id,
                                    unsubscribed=True)
        return empty(request, 204, Location=self.subscription_href(queue_name,
                                                                   subscription_id))


def subscription_doc(subscription):
    """A subscription as the API shows it (api-v2.md §6.1)."""
    return {"id": subscription.id, "source": subscription.queue,
            "subscriber": subscription.subscriber, "ttl": subscription.ttl,
            "age": subscription.age, "options": subscription.options,
            "confirmed": subscription.confirmed}
