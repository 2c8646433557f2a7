"""Events: CloudEvents envelopes, the transactional outbox, and their delivery."""

from marketpilot.platform.events.cloudevent import CloudEvent

__all__ = ["CloudEvent"]
