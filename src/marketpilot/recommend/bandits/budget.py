"""The exploration budget: per session class and UTC day, a cap on the share of slots that may
be explored and on the expected GMV given up by exploring.

The budget is checked *before* a slot is explored and charged in the same locked step, so it
can never be exceeded, whatever the concurrency: a slot the budget refuses is exploited. The
share cap is checked against the slots already served today plus the slate being built,
so early in a day (few slots served) exploration is throttled rather than front-loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    max_explored_share: float = 0.05  # explored slots / all slots, per class and day
    max_gmv_loss_per_day: float = float("inf")  # expected GMV given up, minor units, per class and day

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_explored_share <= 1.0:
            raise ValueError(f"max_explored_share must be within [0, 1], got {self.max_explored_share}")
        if self.max_gmv_loss_per_day < 0:
            raise ValueError(f"max_gmv_loss_per_day must be >= 0, got {self.max_gmv_loss_per_day}")


@dataclass(slots=True)
class DayAccount:
    """What one session class used on one day."""

    slots: int = 0
    explored: int = 0
    gmv_given_up: float = 0.0

    @property
    def explored_share(self) -> float:
        return self.explored / self.slots if self.slots else 0.0


@dataclass
class ExplorationBudget:
    """Thread-safe accounts per (session class, day); `limits` per class, `default` otherwise."""

    default: BudgetLimits = field(default_factory=BudgetLimits)
    limits: dict[str, BudgetLimits] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _accounts: dict[tuple[str, date], DayAccount] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def limits_for(self, session_class: str) -> BudgetLimits:
        return self.limits.get(session_class, self.default)

    def try_explore(self, session_class: str, slate_slots: int, expected_loss: float) -> bool:
        """Charge one explored slot of a slate of `slate_slots` being built now, if the budget
        allows it; False (and nothing charged) otherwise."""
        limits = self.limits_for(session_class)
        loss = max(0.0, float(expected_loss))
        with self._lock:
            account = self._account(session_class)
            share_ok = account.explored + 1 <= limits.max_explored_share * (account.slots + slate_slots)
            gmv_ok = account.gmv_given_up + loss <= limits.max_gmv_loss_per_day
            if not (share_ok and gmv_ok):
                return False
            account.explored += 1
            account.gmv_given_up += loss
            return True

    def close_slate(self, session_class: str, slate_slots: int) -> None:
        """Count a served slate's slots (explored ones were charged by :meth:`try_explore`)."""
        with self._lock:
            self._account(session_class).slots += slate_slots

    def account(self, session_class: str, day: date | None = None) -> DayAccount:
        with self._lock:
            found = self._accounts.get((session_class, day or self.clock().date()))
            return DayAccount() if found is None else DayAccount(found.slots, found.explored, found.gmv_given_up)

    def accounts(self) -> dict[tuple[str, date], DayAccount]:
        with self._lock:
            return {key: DayAccount(a.slots, a.explored, a.gmv_given_up) for key, a in self._accounts.items()}

    def _account(self, session_class: str) -> DayAccount:
        key = (session_class, self.clock().date())
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = DayAccount()
        return account
