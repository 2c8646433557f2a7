"""What can go wrong calling an external provider, split by what the workflow does next.

- :class:`Declined`: the provider understood and said no (card declined, address rejected).
  Retrying cannot help; the workflow compensates.
- :class:`Unavailable`: the provider could not answer (5xx, timeout, connection refused,
  circuit open). The call may or may not have taken effect; retrying with the same
  idempotency key is safe and is what the workflow does, with backoff.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed; `provider` and `operation` say which."""

    def __init__(self, provider: str, operation: str, message: str) -> None:
        super().__init__(f"{provider} {operation}: {message}")
        self.provider = provider
        self.operation = operation
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:  # DBOS pickles a step's error with its result
        return (type(self), (self.provider, self.operation, self.message))


class Declined(ProviderError):
    """A final business refusal; `code` is the provider's reason code."""

    def __init__(self, provider: str, operation: str, message: str, code: str = "declined") -> None:
        super().__init__(provider, operation, message)
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.provider, self.operation, self.message, self.code))


class Unavailable(ProviderError):
    """A transient failure: retry later with the same idempotency key."""


class BreakerOpen(Unavailable):
    """The provider's circuit breaker is open: the call was not attempted."""
