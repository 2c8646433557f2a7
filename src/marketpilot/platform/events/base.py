"""The subscriber contract: one way to react to events, whatever carries them.

A capability registers a handler once, by a stable consumer name, for the event types it
wants::

    bus = EventBus()
    bus.subscribe("recommend.inventory", ["marketpilot.inventory.changed"], on_inventory)

and never learns which profile delivers it. The embedded dispatcher reads the outbox table in
process; the distributed worker reads Kafka. Both call ``handler(event, session)`` inside one
database transaction that also records the event id in the idempotency ledger, so whatever
the handler writes through ``session`` commits exactly when the event counts as processed.
Delivery is at least once: a handler may see an event again only if its transaction did not
commit, so a handler whose effects all go through ``session`` is effectively exactly once.

The consumer name is durable state: it keys the embedded offset, the idempotency ledger and
the Kafka consumer group. Renaming a subscriber makes it a new consumer that starts from the
earliest retained event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from marketpilot.platform.events.cloudevent import CloudEvent

Handler = Callable[[CloudEvent, Session], None]
"""Reacts to one event. Write through the given session; raise to have the event retried."""

# Lower-case words separated by '.', '_' or '-': safe as a Kafka group id and as a key in
# `consumer_offsets`/`processed_events` (128 characters, of which the dead-letter marker
# prefix takes some).
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Subscription:
    """One consumer: a durable name, the event types it wants and its handler."""

    name: str
    types: frozenset[str]
    handler: Handler

    def wants(self, event_type: str) -> bool:
        return event_type in self.types


class EventBus:
    """The registry of subscribers of one process; delivery backends read it.

    It delivers nothing itself: the dispatcher (embedded) or the Kafka consumer runner
    (distributed) iterate over :attr:`subscriptions`. Registration is expected at start-up,
    before delivery begins.
    """

    def __init__(self) -> None:
        self._subscriptions: dict[str, Subscription] = {}

    def subscribe(self, name: str, types: Iterable[str], handler: Handler) -> Subscription:
        """Register `handler` under the consumer `name` for the given event types."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"consumer name {name!r} must be lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"consumer name {name!r} is longer than {MAX_NAME_LENGTH} characters")
        if isinstance(types, str):
            raise TypeError(f"types must be a list of event types, not the string {types!r}")
        wanted = frozenset(types)
        if not wanted:
            raise ValueError(f"consumer {name!r} must subscribe to at least one event type")
        bad = sorted(t for t in wanted if not isinstance(t, str) or "." not in t)
        if bad:
            raise ValueError(f"consumer {name!r}: {bad} are not event types like 'marketpilot.listing.created'")
        if not callable(handler):
            raise TypeError(f"consumer {name!r}: handler {handler!r} is not callable")
        if name in self._subscriptions:
            raise ValueError(f"consumer {name!r} is already subscribed; names must be unique")
        subscription = Subscription(name=name, types=wanted, handler=handler)
        self._subscriptions[name] = subscription
        return subscription

    def handler(self, name: str, types: Iterable[str]) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`subscribe`; returns the function unchanged."""

        def register(fn: Handler) -> Handler:
            self.subscribe(name, types, fn)
            return fn

        return register

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    def __iter__(self) -> Iterator[Subscription]:
        return iter(self.subscriptions)

    def __len__(self) -> int:
        return len(self._subscriptions)

    def __getitem__(self, name: str) -> Subscription:
        try:
            return self._subscriptions[name]
        except KeyError:
            raise KeyError(f"no consumer named {name!r} is subscribed") from None
