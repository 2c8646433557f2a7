"""A stable SHA-256 fingerprint of the data a model was trained on.

The registry records it with every training run so that "was version 7 trained on the same
data as version 6?" is a string comparison, and so that a dataset can be re-identified later.

What the fingerprint is sensitive to, and why:

- **Row order: yes.** It identifies exactly what the trainer saw. Row order changes
  bagging, early-stopping splits and every time-ordered feature, so two orderings are two
  training sets. Sort before fingerprinting if you want order-insensitivity.
- **Values, dtype and shape: yes.** `float32` and `float64` copies of the same numbers are
  different inputs to a model.
- **Memory layout and byte order: no.** A Fortran-ordered or big-endian copy of an array
  hashes like the C-ordered little-endian one, so the value is stable across machines.
- **Mapping key order: no** (keys are sorted); **DataFrame column order: yes** (it is the
  feature order); the DataFrame index is ignored (labels are not training data).
- **File names: only inside a directory** (relative paths are part of a directory's
  content; a single file is hashed by its bytes alone).

Every part is framed with a type tag and its length, so no two different inputs can
concatenate to the same byte stream.

>>> import numpy as np
>>> a = np.arange(6, dtype=np.int64).reshape(3, 2)
>>> fingerprint(a) == fingerprint(np.asfortranarray(a))
True
>>> fingerprint(a) == fingerprint(a[::-1])
False
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

DataPart: TypeAlias = Any  # ndarray | DataFrame | Series | Mapping[str, DataPart] | Path | bytes | list

_CHUNK = 1 << 20


def fingerprint(*parts: DataPart) -> str:
    """SHA-256 hex digest of `parts`, in order.

    Accepts numpy arrays (and lists/tuples of numbers, taken as arrays), pandas DataFrames
    and Series, mappings of name to any of these, `pathlib.Path` files and directories, and
    bytes. Plain `str` is refused because it is ambiguous (a path or a value?).
    """
    if not parts:
        raise ValueError("fingerprint() needs at least one part")
    digest = hashlib.sha256(b"marketpilot-fingerprint-v1")
    for part in parts:
        _update(digest, part)
    return digest.hexdigest()


def _frame(digest: Any, kind: bytes, header: str = "") -> None:
    encoded = header.encode()
    digest.update(kind + len(encoded).to_bytes(8, "little") + encoded)


def _update(digest: Any, part: DataPart) -> None:
    pandas = sys.modules.get("pandas")  # a DataFrame can only exist if pandas was imported
    if isinstance(part, np.ndarray | np.generic):
        _update_array(digest, np.asarray(part))
    elif pandas is not None and isinstance(part, pandas.DataFrame):
        _frame(digest, b"F", str(part.shape))
        for name in part.columns:
            _update_series(digest, str(name), part[name], pandas)
    elif pandas is not None and isinstance(part, pandas.Series):
        _update_series(digest, str(part.name), part, pandas)
    elif isinstance(part, Mapping):
        _frame(digest, b"M", str(len(part)))
        for key in sorted(part, key=str):
            _frame(digest, b"K", str(key))
            _update(digest, part[key])
    elif isinstance(part, os.PathLike):
        _update_path(digest, Path(part))
    elif isinstance(part, bytes | bytearray | memoryview):
        data = bytes(part)
        _frame(digest, b"B", str(len(data)))
        digest.update(data)
    elif isinstance(part, str):
        raise TypeError("fingerprint() does not take str: pass pathlib.Path for a file, or bytes for a value")
    elif isinstance(part, Sequence):
        _update_array(digest, np.asarray(part))
    else:
        raise TypeError(f"fingerprint() cannot hash {type(part).__name__}: pass arrays, frames, paths or bytes")


def _update_array(digest: Any, array: np.ndarray) -> None:
    if array.dtype.hasobject:
        # Object arrays have no stable bytes (they hold pointers); hash their text instead.
        array = array.astype(str)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    _frame(digest, b"A", f"{array.dtype.str}|{array.shape}")
    if array.size:
        digest.update(array.reshape(-1).view(np.uint8))


def _update_series(digest: Any, name: str, series: Any, pandas: Any) -> None:
    _frame(digest, b"C", f"{name}|{series.dtype}")
    values = series.to_numpy()
    if isinstance(values, np.ndarray) and not values.dtype.hasobject:
        _update_array(digest, values)
    else:
        # Strings, categoricals, nullable extension types: pandas' hash is deterministic
        # (fixed key) and hashes categoricals by value, not by code.
        _update_array(digest, pandas.util.hash_pandas_object(series, index=False).to_numpy())


def _update_path(digest: Any, path: Path) -> None:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        _frame(digest, b"D", str(len(files)))
        for file in files:
            _frame(digest, b"N", file.relative_to(path).as_posix())
            _update_file(digest, file)
    elif path.is_file():
        _update_file(digest, path)
    else:
        raise FileNotFoundError(f"cannot fingerprint {path}: no such file or directory")


def _update_file(digest: Any, path: Path) -> None:
    _frame(digest, b"P", str(path.stat().st_size))
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
