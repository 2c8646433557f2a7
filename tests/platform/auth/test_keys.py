from __future__ import annotations

import pytest
from sqlalchemy import select

from marketpilot.domain.entities import SellerIn
from marketpilot.domain.errors import InvalidInput, NotFound
from marketpilot.marketplace import SellerService
from marketpilot.platform.auth import Principal, Role, create_key, list_keys, revoke_key, verify_key
from marketpilot.platform.auth.keys import hash_key, parse_key_id
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t


@pytest.fixture
def seller(db: Database) -> str:
    SellerService(db).create(SellerIn(id="s1", name="Shop"))
    return "s1"


def test_a_key_is_random_prefixed_and_stored_only_as_its_hash(db: Database) -> None:
    key_id, plaintext = create_key(db, Role.OPERATOR, name="ops")
    assert plaintext.startswith(f"mp_{key_id}_") and len(plaintext) == 3 + 12 + 1 + 43
    assert parse_key_id(plaintext) == key_id
    with db.session() as s:
        row = s.scalars(select(t.ApiKey)).one()
    assert row.key_hash == hash_key(plaintext)
    assert plaintext.split("_", 2)[2] not in row.key_hash
    assert create_key(db, Role.OPERATOR)[1] != plaintext


def test_verify_returns_the_principal_of_a_good_key(db: Database, seller: str) -> None:
    key_id, plaintext = create_key(db, "merchant", seller_id=seller)
    principal = verify_key(db, plaintext)
    assert principal == Principal(key_id=key_id, role=Role.MERCHANT, seller_id="s1")
    assert principal.scope == "s1"
    assert verify_key(db, create_key(db, Role.SERVICE)[1]).scope is None  # type: ignore[union-attr]


def test_a_right_id_with_a_wrong_secret_is_refused(db: Database) -> None:
    _, plaintext = create_key(db, Role.OPERATOR)
    assert verify_key(db, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    assert verify_key(db, "mp_000000000000_" + "A" * 43) is None
    assert verify_key(db, "garbage") is None


def test_revoked_keys_are_refused_and_hidden_from_the_default_listing(db: Database) -> None:
    key_id, plaintext = create_key(db, Role.SERVICE, name="storefront")
    first = revoke_key(db, key_id)
    assert first.revoked_at is not None
    assert revoke_key(db, key_id).revoked_at == first.revoked_at  # idempotent
    assert verify_key(db, plaintext) is None
    assert list_keys(db) == []
    assert [k.name for k in list_keys(db, include_revoked=True)] == ["storefront"]
    with pytest.raises(NotFound, match="api key 'nope' not found"):
        revoke_key(db, "nope")


@pytest.mark.parametrize(
    ("role", "seller_id", "message"),
    [
        ("merchant", None, "a merchant key needs the seller id it acts for"),
        ("operator", "s1", "only merchant keys are bound to a seller; a operator key sees every seller"),
        ("merchant", "nobody", "seller 'nobody' does not exist"),
        ("merchant", "bad id", "seller id 'bad id' is malformed"),
        ("admin", None, "unknown role 'admin'; expected one of operator, merchant, service"),
    ],
)
def test_bad_key_requests_say_what_is_wrong(
    db: Database, seller: str, role: str, seller_id: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        create_key(db, role, seller_id=seller_id)
    assert err.value.message == message
    assert isinstance(err.value, ValueError)  # what the CLI catches
    assert list_keys(db) == []
