"""Fraud detection: real-time scoring of payment attempts with velocity, account and ring
features, a calibrated LightGBM/logistic blend with an IsolationForest fallback, decisions
at a target false-positive rate, a review queue and an offline evaluation. See docs/fraud.md.

Other capabilities use :class:`~marketpilot.fraud.service.FraudService` (``score``) and the
types in :mod:`marketpilot.fraud.base`; heavy modules are imported on use.
"""

from marketpilot.fraud.base import Action, FraudDecision, FraudRequest, Reason, Strategy

__all__ = ["Action", "FraudDecision", "FraudRequest", "Reason", "Strategy"]
