"""Exploration over ranked slates: slot-level bandit policies under a per-class daily budget."""

from marketpilot.recommend.bandits.budget import BudgetLimits, DayAccount, ExplorationBudget
from marketpilot.recommend.bandits.per_class import PerSessionClass
from marketpilot.recommend.bandits.policies import (
    EpsilonGreedy,
    ExplorationPolicy,
    ExploredSlate,
    LinUCB,
    SlateRequest,
    ThompsonSampling,
)

__all__ = [
    "BudgetLimits",
    "DayAccount",
    "EpsilonGreedy",
    "ExplorationBudget",
    "ExplorationPolicy",
    "ExploredSlate",
    "LinUCB",
    "PerSessionClass",
    "SlateRequest",
    "ThompsonSampling",
]
