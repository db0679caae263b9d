"""The identity an authentication strategy gives a request."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    #: The project whose resources the request may use.
    project: str
    #: Role names, lower case.
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles
