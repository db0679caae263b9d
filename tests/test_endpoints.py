"""marconi_tx.endpoints: the defaults marconi adds to strports descriptions."""

import os
import shutil
import stat
import tempfile

from twisted.internet import reactor
from twisted.internet.endpoints import AdoptedStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from marconi_tx import endpoints


class UnixModeTests(TestCase):
    """Unix sockets are private to the daemon's user unless told otherwise."""

    def listen(self, description):
        service = endpoints.service(reactor, description, Factory.forProtocol(Protocol))
        service.startService()
        self.addCleanup(service.stopService)

    def short_folder(self):
        """A folder with a short path: AF_UNIX paths are limited to 107 bytes,
        and trial's temporary folders under a deep checkout are longer."""
        folder = tempfile.mkdtemp(prefix="mx-", dir="/tmp")
        self.addCleanup(shutil.rmtree, folder, True)
        return folder

    def mode_of(self, path):
        return stat.S_IMODE(os.stat(path).st_mode)

    def test_default_mode_is_0600(self):
        """A ``unix:`` description without ``mode=`` creates a 0600 socket
        (Twisted alone creates 0666)."""
        path = os.path.join(self.short_folder(), "s")
        self.listen(f"unix:{path}")
        self.assertEqual(self.mode_of(path), 0o600)

    def test_explicit_mode_is_kept(self):
        """A ``mode=`` in the description is the socket's mode."""
        path = os.path.join(self.short_folder(), "s")
        self.listen(f"unix:{path}:mode=660")
        self.assertEqual(self.mode_of(path), 0o660)

    def test_escaped_colon_in_path(self):
        """A backslash-escaped colon stays part of the path, and the default
        mode still applies."""
        path = os.path.join(self.short_folder(), "a:b")
        self.listen("unix:" + path.replace(":", "\\:"))
        self.assertEqual(self.mode_of(path), 0o600)


class PassedSocketsTests(SynchronousTestCase):
    """Sockets passed by systemd or a launcher like it."""

    def test_unnamed_sockets_are_indexable(self):
        """``LISTEN_FDS`` without ``LISTEN_FDNAMES`` (systemd-socket-activate
        without --fdname) still gives the sockets, named ``unknown``."""
        passed = endpoints.passed_sockets({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2"})
        self.assertEqual(passed.inheritedDescriptors(), [3, 4])
        self.assertEqual(passed.inheritedNamedDescriptors(), {"unknown": 4})

    def test_named_sockets(self):
        """Names from ``LISTEN_FDNAMES`` map to descriptors from 3 on."""
        passed = endpoints.passed_sockets({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2",
                                           "LISTEN_FDNAMES": "http:line"})
        self.assertEqual(passed.inheritedNamedDescriptors(), {"http": 3, "line": 4})

    def test_sockets_for_another_process(self):
        """Sockets announced for another pid are not this process's."""
        passed = endpoints.passed_sockets({"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"})
        self.assertEqual(passed.inheritedDescriptors(), [])

    def test_start_environment_is_read(self):
        """Without an argument the sockets come from the environment this
        process started with: this test process was given none."""
        self.assertEqual(endpoints.passed_sockets().inheritedDescriptors(), [])


class SystemdDescriptionTests(SynchronousTestCase):
    """``systemd:`` descriptions: adopted sockets or one clear error."""

    def error(self, description):
        with self.assertRaises(ValueError) as raised:
            endpoints.server(reactor, description)
        return str(raised.exception)

    def test_nothing_passed(self):
        """Outside socket activation the error says no socket was passed."""
        self.assertIn("systemd passed no socket", self.error("systemd:domain=INET:index=0"))

    def test_neither_index_nor_name(self):
        """The description needs exactly one of index and name."""
        self.assertIn("systemd:domain=INET:index=N", self.error("systemd:domain=INET"))
        self.assertIn("systemd:domain=INET:index=N",
                      self.error("systemd:domain=INET:index=0:name=http"))

    def test_unknown_domain(self):
        """A domain that is no address family is named in the error."""
        self.assertIn("'NOPE'", self.error("systemd:domain=NOPE:index=0"))

    def test_other_kinds_go_to_twisted(self):
        """Descriptions other than unix: and systemd: are Twisted's."""
        self.assertRaises(ValueError, endpoints.server, reactor, "tcp:notaport")

    def test_adopted_endpoint(self):
        """With a socket passed, the endpoint adopts its descriptor."""
        passed = endpoints.passed_sockets({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"})
        self.patch(endpoints, "passed_sockets", lambda: passed)
        endpoint = endpoints.server(reactor, "systemd:domain=INET:index=0")
        self.assertIsInstance(endpoint, AdoptedStreamServerEndpoint)
        self.assertEqual(endpoint.fileno, 3)
        self.assertIn("no socket at index 1: systemd passed 1",
                      self.error("systemd:domain=INET:index=1"))
        self.assertIn("no socket named 'web'", self.error("systemd:domain=INET:name=web"))
