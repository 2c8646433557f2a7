"""Geographic holdouts: matched-pair region assignment and a difference-in-differences
estimate of incremental GMV with a confidence interval."""

from marketpilot.measure.holdout.design import matched_pair_assignment
from marketpilot.measure.holdout.did import DiDEstimate, did_estimate

__all__ = ["DiDEstimate", "did_estimate", "matched_pair_assignment"]
