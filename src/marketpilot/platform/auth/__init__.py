"""API keys and roles: who may call, and which seller's data they may see."""

from marketpilot.platform.auth.authenticator import Authenticator
from marketpilot.platform.auth.keys import (
    ApiKeyInfo,
    KeyRequestError,
    create_key,
    get_key,
    list_keys,
    revoke_key,
    verify_key,
)
from marketpilot.platform.auth.principal import Principal, Role, Unauthenticated

__all__ = [
    "ApiKeyInfo",
    "Authenticator",
    "KeyRequestError",
    "Principal",
    "Role",
    "Unauthenticated",
    "create_key",
    "get_key",
    "list_keys",
    "revoke_key",
    "verify_key",
]
