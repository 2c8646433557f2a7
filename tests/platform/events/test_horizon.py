"""`read_committed`: the outbox past an offset, with payloads only for the types asked for."""

from __future__ import annotations

from marketpilot.domain.events import InventoryChanged, ListingUpdated
from marketpilot.platform.db import Database
from marketpilot.platform.events import outbox
from marketpilot.platform.events.horizon import read_committed


def test_only_the_named_types_carry_their_payload_and_every_position_is_returned(events_db: Database) -> None:
    with events_db.session() as s:
        written = [
            outbox.append(s, ListingUpdated(listing_id="l1", seller_id="s1", changes={"price_minor": 5}), "test"),
            outbox.append(s, InventoryChanged(listing_id="l1", quantity=0, reserved=0, available=0, reason="sold"), "test"),
            outbox.append(s, ListingUpdated(listing_id="l2", seller_id="s1", changes={"price_minor": 7}), "test"),
        ]
    with events_db.read() as s:
        everything = read_committed(s, 0, 10)
        folded = read_committed(s, 0, 10, payload_types=[InventoryChanged.TYPE])
        after_first = read_committed(s, everything[0].position, 10, payload_types=[ListingUpdated.TYPE])
    assert [r.event.id for r in folded] == [e.id for e in written]
    assert [r.position for r in folded] == [r.position for r in everything]
    assert [r.event.type for r in folded] == [e.type for e in written]
    assert [r.event.data is None for r in folded] == [True, False, True]
    assert folded[1].event.data == everything[1].event.data
    assert folded[1].event.data["available"] == 0
    assert [r.event.data for r in after_first] == [None, everything[2].event.data]
    assert everything[2].event.data["changes"] == {"price_minor": 7}
