"""``GET /metrics``: the daemon's metrics in the Prometheus text format.

Every daemon process has its own ``Metrics`` (its own registry: with
``--workers N`` a scrape reaches one process, see the README's "Metrics").
The families, all documented in the README:

* ``marconi_http_requests_total{route,method,status}`` and
  ``marconi_http_request_duration_seconds{route,method}``, counted by the
  Router (``http.RouteMetrics``), labelled by route template;
* ``marconi_messages_{posted,claimed,deleted}_total``,
  ``marconi_expired_records_total`` and
  ``marconi_storage_errors_total{operation}``, counted by the driver the
  transports are given (``storage.CountedDriver``);
* ``marconi_queue_messages{project,queue,state}``, refreshed in the
  background (``depth.QueueDepths``);
* ``marconi_line_connections`` and ``marconi_line_commands_total{command}``,
  read from the line endpoint's own counters at scrape time (``line``);
* ``process_*`` (prometheus_client's ProcessCollector).
"""

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector

from marconi_tx.metrics.depth import QueueDepths
from marconi_tx.metrics.http import HttpCollector, RouteMetrics, scrape_endpoint
from marconi_tx.metrics.line import LineCollector
from marconi_tx.metrics.storage import CountedDriver, Counts, StorageCollector

#: Latency buckets, seconds: a small request takes a fraction of a millisecond
#: in process, a claim or a page of a deep queue tens of milliseconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
           5.0, 10.0)

#: The route label of requests that matched no route (404, 405, bad paths).
UNMATCHED = "unmatched"


class Metrics:
    """The registry of one daemon process and the instruments feeding it.

    @param clock: the IReactorTime timing requests and the depth refresh.
    @param depth_interval: seconds between refreshes of the queue depths.
    @param depth_queues: most queues whose depth is shown (0: none).
    """

    def __init__(self, clock, depth_interval=15.0, depth_queues=100):
        self.clock = clock
        self.depth_interval = depth_interval
        self.depth_queues = depth_queues
        self.routes = {}  # route template -> RouteMetrics
        self.counts = Counts()
        r = self.registry = CollectorRegistry()
        r.register(HttpCollector(self.routes, BUCKETS))
        r.register(StorageCollector(self.counts))
        self.queue_messages = Gauge(
            "marconi_queue_messages", "Messages of recently active queues, by state "
            "(free, claimed), refreshed in the background.", ("project", "queue", "state"),
            registry=r)
        ProcessCollector(registry=r)
        self.depths = None

    def route(self, template):
        """The instruments of one route (created once, then shared)."""
        route = self.routes.get(template)
        if route is None:
            route = self.routes[template] = RouteMetrics(template, self.clock.seconds,
                                                         BUCKETS)
        return route

    def unmatched(self):
        return self.route(UNMATCHED)

    def watch_storage(self, driver):
        """The driver the transports should use: ``driver``, counted. The
        depth refresh (``self.depths``, a Service) reads ``driver`` itself."""
        self.depths = QueueDepths(driver, self.queue_messages, self.clock,
                                  self.depth_interval, self.depth_queues)
        return CountedDriver(driver, self.counts)

    def watch_line(self, factory):
        """Report the connections and commands of a line endpoint's factory."""
        self.registry.register(LineCollector(factory))

    def endpoint(self):
        """The Klein endpoint answering ``GET /metrics``."""
        return scrape_endpoint(self.registry)


def daemon_metrics(config, clock):
    """The Metrics of a daemon with settings ``config``; None when
    ``[drivers] metrics`` is off."""
    drivers = config.drivers
    if not drivers.metrics:
        return None
    return Metrics(clock, drivers.metrics_depth_interval, drivers.metrics_depth_queues)
