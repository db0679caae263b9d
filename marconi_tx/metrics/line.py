"""The line endpoint's metrics, read at scrape time from the counters its
factory keeps anyway (for beanstalkd's ``stats``): nothing is added to the
handling of a command."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class LineCollector:
    """A prometheus_client collector over one ``LineFactory``."""

    def __init__(self, factory):
        self.factory = factory

    def collect(self):
        factory = self.factory
        yield GaugeMetricFamily("marconi_line_connections",
                                "Open connections to the line endpoint.",
                                value=len(factory.connections))
        yield CounterMetricFamily("marconi_line_connections_accepted",
                                  "Connections the line endpoint accepted.",
                                  value=factory.total_connections)
        commands = CounterMetricFamily("marconi_line_commands",
                                       "Line commands run, by command name.",
                                       labels=("command",))
        for name, count in sorted(factory.commands.items()):
            commands.add_metric((name,), count)
        yield commands
