"""marconi_tx.transport.http.signed_urls: pre-signed URLs of API v2
(api-v2.md §5): the share document, its signature, and its verification."""

import calendar
import hashlib
import hmac
import time

from twisted.trial import unittest

from marconi_tx.errors import ValidationError
from marconi_tx.transport.http import signed_urls

KEY = "s3cret"
#: 2026-01-01T00:00:00 UTC.
NOW = float(calendar.timegm((2026, 1, 1, 0, 0, 0)))


def share(doc=None, project="p1", queue="jobs", key=KEY, now=NOW):
    return signed_urls.share({} if doc is None else doc, project, queue, key, now)


def headers(doc):
    return {"URL-Signature": doc["signature"], "URL-Expires": doc["expires"],
            "URL-Methods": ",".join(doc["methods"]), "URL-Paths": ",".join(doc["paths"]),
            "X-Project-ID": doc["project"]}


class ShareTests(unittest.SynchronousTestCase):
    def refused(self, doc, **kwargs):
        error = self.assertRaises(ValidationError, share, doc, **kwargs)
        self.assertEqual(error.title, "Invalid share request")
        return error

    def test_document(self):
        """The spec's example: sorted full paths and methods, the expiry
        normalised, the project, a 64-hex signature."""
        doc = share({"paths": ["messages", "claims"], "methods": ["POST", "GET"],
                     "expires": "2030-01-01T00:00:00"})
        self.assertEqual({k: v for k, v in doc.items() if k != "signature"},
                         {"project": "p1", "expires": "2030-01-01T00:00:00",
                          "paths": ["/v2/queues/jobs/claims", "/v2/queues/jobs/messages"],
                          "methods": ["GET", "POST"]})
        self.assertRegex(doc["signature"], r"\A[0-9a-f]{64}\Z")

    def test_signature_is_upstreams(self):
        """Tricky case v2 §10.11: the signature is the HMAC-SHA256 of paths,
        methods, project and expires joined by the two characters backslash
        and n (not a newline); no project is the string None."""
        for project in ("p1", None):
            doc = share({"paths": ["messages", "claims"], "methods": ["POST", "GET"],
                         "expires": "2030-01-01T00:00:00"}, project=project)
            text = ("/v2/queues/jobs/claims,/v2/queues/jobs/messages\\nGET,POST\\n"
                    f"{project}\\n2030-01-01T00:00:00")
            self.assertEqual(len(text.split("\\n")), 4)
            self.assertNotIn("\n", text)
            self.assertEqual(doc["signature"],
                             hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest())

    def test_defaults(self):
        """No body: messages, GET, and an expiry 24 hours from now."""
        doc = share()
        self.assertEqual((doc["paths"], doc["methods"], doc["expires"]),
                         (["/v2/queues/jobs/messages"], ["GET"], "2026-01-02T00:00:00"))
        self.assertEqual(share({"paths": [], "methods": []})["paths"],
                         ["/v2/queues/jobs/messages"])

    def test_expiry_normalised_to_utc(self):
        """An ISO 8601 expiry with a zone or a fraction comes back in UTC, to
        the second, without zone."""
        for given in ("2030-01-01T01:00:00+01:00", "2030-01-01T00:00:00Z",
                      "2030-01-01T00:00:00.999", "2029-12-31T19:00:00-05:00", "2030-01-01"):
            self.assertEqual(share({"expires": given})["expires"], "2030-01-01T00:00:00", given)

    def test_tricky_refusals(self):
        """Tricky case v2 §10.11: an unknown body key, an invalid path, an
        integer expires (number or digits) and a past expires are 400s."""
        self.assertIn("Unknown keys: ttl", self.refused({"ttl": 5}).description)
        self.assertIn("'paths'", self.refused({"paths": ["queues"]}).description)
        for expires in (1893456000, "1893456000", "20300101", "+5"):
            self.assertIn("ISO 8601", self.refused({"expires": expires}).description)
        for expires in ("2025-12-31T23:59:59", "2026-01-01T00:00:00", "2026-01-01T01:00:00+01:00"):
            self.assertIn("future", self.refused({"expires": expires}).description)

    def test_malformed_lists_and_dates(self):
        """Non-list paths or methods, non-string or unknown items, and dates
        that are not ISO 8601 (or overflow in UTC) are 400s, never crashes."""
        for doc in ({"paths": "messages"}, {"paths": [["messages"]]}, {"paths": [{}]},
                    {"methods": "GET"}, {"methods": ["get"]}, {"methods": ["GET,POST"]},
                    {"methods": [1]}, {"expires": "tomorrow"}, {"expires": "2030-13-01"},
                    {"expires": ["2030"]}, {"expires": "9999-12-31T23:00:00-05:00"}):
            self.refused(doc)

    def test_no_secret_key(self):
        """Without [signed_url] secret_key share is a 400 saying so."""
        self.assertIn("secret_key", self.refused({}, key="").description)


class VerifyTests(unittest.SynchronousTestCase):
    def setUp(self):
        self.doc = share({"paths": ["messages", "claims"], "methods": ["GET", "POST"],
                          "expires": "2026-01-01T01:00:00"})
        self.headers = headers(self.doc)

    def verify(self, method="GET", path="/v2/queues/jobs/messages", key=KEY, now=NOW,
               **changed):
        given = dict(self.headers, **{name.replace("_", "-"): value
                                      for name, value in changed.items()})
        return signed_urls.verify(method, path, given, key, now)

    def test_valid_grants_its_project(self):
        """Tricky case v2 §10.11: the share's headers grant its project its
        methods on its paths and below them (…/messages/{id})."""
        for method, path in (("GET", "/v2/queues/jobs/messages"),
                             ("POST", "/v2/queues/jobs/claims"),
                             ("GET", "/v2/queues/jobs/messages/5a1b2c"),
                             ("GET", "/v2/queues/jobs/claims/5a1b2c")):
            self.assertEqual(self.verify(method, path), "p1")

    def test_wrong_method_or_path(self):
        """Tricky case v2 §10.11: a method or a path the share does not name
        grants nothing."""
        self.assertIsNone(self.verify("DELETE"))
        self.assertIsNone(self.verify("HEAD"))
        for path in ("/v2/queues/jobs", "/v2/queues/jobs/purge", "/v2/queues/other/messages",
                     "/v2/queues/jobs/subscriptions"):
            self.assertIsNone(self.verify(path=path))

    def test_tampered(self):
        """Tricky case v2 §10.11: changing the signature, or any signed value
        (methods, paths, project, expiry), grants nothing."""
        sig = self.doc["signature"]
        tampered = ("0" if sig[0] != "0" else "1") + sig[1:]
        for changed in ({"URL_Signature": tampered}, {"URL_Signature": sig.upper()},
                        {"URL_Signature": ""}, {"URL_Signature": "\u00e9" * 64},
                        {"URL_Methods": "GET,POST,DELETE"},
                        {"URL_Paths": "/v2/queues/jobs/messages"},
                        {"X_Project_ID": "p2"},
                        {"URL_Expires": "2026-01-01T02:00:00"}):
            self.assertIsNone(self.verify(**changed), changed)

    def test_expired(self):
        """At or after its expiry a signature grants nothing."""
        self.assertEqual(self.verify(now=NOW + 3599), "p1")
        self.assertIsNone(self.verify(now=NOW + 3600))

    def test_missing_header_or_key(self):
        """A missing header, an unparsable expiry, or no secret key (or
        another one) grants nothing."""
        for name in self.headers:
            self.assertIsNone(self.verify(**{name.replace("-", "_"): None}), name)
        self.assertIsNone(self.verify(URL_Expires="soon"))
        self.assertIsNone(self.verify(key=""))
        self.assertIsNone(self.verify(key="other"))

    def test_equivalent_expiry_text(self):
        """The expiry header is normalised as share normalises it, so the
        same moment written with a zone verifies too."""
        self.assertEqual(self.verify(URL_Expires="2026-01-01T02:00:00+01:00"), "p1")

    def test_paths_are_literal(self):
        """URL-Paths entries are not compiled: a '.' of a v2 queue name
        matches only a dot, an invalid pattern is no error, and a
        backtracking pattern cannot hang the server. Even signed with the
        key, such entries only match the text they are."""
        doc = share(queue="a.b")
        self.assertIsNone(signed_urls.verify("GET", "/v2/queues/aXb/messages", headers(doc),
                                             KEY, NOW))
        self.assertEqual(signed_urls.verify("GET", "/v2/queues/a.b/messages", headers(doc),
                                            KEY, NOW), "p1")
        for pattern in ("[", "(a+)+$", "/v2/queues/.*/messages", ""):
            expires = "2026-01-01T01:00:00"
            given = {"URL-Signature": signed_urls.signature(KEY, [pattern], ["GET"], "p1",
                                                            expires),
                     "URL-Expires": expires, "URL-Methods": "GET", "URL-Paths": pattern,
                     "X-Project-ID": "p1"}
            started = time.monotonic()
            self.assertIsNone(signed_urls.verify("GET", "/v2/queues/" + "a" * 5000 + "!",
                                                 given, KEY, NOW), pattern)
            self.assertLess(time.monotonic() - started, 1.0)
