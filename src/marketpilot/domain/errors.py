"""Errors a service raises; the API maps each to one HTTP status and error code."""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class Forbidden(DomainError):
    code = "forbidden"
    status = 403
