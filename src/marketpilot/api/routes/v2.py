"""Model serving on the Open Inference Protocol (KServe V2 REST), plus traffic policies.

Health (`/v2/health/*`, `.../ready`) and server metadata (`GET /v2`) are open, as load
balancers and orchestrators call them without keys. Model metadata, inference and reading
a traffic policy need an `operator` or `service` key; changing a policy needs `operator`.

Errors on these routes use the V2 shape, ``{"error": "<message>"}`` (400 bad request, 401/403
auth, 404 unknown model or version, 409 conflicting policy), not the `/v1` shape: V2
clients such as `tritonclient` read that field. :class:`V2Route` renders every exception a
V2 route raises (auth, path validation, the model server's errors) that way.

The inference body is read raw rather than through a pydantic model: the binary tensor
data extension appends raw bytes to the JSON, and a tensor of thousands of numbers is
converted to numpy in one pass by :mod:`marketpilot.platform.models.serving_protocol`
instead of being validated element by element.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from marketpilot.api.errors import field_errors
from marketpilot.api.security import Machine, Operator
from marketpilot.domain.errors import DomainError
from marketpilot.platform.auth import Unauthenticated
from marketpilot.platform.models.serving import ModelServer, ServedModel
from marketpilot.platform.models.serving_errors import InvalidInferenceRequest
from marketpilot.platform.models.serving_protocol import (
    DATATYPES,
    HEADER_LENGTH,
    decode_request,
    encode_response,
    parse_header_length,
)
from marketpilot.platform.models.traffic import TrafficPolicy
from marketpilot.platform.monitoring.logging import request_id

log = logging.getLogger("marketpilot.api.v2")

MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"  # the model registry's naming rule
MODEL_VERSION = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # a version number or an alias


def v2_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def error_for(exc: Exception) -> Response:
    """The V2 rendering of an exception raised on a V2 route."""
    if isinstance(exc, DomainError):
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
        return v2_error(exc.status, exc.message, headers)
    if isinstance(exc, RequestValidationError):
        fields = field_errors(exc.errors())
        return v2_error(400, "; ".join(f"{f.field}: {f.message}" for f in fields) or "invalid request")
    if isinstance(exc, HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else f"HTTP {exc.status_code}"
        return v2_error(exc.status_code, message, dict(exc.headers) if exc.headers else None)
    log.error("unhandled error on a V2 route", exc_info=exc)
    return v2_error(500, f"internal server error; quote request id {request_id.get()} when reporting it")


class V2Route(APIRoute):
    """An APIRoute whose errors (dependencies and body parsing included) are V2 error bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def v2_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return error_for(exc)

        return v2_handler


# -- documented shapes ----------------------------------------------------------------------


class V2Error(BaseModel):
    error: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    version: str | None = None
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 marks a dimension of any size.")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="Every version of the model loaded in this server.")
    platform: str = Field(description="`lightgbm`, `sklearn`, `numpy` (an in-process model over arrays), ...")
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class OutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = Field(default=None, description="Row-major, flat. Absent for binary outputs.")
    parameters: dict[str, Any] | None = None


class InferenceResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_name: str
    model_version: str = Field(description="The version that answered (the traffic policy's choice).")
    id: str | None = None
    parameters: dict[str, Any] | None = Field(default=None, description="`ab_arm` (A or B) under an A/B policy.")
    outputs: list[OutputTensor]


class TrafficIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["champion", "canary", "ab", "shadow"]
    percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="canary: share answered by the challenger (required); ab: share in arm B (default 50); "
        "shadow: share of requests the challenger also scores (default 100).",
    )
    salt: str = Field(default="", max_length=64, description="Change it to reshuffle which keys land where.")


class TrafficOut(BaseModel):
    model: str
    mode: str
    percent: float
    salt: str
    champion: str | None = Field(description="The champion's version.")
    challenger: str | None = Field(description="The challenger's version, if one is loaded.")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": V2Error, "description": "Malformed request (the message says what)."},
    404: {"model": V2Error, "description": "No such model or version is served."},
}
GUARDED: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    401: {"model": V2Error, "description": "Missing, unknown or revoked API key."},
    403: {"model": V2Error, "description": "The key's role may not call this route."},
}

_TENSOR_NAME = {"type": "string", "minLength": 1, "maxLength": 128}
INFER_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string", "description": "Echoed in the response; the sticky key when no request_key."},
        "parameters": {
            "type": "object",
            "description": "`request_key` (string): the sticky key for canary and A/B assignment; "
            "`binary_data_output` (bool): every output as binary tensor data.",
        },
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": _TENSOR_NAME,
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": {"type": "string", "enum": list(DATATYPES)},
                    "data": {"type": "array", "description": "Elements, flat or nested, row-major."},
                    "parameters": {"type": "object", "description": "`binary_data_size` for binary inputs."},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _TENSOR_NAME, "parameters": {"type": "object"}},
            },
        },
    },
}
INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": INFER_REQUEST_SCHEMA},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Binary tensor data extension: the JSON header (its length in the "
                "Inference-Header-Content-Length header) followed by the raw tensors.",
            },
        },
    }
}

router = APIRouter(prefix="/v2", tags=["inference (V2)"], route_class=V2Route)


async def model_server(request: Request) -> ModelServer:
    """The app's model server (`app.state.model_server`), made empty on first use if the app
    has none, with its metrics on the app's registry."""
    server: ModelServer | None = getattr(request.app.state, "model_server", None)
    if server is None:
        metrics = getattr(request.app.state, "metrics", None)
        server = ModelServer(metrics_registry=metrics.registry if metrics is not None else None)
        request.app.state.model_server = server
    return server


ServerDep = Annotated[ModelServer, Depends(model_server)]
ModelName = Annotated[str, Path(pattern=MODEL_NAME, description="Model name.")]
ModelVersion = Annotated[str, Path(pattern=MODEL_VERSION, description="A version number or an alias (`champion`).")]


# -- server ---------------------------------------------------------------------------------


@router.get("", responses=ERRORS)
async def server_metadata(server: ServerDep) -> ServerMetadata:
    """Server name, version and the protocol extensions it supports."""
    return ServerMetadata(name=server.name, version=server.version, extensions=list(server.extensions))


@router.get("/health/live", responses=ERRORS)
async def server_live() -> Liveness:
    """The process is up (touches nothing)."""
    return Liveness(live=True)


@router.get("/health/ready", responses={**ERRORS, 503: {"model": Readiness, "description": "Not ready."}})
async def server_ready(server: ServerDep) -> Response:
    """Every model the server expects is loaded (503 until then)."""
    ready = server.ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


# -- models ---------------------------------------------------------------------------------


def _metadata(server: ModelServer, model: ServedModel) -> ModelMetadata:
    return ModelMetadata(
        name=model.name,
        versions=server.versions(model.name),
        platform=model.platform,
        inputs=[TensorMetadata(name=t.name, datatype=t.datatype, shape=list(t.shape)) for t in model.inputs],
        outputs=[TensorMetadata(name=t.name, datatype=t.datatype, shape=list(t.shape)) for t in model.outputs],
    )


@router.get("/models/{model_name}", responses=GUARDED)
async def model_metadata(model_name: ModelName, server: ServerDep, _who: Machine) -> ModelMetadata:
    """The champion's inputs and outputs, and every loaded version."""
    return _metadata(server, server.model(model_name))


@router.get("/models/{model_name}/versions/{model_version}", responses=GUARDED)
async def model_version_metadata(
    model_name: ModelName, model_version: ModelVersion, server: ServerDep, _who: Machine
) -> ModelMetadata:
    """That version's inputs and outputs."""
    return _metadata(server, server.model(model_name, model_version))


@router.get("/models/{model_name}/ready", responses=ERRORS)
async def model_ready(model_name: ModelName, server: ServerDep) -> ModelReadiness:
    """200 when the model's champion is loaded; 404 for a model this server does not serve."""
    model = server.model(model_name)
    return ModelReadiness(name=model.name, version=model.version, ready=True)


@router.get("/models/{model_name}/versions/{model_version}/ready", responses=ERRORS)
async def model_version_ready(model_name: ModelName, model_version: ModelVersion, server: ServerDep) -> ModelReadiness:
    model = server.model(model_name, model_version)
    return ModelReadiness(name=model.name, version=model.version, ready=True)


# -- inference ------------------------------------------------------------------------------


async def _infer(request: Request, server: ModelServer, name: str, version: str | None) -> Response:
    server.model(name, version)  # an unknown model is a 404 whatever the body holds
    body = await request.body()
    parsed = decode_request(body, parse_header_length(request.headers.get(HEADER_LENGTH)))
    key = parsed.parameter("request_key")
    if key is not None:
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise InvalidInferenceRequest("parameters.request_key must be a string (or an integer)")
        key = str(key)
    result = await server.infer(name, parsed.inputs, version=version, request_key=key, request_id=parsed.id)
    payload, header_length = encode_response(
        model_name=result.model_name,
        model_version=result.model_version,
        outputs=result.outputs,
        request_id=parsed.id,
        parameters=result.parameters,
        requested=parsed.outputs,
        binary_output=parsed.binary_output,
    )
    if header_length is None:
        return Response(payload, media_type="application/json")
    return Response(
        payload, media_type="application/octet-stream", headers={"Inference-Header-Content-Length": str(header_length)}
    )


@router.post(
    "/models/{model_name}/infer",
    response_model=InferenceResponse,
    responses=GUARDED,
    openapi_extra=INFER_OPENAPI,
)
async def infer(request: Request, model_name: ModelName, server: ServerDep, _who: Machine) -> Response:
    """Run the model; the traffic policy picks the version (`model_version` in the answer)."""
    return await _infer(request, server, model_name, None)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    response_model=InferenceResponse,
    responses=GUARDED,
    openapi_extra=INFER_OPENAPI,
)
async def infer_version(
    request: Request, model_name: ModelName, model_version: ModelVersion, server: ServerDep, _who: Machine
) -> Response:
    """Run that version (or alias), bypassing the traffic policy."""
    return await _infer(request, server, model_name, model_version)


# -- traffic (a marketpilot extension, listed as `model_traffic`) ----------------------------------


def _traffic_out(server: ModelServer, name: str) -> TrafficOut:
    policy = server.traffic(name)
    aliases = server.aliases(name)
    return TrafficOut(
        model=name,
        mode=policy.mode,
        percent=policy.percent,
        salt=policy.salt,
        champion=aliases.get("champion"),
        challenger=aliases.get("challenger"),
    )


@router.get("/models/{model_name}/traffic", responses=GUARDED)
async def get_traffic(model_name: ModelName, server: ServerDep, _who: Machine) -> TrafficOut:
    """The model's traffic policy and the versions it splits between."""
    return _traffic_out(server, model_name)


@router.put("/models/{model_name}/traffic", responses={**GUARDED, 409: {"model": V2Error, "description": "No challenger."}})
async def put_traffic(model_name: ModelName, body: TrafficIn, server: ServerDep, _who: Operator) -> TrafficOut:
    """Set the policy of this process (operator). Modes: `champion`, `canary`, `ab`, `shadow`."""
    if body.mode == "canary" and body.percent is None:
        raise InvalidInferenceRequest("percent: required for a canary")
    default = {"champion": 0.0, "canary": 0.0, "ab": 50.0, "shadow": 100.0}[body.mode]
    percent = default if body.percent is None else body.percent
    server.set_traffic(model_name, TrafficPolicy(body.mode, percent, body.salt))
    return _traffic_out(server, model_name)
