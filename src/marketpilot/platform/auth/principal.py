"""Who is calling: a role, and for merchants the one seller they act for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from marketpilot.domain.errors import DomainError


class Role(StrEnum):
    OPERATOR = "operator"  # the marketplace's own staff and tools: everything
    MERCHANT = "merchant"  # one seller: only that seller's rows
    SERVICE = "service"  # machine clients (storefront backend): ingest, place orders, read catalogue


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    seller_id: str | None = None

    @property
    def scope(self) -> str | None:
        """The seller id every service call is restricted to (None: unrestricted)."""
        return self.seller_id if self.role is Role.MERCHANT else None


class Unauthenticated(DomainError):
    """No key, or a key that is unknown, malformed or revoked."""

    code = "unauthenticated"
    status = 401
