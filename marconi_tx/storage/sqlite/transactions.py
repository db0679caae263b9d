"""How sqlite controller methods run: reads now, writes in a transaction.

The controllers and the driver both build on this module; it imports
neither, so the driver can import the controllers.
"""

import functools
import sqlite3

from twisted.internet import defer

from marconi_tx import errors, json_text

dump_json = json_text.encoder()


def run_now(call, *args, **kwargs):
    """``call(*args, **kwargs)`` as an already fired Deferred, engine
    failures turned into ``StorageUnavailable``."""
    try:
        return defer.succeed(call(*args, **kwargs))
    except sqlite3.Error as e:
        return defer.fail(errors.StorageUnavailable(f"sqlite: {e}"))
    except Exception:
        return defer.fail()


def deferred(method):
    """A read: the controller method runs now, in the reactor thread (see
    ``run_now``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return run_now(method, self, *args, **kwargs)

    return wrapper


def writes(method):
    """A write: the controller method ``method(self, db, ...)`` is called
    with the connection inside a write transaction (``SqliteDriver.submit``);
    its caller omits ``db`` and gets a Deferred of the result, fired after
    the COMMIT."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return self.driver.submit(lambda db: method(self, db, *args, **kwargs))

    return wrapper


def unavailable(failure):
    """An errback: engine failures become ``StorageUnavailable``."""
    failure.trap(sqlite3.Error)
    raise errors.StorageUnavailable(f"sqlite: {failure.value}")
