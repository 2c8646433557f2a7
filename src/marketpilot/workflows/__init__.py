"""Durable workflows on DBOS: the order saga, vendor onboarding and dispute resolution.

`engine.install(runtime)` wires them into a process (see docs/workflows.md); `service`
is what the API calls; `integrations/` holds the payment and carrier adapters and
`sandbox/` loopback sandboxes of both. Importing this package imports no DBOS.
"""
