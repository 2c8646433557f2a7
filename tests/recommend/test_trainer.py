"""The "recommend" trainer on a simulated marketplace in a real database: a time-ordered
holdout, a registered version whose artifact loads back into a working pipeline."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform" / "models"))
from retrain_support import marketplace  # noqa: E402

from marketpilot.platform.db import Database  # noqa: E402
from marketpilot.platform.models.training import get_trainer, register_trainer, run_training  # noqa: E402
from marketpilot.recommend.model import Query  # noqa: E402
from marketpilot.recommend.pipeline import TwoStagePipeline  # noqa: E402
from marketpilot.recommend.trainer import RecommendTrainer  # noqa: E402


class _Source:
    def __init__(self, settings) -> None:  # noqa: ANN001
        self.settings = settings
        self.db = Database(settings.db_url)


@pytest.fixture(scope="module")
def source():  # noqa: ANN201
    opened = _Source(marketplace("sqlite"))
    yield opened
    opened.db.dispose()


def test_the_recommend_trainer_registers_a_pipeline_that_loads_by_alias(source) -> None:  # noqa: ANN001
    from marketpilot.platform.models.registry import ModelRegistry

    name = f"recommend-{uuid.uuid4().hex[:8]}"
    trainer = register_trainer(RecommendTrainer(name=name))
    assert get_trainer(name) is trainer
    as_of = datetime(2026, 1, 14, tzinfo=UTC)
    data = trainer.load_data(source, as_of, 0.2)
    assert data.train.interactions["timestamp"].max() < data.holdout.interactions["timestamp"].min()
    with ModelRegistry.from_settings(source.settings) as registry:
        result = run_training(name, source, registry=registry, as_of=as_of, holdout_fraction=0.2)
        assert 0.0 < result.metrics["ndcg_at_10"] <= 1.0
        assert result.version.params["retrievers"].startswith("ease,cooc,als,seq,near,content")
        registry.promote(name, result.version.version)
        pipeline = TwoStagePipeline.from_bundle(registry.load(name, "champion"))
    got = pipeline.recommend(Query(k=10, user=0))
    assert len(got.items) == 10 and len(set(got.items.tolist())) == 10
    again = trainer.evaluate(pipeline, data.holdout)
    assert again["ndcg_at_10"] == pytest.approx(result.metrics["ndcg_at_10"])
    assert np.isfinite(again["users"])
