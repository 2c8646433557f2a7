"""The `fraud` trainer end to end on SQLite: transactions -> point-in-time features -> a
registered FraudModel -> promoted -> served by a fresh FraudService (MLflow: ~20 s)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fraud_data import history

from marketpilot.fraud.base import Strategy
from marketpilot.fraud.model import FraudModel
from marketpilot.fraud.service import FraudService, load_champion
from marketpilot.fraud.train import FraudTrainer
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import schema as t
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.platform.models.training import register_trainer, run_training
from marketpilot.runtime import Runtime


def test_train_register_promote_and_serve(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    rt = Runtime(settings)
    try:
        requests, labels = history()
        with rt.db.session() as s:
            s.add_all(t.Transaction(
                id=r.transaction_id, user_id=r.user_id, amount_minor=r.amount_minor, currency=r.currency,
                instrument_fingerprint=r.instrument_fingerprint or "", device_id=r.device_id, ip=r.ip,
                email_domain=r.email_domain, ip_region=r.ip_region, shipping_region=r.shipping_region,
                timestamp=r.timestamp, label=int(y)) for r, y in zip(requests, labels, strict=True))
        register_trainer(FraudTrainer(rounds=60), replace=True)
        as_of = requests[-1].at() + timedelta(seconds=1)
        with ModelRegistry.from_settings(settings) as registry:
            result = run_training("fraud", rt, registry=registry, as_of=as_of)
            assert result.metrics["frauds"] > 0 and 0.0 <= result.metrics["recall_at_fpr"] <= 1.0
            assert result.metrics["auc_roc"] > 0.9
            registry.promote("fraud", result.version.version)
        found = load_champion(settings)
        assert found is not None
        model, version = found
        assert isinstance(model, FraudModel) and version == f"fraud/{result.version.version}"
        service = FraudService(rt.db, model_loader=lambda: load_champion(settings))
        service.prime(now=as_of, window=timedelta(days=60))
        decision = service.score(requests[-1].__class__(**{
            **{f: getattr(requests[-1], f) for f in requests[-1].__struct_fields__}, "transaction_id": "new-1"}))
        assert decision.strategy is Strategy.MODEL and decision.model_version == version
    finally:
        register_trainer(FraudTrainer(), replace=True)
        rt.close()
