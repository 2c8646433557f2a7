"""The Open Inference Protocol (KServe V2) on the wire: datatypes, and tensors as JSON or as
the binary tensor data extension.

Kept apart from the HTTP routes so the codec is pure (bytes in, numpy out; numpy in, bytes
out) and testable without an app, and apart from :mod:`.serving` so the model server never
sees JSON. JSON is decoded with msgspec into small structs, then each tensor's `data` becomes
one numpy array in a single conversion: a request with thousands of values costs one pass.

The binary extension (what `tritonclient` sends by default) puts the JSON header first, its
length in the `Inference-Header-Content-Length` HTTP header, followed by each binary input's
raw bytes in input order (`parameters.binary_data_size` gives each length). BYTES elements
are each a 4-byte little-endian length followed by the bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from marketpilot.platform.models.serving_errors import InvalidInferenceRequest

HEADER_LENGTH = "inference-header-content-length"
BINARY_DATA_SIZE = "binary_data_size"

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),  # an object array of `bytes`, as tritonclient hands them over
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}
_LITTLE = {name: dtype.newbyteorder("<") for name, dtype in DATATYPES.items() if name != "BYTES"}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype of a numpy dtype; strings, bytes and objects are BYTES."""
    name = _BY_DTYPE.get(dtype if dtype.isnative else dtype.newbyteorder("="))
    if name is not None:
        return name
    if dtype.kind in "OSU":
        return "BYTES"
    raise InvalidInferenceRequest(f"numpy dtype {dtype} has no V2 datatype")


class _Input(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    data: Any = None
    parameters: dict[str, Any] | None = None


class _Output(msgspec.Struct):
    name: str
    parameters: dict[str, Any] | None = None


class _Request(msgspec.Struct):
    inputs: list[_Input]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[_Output] | None = None


_decoder = msgspec.json.Decoder(_Request)
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class RequestedOutput:
    """An output the client asked for; `binary` None means "as the request-level default"."""

    name: str
    binary: bool | None = None


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """A decoded V2 inference request: tensors are numpy arrays in their declared shape."""

    inputs: dict[str, np.ndarray]
    id: str | None = None
    parameters: Mapping[str, Any] | None = None
    outputs: tuple[RequestedOutput, ...] | None = None  # None: every output the model has
    binary_output: bool = False  # `parameters.binary_data_output`

    def parameter(self, name: str) -> Any:
        return None if self.parameters is None else self.parameters.get(name)


def decode_request(body: bytes, header_length: int | None = None) -> InferenceRequest:
    """Parse a V2 inference request body (JSON, or JSON then binary tensors)."""
    if header_length is None:
        header, binary = body, memoryview(b"")
    else:
        if not 0 < header_length <= len(body):
            raise InvalidInferenceRequest(
                f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes"
            )
        header, binary = body[:header_length], memoryview(body)[header_length:]
    try:
        raw = _decoder.decode(header)
    except msgspec.ValidationError as exc:
        raise InvalidInferenceRequest(f"invalid inference request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInferenceRequest(f"request body is not valid JSON: {exc}") from None
    if not raw.inputs:
        raise InvalidInferenceRequest("inference request has no inputs")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for spec in raw.inputs:
        if spec.name in inputs:
            raise InvalidInferenceRequest(f"input {spec.name!r} is given twice")
        size = (spec.parameters or {}).get(BINARY_DATA_SIZE)
        if size is None:
            inputs[spec.name] = _from_json(spec)
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInferenceRequest(f"input {spec.name!r}: binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise InvalidInferenceRequest(
                f"input {spec.name!r}: binary_data_size {size} runs past the end of the body "
                f"({len(binary) - offset} binary bytes left)"
            )
        inputs[spec.name] = _from_binary(spec, binary[offset : offset + size])
        offset += size
    if offset != len(binary):
        raise InvalidInferenceRequest(f"{len(binary) - offset} bytes of binary data belong to no input")
    outputs = None
    if raw.outputs is not None:
        outputs = tuple(RequestedOutput(o.name, _binary_flag(o)) for o in raw.outputs)
    binary_output = (raw.parameters or {}).get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidInferenceRequest("parameters.binary_data_output must be true or false")
    return InferenceRequest(inputs, raw.id, raw.parameters, outputs, binary_output)


def encode_response(
    *,
    model_name: str,
    model_version: str,
    outputs: Mapping[str, np.ndarray],
    request_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    requested: Sequence[RequestedOutput] | None = None,
    binary_output: bool = False,
) -> tuple[bytes, int | None]:
    """The V2 response body, and the JSON header's length when binary outputs follow it.

    `requested` (the request's `outputs`) selects and orders the outputs; an unknown name is
    the client's mistake (400). Without it every output is returned, in the model's order.
    """
    if requested is None:
        chosen = [(name, binary_output) for name in outputs]
    else:
        chosen = []
        for want in requested:
            if want.name not in outputs:
                known = ", ".join(outputs)
                raise InvalidInferenceRequest(f"model has no output {want.name!r} (outputs: {known})")
            chosen.append((want.name, binary_output if want.binary is None else want.binary))
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, binary in chosen:
        array = outputs[name]
        datatype = datatype_of(array.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = _to_binary(array, datatype)
            entry["parameters"] = {BINARY_DATA_SIZE: len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = _to_json(array, datatype)
        entries.append(entry)
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    if parameters:
        response["parameters"] = dict(parameters)
    response["outputs"] = entries
    header = _encoder.encode(response)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def parse_header_length(value: str | None) -> int | None:
    """The `Inference-Header-Content-Length` header as an int (None when absent)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInferenceRequest(f"Inference-Header-Content-Length must be an integer, got {value!r}") from None


# -- tensors ------------------------------------------------------------------------------


def _dtype(spec: _Input) -> np.dtype[Any]:
    dtype = DATATYPES.get(spec.datatype)
    if dtype is None:
        raise InvalidInferenceRequest(
            f"input {spec.name!r}: unknown datatype {spec.datatype!r}; supported: {', '.join(DATATYPES)}"
        )
    return dtype


def _count(spec: _Input) -> int:
    if any(dim < 0 for dim in spec.shape):
        raise InvalidInferenceRequest(f"input {spec.name!r}: shape {spec.shape} has a negative dimension")
    return math.prod(spec.shape)


def _from_json(spec: _Input) -> np.ndarray:
    dtype = _dtype(spec)
    count = _count(spec)
    if not isinstance(spec.data, list):
        raise InvalidInferenceRequest(f"input {spec.name!r}: `data` must be a (flat or nested) list")
    if spec.datatype == "BYTES":
        array = _bytes_from_json(spec)
    else:
        try:
            array = np.array(spec.data)
        except (ValueError, TypeError) as exc:  # ragged nesting, mixed types
            raise InvalidInferenceRequest(f"input {spec.name!r}: `data` is not a regular array: {exc}") from None
        array = _convert(spec, array, dtype)
    if array.size != count:
        raise InvalidInferenceRequest(
            f"input {spec.name!r}: shape {spec.shape} holds {count} elements but `data` has {array.size}"
        )
    return array.reshape(spec.shape)


def _convert(spec: _Input, array: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """Check JSON values against the declared datatype, then cast once.

    Strict where a silent cast would change a value: booleans only for BOOL, integers
    only (and in range) for integer types; numbers of any kind for floating point.
    """
    kind = array.dtype.kind
    if array.size == 0:
        return array.astype(dtype)
    if dtype == np.uint64 and kind == "f":
        # numpy promotes int64 and uint64 values (above 2**63) together to float64.
        return _uint64_from_json(spec)
    if dtype.kind == "b":
        ok = kind == "b"
    elif dtype.kind in "iu":
        ok = kind in "iu"
        if ok:
            info = np.iinfo(dtype)
            low, high = array.min(), array.max()
            if low < info.min or high > info.max:
                raise InvalidInferenceRequest(
                    f"input {spec.name!r}: values must lie in [{info.min}, {info.max}] for {spec.datatype}"
                )
    else:
        ok = kind in "biuf"
    if not ok:
        raise InvalidInferenceRequest(
            f"input {spec.name!r}: `data` holds {_kind_name(kind)}, which datatype {spec.datatype} does not take"
        )
    return array.astype(dtype, copy=False)


def _uint64_from_json(spec: _Input) -> np.ndarray:
    flat: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        else:
            flat.append(value)

    walk(spec.data)
    if not all(type(v) is int for v in flat):
        raise InvalidInferenceRequest(f"input {spec.name!r}: `data` holds non-integers, which datatype UINT64 does not take")
    try:
        return np.array(flat, dtype=np.uint64)
    except OverflowError:
        raise InvalidInferenceRequest(f"input {spec.name!r}: values must lie in [0, {2**64 - 1}] for UINT64") from None


def _kind_name(kind: str) -> str:
    return {"b": "booleans", "i": "integers", "u": "integers", "f": "non-integer numbers", "U": "strings"}.get(
        kind, "values of mixed or unsupported types"
    )


def _bytes_from_json(spec: _Input) -> np.ndarray:
    flat: list[bytes] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            flat.append(value.encode())
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            raise InvalidInferenceRequest(f"input {spec.name!r}: BYTES data must be strings")

    walk(spec.data)
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array


def _from_binary(spec: _Input, raw: memoryview) -> np.ndarray:
    _dtype(spec)
    count = _count(spec)
    if spec.data is not None:
        raise InvalidInferenceRequest(f"input {spec.name!r}: has both `data` and binary_data_size")
    if spec.datatype == "BYTES":
        array = _deserialize_bytes(spec, raw)
        if array.size != count:
            raise InvalidInferenceRequest(
                f"input {spec.name!r}: shape {spec.shape} holds {count} elements but the binary data has {array.size}"
            )
        return array.reshape(spec.shape)
    dtype = _LITTLE[spec.datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInferenceRequest(
            f"input {spec.name!r}: shape {spec.shape} of {spec.datatype} needs {count * dtype.itemsize} bytes, "
            f"binary_data_size is {len(raw)}"
        )
    # A copy: the body buffer must not be kept alive (or written through) by the model.
    return np.frombuffer(raw, dtype=dtype).astype(DATATYPES[spec.datatype]).reshape(spec.shape)


def _deserialize_bytes(spec: _Input, raw: memoryview) -> np.ndarray:
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInferenceRequest(f"input {spec.name!r}: truncated BYTES element length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInferenceRequest(f"input {spec.name!r}: BYTES element runs past its binary data")
        items.append(bytes(raw[offset : offset + length]))
        offset += length
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _to_json(array: np.ndarray, datatype: str) -> list[Any]:
    if datatype != "BYTES":
        return list(array.ravel().tolist())
    out: list[Any] = []
    for item in array.ravel().tolist():
        if isinstance(item, bytes):
            try:
                out.append(item.decode())
            except UnicodeDecodeError:
                raise InvalidInferenceRequest(
                    "a BYTES output is not UTF-8 text; request it with binary_data: true"
                ) from None
        else:
            out.append(str(item))
    return out


def _to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=_LITTLE[datatype]).tobytes()
    parts: list[bytes] = []
    for item in array.ravel().tolist():
        data = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def _binary_flag(output: _Output) -> bool | None:
    flag = (output.parameters or {}).get("binary_data")
    if flag is None or isinstance(flag, bool):
        return flag
    raise InvalidInferenceRequest(f"output {output.name!r}: parameters.binary_data must be true or false")
