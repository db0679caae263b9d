"""``twistd marconi``: command-line options and the service tree."""

import gc
import os

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage

from marconi_tx import __version__, config, endpoints, lifecycle, limits, logs, storage, workers
from marconi_tx.auth import strategies
from marconi_tx.expiry import ExpiryService
from marconi_tx.metrics import daemon_metrics
from marconi_tx.notification.notifier import Notifier
from marconi_tx.transport.http.app import build_resource
from marconi_tx.transport.http.site import make_site

#: Command-line flag -> [drivers] option it overrides.
_FLAGS = {"http": "http", "storage": "storage", "line": "line", "gc-interval": "gc_interval",
          "workers": "workers"}


class Options(usage.Options):
    synopsis = ("[--config FILE] [--http ENDPOINT] [--storage URI] [--line ENDPOINT] "
                "[--gc-interval SECONDS] [--workers N]")
    optParameters = [
        ["config", "c", None, "INI configuration file (etc/marconi.conf documents it)."],
        ["http", None, None, "strports endpoint of the HTTP API "
                             "[default: tcp:8888:interface=127.0.0.1]."],
        ["storage", None, None, "Storage URI: sqlite:PATH, sqlite::memory: or "
                                "mongodb://HOST:PORT/DB [default: sqlite:var/marconi.db]."],
        ["line", None, None, "strports endpoint of the beanstalkd-style TCP endpoint "
                             "[default: off]."],
        ["gc-interval", None, None, "Seconds between expiry runs [default: 30]."],
        ["workers", None, None, "Processes serving the HTTP port [default: 1]."],
    ]

    def opt_version(self):
        """Display marconi_tx's version and exit."""
        print(f"marconi_tx {__version__}")
        raise SystemExit(0)

    def postOptions(self):
        overrides = [("drivers", name, self[flag])
                     for flag, name in _FLAGS.items() if self[flag] is not None]
        try:
            self.config = config.load(self["config"], overrides)
            _check_storage(self.config)
            for name in ("http", "line"):
                description = getattr(self.config.drivers, name)
                if description:
                    _check_endpoint(name, description)
            if self.config.line.tls:
                _check_endpoint("line tls", self.config.line.tls)
            strategies.check(self.config)
            if self.config.drivers.workers > 1:
                _check_workers(self.config)
        except config.ConfigError as e:
            # One line, no usage dump and no traceback; exit status 1.
            raise SystemExit(f"marconi: {e}")


def _check_storage(cfg):
    uri = cfg.drivers.storage
    if uri.startswith("sqlite:") and uri != "sqlite::memory:":
        folder = os.path.dirname(os.path.abspath(uri[len("sqlite:"):]))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise config.ConfigError(f"storage {uri!r}: cannot create {folder}: {e.strerror}")
        if not os.access(folder, os.W_OK):
            raise config.ConfigError(f"storage {uri!r}: {folder} is not writable")
    storage.driver_from_config(cfg, None)  # rejects unknown URIs


def _check_endpoint(name, description):
    from twisted.internet import reactor

    try:
        endpoints.server(reactor, description)
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise config.ConfigError(f"{name} endpoint {description!r} is not valid ({e})")


def _check_workers(cfg):
    if cfg.drivers.storage == "sqlite::memory:":
        raise config.ConfigError("workers > 1 needs a storage the workers can share "
                                 "(a sqlite file or MongoDB), not sqlite::memory:")
    workers.listen_address(cfg.drivers.http)


class StorageService(Service):
    """Opens the driver before the transports listen, closes it last."""

    log = Logger()

    def __init__(self, driver, reactor, uri):
        self.driver = driver
        self.reactor = reactor
        self.uri = uri
        self.opened = defer.Deferred()  # fires once the driver is open

    def startService(self):
        super().startService()
        d = self.driver.open()
        d.addCallbacks(self.opened.callback, self._failed)

    def _failed(self, failure):
        lifecycle.fail(f"cannot open storage {logs.mask_uri(self.uri)}: "
                       f"{failure.getErrorMessage()}", self.reactor)

    def stopService(self):
        super().stopService()
        return self.driver.close()


class GarbageCollection(Service):
    """
    Tunes the cyclic garbage collector once the daemon runs.

    * **Start-up objects are frozen** (``gc.freeze``). Modules, routes,
      configuration: tens of thousands of objects that live until exit, yet
      every full collection walked them all. Under load full collections
      came about once a second and took 30-40 ms each on the bench machine,
      stalling every request in flight: the p99 of small posts at 16
      connections went from 23 ms to 4 ms once they were frozen.
    * **The youngest generation is collected after ``YOUNG_THRESHOLD``
      allocations, not 700.** A request in flight holds about a hundred
      containers (request, headers, coroutine, Deferreds); with 64 in flight
      each young collection found most of what it walked alive and promoted
      it, to be walked again by the older generations. The raised threshold
      lets requests finish, and free their objects, between collections.
    """

    #: Net allocations of containers between young collections.
    YOUNG_THRESHOLD = 10000

    def __init__(self, reactor):
        self.reactor = reactor

    def startService(self):
        super().startService()
        self.reactor.callWhenRunning(self.tune)

    @classmethod
    def tune(cls):
        gc.collect()  # what is garbage already must not be kept forever
        gc.freeze()
        gc.set_threshold(cls.YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _max_body(cfg):
    # The largest body any route accepts; claim bodies are tiny.
    return max(cfg.transport.max_message_size, cfg.transport.max_queue_metadata, 4096)


def makeService(options):
    from twisted.internet import reactor

    cfg = options.config
    driver = storage.driver_from_config(cfg, reactor)
    logs.twistd_options = getattr(options, "parent", None) or {}  # for logs.json_observer
    logs.log_start(StorageService.log, cfg)
    try:
        strategy = strategies.strategy_from_config(cfg, reactor)
    except config.ConfigError as e:
        lifecycle.fail(str(e))
    # The workers' line endpoints are off and their port is the parent's:
    # only the parent listens on the TLS line endpoint and warns.
    worker = workers.WORKER_ENV in os.environ
    tls = "" if worker else cfg.line.tls
    if not worker:
        strategies.warn_unauthenticated(StorageService.log, cfg)
    share = limits.automatic_share(limits.raise_open_files()[1],
                                   2 if cfg.drivers.line or tls else 1)
    # Stopped last started first (lifecycle): the listening ports, then the
    # drain of connections (and the workers, at the same time), ..., storage.
    root = lifecycle.OrderedShutdown()
    listening, draining = MultiService(), MultiService()
    opening = StorageService(driver, reactor, cfg.drivers.storage)
    opening.setServiceParent(root)
    metrics = daemon_metrics(cfg, reactor)  # None when [drivers] metrics is off
    served = driver if metrics is None else metrics.watch_storage(driver)  # counted
    site = make_site(build_resource(served, cfg, metrics, strategy), _max_body(cfg),
                     access_log=cfg.drivers.access_log or None,
                     max_connections=cfg.drivers.http_max_connections or share,
                     max_unsent=cfg.drivers.max_unsent_bytes,
                     log_interval=cfg.drivers.log_interval)
    reloads = [strategy.reload] if hasattr(strategy, "reload") else []  # the token file's
    if cfg.drivers.workers == 1:
        lifecycle.Listener(cfg.drivers.http, endpoints.service(reactor, cfg.drivers.http, site)
                           ).setServiceParent(listening)
    else:
        family, host, port, backlog = workers.listen_address(cfg.drivers.http)
        try:
            sock = workers.reuseport_socket(family, host, port, backlog)
        except OSError as e:
            raise SystemExit(f"marconi: cannot listen on {cfg.drivers.http}: {e.strerror}")
        address = (family, host, sock.getsockname()[1], backlog)
        workers.AdoptedPort(sock, site, reactor).setServiceParent(listening)
        long_poll = cfg.transport.max_claim_wait > 0  # claims waiting in any process
        pool = workers.WorkerPool(cfg.drivers.workers - 1, address,
                                  workers.worker_argv(options["config"], cfg, family), reactor,
                                  driver.events if cfg.drivers.line or long_poll else None,
                                  relay=long_poll)
        pool.shutdown_timeout = cfg.drivers.shutdown_timeout
        reloads.append(pool.hangup)  # SIGHUP reaches the workers too
        pool.setServiceParent(draining)
    line = None
    if cfg.drivers.line or tls:
        from marconi_tx.transport.line import make_factory

        line = make_factory(served, cfg, reactor, cfg.drivers.line_max_connections or share,
                            _ledger(cfg), strategy)
        opening.opened.addCallback(lambda _: line.release_recorded())
        if metrics is not None:
            metrics.watch_line(line)
        for description in filter(None, (cfg.drivers.line, tls)):
            lifecycle.Listener(description, endpoints.service(reactor, description, line)
                               ).setServiceParent(listening)
    ExpiryService(served, cfg.drivers.gc_interval, reactor).setServiceParent(root)
    if cfg.notification.delivery and workers.WORKER_ENV not in os.environ:
        # Deliveries to subscribers: from the daemon's process only.
        Notifier(driver, cfg, reactor, opened=opening.opened).setServiceParent(root)
    if metrics is not None:
        metrics.depths.setServiceParent(root)
    if workers.WORKER_ENV in os.environ:
        workers.ParentWatch(reactor, driver.events).setServiceParent(root)
    GarbageCollection(reactor).setServiceParent(root)
    lifecycle.Reopen([site], reactor, reloads).setServiceParent(root)
    lifecycle.Drain(site, line, cfg.drivers.shutdown_timeout, reactor).setServiceParent(draining)
    draining.setServiceParent(root)
    listening.setServiceParent(root)
    return root


def _ledger(cfg):
    """The line endpoint's ReservationLedger, or None."""
    from marconi_tx.transport.line.ledger import LedgerInUse, ReservationLedger

    path = cfg.line.reservations_file
    if not path:
        return None
    try:
        return ReservationLedger(path, cfg.line.project or None)
    except LedgerInUse:
        raise SystemExit(f"marconi: {path} is in use by another daemon: give each its own "
                         "[drivers:transport:line] reservations_file")
    except OSError as e:
        raise SystemExit(f"marconi: cannot open {path}: {e.strerror}")
