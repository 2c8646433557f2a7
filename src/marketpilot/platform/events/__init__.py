"""Events: CloudEvents envelopes, the transactional outbox, and their delivery.

A capability subscribes once, without knowing the profile::

    bus.subscribe("recommend.inventory", ["marketpilot.inventory.changed"], on_inventory)

and the worker (:func:`run_worker`) delivers: in process from the outbox (embedded), or
outbox -> Kafka -> consumer groups (distributed). See :mod:`.base` for the contract.
"""

from marketpilot.platform.events.base import EventBus, Handler, Subscription
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.deadletter import dead_letters
from marketpilot.platform.events.dispatcher import Dispatcher, consumer_lag
from marketpilot.platform.events.kafka_consumer import KafkaConsumerRunner
from marketpilot.platform.events.kafka_options import KafkaOptions
from marketpilot.platform.events.relay import Relay, RelayError
from marketpilot.platform.events.retry import RetryPolicy
from marketpilot.platform.events.topics import topic_for
from marketpilot.platform.events.worker import WorkerError, run_worker

__all__ = [
    "CloudEvent",
    "Dispatcher",
    "EventBus",
    "Handler",
    "KafkaConsumerRunner",
    "KafkaOptions",
    "Relay",
    "RelayError",
    "RetryPolicy",
    "Subscription",
    "WorkerError",
    "consumer_lag",
    "dead_letters",
    "run_worker",
    "topic_for",
]
