"""The strategy ``[auth] strategy`` names, built from the settings.

``noauth`` is no strategy at all (None): the HTTP API and the line endpoint
then serve exactly as without this package, the project named by each
request (``X-Project-ID``) or by ``[drivers:transport:line] project``.
"""

from importlib import import_module

from marconi_tx import config as _config
from marconi_tx import endpoints

#: The strategy names of ``[auth] strategy``.
NAMES = ("noauth", "token", "keystone")


def strategy_from_config(config, reactor):
    """The IAuthStrategy of ``config`` (None: noauth); ConfigError when it
    cannot be built (a token file missing or wrong)."""
    name = config.auth.strategy
    if name == "token":
        from marconi_tx.auth.tokens import TokenFileError, TokenStrategy

        if not config.auth.token_file:
            raise _config.ConfigError("[auth] strategy = token needs [auth] token_file")
        try:
            return TokenStrategy(config.auth.token_file)
        except TokenFileError as e:
            raise _config.ConfigError(f"[auth] token_file: {e}")
    if name == "keystone":
        # Imported only when used: it brings treq's client machinery.
        keystone = import_module("marconi_tx.auth.keystone")
        return keystone.KeystoneStrategy(config.keystone, reactor)
    return None


def check(config):
    """ConfigError when the ``[auth]`` settings contradict each other."""
    if config.line.require_auth and config.auth.strategy == "noauth":
        raise _config.ConfigError("[drivers:transport:line] require_auth needs an [auth] "
                                  "strategy (token or keystone), not noauth")


def unauthenticated_endpoints(config):
    """The listening endpoints (strports descriptions) that serve without
    credentials on an address other than loopback or a unix socket: the
    HTTP API's with noauth, the line endpoints' without require_auth."""
    listed = []
    if config.auth.strategy == "noauth":
        listed.append(config.drivers.http)
    if not config.line.require_auth:
        listed += [config.drivers.line, config.line.tls]
    return [d for d in listed if d and not endpoints.is_local(d)]


def warn_unauthenticated(log, config):
    """Log one loud warning naming ``unauthenticated_endpoints``, if any."""
    exposed = unauthenticated_endpoints(config)
    if exposed:
        log.warn("!!! NO AUTHENTICATION on {endpoints}: anyone who reaches them can read, "
                 "claim and delete every project's messages. Set [auth] strategy (and "
                 "[drivers:transport:line] require_auth), or listen on loopback or a unix "
                 "socket. !!!", endpoints=", ".join(exposed))
