"""Pure ASGI middleware of the API."""

from marketpilot.api.middleware.body_limit import BodyLimitMiddleware
from marketpilot.api.middleware.request_context import RequestContextMiddleware

__all__ = ["BodyLimitMiddleware", "RequestContextMiddleware"]
