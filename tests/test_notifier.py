"""Delivery to subscribers (``marconi_tx.notification.notifier``) against a real HTTP
receiver in the test process, on sqlite and MongoDB; the driver's and the
notifier's time is a ``task.Clock`` (``ClockReactor``: the real network,
a controlled clock), so retry delays and timeouts pass when the test says."""

import json

from twisted.internet import reactor as real_reactor
from twisted.internet import task
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.notification import retry_policy
from marconi_tx.notification.notifier import Notifier
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.sqlite.driver import SqliteDriver
from tests.clock_reactor import ClockReactor
from tests.http_support import ApiClient
from tests.mongodb_server import fresh_database_uri
from tests.storage_conformance import START
from tests.test_auth_http import write_token_file
from tests.webhook_receiver import start_receiver

PROJECT = "p"
QUEUE = "jobs"
#: One retry at once, then one after 5 s, then none.
QUICK = {"retries_with_no_delay": 1, "minimum_delay_retries": 1, "minimum_delay": 5,
         "maximum_delay": 15, "maximum_delay_retries": 0}


class SteppedReactor(ClockReactor):
    """A ClockReactor an ``ApiClient`` can drive (it advances the clock)."""

    def advance(self, amount):
        self.clock.advance(amount)


def settings(**notification):
    overrides = [("notification", k, str(v)) for k, v in notification.items()]
    overrides += [("notification", "retry_backoff_function", "linear"),
                  ("notification", "maximum_delay_retries", "0")]
    return config.load(overrides=overrides)


async def turns(count=5):
    """Let the real reactor run a few turns (network I/O already due)."""
    for _ in range(count):
        await task.deferLater(real_reactor, 0, lambda: None)


class DeliveryMixin:
    """Needs ``make_driver(reactor)``: an unopened driver."""

    async def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.reactor = SteppedReactor(self.clock)
        self.driver = self.make_driver(self.reactor)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        self.receiver, self.url = await start_receiver(self)

    async def start(self, **notification):
        notification.setdefault("delivery_timeout", 10)
        self.notifier = Notifier(self.driver, settings(**notification), self.reactor)
        self.notifier.startService()
        self.addCleanup(self.notifier.stopService)
        await self.notifier._sweeping if self.notifier._sweeping else None

    async def subscribe(self, options=None, url=None):
        sid, _ = await self.driver.subscriptions.create(PROJECT, QUEUE, url or self.url, 3600,
                                                        options or {})
        return sid

    def post(self, *bodies):
        return self.driver.messages.post(PROJECT, QUEUE, [{"ttl": 300, "body": b}
                                                          for b in bodies], create=True)

    async def cursor(self, sid):
        return (await self.driver.subscriptions.get(PROJECT, QUEUE, sid)).cursor

    async def test_posted_message_delivered(self):
        """A message posted to a queue with a subscription is POSTed to the
        subscriber as JSON (id, ttl, body, queue_name, Message_Type), with
        the options' post_headers; the cursor then moves past it."""
        sid = await self.subscribe({"post_headers": {"X-Token": "abc"}})
        await self.start()
        [mid] = await self.post({"n": 1})
        await self.receiver.received(1)
        method, path, headers, body = self.receiver.requests[0]
        self.assertEqual((method, path, headers["content-type"], headers["x-token"]),
                         ("POST", "/hook", "application/json", "abc"))
        self.assertEqual(json.loads(body), {"id": mid, "ttl": 300, "body": {"n": 1},
                                            "queue_name": QUEUE,
                                            "Message_Type": "Notification"})
        while await self.cursor(sid) != int(mid):
            await turns()

    async def test_in_order(self):
        """Messages of several posts arrive one at a time, in post order."""
        await self.subscribe()
        await self.start()
        for n in range(4):
            await self.post(n)
        await self.receiver.received(4)
        await turns()
        self.assertEqual([b["body"] for b in self.receiver.bodies()], [0, 1, 2, 3])

    async def test_post_data_template(self):
        """``options.post_data`` is sent with "$zaqar_message$" (quotes
        included) replaced by the message's JSON."""
        await self.subscribe({"post_data": '{"wrapped": "$zaqar_message$"}'})
        await self.start()
        await self.post("x")
        await self.receiver.received(1)
        self.assertEqual(self.receiver.bodies()[0]["wrapped"]["body"], "x")

    async def test_failing_subscriber_recovers(self):
        """A subscriber answering 500 is retried at once, then after
        minimum_delay seconds of the clock (not before); it has recovered by
        then and gets the message, and the next one is delivered after it."""
        sid = await self.subscribe({"_retry_policy": QUICK})
        await self.start()
        self.receiver.mode = 500
        [first] = await self.post("a")
        await self.receiver.received(2)  # the attempt and the retry at once
        await turns(20)
        self.assertEqual(len(self.receiver.requests), 2)
        self.receiver.mode = 200
        self.clock.advance(5)
        await self.receiver.received(3)
        [second] = await self.post("b")
        await self.receiver.received(4)
        self.assertEqual([b["body"] for b in self.receiver.bodies()], ["a", "a", "a", "b"])
        while await self.cursor(sid) != int(second):
            await turns()

    async def test_timeout_then_recovery(self):
        """A subscriber that does not answer within delivery_timeout seconds
        (of the clock) is retried; a recovered one then gets the message."""
        await self.subscribe({"_retry_policy": QUICK})
        await self.start(delivery_timeout=3)
        self.receiver.mode = "hang"
        await self.post("slow")
        await self.receiver.received(1)
        self.receiver.mode = 200
        self.clock.advance(3)  # the first attempt times out; the retry is at once
        await self.receiver.received(2)
        self.assertEqual([b["body"] for b in self.receiver.bodies()], ["slow", "slow"])

    async def test_given_up_after_policy(self):
        """Once the policy is spent the message is given up on (the cursor
        passes it) and the next message is delivered."""
        sid = await self.subscribe({"_retry_policy": {**QUICK, "minimum_delay_retries": 0}})
        await self.start()
        self.receiver.mode = 503
        [lost] = await self.post("lost")
        await self.receiver.received(2)
        while await self.cursor(sid) != int(lost):  # the backoff: 5 s, then 10 s
            self.clock.advance(5)
            await turns()
        attempts = len(self.receiver.requests)
        self.receiver.mode = 200
        await self.post("kept")
        await self.receiver.received(attempts + 1)
        self.assertEqual(self.receiver.bodies()[-1]["body"], "kept")

    async def test_refusal_not_retried(self):
        """A 400 answer is a refusal: not retried, the message given up on."""
        sid = await self.subscribe({"_retry_policy": QUICK})
        await self.start()
        self.receiver.mode = 400
        [mid] = await self.post("no")
        await self.receiver.received(1)
        while await self.cursor(sid) != int(mid):
            await turns()
        self.assertEqual(len(self.receiver.requests), 1)

    async def test_queue_retry_policy(self):
        """Without a subscription policy the queue's ``_retry_policy``
        applies: here no retry at all."""
        await self.driver.queues.create(PROJECT, QUEUE, {"_retry_policy": {
            "retries_with_no_delay": 0, "minimum_delay_retries": 0, "maximum_delay_retries": 0,
            "minimum_delay": 0, "maximum_delay": 10}})
        sid = await self.subscribe()
        await self.start()
        self.receiver.mode = 500
        [mid] = await self.post("once")
        await self.receiver.received(1)
        while await self.cursor(sid) != int(mid):
            self.clock.advance(5)
            await turns()
        # The first attempt and the backoff's retries after 0 and 5 s (the
        # defaults would have made 17 attempts).
        self.assertEqual(len(self.receiver.requests), 3)

    async def test_missed_posts_found_by_sweep(self):
        """Messages posted while no notifier ran (another process, a
        restart) are delivered by the first sweep, after the cursor."""
        await self.subscribe()
        await self.post("before start")
        await self.start()
        await self.receiver.received(1)
        self.assertEqual(self.receiver.bodies()[0]["body"], "before start")

    async def test_unconfirmed_get_nothing_when_confirmation_required(self):
        """With require_confirmation, an unconfirmed subscription gets no
        delivery; once confirmed, later posts are delivered (not those
        posted before the confirmation)."""
        sid = await self.subscribe()
        self.notifier = Notifier(self.driver, config.load(overrides=[
            ("notification", "require_confirmation", "true"),
            ("signed_url", "secret_key", "k")]), self.reactor)
        self.notifier.startService()
        self.addCleanup(self.notifier.stopService)
        await self.post("unseen")
        await turns(20)
        self.assertEqual(self.receiver.requests, [])
        await self.driver.subscriptions.confirm(PROJECT, QUEUE, sid, True)
        self.clock.advance(self.notifier.interval)  # the sweep sees the confirmation
        await self.post("seen")
        await self.receiver.received(1)
        await turns()
        self.assertEqual([b["body"] for b in self.receiver.bodies()], ["seen"])


class SqliteDeliveryTests(DeliveryMixin, unittest.TestCase):
    """Delivery from a sqlite file."""

    def make_driver(self, reactor):
        return SqliteDriver(self.mktemp(), reactor)


class MongoDeliveryTests(DeliveryMixin, unittest.TestCase):
    """Delivery from the MongoDB-wire server."""

    def make_driver(self, reactor):
        from tests.test_storage_mongodb import settings as mongo_settings

        return MongoDriver(fresh_database_uri(self), reactor, mongo_settings())


class ConfirmationFlowTests(unittest.TestCase):
    """The confirmation flow through the real API (api-v2.md §6.2)."""

    async def confirmation_flow(self, *overrides, headers=None, project=PROJECT):
        """Subscribe (with ``headers``, as ``project``) under
        require_confirmation; check the confirmation request the subscriber
        gets, then PUT its pre-signed confirm path with its headers alone,
        as a subscriber would (true, then false)."""
        clock = task.Clock()
        clock.advance(START)
        reactor = SteppedReactor(clock)
        driver = SqliteDriver(self.mktemp(), reactor)
        await driver.open()
        self.addCleanup(driver.close)
        receiver, url = await start_receiver(self)
        cfg = config.load(overrides=[("notification", "require_confirmation", "true"),
                                     ("notification", "public_endpoint", "https://mq.example"),
                                     ("signed_url", "secret_key", "k"), *overrides])
        api = ApiClient(driver, cfg, reactor=reactor, waits=True)
        answer = await api.post("/v2/queues/jobs/subscriptions", {"subscriber": url},
                                project=project, headers=headers)
        self.assertEqual(answer.code, 201)
        sid = answer.json["subscription_id"]
        await receiver.received(1)
        doc = receiver.bodies()[0]
        path = f"/v2/queues/jobs/subscriptions/{sid}/confirm"
        self.assertEqual((doc["Message_Type"], doc["URL-Paths"], doc["URL-Methods"],
                          doc["X-Project-ID"], doc["SubscribeBody"], doc["queue_name"],
                          doc["WSGISubscribeURL"]),
                         ("SubscriptionConfirmation", path, "PUT", PROJECT,
                          {"confirmed": True}, "jobs", "https://mq.example" + path))
        signed = {name: doc[name] for name in ("URL-Signature", "URL-Expires", "URL-Methods",
                                               "URL-Paths", "X-Project-ID")}
        answer = await api.put(path, doc["SubscribeBody"], headers=signed, project=None)
        self.assertEqual(answer.code, 204, answer.body)
        got = await api.get(f"/v2/queues/jobs/subscriptions/{sid}", project=project,
                            headers=headers)
        self.assertTrue(got.json["confirmed"])
        answer = await api.put(path, doc["UnsubscribeBody"], headers=signed, project=None)
        self.assertEqual(answer.code, 204)
        await receiver.received(2)
        await turns()  # the answer reaches the API's client
        self.assertEqual(receiver.bodies()[1]["Message_Type"], "UnsubscribeConfirmation")

    async def test_confirmation_request_and_confirm(self):
        """With require_confirmation, creating a subscription sends the
        subscriber a SubscriptionConfirmation whose pre-signed headers let it
        PUT the confirm path (204, then confirmed); confirming false sends an
        UnsubscribeConfirmation."""
        await self.confirmation_flow()

    async def test_confirmation_needs_no_token(self):
        """With token authentication on, the subscriber confirms with the
        pre-signed headers it was sent and no token (it has none)."""
        tokens = write_token_file(self.mktemp(), {"p-token": (PROJECT, "")})
        await self.confirmation_flow(("auth", "strategy", "token"), ("auth", "token_file", tokens),
                                     headers={"X-Auth-Token": "p-token"}, project=None)

    def test_config_needs_secret_key(self):
        """require_confirmation without [signed_url] secret_key is a
        configuration error (the confirmation URL is pre-signed)."""
        with self.assertRaises(config.ConfigError):
            config.load(overrides=[("notification", "require_confirmation", "true")])


class RetryPolicyTests(unittest.SynchronousTestCase):
    """The retry schedule and the choice of policy (upstream's rules)."""

    def test_delays(self):
        """Immediate retries, minimum-delay retries, the linear backoff in
        steps of 5 s, then maximum-delay retries."""
        policy = {"retries_with_no_delay": 2, "minimum_delay_retries": 1, "minimum_delay": 5,
                  "maximum_delay": 20, "maximum_delay_retries": 2,
                  "retry_backoff_function": "linear"}
        self.assertEqual(retry_policy.delays(policy), [0, 0, 5, 5, 10, 15, 20, 20])

    def test_backoff_functions_stay_in_range(self):
        """Every backoff function gives delays from minimum to maximum."""
        for function in retry_policy.FUNCTIONS:
            delays = retry_policy.backoff(function, 5, 30)
            self.assertTrue(delays and all(5 <= d <= 30 for d in delays), function)

    def test_choice(self):
        """The subscription's policy wins over the queue's unless either
        says ignore_subscription_override; defaults fill the rest."""
        default = retry_policy.defaults(config.load().notification)
        chosen = retry_policy.chosen({"minimum_delay": 1}, {"minimum_delay": 2}, default)
        self.assertEqual((chosen["minimum_delay"], chosen["maximum_delay"]), (1, 30))
        chosen = retry_policy.chosen({"minimum_delay": 1},
                                     {"minimum_delay": 2, "ignore_subscription_override": True},
                                     default)
        self.assertEqual(chosen["minimum_delay"], 2)
        self.assertEqual(retry_policy.chosen({"minimum_delay": "x"}, {}, default), default)


