"""marconi_tx.queue_attributes: the reserved ``_`` queue attributes of API v2
(api-v2.md §2.1): their checks, display defaults and the policies v2 applies."""

from twisted.trial import unittest

from marconi_tx import config, queue_attributes
from marconi_tx.errors import ValidationError
from marconi_tx.storage.records import DeadLetter

DEFAULTS = {"_default_message_ttl": 3600, "_max_messages_post_size": 262144,
            "_default_message_delay": 0, "_max_claim_count": None,
            "_dead_letter_queue": None, "_dead_letter_queue_messages_ttl": None,
            "_enable_encrypt_messages": False}


def limits(**overrides):
    return config.load(overrides=[("limits:transport", name, str(value))
                                  for name, value in overrides.items()]).transport


class CheckTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.limits = limits()

    def refused(self, metadata):
        error = self.assertRaises(ValidationError, queue_attributes.check, metadata, self.limits)
        self.assertEqual(error.title, "Invalid queue attribute")
        return error

    def test_tricky_values_refused(self):
        """Tricky case v2 §10.4: each listed wrong type or out-of-range value
        is a 400 naming the attribute."""
        for key, value in [("_default_message_ttl", 0), ("_default_message_ttl", 59),
                           ("_default_message_ttl", 1209601),
                           ("_default_message_delay", 901),
                           ("_max_messages_post_size", 0), ("_max_messages_post_size", 262145),
                           ("_dead_letter_queue_messages_ttl", "123"),
                           ("_dead_letter_queue_messages_ttl", 59),
                           ("_dead_letter_queue_messages_ttl", 0),
                           ("_max_claim_count", "123")]:
            error = self.refused({key: value})
            self.assertIn(key, error.description)

    def test_ranged_values_are_integers(self):
        """Booleans, floats, strings and containers never pass a range, falsy
        or not."""
        for value in (True, False, 3600.0, "3600", "", [], {}):
            self.refused({"_default_message_ttl": value})
        self.refused({"_default_message_delay": False})

    def test_accepted_values(self):
        """The bounds themselves, null, and the falsy values the spec's
        'type checks only for truthy values' lets through pass; user keys are
        not looked at."""
        for metadata in ({"_default_message_ttl": 60}, {"_default_message_ttl": 1209600},
                         {"_default_message_delay": 0}, {"_default_message_delay": 900},
                         {"_max_messages_post_size": 1}, {"_max_messages_post_size": 262144},
                         {"_dead_letter_queue_messages_ttl": None},
                         {"_max_claim_count": 0}, {"_max_claim_count": ""},
                         {"_max_claim_count": -1}, {"_max_claim_count": 2},
                         {"_dead_letter_queue": ""}, {"_dead_letter_queue": "dead.letters"},
                         {"_enable_encrypt_messages": False}, {"_enable_encrypt_messages": 0},
                         {"messages": {"ttl": 600}, "_other": [1], "ttl": "x"}):
            queue_attributes.check(metadata, self.limits)

    def test_dead_letter_queue_must_be_a_queue_name(self):
        """A truthy _dead_letter_queue must be a v2 queue name (the DLQ a
        claim moves messages to), never a number or a path."""
        for value in (1, ["q"], "a/b", "x" * 65, True):
            self.refused({"_dead_letter_queue": value})

    def test_encryption(self):
        """_enable_encrypt_messages must be a boolean; true is refused, as
        this server has no encryption key (upstream's answer without one)."""
        self.assertIn("boolean", self.refused({"_enable_encrypt_messages": "yes"}).description)
        self.assertIn("does not encrypt",
                      self.refused({"_enable_encrypt_messages": True}).description)

    def test_bounds_follow_the_limits(self):
        """The ranges are the configured ones: max_message_ttl,
        max_message_size, max_message_delay, min_message_ttl."""
        self.limits = limits(max_message_ttl=100, max_message_size=10, max_message_delay=5,
                             min_message_ttl=1, default_message_ttl=50)
        for metadata in ({"_default_message_ttl": 101}, {"_max_messages_post_size": 11},
                         {"_default_message_delay": 6},
                         {"_dead_letter_queue_messages_ttl": 101}):
            self.refused(metadata)
        queue_attributes.check({"_default_message_ttl": 1, "_max_messages_post_size": 10,
                                "_default_message_delay": 5}, self.limits)


class ShownTests(unittest.SynchronousTestCase):
    def test_missing_queue_shows_the_seven_defaults(self):
        """Tricky case v2 §10.3: no metadata shows exactly the seven defaults."""
        self.assertEqual(queue_attributes.shown({}, limits()), DEFAULTS)

    def test_user_keys_kept_and_falsy_values_defaulted(self):
        """Tricky case v2 §10.3: user keys stay next to the defaults; a
        stored falsy value shows as its default; the input is not changed."""
        metadata = {"messages": {"ttl": 600}, "_max_claim_count": 0,
                    "_default_message_ttl": 999, "_dead_letter_queue": ""}
        shown = queue_attributes.shown(metadata, limits())
        self.assertEqual(shown, dict(DEFAULTS, messages={"ttl": 600},
                                     _default_message_ttl=999))
        self.assertEqual(metadata["_max_claim_count"], 0)

    def test_defaults_follow_the_limits(self):
        """The shown ttl and post size are default_message_ttl and
        max_message_size."""
        shown = queue_attributes.shown({}, limits(default_message_ttl=120,
                                                  max_message_size=1024))
        self.assertEqual((shown["_default_message_ttl"], shown["_max_messages_post_size"]),
                         (120, 1024))

    def test_reserved_are_the_shown_keys(self):
        """RESERVED (JSON-patch's reserved keys) is the set of shown keys."""
        self.assertEqual(queue_attributes.RESERVED, set(DEFAULTS))


class PostPolicyTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.limits = limits()

    def test_defaults(self):
        """A queue without attributes (or a missing one) posts with the
        configured ttl and size cap, delays off."""
        self.assertEqual(queue_attributes.post_policy({}, self.limits),
                         queue_attributes.PostPolicy(3600, 262144, 0))

    def test_queue_values(self):
        """Tricky cases v2 §10.6-8: the queue's ttl 999, size cap 1023 and
        delay 3 apply."""
        policy = queue_attributes.post_policy(
            {"_default_message_ttl": 999, "_max_messages_post_size": 1023,
             "_default_message_delay": 3}, self.limits)
        self.assertEqual(policy, queue_attributes.PostPolicy(999, 1023, 3))

    def test_config_cap_wins(self):
        """The size cap is the smaller of the queue's and the config's (the
        config may have been lowered after the queue was made)."""
        policy = queue_attributes.post_policy({"_max_messages_post_size": 262144},
                                              limits(max_message_size=1000))
        self.assertEqual(policy.max_post_size, 1000)

    def test_unchecked_v1_values_ignored(self):
        """Attributes stored over v1 (unchecked) that break the rules count as
        absent, never as a crash or a wild value."""
        policy = queue_attributes.post_policy(
            {"_default_message_ttl": "999", "_max_messages_post_size": 10**12,
             "_default_message_delay": 10**6}, self.limits)
        self.assertEqual(policy, queue_attributes.PostPolicy(3600, 262144, 0))


class DeadLetterTests(unittest.SynchronousTestCase):
    def test_needs_both_keys(self):
        """Only _max_claim_count and _dead_letter_queue together (both truthy)
        make a policy."""
        for metadata in ({}, {"_max_claim_count": 2}, {"_dead_letter_queue": "dlq"},
                         {"_max_claim_count": 0, "_dead_letter_queue": "dlq"},
                         {"_max_claim_count": 2, "_dead_letter_queue": None}):
            self.assertIsNone(queue_attributes.dead_letter(metadata))

    def test_policy(self):
        """Tricky case v2 §10.9: max 2 claims to 'dlq', moved messages get the
        queue's dead-letter ttl (none: they keep theirs)."""
        self.assertEqual(queue_attributes.dead_letter(
            {"_max_claim_count": 2, "_dead_letter_queue": "dlq",
             "_dead_letter_queue_messages_ttl": 120}), DeadLetter(2, "dlq", 120))
        self.assertEqual(queue_attributes.dead_letter(
            {"_max_claim_count": 2, "_dead_letter_queue": "dead.letters"}),
            DeadLetter(2, "dead.letters", None))

    def test_unchecked_v1_values_ignored(self):
        """A v1-stored count or queue of the wrong type means no policy; a
        wrong dead-letter ttl means moved messages keep theirs."""
        for metadata in ({"_max_claim_count": "2", "_dead_letter_queue": "dlq"},
                         {"_max_claim_count": True, "_dead_letter_queue": "dlq"},
                         {"_max_claim_count": 2, "_dead_letter_queue": ["dlq"]},
                         {"_max_claim_count": 2, "_dead_letter_queue": "a b"}):
            self.assertIsNone(queue_attributes.dead_letter(metadata))
        for ttl in ("120", -5, 2**40, 1.5):
            self.assertEqual(queue_attributes.dead_letter(
                {"_max_claim_count": 2, "_dead_letter_queue": "dlq",
                 "_dead_letter_queue_messages_ttl": ttl}), DeadLetter(2, "dlq", None))
