"""Traffic ramps: each treatment arm's share grows stage by stage (e.g. 1% → 5% → 25% → 50%).

A stage is left only when it has seen enough sessions and no guardrail is in breach, so a
bad arm is caught while it still touches few buyers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_STAGES", "RampSchedule"]

DEFAULT_STAGES = (0.01, 0.05, 0.25, 0.5)


@dataclass(frozen=True)
class RampSchedule:
    stages: tuple[float, ...] = DEFAULT_STAGES  # traffic share of EACH treatment arm per stage
    min_stage_sessions: int = 10_000  # sessions (all arms) a stage must see before the next
    horizon_sessions: int = 1_000_000  # sessions (all arms) after which the experiment completes

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a ramp needs at least one stage")
        if any(not 0 < s <= 1 for s in self.stages):
            raise ValueError("every stage share must lie in (0, 1]")
        if any(b <= a for a, b in zip(self.stages, self.stages[1:], strict=False)):
            raise ValueError("stage shares must increase strictly")
        if self.min_stage_sessions < 1 or self.horizon_sessions < 1:
            raise ValueError("min_stage_sessions and horizon_sessions must be positive")

    def check_arms(self, n_treatments: int) -> None:
        if self.stages[-1] * n_treatments > 1:
            raise ValueError(
                f"{n_treatments} treatment arms at {self.stages[-1]:.0%} each exceed all traffic")

    def share(self, stage: int) -> float:
        if not 0 <= stage < len(self.stages):
            raise ValueError(f"stage must lie in [0, {len(self.stages)}), got {stage}")
        return self.stages[stage]

    def can_advance(self, stage: int, stage_sessions: int) -> bool:
        return stage + 1 < len(self.stages) and stage_sessions >= self.min_stage_sessions
