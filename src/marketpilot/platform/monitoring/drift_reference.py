"""What "not drifted" looks like for one model: a per-feature summary of its training data.

Captured once at training time with :meth:`Reference.fit` and stored beside the model
version (:meth:`Reference.to_bytes`, a small ``.npz``). The monitor compares every closed
window of live traffic against it; nothing from the training set is needed at serving time.

Per feature (and for the model's prediction, as one more column):

- **numeric**: inner quantile bin edges (``bins`` equal-mass bins from the training data,
  the outer two open-ended), the training counts per bin, and a seeded sample of up to
  ``sample_size`` values for the KS test.
- **categorical**: the category codes seen in training (the ``max_levels`` most frequent)
  and their counts, plus an ``other`` bin for codes never seen (or too rare).

Every feature also has a final ``missing`` bin for NaN, so a jump in the missing rate is
drift too. Categorical features are passed as the numeric codes the model itself receives:
the live path records plain float vectors and never touches strings.
"""

from __future__ import annotations

import io
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np

Kind: TypeAlias = Literal["numeric", "categorical"]
FORMAT_VERSION = 1
PREDICTION = "prediction"


@dataclass(frozen=True, eq=False)
class FeatureReference:
    """The training distribution of one column.

    `edges` (numeric) are the inner bin edges, sorted: bin 0 is ``(-inf, edges[0])``, bin i
    is ``[edges[i-1], edges[i])`` and bin k-1 is ``[edges[-1], inf)``. `levels`
    (categorical) are the sorted codes with a bin each, followed by ``other``. The last bin
    of every feature is ``missing`` (NaN). `counts` are training counts over those bins.
    """

    name: str
    kind: Kind
    counts: np.ndarray
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    levels: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def proportions(self) -> np.ndarray:
        total = self.counts.sum()
        return self.counts / total if total else np.zeros_like(self.counts, dtype=np.float64)

    @property
    def n_bins(self) -> int:
        return int(self.counts.size)

    def bin_counts(self, values: np.ndarray) -> np.ndarray:
        """Counts of `values` over this feature's bins (vectorised; values may hold NaN)."""
        return np.bincount(self.bin_index(values), minlength=self.n_bins)

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        missing = np.isnan(values)
        if self.kind == "numeric":
            idx = np.searchsorted(self.edges, values, side="right")
        elif self.levels.size == 0:
            idx = np.zeros(values.shape, dtype=np.intp)  # every code is `other`
        else:
            pos = np.searchsorted(self.levels, values)
            known = self.levels[np.minimum(pos, self.levels.size - 1)] == values
            idx = np.where(known, pos, self.levels.size)  # unknown codes: the `other` bin
        return np.where(missing, self.n_bins - 1, idx)


@dataclass(frozen=True, eq=False)
class Reference:
    """Reference distributions of a model's features and prediction, in column order.

    A live vector recorded by the monitor is ``features[0..d-1]`` followed by the
    prediction, so `columns` is the feature list plus one entry named `prediction_name`.
    """

    features: tuple[FeatureReference, ...]
    prediction: FeatureReference
    n_training: int
    seed: int = 0

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def columns(self) -> tuple[FeatureReference, ...]:
        return (*self.features, self.prediction)

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        predictions: np.ndarray,
        *,
        names: Sequence[str],
        categorical: Collection[str] = (),
        prediction_kind: Kind = "numeric",
        prediction_name: str = PREDICTION,
        bins: int = 10,
        sample_size: int = 2_000,
        max_levels: int = 50,
        seed: int = 0,
    ) -> Reference:
        """Summarise training data: `features` shape ``(n, d)``, `predictions` shape ``(n,)``.

        `names` labels the d columns; those in `categorical` are category codes. The KS
        sample is drawn without replacement with ``numpy.random.default_rng(seed)``, so the
        same data and seed give the same reference byte for byte.
        """
        # Live values usually arrive as float32 tensors (V2 FP32 inputs and outputs). Rounding
        # the training values to float32 too keeps a lump of identical values (a tree model's
        # leaf scores, a price point) on the same side of a bin edge in both; otherwise that
        # rounding alone moves whole lumps between bins and reads as drift.
        x = np.asarray(features, dtype=np.float64).astype(np.float32).astype(np.float64)
        y = np.asarray(predictions, dtype=np.float64).astype(np.float32).astype(np.float64)
        if x.ndim != 2:
            raise ValueError(f"features: expected a 2-D array (rows, features), got shape {x.shape}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"predictions: expected shape ({x.shape[0]},) to match features, got {y.shape}")
        if len(names) != x.shape[1]:
            raise ValueError(f"names: {len(names)} names for {x.shape[1]} feature columns")
        all_names = [*names, prediction_name]
        if len(set(all_names)) != len(all_names):
            raise ValueError(f"names: must be unique and differ from the prediction name {prediction_name!r}")
        unknown = set(categorical) - set(names)
        if unknown:
            raise ValueError(f"categorical: not feature names: {sorted(unknown)}")
        if x.shape[0] == 0:
            raise ValueError("features: need at least one training row")
        if bins < 2:
            raise ValueError(f"bins: must be at least 2, got {bins}")
        if sample_size < 1:
            raise ValueError(f"sample_size: must be at least 1, got {sample_size}")
        rng = np.random.default_rng(seed)
        cols = [
            _fit_column(name, x[:, j], "categorical" if name in categorical else "numeric",
                        bins, sample_size, max_levels, rng)
            for j, name in enumerate(names)
        ]
        pred = _fit_column(prediction_name, y, prediction_kind, bins, sample_size, max_levels, rng)
        return cls(features=tuple(cols), prediction=pred, n_training=int(x.shape[0]), seed=seed)

    def to_bytes(self) -> bytes:
        """A compressed ``.npz``: one JSON member for the layout, plain arrays for the numbers
        (loaded with ``allow_pickle=False``, so a stored reference can never run code)."""
        meta = {
            "format": FORMAT_VERSION,
            "n_training": self.n_training,
            "seed": self.seed,
            "columns": [{"name": c.name, "kind": c.kind} for c in self.columns],
        }
        arrays: dict[str, np.ndarray] = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
        for i, col in enumerate(self.columns):
            arrays[f"c{i}_counts"] = col.counts
            arrays[f"c{i}_edges"] = col.edges
            arrays[f"c{i}_levels"] = col.levels
            arrays[f"c{i}_sample"] = col.sample
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    def save(self, path: Path) -> Path:
        """Write :meth:`to_bytes` to `path` (e.g. ``drift-reference.npz``, then hand it to the
        registry as one of the run's `extra_files`)."""
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: Path) -> Reference:
        return cls.from_bytes(path.read_bytes())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Reference:
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                meta = json.loads(npz["meta"].tobytes())
                if meta.get("format") != FORMAT_VERSION:
                    raise ValueError(f"unsupported reference format {meta.get('format')!r}")
                cols = tuple(
                    FeatureReference(
                        name=c["name"],
                        kind=c["kind"],
                        counts=npz[f"c{i}_counts"],
                        edges=npz[f"c{i}_edges"],
                        levels=npz[f"c{i}_levels"],
                        sample=npz[f"c{i}_sample"],
                    )
                    for i, c in enumerate(meta["columns"])
                )
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a drift reference: {exc}") from exc
        return cls(features=cols[:-1], prediction=cols[-1], n_training=int(meta["n_training"]), seed=int(meta["seed"]))


def _fit_column(
    name: str, values: np.ndarray, kind: Kind, bins: int, sample_size: int, max_levels: int, rng: np.random.Generator
) -> FeatureReference:
    present = values[~np.isnan(values)]
    if kind == "numeric":
        if present.size:
            # Edges are observed values ("higher" quantiles: about a share p of the data lies
            # below the p-quantile), so ties (say 70% zeros) merge bins rather than an
            # interpolated edge like 0.3 leaving a bin empty.
            qs = np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="higher")
            edges = np.unique(qs)
        else:
            edges = np.empty(0)
        take = min(sample_size, present.size)
        sample = np.sort(rng.choice(present, size=take, replace=False)) if take else np.empty(0)
        ref = FeatureReference(name, kind, counts=np.zeros(edges.size + 2, dtype=np.int64), edges=edges, sample=sample)
    elif kind == "categorical":
        codes, freq = np.unique(present, return_counts=True)
        if codes.size > max_levels:
            codes = np.sort(codes[np.argsort(-freq, kind="stable")[:max_levels]])
        ref = FeatureReference(name, kind, counts=np.zeros(codes.size + 2, dtype=np.int64), levels=codes)
    else:
        raise ValueError(f"kind of {name!r}: must be 'numeric' or 'categorical', got {kind!r}")
    return FeatureReference(
        ref.name, ref.kind, counts=ref.bin_counts(values).astype(np.int64),
        edges=ref.edges, levels=ref.levels, sample=ref.sample,
    )
