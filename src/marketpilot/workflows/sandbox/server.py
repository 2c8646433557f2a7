"""A loopback HTTP server for sandbox providers, with fault injection and idempotency.

Each sandbox (payment, carrier) is a real HTTP service on 127.0.0.1: the adapters talk to
it exactly as to the real provider. Tests and the demo steer it through control routes
under ``/_sandbox`` (never used by the adapters):

- ``POST /_sandbox/faults`` ``{"mode": "decline"|"error"|"timeout", "count": N|null,
  "operation": name|null, "delay": seconds}``: the next N matching calls (all, with
  null) are declined (402/422), answered 503, or answered after `delay` seconds
  (the effect still happens first: the worst case for a client that times out);
- ``DELETE /_sandbox/faults``: back to normal;
- ``GET /_sandbox/records``: every side effect the sandbox performed, for audits such as
  "exactly one capture per order".

Writes honour ``Idempotency-Key`` like Stripe: a key seen before returns the stored answer
and performs nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, dict[str, Any]]
Route = Callable[[dict[str, Any], list[str]], Answer]


class SandboxError(Exception):
    """Raised by a route to answer with an error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Fault:
    mode: str  # decline | error | timeout
    count: int | None
    operation: str | None
    delay: float


class Sandbox:
    """A sandbox provider's state: routes, faults, idempotency store and audit records."""

    name = "sandbox"
    DECLINE_STATUS = 402
    DECLINE_CODE = "declined"

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._fault: Fault | None = None
        self._idempotent: dict[tuple[str, str], Answer] = {}
        self._routes: list[tuple[str, list[str], str, Route]] = []
        self.calls: dict[str, int] = {}

    # -- routing -----------------------------------------------------------------------
    def route(self, method: str, pattern: str, operation: str, fn: Route) -> None:
        self._routes.append((method, pattern.strip("/").split("/"), operation, fn))

    def _match(self, method: str, path: str) -> tuple[str, Route, list[str]] | None:
        parts = path.split("?", 1)[0].strip("/").split("/")
        for m, pattern, operation, fn in self._routes:
            if m != method or len(pattern) != len(parts):
                continue
            params = []
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{"):
                    params.append(got)
                elif want != got:
                    break
            else:
                return operation, fn, params
        return None

    # -- faults ------------------------------------------------------------------------
    def set_fault(self, mode: str, *, count: int | None = None, operation: str | None = None, delay: float = 5.0) -> None:
        if mode not in ("decline", "error", "timeout"):
            raise ValueError(f"unknown fault mode {mode!r}")
        with self.lock:
            self._fault = Fault(mode, count, operation, delay)

    def clear_faults(self) -> None:
        with self.lock:
            self._fault = None

    def _take_fault(self, operation: str) -> Fault | None:
        with self.lock:
            fault = self._fault
            if fault is None or (fault.operation is not None and fault.operation != operation):
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._fault = None
            return fault

    # -- handling ----------------------------------------------------------------------
    def handle(self, method: str, path: str, body: dict[str, Any], key: str | None) -> tuple[Answer, float]:
        """The answer to one request and how long to wait before sending it."""
        if path.startswith("/_sandbox"):
            return self._control(method, path, body), 0.0
        matched = self._match(method, path)
        if matched is None:
            return (404, {"error": {"code": "not_found", "message": f"{method} {path}"}}), 0.0
        operation, fn, params = matched
        with self.lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
        fault = self._take_fault(operation)
        if fault is not None and fault.mode == "error":
            return (503, {"error": {"code": "unavailable", "message": "sandbox outage"}}), 0.0
        if fault is not None and fault.mode == "decline":
            return (self.DECLINE_STATUS, {"error": {"code": self.DECLINE_CODE, "message": "declined by sandbox"}}), 0.0
        delay = fault.delay if fault is not None and fault.mode == "timeout" else 0.0
        if method == "GET":  # a GET's query parameters are its body
            query = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
            return self._run(fn, {**body, **query}, params), delay
        if not key:
            return (400, {"error": {"code": "idempotency_key_required", "message": "send an Idempotency-Key"}}), 0.0
        with self.lock:  # one writer at a time: a key is performed once even if sent twice at once
            stored = self._idempotent.get((operation, key))
            if stored is not None:
                return stored, delay
            answer = self._run(fn, body, params)
            if answer[0] < 500:
                self._idempotent[(operation, key)] = answer
            return answer, delay

    @staticmethod
    def _run(fn: Route, body: dict[str, Any], params: list[str]) -> Answer:
        try:
            return fn(body, params)
        except SandboxError as exc:
            return exc.status, {"error": {"code": exc.code, "message": exc.message}}
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"error": {"code": "bad_request", "message": str(exc)}}

    def _control(self, method: str, path: str, body: dict[str, Any]) -> Answer:
        if path.startswith("/_sandbox/faults"):
            if method == "DELETE":
                self.clear_faults()
                return 200, {"faults": None}
            try:
                self.set_fault(str(body["mode"]), count=body.get("count"), operation=body.get("operation"),
                               delay=float(body.get("delay", 5.0)))
            except (KeyError, ValueError) as exc:
                return 400, {"error": {"code": "bad_request", "message": str(exc)}}
            return 200, {"faults": body}
        if path.startswith("/_sandbox/records") and method == "GET":
            with self.lock:
                return 200, {"records": self.records(), "calls": dict(self.calls)}
        return 404, {"error": {"code": "not_found", "message": path}}

    def records(self) -> dict[str, Any]:
        """Every side effect performed so far (subclasses fill it)."""
        return {}


class _Handler(BaseHTTPRequestHandler):
    sandbox: Sandbox
    protocol_version = "HTTP/1.1"
    # One segment per response, sent at once: headers and body written separately with
    # Nagle on meet the client's delayed ACK and cost ~40 ms per call on keep-alive.
    disable_nagle_algorithm = True
    wbufsize = -1

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by design
        return

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            # The client died between its headers and its body (a worker killed mid-request):
            # like a real provider, perform nothing and answer nothing. Read as an empty body,
            # it would be answered 400 and that answer kept under its idempotency key.
            self.close_connection = True
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            answer, delay = (400, {"error": {"code": "bad_json", "message": "body must be a JSON object"}}), 0.0
        else:
            answer, delay = self.sandbox.handle(method, self.path, body, self.headers.get("Idempotency-Key"))
        if delay:
            time.sleep(delay)
        status, payload = answer
        data = json.dumps(payload).encode()
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timed out)
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that disconnects mid-request (killed worker, timed-out call) is normal here."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SandboxServer:
    """Serve `sandbox` on 127.0.0.1 (`port` 0: any free port) in a background thread."""

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        handler = type(f"{type(sandbox).__name__}Handler", (_Handler,), {"sandbox": sandbox})
        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sandbox-{sandbox.name}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
