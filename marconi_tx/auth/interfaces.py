"""The interface of an authentication strategy."""

from zope.interface import Interface


class IAuthStrategy(Interface):
    def authenticate(token):
        """The ``Identity`` of ``token`` (str), or None when it is not valid (401).

        Returns the Identity (or None) itself when it is known at once, else a
        Deferred of it; raises or fails with ``errors.ServiceUnavailable``
        when the authority cannot answer (503)."""
