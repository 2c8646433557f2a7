"""Feature streams with a known change point, to prove that drift detection finds drift.

The base distribution (a model's inputs before any change): `numeric` independent normal
features with seeded means and scales, `categorical` features drawn from seeded category
mixes (codes ``0 .. levels-1``), and a prediction ``sigmoid(w . z + category effect)`` of
them, so drift in an important input moves the prediction too, as it would in a real model.

A :class:`DriftScenario` changes that distribution from observation `change_at` on:

- ``mean_shift``: the chosen numeric features move by `magnitude` standard deviations;
- ``variance``: their standard deviation is multiplied by `magnitude`;
- ``category_mix``: a `magnitude` share of each chosen categorical feature's draws moves to
  its rarest category (from whichever category it would have been);
- ``none``: no change at all, the control for measuring false alarms.

Everything is seeded (`marketpilot.simulate.randomness.Streams`), training data and each
stream from their own generator, so a stream never reuses the training draws::

    injector = DriftInjector(numeric=4, categorical=1, seed=7)
    train = injector.training(20_000)
    live = injector.stream(10_000, DriftScenario("mean_shift", change_at=6_000, columns=("x0",)), part=1)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np

from marketpilot.simulate.randomness import Streams

START = datetime(2026, 1, 1, tzinfo=UTC)


class DriftKind(StrEnum):
    NONE = "none"
    MEAN_SHIFT = "mean_shift"
    VARIANCE = "variance"
    CATEGORY_MIX = "category_mix"


@dataclass(frozen=True, slots=True)
class DriftScenario:
    """What changes, where, and by how much (see the module docstring for `magnitude`)."""

    kind: DriftKind | str = DriftKind.NONE
    change_at: int = 0
    columns: tuple[str, ...] = ()
    magnitude: float = 1.0

    def __post_init__(self) -> None:
        kind = DriftKind(self.kind)
        object.__setattr__(self, "kind", kind)
        if self.change_at < 0:
            raise ValueError(f"change_at: must be >= 0, got {self.change_at}")
        if kind is not DriftKind.NONE and not self.columns:
            raise ValueError(f"columns: a {kind.value} scenario must name the columns that change")
        if kind is DriftKind.VARIANCE and self.magnitude <= 0:
            raise ValueError(f"magnitude: a variance scenario needs a positive scale factor, got {self.magnitude}")
        if kind is DriftKind.CATEGORY_MIX and not 0 < self.magnitude <= 1:
            raise ValueError(f"magnitude: a category_mix scenario moves a share in (0, 1], got {self.magnitude}")


@dataclass(frozen=True, eq=False)
class FeatureStream:
    """Rows of model inputs with their prediction and event time (Unix seconds).

    `change_at` is the index of the first changed row (None: nothing changed) and `drifted`
    the columns that changed, plus "prediction" (a function of every input, it changes too).
    """

    names: tuple[str, ...]
    categorical: tuple[str, ...]
    features: np.ndarray  # (n, d) float64; categorical columns hold codes
    predictions: np.ndarray  # (n,)
    times: np.ndarray  # (n,) Unix seconds, increasing
    change_at: int | None
    drifted: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.features.shape[0])


class DriftInjector:
    """Seeded generator of a model's input stream, with or without an injected change.

    Events arrive `rate` per second from `start`, evenly spaced, so a time window of length
    L holds exactly ``L * rate`` events and the change point's window is known.
    """

    def __init__(
        self,
        *,
        numeric: int = 4,
        categorical: int = 1,
        levels: int = 5,
        seed: int = 0,
        start: datetime = START,
        rate: float = 10.0,
    ) -> None:
        if numeric < 0 or categorical < 0 or numeric + categorical == 0:
            raise ValueError("need at least one numeric or categorical feature")
        if levels < 2:
            raise ValueError(f"levels: need at least 2 categories, got {levels}")
        if rate <= 0:
            raise ValueError(f"rate: must be positive events per second, got {rate}")
        self.streams = Streams(seed)
        self.start = start
        self.rate = rate
        self.numeric = tuple(f"x{i}" for i in range(numeric))
        self.categorical = tuple(f"c{i}" for i in range(categorical))
        params = self.streams.rng("drift.params")
        self.means = params.normal(0.0, 3.0, numeric)
        self.scales = params.uniform(0.5, 2.0, numeric)
        self.weights = params.normal(0.0, 1.0, numeric)
        self.mixes = params.dirichlet(np.full(levels, 2.0), categorical)  # (categorical, levels)
        self.effects = params.normal(0.0, 0.5, (categorical, levels))

    @property
    def names(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def training(self, n: int) -> FeatureStream:
        """`n` rows of the unchanged distribution, for `Reference.fit`."""
        return self._draw(n, DriftScenario(), self.streams.rng("drift.training"))

    def stream(
        self, n: int, scenario: DriftScenario | None = None, *, part: int = 0, first: int = 0
    ) -> FeatureStream:
        """`n` live rows with `scenario` applied (`change_at` counts from this part's first
        row). Different `part`s are independent draws; `first` is the position of this
        part's first row in the whole stream, so consecutive parts' event times join up."""
        return self._draw(n, scenario or DriftScenario(), self.streams.rng("drift.stream", part), first)

    def _draw(self, n: int, scenario: DriftScenario, rng: np.random.Generator, first: int = 0) -> FeatureStream:
        if n < 1:
            raise ValueError(f"n: need at least one row, got {n}")
        unknown = set(scenario.columns) - set(self.names)
        if unknown:
            raise ValueError(f"columns: unknown {sorted(unknown)}; this injector has {list(self.names)}")
        d_num, d_cat = len(self.numeric), len(self.categorical)
        z = rng.standard_normal((n, d_num))
        codes = np.empty((n, d_cat))
        for j in range(d_cat):
            codes[:, j] = rng.choice(self.mixes.shape[1], size=n, p=self.mixes[j])
        moved = rng.random((n, d_cat))  # drawn always, so a scenario never shifts later draws
        kind = DriftKind(scenario.kind)
        after = slice(min(scenario.change_at, n), n)
        changed = kind is not DriftKind.NONE and scenario.change_at < n
        for name in scenario.columns if changed else ():
            if name in self.numeric:
                j = self.numeric.index(name)
                if kind is DriftKind.MEAN_SHIFT:
                    z[after, j] += scenario.magnitude
                elif kind is DriftKind.VARIANCE:
                    z[after, j] *= scenario.magnitude
                else:
                    raise ValueError(f"columns: {name} is numeric; category_mix changes categorical columns")
            else:
                j = self.categorical.index(name)
                if kind is not DriftKind.CATEGORY_MIX:
                    raise ValueError(f"columns: {name} is categorical; {kind.value} changes numeric columns")
                rarest = float(np.argmin(self.mixes[j]))
                codes[after, j] = np.where(moved[after, j] < scenario.magnitude, rarest, codes[after, j])
        x = self.means + z * self.scales
        logit = z @ self.weights + sum(self.effects[j][codes[:, j].astype(int)] for j in range(d_cat))
        predictions = 1.0 / (1.0 + np.exp(-logit))
        times = self.start.timestamp() + (first + np.arange(n)) / self.rate
        drifted = (*scenario.columns, "prediction") if changed else ()
        return FeatureStream(
            names=self.names,
            categorical=self.categorical,
            features=np.hstack([x, codes]),
            predictions=predictions,
            times=times,
            change_at=scenario.change_at if changed else None,
            drifted=drifted,
        )

    def window_of(self, index: int, length: timedelta) -> int:
        """Index (from `start`) of the time window of `length` that holds row `index`."""
        return int(index / self.rate // length.total_seconds())
