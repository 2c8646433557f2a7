"""Errors of model serving, each with the HTTP status an adapter should answer with.

They are :class:`~marketpilot.domain.errors.DomainError` subclasses, so a `/v1` route that
calls the model server gets the usual `{"error": {"code", "message"}}` body for free, while
the V2 routes render the same exception in the Open Inference Protocol's `{"error": msg}`.
"""

from __future__ import annotations

from marketpilot.domain.errors import Conflict, DomainError, NotFound


class ServingError(DomainError):
    """Base of every serving error; `status` is 400 unless a subclass says otherwise."""

    code = "bad_inference_request"
    status = 400


class ModelNotServed(ServingError, NotFound):
    """No model by that name, or no such version (or alias) of it, is loaded in this server."""

    code = "not_found"
    status = 404


class InvalidInferenceRequest(ServingError):
    """The request cannot be run: malformed V2 JSON, a tensor whose data does not fit its
    shape, an input the model does not declare, a datatype it does not take."""


class TrafficConflict(ServingError, Conflict):
    """A traffic policy that needs a challenger, for a model that has none loaded."""

    code = "conflict"
    status = 409
