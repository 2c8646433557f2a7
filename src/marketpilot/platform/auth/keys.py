"""API keys: creation, listing, revocation and verification against the `api_keys` table.

A key reads ``mp_<id>_<secret>``: `id` is a short public identifier (the primary key, safe to
log and show), `secret` is 256 bits from the OS CSPRNG. Only SHA-256 of the whole key is
stored. A slow KDF (bcrypt, scrypt, argon2) exists to make guessing *low-entropy* passwords
from a stolen hash expensive; a uniformly random 256-bit secret cannot be guessed at any
hash rate, so a fast hash loses nothing and keeps verification in microseconds. The row is
found by its public id and the hash compared with :func:`hmac.compare_digest`, so response
timing reveals nothing about the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from marketpilot.domain.entities import ID_PATTERN, UtcDatetime
from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.platform.auth.principal import Principal, Role
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.db.schema import utcnow

PREFIX = "mp_"
_KEY = re.compile(r"^mp_([0-9a-f]{12})_([A-Za-z0-9_\-]{43})$")


class KeyRequestError(InvalidInput, ValueError):
    """A key cannot be created as asked. A 422 through the API, a `ValueError` for other callers."""


class ApiKeyInfo(BaseModel):
    """What may be shown about a key: never the secret, never its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    seller_id: str | None
    name: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.id}_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key_id(key: str) -> str | None:
    """The public id of a well-formed key, or None."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def create_key(db: Database, role: Role | str, seller_id: str | None = None, name: str = "") -> tuple[str, str]:
    """Create a key; returns ``(key_id, plaintext)``. The plaintext is shown once, never stored."""
    try:
        role = Role(role)
    except ValueError:
        raise KeyRequestError(f"unknown role {role!r}; expected one of {', '.join(r.value for r in Role)}") from None
    if role is Role.MERCHANT and not seller_id:
        raise KeyRequestError("a merchant key needs the seller id it acts for")
    if role is not Role.MERCHANT and seller_id:
        raise KeyRequestError(f"only merchant keys are bound to a seller; a {role.value} key sees every seller")
    if seller_id is not None and not ID_PATTERN.match(seller_id):
        raise KeyRequestError(f"seller id {seller_id!r} is malformed")
    if len(name) > 200:
        raise KeyRequestError("a key name is at most 200 characters")
    key_id = secrets.token_hex(6)
    plaintext = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with db.session() as s:
        if seller_id is not None and s.get(t.Seller, seller_id) is None:
            raise KeyRequestError(f"seller {seller_id!r} does not exist")
        s.add(t.ApiKey(id=key_id, key_hash=hash_key(plaintext), role=role.value, seller_id=seller_id, name=name))
    return key_id, plaintext


def list_keys(db: Database, *, include_revoked: bool = False) -> list[ApiKeyInfo]:
    q = select(t.ApiKey).order_by(t.ApiKey.created_at, t.ApiKey.id)
    if not include_revoked:
        q = q.where(t.ApiKey.revoked_at.is_(None))
    with db.session() as s:
        return [ApiKeyInfo.model_validate(row) for row in s.scalars(q)]


def get_key(db: Database, key_id: str) -> ApiKeyInfo:
    with db.session() as s:
        row = s.get(t.ApiKey, key_id)
        if row is None:
            raise NotFound(f"api key {key_id!r} not found")
        return ApiKeyInfo.model_validate(row)


def revoke_key(db: Database, key_id: str) -> ApiKeyInfo:
    """Revoke a key (idempotent). Processes that cached it stop accepting it within their TTL."""
    with db.session() as s:
        row = s.get(t.ApiKey, key_id)
        if row is None:
            raise NotFound(f"api key {key_id!r} not found")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            s.flush()
        return ApiKeyInfo.model_validate(row)


def verify_key(db: Database, key: str) -> Principal | None:
    """The principal a key stands for, or None if it is malformed, unknown or revoked."""
    key_id = parse_key_id(key)
    if key_id is None:
        return None
    with db.session() as s:
        row = s.get(t.ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, hash_key(key)):
            return None
        return Principal(key_id=row.id, role=Role(row.role), seller_id=row.seller_id)
