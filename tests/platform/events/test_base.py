from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from marketpilot.platform.events import CloudEvent, EventBus


def ignore(event: CloudEvent, session: Session) -> None:
    pass


def test_a_subscription_wants_exactly_its_types() -> None:
    bus = EventBus()
    sub = bus.subscribe("recommend.inventory", ["marketpilot.inventory.changed"], ignore)
    assert sub.wants("marketpilot.inventory.changed")
    assert not sub.wants("marketpilot.listing.created")
    assert bus["recommend.inventory"] is sub
    assert [s.name for s in bus] == ["recommend.inventory"]


def test_the_decorator_registers_and_returns_the_handler() -> None:
    bus = EventBus()

    @bus.handler("fraud.orders", ["marketpilot.order.placed"])
    def on_order(event: CloudEvent, session: Session) -> None:
        pass

    assert bus["fraud.orders"].handler is on_order


@pytest.mark.parametrize(
    ("name", "types", "message"),
    [
        ("Bad Name", ["marketpilot.a.b"], "consumer name 'Bad Name' must be lower-case letters"),
        ("", ["marketpilot.a.b"], "consumer name '' must be lower-case letters"),
        ("x/y", ["marketpilot.a.b"], "consumer name 'x/y' must be lower-case letters"),
        ("a" * 101, ["marketpilot.a.b"], "is longer than 100 characters"),
        ("ok", [], "consumer 'ok' must subscribe to at least one event type"),
        ("ok", ["created"], r"consumer 'ok': \['created'\] are not event types"),
    ],
)
def test_bad_subscriptions_are_refused_with_a_reason(name: str, types: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventBus().subscribe(name, types, ignore)


def test_types_given_as_one_string_are_refused() -> None:
    with pytest.raises(TypeError, match="types must be a list of event types, not the string"):
        EventBus().subscribe("ok", "marketpilot.a.b", ignore)


def test_a_consumer_name_is_registered_once() -> None:
    bus = EventBus()
    bus.subscribe("audit", ["marketpilot.a.b"], ignore)
    with pytest.raises(ValueError, match="consumer 'audit' is already subscribed; names must be unique"):
        bus.subscribe("audit", ["marketpilot.c.d"], ignore)


def test_an_unknown_consumer_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match="no consumer named 'nobody' is subscribed"):
        EventBus()["nobody"]
