"""HTTP transport shared by the provider adapters: JSON over httpx, an idempotency key on
every write, per-operation timeouts, and the provider's answer mapped to our errors.

Status mapping (the Stripe/Adyen convention): 2xx is the result; 402, 409 and 422 are
:class:`Declined` with the provider's error code; other 4xx are our bugs and raise
:class:`ProviderError`; 5xx, 429, timeouts and connection errors are :class:`Unavailable`.
"""

from __future__ import annotations

from typing import Any

import httpx

from marketpilot.workflows.integrations.breaker import CircuitBreaker
from marketpilot.workflows.integrations.errors import Declined, ProviderError, Unavailable

DECLINE_STATUSES = frozenset({402, 409, 422})


class ProviderTransport:
    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 2.0,
        timeouts: dict[str, float] | None = None,
        breaker: CircuitBreaker | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.timeouts = dict(timeouts or {})
        self.breaker = breaker or CircuitBreaker(provider)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        json: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        if method != "GET" and not idempotency_key:
            raise ValueError(f"{self.provider} {operation}: every write needs an idempotency key")
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}

        def send() -> dict[str, Any]:
            try:
                response = self._client.request(
                    method, path, json=json, headers=headers, timeout=timeout or self.timeouts.get(operation, self.timeout)
                )
            except httpx.TimeoutException as exc:
                raise Unavailable(self.provider, operation, f"timed out ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise Unavailable(self.provider, operation, f"connection failed ({type(exc).__name__})") from None
            return self._answer(operation, response)

        return self.breaker.call(operation, send)

    def _answer(self, operation: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status >= 500 or status == 429:
            raise Unavailable(self.provider, operation, f"HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            raise Unavailable(self.provider, operation, f"HTTP {status} with a body that is not JSON") from None
        if status < 300:
            return body if isinstance(body, dict) else {"data": body}
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = str(error.get("code", "declined"))
        message = str(error.get("message", f"HTTP {status}"))
        if status in DECLINE_STATUSES:
            raise Declined(self.provider, operation, message, code)
        raise ProviderError(self.provider, operation, f"HTTP {status}: {code}: {message}")
