"""The training-data fingerprint: stable where it should be, sensitive where it should be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpilot.platform.models.fingerprints import fingerprint

X = np.arange(12, dtype=np.float64).reshape(4, 3)
Y = np.array([0, 1, 1, 0], dtype=np.int64)
# Pinned: a change here means every fingerprint already recorded in a registry changes meaning.
PINNED = "4cc5e41590e451666ce745220e23f1ca6e1a6dc6fc3d72a5d1f4a55ce85c4dd6"


def test_the_fingerprint_of_fixed_data_never_changes() -> None:
    assert fingerprint(X, Y) == PINNED


def test_the_fingerprint_is_the_same_in_another_process() -> None:
    code = (
        "import numpy as np; from marketpilot.platform.models.fingerprints import fingerprint; "
        "print(fingerprint(np.arange(12, dtype=np.float64).reshape(4, 3), np.array([0, 1, 1, 0])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == fingerprint(X, Y) == PINNED


def test_memory_layout_and_byte_order_do_not_change_the_fingerprint() -> None:
    assert fingerprint(np.asfortranarray(X)) == fingerprint(X)
    assert fingerprint(X.astype(">f8")) == fingerprint(X)
    assert fingerprint(X[:, ::-1][:, ::-1]) == fingerprint(X)  # a strided view


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(X[::-1], id="rows reordered"),
        pytest.param(X.astype(np.float32), id="dtype"),
        pytest.param(X.reshape(3, 4), id="shape"),
        pytest.param(np.where(X == 5, 5.000001, X), id="one value"),
    ],
)
def test_row_order_dtype_shape_and_values_change_the_fingerprint(changed: np.ndarray) -> None:
    assert fingerprint(changed) != fingerprint(X)


def test_parts_are_framed_so_they_cannot_run_together() -> None:
    a, b = np.arange(4), np.arange(4, 8)
    assert fingerprint(a, b) != fingerprint(np.concatenate([a, b]))
    assert fingerprint(a, b) != fingerprint(b, a)
    assert fingerprint(b"ab", b"c") != fingerprint(b"a", b"bc")


def test_mapping_key_order_does_not_matter_but_names_do() -> None:
    assert fingerprint({"x": X, "y": Y}) == fingerprint({"y": Y, "x": X})
    assert fingerprint({"x": X, "y": Y}) != fingerprint({"x": X, "z": Y})


def test_data_frames_hash_columns_in_order_and_ignore_the_index() -> None:
    frame = pd.DataFrame({"price": [1.5, 2.0, 3.0], "seller": ["a", "b", "c"], "qty": [1, 2, 3]})
    assert fingerprint(frame) == fingerprint(frame.set_axis([10, 11, 12]))
    assert fingerprint(frame) != fingerprint(frame[["seller", "price", "qty"]])
    assert fingerprint(frame) != fingerprint(frame.iloc[::-1].reset_index(drop=True))
    assert fingerprint(frame) != fingerprint(frame.assign(seller=["a", "b", "d"]))
    assert fingerprint(frame["seller"].astype("category")) == fingerprint(frame["seller"].astype("category"))


def test_files_hash_by_content_and_directories_by_relative_paths_too(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("user_id,listing_id\n1,2\n")
    (tmp_path / "b.csv").write_text("user_id,listing_id\n1,2\n")
    assert fingerprint(tmp_path / "d" / "a.csv") == fingerprint(tmp_path / "b.csv")  # same bytes

    before = fingerprint(tmp_path / "d")
    (tmp_path / "d" / "a.csv").rename(tmp_path / "d" / "renamed.csv")
    assert fingerprint(tmp_path / "d") != before


@pytest.mark.parametrize(
    ("parts", "error", "message"),
    [
        pytest.param((), ValueError, "needs at least one part", id="nothing"),
        pytest.param(("data.csv",), TypeError, "does not take str: pass pathlib.Path", id="str"),
        pytest.param((object(),), TypeError, "cannot hash object", id="object"),
        pytest.param((Path("/no/such/file"),), FileNotFoundError, "cannot fingerprint /no/such/file", id="missing"),
    ],
)
def test_unusable_inputs_are_refused_with_a_reason(parts: tuple[object, ...], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        fingerprint(*parts)


def test_the_docstring_examples_hold() -> None:
    import doctest

    from marketpilot.platform.models import fingerprints

    assert doctest.testmod(fingerprints).failed == 0
