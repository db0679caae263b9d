"""marconi_tx.validation: the input rules of API v1.1 and v2 (api-v1.1.md §3,
api-v2.md §1.2, §3.1, §4)."""

from twisted.trial import unittest

from marconi_tx import config, validation
from marconi_tx.errors import ValidationError


def limits(**overrides):
    return config.load(overrides=[("limits:transport", name, str(value))
                                  for name, value in overrides.items()]).transport


class QueueNameTests(unittest.SynchronousTestCase):
    def test_dots_only_in_v2(self):
        """Tricky case v2 §10.2: 'Service.test_queue' is a v2 name, not a v1 or
        v1.1 one; the cached check answers each version its own way."""
        validation.queue_identification("Service.test_queue", "p", dots=True)
        error = self.assertRaises(ValidationError, validation.queue_identification,
                                  "Service.test_queue", "p")
        self.assertEqual(error.title, "Invalid queue identification")
        self.assertNotIn("dots", error.description)
        validation.queue_identification("Service.test_queue", "p", dots=True)

    def test_v2_names_keep_the_other_rules(self):
        """Dots do not relax the length or the other characters."""
        for name in ("a" * 65, "a b", "a/b", "", "caf\u00e9"):
            error = self.assertRaises(ValidationError, validation.queue_identification,
                                      name, None, dots=True)
            self.assertIn("dots", error.description)
        validation.queue_identification("." * 64, None, dots=True)

    def test_is_queue_name_takes_any_value(self):
        """is_queue_name answers False for non-strings (metadata values)."""
        for value in (None, 1, ["a"], {"a": 1}):
            self.assertFalse(validation.is_queue_name(value, dots=True))
        self.assertTrue(validation.is_queue_name("dead.letters", dots=True))
        self.assertFalse(validation.is_queue_name("dead.letters"))


class MessagesTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.limits = limits()

    def post(self, doc, default_ttl=3600, default_delay=None):
        return validation.messages_v1_1(doc, self.limits, default_ttl, default_delay)

    def refused(self, doc, *args):
        return self.assertRaises(ValidationError, self.post, doc, *args)

    def test_envelope(self):
        """Tricky case v1.1 §5.5: a bare array, an object without 'messages',
        'messages' not an array and an empty array are 400s."""
        for doc in ([{"ttl": 60, "body": 1}], {"msgs": []}, {"messages": {"body": 1}},
                    {"messages": "x"}, {"messages": []}, None, "messages"):
            error = self.refused(doc)
            self.assertEqual(error.title, "Invalid request body")

    def test_default_ttl_and_required_body(self):
        """Tricky case v1.1 §5.5: a message without ttl gets the default; one
        without body is refused, a null body is fine."""
        self.assertEqual(self.post({"messages": [{"body": None}, {"ttl": 61, "body": 2}]}),
                         [{"ttl": 3600, "body": None}, {"ttl": 61, "body": 2}])
        self.assertEqual(self.post({"messages": [{"body": 1}]}, 999),
                         [{"ttl": 999, "body": 1}])
        error = self.refused({"messages": [{"body": 1}, {"ttl": 60}]})
        self.assertIn("'body' field of message 1", error.description)

    def test_explicit_ttl_checked(self):
        """A given ttl must be an integer within the v1 bounds."""
        for ttl in (59, 1209601, "60", 60.0, None, True):
            self.refused({"messages": [{"ttl": ttl, "body": 1}]})
        self.assertEqual(self.post({"messages": [{"ttl": 1209600, "body": 1}]})[0]["ttl"],
                         1209600)

    def test_delay_dropped_without_queue_delay(self):
        """Tricky case v2 §10.8: without a default delay a 'delay' field is
        dropped, whatever its value."""
        for default in (None, 0):
            self.assertEqual(self.post({"messages": [{"body": 1, "delay": 5},
                                                     {"body": 2, "delay": "x"}]},
                                       3600, default),
                             [{"ttl": 3600, "body": 1}, {"ttl": 3600, "body": 2}])

    def test_delay_with_queue_delay(self):
        """With a default delay every message gets one: its own, an integer
        0..max_message_delay, or the default."""
        self.assertEqual(self.post({"messages": [{"body": 1}, {"body": 2, "delay": 0},
                                                 {"body": 3, "delay": 900}]}, 3600, 3),
                         [{"ttl": 3600, "body": 1, "delay": 3},
                          {"ttl": 3600, "body": 2, "delay": 0},
                          {"ttl": 3600, "body": 3, "delay": 900}])
        for delay in (-1, 901, "5", 1.5, None, False):
            error = self.refused({"messages": [{"body": 1, "delay": delay}]}, 3600, 3)
            self.assertIn("'delay' of message 0", error.description)

    def test_max_message_delay_configurable(self):
        """The delay bound is [limits:transport] max_message_delay."""
        self.limits = limits(max_message_delay=10)
        self.refused({"messages": [{"body": 1, "delay": 11}]}, 3600, 3)
        self.assertEqual(self.post({"messages": [{"body": 1, "delay": 10}]}, 3600, 3)[0]["delay"],
                         10)

    def test_v1_unchanged(self):
        """v1's list still requires a ttl and never yields a delay."""
        self.assertRaises(ValidationError, validation.messages, [{"body": 1}], self.limits)
        self.assertEqual(validation.messages([{"ttl": 60, "body": 1, "delay": 5}], self.limits),
                         [{"ttl": 60, "body": 1}])


class ClaimBodyTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.limits = limits()

    def test_no_body_means_defaults(self):
        """Tricky case v1.1 §5.10: no body -> ttl 300, grace 60."""
        self.assertEqual(validation.claim_body_v1_1(None, self.limits), (300, 60))

    def test_fields_default_one_by_one(self):
        """Tricky case v1.1 §5.11: {} takes both defaults; either field may be
        given alone."""
        self.assertEqual(validation.claim_body_v1_1({}, self.limits), (300, 60))
        self.assertEqual(validation.claim_body_v1_1({"ttl": 100}, self.limits), (100, 60))
        self.assertEqual(validation.claim_body_v1_1({"grace": 120}, self.limits), (300, 120))

    def test_v1_ranges_apply(self):
        """Tricky case v1.1 §5.10: grace 30 is below the minimum; present
        fields must be integers in range; the body must be an object."""
        for doc in ({"grace": 30}, {"ttl": 59}, {"ttl": 43201}, {"ttl": "300"},
                    {"grace": None}, [], "x"):
            self.assertRaises(ValidationError, validation.claim_body_v1_1, doc, self.limits)

    def test_defaults_configurable(self):
        """The defaults are [limits:transport] default_claim_ttl and
        default_claim_grace."""
        self.assertEqual(validation.claim_body_v1_1(
            None, limits(default_claim_ttl=120, default_claim_grace=0, min_claim_grace=0)),
            (120, 0))


class PurgeTypesTests(unittest.SynchronousTestCase):
    def test_no_body_purges_both(self):
        """No body: messages and subscriptions."""
        self.assertEqual(validation.purge_types(None), {"messages", "subscriptions"})

    def test_named_types(self):
        """Tricky case v2 §10.10: {"resource_types": ["messages"]} is accepted;
        an empty list purges nothing."""
        self.assertEqual(validation.purge_types({"resource_types": ["messages"]}),
                         {"messages"})
        self.assertEqual(validation.purge_types({"resource_types": []}), set())

    def test_refused(self):
        """Tricky case v2 §10.10: a body without resource_types, an unknown
        type, or a non-list -> 400 (never a TypeError on odd items)."""
        for doc in ({"wrong_key": ["messages"]}, {"resource_types": ["x"]},
                    {"resource_types": "messages"}, {"resource_types": [["messages"]]},
                    {"resource_types": [{}]}, [], "messages"):
            error = self.assertRaises(ValidationError, validation.purge_types, doc)
            self.assertEqual(error.title, "Invalid request body")
