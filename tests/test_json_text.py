"""marconi_tx.json_text: the encoders with a C encoder built once."""

import json

from twisted.trial import unittest

from marconi_tx import json_text

DOCUMENTS = [
    {"event": "BackupStarted", "id": 1},
    [{"ttl": 300, "body": {"nested": [1, 2.5, -3e300, None, True, False]}}],
    "caf\u00e9 \u2603 \U0001f600 \"quoted\" \\ \n\t",
    {"lone": "\ud800"},
    2 ** 63 - 1,
    -(2 ** 63),
    0.1,
    [],
    {},
    None,
    {"z": 1, "a": {"b": [{"c": "d"}]}},
]


class EncoderTests(unittest.SynchronousTestCase):
    def check(self, encode, **options):
        for doc in DOCUMENTS:
            self.assertEqual(encode(doc), json.dumps(doc, **options), doc)
            self.assertEqual(json.loads(encode(doc)), doc)

    def test_same_text_as_json_dumps(self):
        """Each encoder writes what json.dumps with the same options writes,
        for every kind of value (unicode, escapes, extreme numbers)."""
        for options in ({"separators": (",", ":"), "ensure_ascii": False},
                        {"separators": (", ", ": "), "ensure_ascii": False},
                        {"separators": (",", ":"), "ensure_ascii": True}):
            self.check(json_text.encoder(**options), **options)

    def test_without_the_c_accelerator(self):
        """On a Python without _json the pure encoder gives the same text."""
        self.patch(json_text, "c_make_encoder", None)
        for options in ({"separators": (",", ":"), "ensure_ascii": False},
                        {"separators": (",", ":"), "ensure_ascii": True}):
            self.check(json_text.encoder(**options), **options)

    def test_unencodable_value_raises(self):
        """A value JSON cannot hold raises TypeError, as json.dumps does."""
        with self.assertRaises(TypeError):
            json_text.encoder()({"when": object()})
