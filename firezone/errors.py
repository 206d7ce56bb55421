"""Errors raised by services and selectors; views map them to 4xx, sockets to Phoenix replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DomainError(Exception):
    """Base class: `code` is a stable machine name, the message is what a person reads."""

    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFound(DomainError):
    """Not found."""

    code = "not_found"


class Unauthorized(DomainError):
    """You are not allowed to do this."""

    code = "unauthorized"

    def __init__(
        self, message: str = "", *, reason: str = "unauthorized", missing: Sequence[str] = ()
    ) -> None:
        super().__init__(message or "You are not allowed to do this.", code="unauthorized")
        self.reason = reason
        self.missing = tuple(missing)


class Refused(DomainError):
    """A business rule refuses the change (last admin, last provider, synced group...)."""

    code = "refused"


class LimitReached(Refused):
    """An account limit of the plan is reached.

    The message is the portal's sentence; `reason` the REST API's short one (portal.md §5.1,
    e.g. "Seat Limit Reached").
    """

    def __init__(self, message: str, *, code: str, reason: str) -> None:
        super().__init__(message, code=code)
        self.reason = reason


class ValidationFailed(DomainError):
    """Bad input: `errors` maps a field name to its messages; nothing was written."""

    code = "invalid"

    def __init__(self, errors: Mapping[str, Sequence[str]] | str, field: str = "__all__") -> None:
        if isinstance(errors, str):
            errors = {field: [errors]}
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items()}
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())
        super().__init__(summary, code="invalid")
