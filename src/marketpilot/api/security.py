"""Who may call a route: one `Allow` dependency per route, naming the roles it admits.

A route declares its policy where it is defined (`who: Annotated[Principal, Depends(READ)]`)
and passes `who.scope` to its service, which restricts a merchant to its own seller's rows.
Verification is cached in-process (see `platform.auth.authenticator`); only a cache miss
touches the database, and it does so off the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from marketpilot.domain.errors import Forbidden
from marketpilot.platform.auth import Authenticator, Principal, Role, Unauthenticated

# The principal used for every request when auth is explicitly disabled (development only).
DEV_PRINCIPAL = Principal(key_id="auth-disabled", role=Role.OPERATOR)


class Allow(HTTPBearer):
    """Dependency admitting the given roles; returns the caller's principal.

    A `HTTPBearer` itself, so OpenAPI documents the `ApiKey` scheme on every guarded route,
    while a request pays for one dependency rather than a guard plus a bearer parser.
    """

    def __init__(self, *roles: Role) -> None:
        super().__init__(
            scheme_name="ApiKey",
            bearerFormat="mp_<id>_<secret>",
            description="An API key created with `marketpilot keys create`, sent as `Authorization: Bearer <key>`.",
            auto_error=False,
        )
        self.roles = frozenset(roles)

    def __repr__(self) -> str:
        return f"Allow({', '.join(sorted(self.roles))})"

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        authenticator: Authenticator | None = request.app.state.authenticator
        if authenticator is None:
            return DEV_PRINCIPAL
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("missing API key: send `Authorization: Bearer <key>`")
        key = key.strip()
        principal = authenticator.cached(key) or await run_in_threadpool(authenticator.verify, key)
        if principal is None:
            raise Unauthenticated("unknown or revoked API key")
        if principal.role not in self.roles:
            raise Forbidden(f"a {principal.role.value} key may not call this route")
        return principal


OPERATOR = Allow(Role.OPERATOR)
READ = Allow(Role.OPERATOR, Role.MERCHANT, Role.SERVICE)
SELLER_WRITE = Allow(Role.OPERATOR, Role.MERCHANT)
MACHINE = Allow(Role.OPERATOR, Role.SERVICE)

Operator = Annotated[Principal, Depends(OPERATOR)]
Reader = Annotated[Principal, Depends(READ)]
SellerWriter = Annotated[Principal, Depends(SELLER_WRITE)]
Machine = Annotated[Principal, Depends(MACHINE)]
