"""The line endpoint's ``auth TOKEN`` extension (``require_auth``) and its
TLS endpoint (``[drivers:transport:line] tls``)."""

import datetime

from twisted.internet import defer, endpoints, protocol, reactor, ssl
from twisted.internet.task import Clock
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.auth.strategies import strategy_from_config
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.line import make_factory
from tests.test_auth_http import write_token_file
from tests.test_line_protocol import START, Connection, parse_job, parse_yaml


class LineAuthTests(unittest.TestCase):
    """A factory requiring ``auth`` with the token strategy, over sqlite."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(START)
        self.driver = SqliteDriver(":memory:", self.clock)
        self.driver.open_now()
        self.addCleanup(self.driver.close)
        self.config = config.load(overrides=[
            ("auth", "strategy", "token"), ("auth", "token_file", write_token_file(self.mktemp())),
            ("drivers:transport:line", "require_auth", "true")])
        self.factory = make_factory(self.driver, self.config, self.clock,
                                    strategy=strategy_from_config(self.config, self.clock))

    def connect(self):
        connection = Connection(self.factory)
        self.addCleanup(lambda: connection.protocol._closed or connection.close())
        return connection

    def test_commands_before_auth(self):
        """Before auth every command answers UNAUTHORIZED, a put once its
        body is read (and nothing is stored); quit still closes."""
        c = self.connect()
        self.assertEqual(c.ask(b"stats"), b"UNAUTHORIZED\r\n")
        self.assertEqual(c.ask(b"use tube"), b"UNAUTHORIZED\r\n")
        self.assertEqual(c.send(b"put 0 0 60 5\r\nstats\r\n"), b"UNAUTHORIZED\r\n")
        self.assertEqual(c.ask(b"auth wrong"), b"UNAUTHORIZED\r\n")
        self.assertEqual(c.ask(b"peek-ready"), b"UNAUTHORIZED\r\n")
        counts = self.successResultOf(self.driver.jobs.counts(None))
        self.assertEqual(counts.ready, 0)
        c.ask(b"quit")
        self.assertTrue(c.transport.disconnecting)

    def test_token_project_is_the_connection_project(self):
        """After auth the connection's tubes are the token's project's
        queues: what alpha puts, beta (and the unauthenticated default
        project) never sees, over the line endpoint or storage."""
        alpha, beta = self.connect(), self.connect()
        self.assertEqual(alpha.ask(b"auth alpha-token"), b"AUTHENTICATED\r\n")
        self.assertEqual(beta.ask(b"auth beta-token"), b"AUTHENTICATED\r\n")
        job_id = alpha.put(b"alpha's")
        self.assertEqual(beta.ask(b"reserve-with-timeout 0"), b"TIMED_OUT\r\n")
        self.assertEqual(beta.ask(b"peek %d" % job_id), b"NOT_FOUND\r\n")
        self.assertEqual(parse_yaml(beta.ask(b"stats-tube default"))["current-jobs-ready"], "0")
        message = self.successResultOf(self.driver.messages.get("alpha", "default",
                                                                str(job_id)))
        self.assertEqual(message.body, "alpha's")
        self.assertEqual(parse_job(alpha.ask(b"reserve-with-timeout 0"))[0], job_id)

    def test_waiting_reserve_woken_in_its_project(self):
        """A reserve waiting on an authenticated connection is woken by a
        put of its project, not by one of another project."""
        alpha, beta, alpha2 = self.connect(), self.connect(), self.connect()
        for c, token in ((alpha, b"alpha-token"), (beta, b"beta-token"),
                         (alpha2, b"alpha-token")):
            c.ask(b"auth " + token)
        self.assertEqual(alpha.ask(b"reserve"), b"")
        beta.put(b"beta's")
        self.assertEqual(alpha.take(), b"")
        job_id = alpha2.put(b"alpha's")
        self.assertEqual(parse_job(alpha.take()), (job_id, b"alpha's"))

    def test_auth_twice_and_off(self):
        """A second auth is BAD_FORMAT (a connection's project never
        changes); without require_auth, auth is an unknown command."""
        c = self.connect()
        c.ask(b"auth alpha-token")
        self.assertEqual(c.ask(b"auth beta-token"), b"BAD_FORMAT\r\n")
        plain = make_factory(self.driver, config.load(), self.clock)
        self.assertEqual(Connection(plain).ask(b"auth alpha-token"), b"UNKNOWN_COMMAND\r\n")

    def test_reservations_given_back_in_their_project(self):
        """At a graceful stop an authenticated connection's reservation is
        given back in its project: the job is ready again."""
        c = self.connect()
        c.ask(b"auth alpha-token")
        job_id = c.put()
        parse_job(c.ask(b"reserve-with-timeout 0"))
        stopped = self.factory.release_all()
        c.close()  # the transport's loseConnection, done
        self.clock.advance(0)
        self.successResultOf(stopped)
        job = self.successResultOf(self.driver.jobs.peek("alpha", job_id))
        self.assertEqual(job.state, "ready")


def self_signed(tmp):
    """A key and self-signed certificate for localhost, in one PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with open(tmp, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return tmp, cert.public_bytes(serialization.Encoding.PEM)


class Reader(protocol.Protocol):
    def __init__(self):
        self.received = b""
        self.waiting = None
        self.lost = defer.Deferred()

    def connectionLost(self, reason):
        self.lost.callback(None)

    def close(self):
        self.transport.loseConnection()
        return self.lost

    def dataReceived(self, data):
        self.received += data
        if self.waiting is not None and self.received.endswith(b"\r\n"):
            d, self.waiting = self.waiting, None
            d.callback(self.received)

    def ask(self, line):
        self.received = b""
        self.waiting = defer.Deferred()
        self.transport.write(line + b"\r\n")
        return self.waiting


class LineTlsTests(unittest.TestCase):
    async def test_tls_endpoint_with_auth(self):
        """The tls setting is a Twisted ssl: endpoint serving the line
        protocol: a client trusting the self-signed certificate
        authenticates and puts over it on a real port."""
        pem, cert_pem = self_signed(self.mktemp())
        settings = config.load(overrides=[
            ("auth", "strategy", "token"), ("auth", "token_file", write_token_file(self.mktemp())),
            ("drivers:transport:line", "require_auth", "true"),
            ("drivers:transport:line", "tls", f"ssl:0:interface=127.0.0.1:privateKey={pem}")])
        driver = SqliteDriver(":memory:", reactor)
        await driver.open()
        self.addCleanup(driver.close)
        factory = make_factory(driver, settings, reactor,
                               strategy=strategy_from_config(settings, reactor))
        from marconi_tx import endpoints as marconi_endpoints

        port = await marconi_endpoints.server(reactor, settings.line.tls).listen(factory)
        self.addCleanup(port.stopListening)
        trust = ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(cert_pem)])
        client = endpoints.wrapClientTLS(
            ssl.optionsForClientTLS("localhost", trust),
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port))
        reader = await client.connect(protocol.Factory.forProtocol(Reader))
        self.addCleanup(reader.close)
        self.assertEqual(await reader.ask(b"stats"), b"UNAUTHORIZED\r\n")
        self.assertEqual(await reader.ask(b"auth alpha-token"), b"AUTHENTICATED\r\n")
        self.assertRegex(await reader.ask(b"put 0 0 60 2\r\nhi"), rb"INSERTED \d+\r\n")
