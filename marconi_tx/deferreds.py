"""The one adaptor between ``async def`` code and Deferred-based callers.

Handlers, controllers and client methods are written as coroutines; where a
caller needs a Deferred (a storage interface method, Twisted code adding
callbacks) the coroutine function is decorated with ``returns_deferred``.
"""

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from twisted.internet.defer import Deferred

P = ParamSpec("P")
T = TypeVar("T")


def returns_deferred(
        function: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, "Deferred[T]"]:
    """Make calling the ``async def`` ``function`` return a Deferred (which
    Twisted code can add callbacks to, and coroutines can await)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> "Deferred[T]":
        return Deferred.fromCoroutine(function(*args, **kwargs))

    return wrapper
