"""`marketpilot sandbox`: serve the sandbox payment provider and carrier on loopback until
Ctrl-C, for the demo and for trying the order workflow without real providers.

Point the worker at them with ``MARKETPILOT_WORKFLOWS_PAYMENT_URL`` and
``MARKETPILOT_WORKFLOWS_CARRIER_URL`` (the defaults match the default ports).
"""

from __future__ import annotations

import threading
from typing import Annotated

import typer


def command(
    payment_port: Annotated[int, typer.Option(help="Port of the sandbox payment provider.")] = 8101,
    carrier_port: Annotated[int, typer.Option(help="Port of the sandbox carrier.")] = 8102,
    host: Annotated[str, typer.Option(help="Bind address (keep it on loopback).")] = "127.0.0.1",
) -> None:
    """Serve sandbox payment and carrier providers (faults via POST /_sandbox/faults)."""
    from marketpilot.workflows.sandbox.carrier import CarrierSandbox
    from marketpilot.workflows.sandbox.payment import PaymentSandbox
    from marketpilot.workflows.sandbox.server import SandboxServer

    payment = SandboxServer(PaymentSandbox(), host=host, port=payment_port).start()
    carrier = SandboxServer(CarrierSandbox(), host=host, port=carrier_port).start()
    typer.echo(f"payment sandbox {payment.url}, carrier sandbox {carrier.url}; Ctrl-C to stop")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        payment.stop()
        carrier.stop()
