"""The V2 codec: JSON tensors flat or nested, every datatype, the binary tensor data extension
as tritonclient writes and reads it, and a clear message for each malformed request."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as triton

from marketpilot.platform.models.serving_errors import InvalidInferenceRequest
from marketpilot.platform.models.serving_protocol import (
    DATATYPES,
    RequestedOutput,
    datatype_of,
    decode_request,
    encode_response,
    parse_header_length,
)

SAMPLES = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 255, 7], [1, 2, 3]], np.uint8),
    "UINT16": np.array([[0, 65535, 7], [1, 2, 3]], np.uint16),
    "UINT32": np.array([[0, 2**32 - 1, 7], [1, 2, 3]], np.uint32),
    "UINT64": np.array([[0, 2**64 - 1, 7], [1, 2, 3]], np.uint64),
    "INT8": np.array([[-128, 127, 0], [1, -2, 3]], np.int8),
    "INT16": np.array([[-32768, 32767, 0], [1, -2, 3]], np.int16),
    "INT32": np.array([[-(2**31), 2**31 - 1, 0], [1, -2, 3]], np.int32),
    "INT64": np.array([[-(2**63), 2**63 - 1, 0], [1, -2, 3]], np.int64),
    "FP16": np.array([[0.5, -1.25, 65504.0], [1e-3, 2.0, 3.0]], np.float16),
    "FP32": np.array([[0.1, -1.25, 3.4e38], [1e-30, 2.0, 3.0]], np.float32),
    "FP64": np.array([[0.1, -1.25, 1.7e308], [5e-324, 2.0, 3.0]], np.float64),
    "BYTES": np.array([[b"a", b"", "né".encode()], [b"x y", b"{}", b"z"]], dtype=object),
}


def _json_request(name: str, datatype: str, shape: list[int], data: object, **extra: object) -> bytes:
    return json.dumps({"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}], **extra}).encode()


def _json_data(array: np.ndarray) -> list[object]:
    if array.dtype == object:
        return [b.decode() for b in array.ravel()]
    return list(array.ravel().tolist())


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_datatype_round_trips_through_json(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = decode_request(_json_request("x", datatype, [2, 3], _json_data(array)))

    decoded = request.inputs["x"]
    assert decoded.dtype == DATATYPES[datatype] and decoded.shape == (2, 3)
    np.testing.assert_array_equal(decoded, array)

    body, header_length = encode_response(model_name="m", model_version="1", outputs={"y": decoded})
    assert header_length is None
    result = triton.InferenceServerClient.parse_response_body(body)
    expected = np.vectorize(bytes.decode, otypes=[object])(array) if datatype == "BYTES" else array
    np.testing.assert_array_equal(result.as_numpy("y"), expected)  # tritonclient reads JSON BYTES as str
    assert result.get_output("y")["datatype"] == datatype


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_datatype_round_trips_through_the_binary_extension_as_tritonclient_writes_it(datatype: str) -> None:
    array = SAMPLES[datatype]
    tensor = triton.InferInput("x", list(array.shape), datatype).set_data_from_numpy(array, binary_data=True)
    body, header_length = triton.InferenceServerClient.generate_request_body([tensor], request_id="r-1")

    request = decode_request(body, header_length)

    assert request.id == "r-1"
    assert request.binary_output  # tritonclient asks for binary outputs when it names none
    np.testing.assert_array_equal(request.inputs["x"], array)
    out, out_length = encode_response(
        model_name="m", model_version="1", outputs={"y": request.inputs["x"]}, binary_output=request.binary_output
    )
    assert out_length is not None
    result = triton.InferenceServerClient.parse_response_body(out, header_length=out_length)
    np.testing.assert_array_equal(result.as_numpy("y"), array)


def test_nested_and_flat_data_give_the_same_tensor() -> None:
    flat = decode_request(_json_request("x", "FP32", [2, 2], [1, 2, 3, 4])).inputs["x"]
    nested = decode_request(_json_request("x", "FP32", [2, 2], [[1, 2], [3, 4]])).inputs["x"]
    np.testing.assert_array_equal(flat, nested)
    np.testing.assert_array_equal(flat, np.array([[1, 2], [3, 4]], np.float32))


def test_requested_outputs_are_selected_in_order_each_in_its_own_encoding() -> None:
    outputs: dict[str, np.ndarray] = {"a": np.arange(3, dtype=np.int32), "b": np.ones(2, np.float32), "c": np.zeros(1)}
    body, length = encode_response(
        model_name="m", model_version="2", outputs=outputs, request_id="q",
        requested=[RequestedOutput("c"), RequestedOutput("a", binary=True)],
    )  # fmt: skip
    assert length is not None
    header = json.loads(body[:length])
    assert header == {
        "model_name": "m",
        "model_version": "2",
        "id": "q",
        "outputs": [
            {"name": "c", "datatype": "FP64", "shape": [1], "data": [0.0]},
            {"name": "a", "datatype": "INT32", "shape": [3], "parameters": {"binary_data_size": 12}},
        ],
    }
    assert body[length:] == np.arange(3, dtype="<i4").tobytes()


def test_float32_outputs_survive_json_exactly() -> None:
    values = np.random.default_rng(1).random(1000).astype(np.float32)
    body, _ = encode_response(model_name="m", model_version="1", outputs={"p": values})
    data = json.loads(body)["outputs"][0]["data"]
    np.testing.assert_array_equal(np.array(data, dtype=np.float32), values)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "request body is not valid JSON: Input data was truncated"),
        (b"[]", "invalid inference request: Expected `object`, got `array`"),
        (b"{}", "invalid inference request: Object missing required field `inputs`"),
        (b'{"inputs": []}', "inference request has no inputs"),
        (_json_request("x", "FP32", [3], [1, 2]), "input 'x': shape [3] holds 3 elements but `data` has 2"),
        (_json_request("x", "FP32", [2, 2], [[1, 2], [3]]), "input 'x': `data` is not a regular array: "),
        (_json_request("x", "FP32", [-1], [1]), "input 'x': shape [-1] has a negative dimension"),
        (_json_request("x", "FP8", [1], [1]), "input 'x': unknown datatype 'FP8'; supported: BOOL, UINT8, "),
        (_json_request("x", "FP32", [1], ["1.5"]), "input 'x': `data` holds strings, which datatype FP32 does not take"),
        (_json_request("x", "INT32", [1], [1.5]), "input 'x': `data` holds non-integer numbers, which datatype INT32 does not take"),
        (_json_request("x", "UINT8", [2], [1, 256]), "input 'x': values must lie in [0, 255] for UINT8"),
        (_json_request("x", "INT8", [1], [-129]), "input 'x': values must lie in [-128, 127] for INT8"),
        (_json_request("x", "BOOL", [1], [1]), "input 'x': `data` holds integers, which datatype BOOL does not take"),
        (_json_request("x", "FP64", [1], [None]), "input 'x': `data` holds values of mixed or unsupported types"),
        (_json_request("x", "BYTES", [1], [1]), "input 'x': BYTES data must be strings"),
        (_json_request("x", "FP32", [1], 1.0), "input 'x': `data` must be a (flat or nested) list"),
        (
            json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}] * 2}).encode(),
            "input 'x' is given twice",
        ),
        (
            _json_request("x", "FP32", [1], [1], parameters={"binary_data_output": "yes"}),
            "parameters.binary_data_output must be true or false",
        ),
        (
            _json_request("x", "FP32", [1], [1], outputs=[{"name": "y", "parameters": {"binary_data": 1}}]),
            "output 'y': parameters.binary_data must be true or false",
        ),
    ],
)
def test_malformed_json_requests_are_refused_with_a_message_naming_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInferenceRequest) as caught:
        decode_request(body)
    assert caught.value.message.startswith(message), caught.value.message


def _binary(shape: list[int], size: int, payload: bytes, datatype: str = "FP32") -> tuple[bytes, int]:
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "parameters": {"binary_data_size": size}}]}
    ).encode()
    return header + payload, len(header)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_binary([2], 8, b"\0" * 4), "input 'x': binary_data_size 8 runs past the end of the body (4 binary bytes left)"),
        (_binary([3], 8, b"\0" * 8), "input 'x': shape [3] of FP32 needs 12 bytes, binary_data_size is 8"),
        (_binary([1], 4, b"\0" * 6), "2 bytes of binary data belong to no input"),
        (_binary([1], -4, b""), "input 'x': binary_data_size must be a non-negative integer"),
        (_binary([1], 3, b"\x05\0\0", "BYTES"), "input 'x': truncated BYTES element length"),
        (_binary([1], 6, b"\x05\0\0\0ab", "BYTES"), "input 'x': BYTES element runs past its binary data"),
        ((b'{"inputs": []}', 100), "Inference-Header-Content-Length is 100 but the body has 14 bytes"),
    ],
)
def test_malformed_binary_requests_are_refused_with_a_message_naming_the_problem(
    request_: tuple[bytes, int], message: str
) -> None:
    with pytest.raises(InvalidInferenceRequest) as caught:
        decode_request(*request_)
    assert caught.value.message == message


def test_an_unknown_requested_output_is_named() -> None:
    with pytest.raises(InvalidInferenceRequest, match=r"^model has no output 'z' \(outputs: y\)$"):
        encode_response(model_name="m", model_version="1", outputs={"y": np.zeros(1)}, requested=[RequestedOutput("z")])


def test_header_length_must_be_an_integer() -> None:
    assert parse_header_length(None) is None
    assert parse_header_length("12") == 12
    with pytest.raises(InvalidInferenceRequest, match="must be an integer, got 'x'"):
        parse_header_length("x")


def test_numpy_dtypes_map_to_v2_datatypes() -> None:
    assert datatype_of(np.dtype(">f4")) == "FP32"
    assert datatype_of(np.dtype("U3")) == "BYTES"
    with pytest.raises(InvalidInferenceRequest, match="has no V2 datatype"):
        datatype_of(np.dtype("complex64"))
