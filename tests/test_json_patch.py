"""marconi_tx.json_patch: the JSON-patch of queue metadata (api-v2.md §2.5)."""

from twisted.trial import unittest

from marconi_tx import json_patch, queue_attributes
from marconi_tx.errors import Conflict, ValidationError
from marconi_tx.json_patch import Operation


def patch(metadata, *ops):
    return json_patch.apply(metadata, json_patch.parse(list(ops)), queue_attributes.RESERVED)


class ParseTests(unittest.SynchronousTestCase):
    def refused(self, doc):
        error = self.assertRaises(ValidationError, json_patch.parse, doc)
        self.assertEqual(error.title, "Invalid JSON-patch")
        return error

    def test_operations(self):
        """The spec's example parses to three operations; the metadata root
        is case-insensitive; remove needs no value, a null value is one."""
        self.assertEqual(json_patch.parse([
            {"op": "add", "path": "/metadata/owner", "value": "ops"},
            {"op": "replace", "path": "/METADATA/_default_message_ttl", "value": 300},
            {"op": "remove", "path": "/Metadata/obsolete"},
            {"op": "add", "path": "/metadata/none", "value": None}]),
            [Operation("add", "owner", "ops"), Operation("replace", "_default_message_ttl", 300),
             Operation("remove", "obsolete"), Operation("add", "none", None)])
        self.assertEqual(json_patch.parse([]), [])

    def test_not_an_array(self):
        """A document that is not an array of objects is a 400 (upstream's
        503 for a non-array is not copied)."""
        for doc in ({"op": "add"}, "x", None, 1, [1], [["op"]]):
            self.refused(doc)

    def test_bad_op(self):
        """Tricky case v2 §10.5: op 'a', a missing op, and ops of RFC 6902 this
        API lacks are 400s."""
        for op in ("a", None, "move", "copy", "test", "ADD", 1):
            doc = {"path": "/metadata/k", "value": 1}
            if op is not None:
                doc["op"] = op
            self.assertIn("'op'", self.refused([doc]).description)

    def test_bad_path(self):
        """Tricky case v2 §10.5: '/a' and every path that is not
        /metadata/<key> (root, depth, empty or trailing segments, no leading
        slash, not a string) are 400s."""
        for path in ("/a", "/a/b", "/metadata", "/metadata/", "/metadata/a/b",
                     "/metadata//", "metadata/a", "//metadata/a", "", "/", None, 1,
                     "/metadata/a/"):
            self.assertIn("'path'", self.refused([{"op": "add", "path": path,
                                                   "value": 1}]).description)
        self.refused([{"op": "remove"}])

    def test_pointer_escapes(self):
        """~1 is '/' and ~0 is '~' in a key (~01 is '~1'); any other '~' is a
        400."""
        self.assertEqual(json_patch.parse([{"op": "remove", "path": "/metadata/a~1b~0c~01"}]),
                         [Operation("remove", "a/b~c~1")])
        for key in ("a~", "a~2", "~x"):
            self.refused([{"op": "remove", "path": f"/metadata/{key}"}])

    def test_value_required(self):
        """add and replace without a value are 400s."""
        for op in ("add", "replace"):
            self.assertIn("'value'", self.refused([{"op": op,
                                                    "path": "/metadata/k"}]).description)


class ApplyTests(unittest.SynchronousTestCase):
    def test_in_order_on_a_copy(self):
        """Operations apply in order (a later one sees an earlier one's key)
        to a copy: the stored dict is not changed."""
        stored = {"a": 1}
        result = patch(stored, {"op": "add", "path": "/metadata/b", "value": 2},
                       {"op": "replace", "path": "/metadata/b", "value": 3},
                       {"op": "remove", "path": "/metadata/a"})
        self.assertEqual(result, {"b": 3})
        self.assertEqual(stored, {"a": 1})

    def test_add_overwrites(self):
        """add sets a key whether or not it exists."""
        self.assertEqual(patch({"a": 1}, {"op": "add", "path": "/metadata/a", "value": [2]}),
                         {"a": [2]})

    def test_missing_user_key_conflicts(self):
        """Tricky case v2 §10.5: replace or remove of a missing user key is a
        409 (Conflict) naming the key."""
        for op in ({"op": "replace", "path": "/metadata/nope", "value": 1},
                   {"op": "remove", "path": "/metadata/nope"}):
            error = self.assertRaises(Conflict, patch, {"a": 1}, op)
            self.assertIn("'nope'", str(error))

    def test_missing_reserved_key(self):
        """Tricky case v2 §10.5: removing a missing reserved key changes
        nothing; replacing one (absent) sets it."""
        self.assertEqual(patch({"a": 1}, {"op": "remove",
                                          "path": "/metadata/_default_message_ttl"}), {"a": 1})
        self.assertEqual(patch({}, {"op": "replace", "path": "/metadata/_default_message_ttl",
                                    "value": 300}), {"_default_message_ttl": 300})

    def test_other_underscore_keys_are_user_keys(self):
        """Only the reserved attributes are exempt: a missing '_other' key
        conflicts as any user key."""
        self.assertRaises(Conflict, patch, {}, {"op": "remove", "path": "/metadata/_other"})
