"""The strategy ``[auth] strategy`` names, built from the settings.

``noauth`` is no strategy at all (None): the HTTP API and the line endpoint
then serve exactly as without this package, the project named by each
request (``X-Project-ID``) or by ``[drivers:transport:line] project``.
"""

from marconi_tx import config as _config

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
        from marconi_tx.auth.keystone import KeystoneStrategy

        return KeystoneStrategy(config.keystone, reactor)
    return None
