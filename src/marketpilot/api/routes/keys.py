"""API key management (operator only). The plaintext key is returned once, at creation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from marketpilot.api.deps import RuntimeDep, blocking
from marketpilot.api.security import Operator
from marketpilot.domain.entities import EntityId
from marketpilot.platform.auth import (
    ApiKeyInfo,
    Authenticator,
    Role,
    create_key,
    get_key,
    list_keys,
    revoke_key,
)

router = APIRouter(prefix="/v1/keys", tags=["keys"])
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="Public key id.")]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    seller_id: EntityId | None = None
    name: Annotated[str, Field(max_length=200)] = ""


class NewKey(BaseModel):
    id: str
    key: str = Field(description="The secret key. Shown only in this response; store it now.")
    role: Role
    seller_id: str | None
    name: str
    created_at: datetime


class KeyList(BaseModel):
    items: list[ApiKeyInfo]


@router.post("", status_code=201)
async def create_api_key(body: KeyIn, rt: RuntimeDep, _who: Operator) -> NewKey:
    key_id, plaintext = await blocking(create_key, rt.db, body.role, seller_id=body.seller_id, name=body.name)
    info = await blocking(get_key, rt.db, key_id)
    return NewKey(key=plaintext, **info.model_dump(exclude={"revoked_at"}))


@router.get("")
async def list_api_keys(rt: RuntimeDep, _who: Operator, include_revoked: bool = False) -> KeyList:
    return KeyList(items=await blocking(list_keys, rt.db, include_revoked=include_revoked))


@router.delete("/{key_id}")
async def revoke_api_key(key_id: KeyId, request: Request, rt: RuntimeDep, _who: Operator) -> ApiKeyInfo:
    """Takes effect at once in this process, and within the key cache TTL in other replicas."""
    info = await blocking(revoke_key, rt.db, key_id)
    authenticator: Authenticator | None = request.app.state.authenticator
    if authenticator is not None:
        authenticator.forget(key_id)
    return info
