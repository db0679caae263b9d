"""Zaqar's WSGI application, configured from the file ``$ZAQAR_BENCH_CONFIG``.

Loaded by the WSGI server of Zaqar's own virtualenv (``bench.zaqar`` runs
``gunicorn bench.zaqar_app:application`` there), never by marconi_tx's:
it imports only Zaqar. Zaqar's ``zaqar.transport.wsgi.app`` reads only the
standard configuration paths (``/etc/zaqar/zaqar.conf`` and the like); this
is the same start-up with the harness's file instead.
"""

import os

from oslo_config import cfg
from oslo_log import log
from zaqar import bootstrap
from zaqar.common import consts


def make_application(path):
    conf = cfg.CONF
    log.register_options(conf)
    conf(project="zaqar", prog="zaqar-bench", args=["--config-file", path])
    log.setup(conf, "zaqar")
    boot = bootstrap.Bootstrap(conf)
    conf.drivers.transport = consts.TRANSPORT_WSGI
    return boot.transport.app


application = make_application(os.environ["ZAQAR_BENCH_CONFIG"])
